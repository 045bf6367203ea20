"""The audit chain: one link per audit event row, in one global chain.

Rows here are written by database triggers (`sql.py`), never by Django code: a link is
appended when the transaction that inserted the event row commits."""

import pghistory
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models.functions import Now


class AuditLink(models.Model):
    """One audit event row, chained: `hash = sha256(prev_hash || content_hash || "table:pk")`."""

    seq = models.BigIntegerField(primary_key=True)
    table_name = models.TextField()
    row_pk = models.BigIntegerField()
    # The event's columns when it was chained: a column added to the table later is left
    # out of the recomputed content hash, so migrations do not break old links.
    columns = ArrayField(models.TextField())
    content_hash = models.BinaryField()
    prev_hash = models.BinaryField()
    hash = models.BinaryField()
    created_at = models.DateTimeField(db_default=Now())
    # Copied from the event row by a trigger (migration 0004), outside the hash: what the global
    # audit log filters on (action, object, actor) without reading every event table.
    label = models.TextField(null=True)
    obj_id = models.TextField(null=True)
    context_id = models.UUIDField(null=True)
    # From the context: "user:<pk>" or "token:<id>" (who), and the RQ job id (how).
    actor = models.TextField(null=True)
    job = models.TextField(null=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["table_name", "row_pk"], name="audit_link_row_unique")
        ]
        indexes = [
            models.Index(fields=["table_name", "seq"], name="audit_link_table_seq"),
            models.Index(fields=["label", "seq"], name="audit_link_label_seq"),
            models.Index(fields=["actor", "seq"], name="audit_link_actor_seq"),
            models.Index(fields=["job", "seq"], name="audit_link_job_seq"),
            models.Index(fields=["created_at"], name="audit_link_created_at"),
        ]

    def __str__(self) -> str:
        return f"link #{self.seq} ({self.table_name} #{self.row_pk})"


class AuditChainHead(models.Model):
    """One row, locked (never updated) by each transaction appending links at commit."""

    id = models.SmallIntegerField(primary_key=True)

    def __str__(self) -> str:
        return "audit chain lock"


class AuditRedaction(models.Model):
    """A lawful erasure of columns of one event row. Written only by the
    `flywheel_audit_redact` function, and chained itself like an event."""

    table_name = models.TextField()
    row_pk = models.BigIntegerField()
    columns = ArrayField(models.TextField())
    reason = models.TextField()
    created_at = models.DateTimeField(db_default=Now())

    def __str__(self) -> str:
        return f"redaction of {self.table_name} #{self.row_pk}"


class AuditCheck(models.Model):
    """One run of `verify_audit` (the audit chain and the dataset manifests' chain)."""

    ran_at = models.DateTimeField(db_default=Now())
    ok = models.BooleanField()
    links = models.BigIntegerField(default=0)
    redactions = models.BigIntegerField(default=0)
    versions = models.IntegerField(default=0)
    # The first broken link first; at most PROBLEMS_MAX entries (services.py).
    problems = models.JSONField(default=list)
    # The last link this check verified: the next check finds the chain cut or rewritten
    # below it. Copy it outside the database to anchor the chain (README, "Audit").
    head_seq = models.BigIntegerField(default=0)
    head_hash = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        indexes = [models.Index(fields=["-ran_at"], name="audit_check_ran_at")]

    def __str__(self) -> str:
        return f"audit check #{self.pk}: {'ok' if self.ok else 'broken'}"


class Erasure(models.Model):
    """One run of `erase_user`: what it removed, redacted and quarantined, as counts and
    ids. It holds no personal data: neither the user id nor its hash."""

    created_at = models.DateTimeField(db_default=Now())
    counts = models.JSONField(default=dict)
    quarantined_versions = ArrayField(models.BigIntegerField(), default=list)

    def __str__(self) -> str:
        return f"erasure #{self.pk}"


class RetentionRule(models.Model):
    """How long one source's interactions and feedback are kept (Django admin); sources
    without a rule use FLYWHEEL_RETENTION_DAYS. 0 keeps them forever."""

    source = models.OneToOneField(
        "curation.Source", on_delete=models.CASCADE, related_name="retention_rule"
    )
    days = models.PositiveIntegerField()

    def __str__(self) -> str:
        return f"{self.source}: {self.days} days" if self.days else f"{self.source}: kept"


@pghistory.track(pghistory.InsertEvent())
class RetentionRun(models.Model):
    """One run of the retention purge: what it removed, per source (ids and counts only).
    Tracked, so each run is an event on the audit chain."""

    ran_at = models.DateTimeField(db_default=Now())
    counts = models.JSONField(default=dict)
    per_source = models.JSONField(default=dict)

    def __str__(self) -> str:
        return f"retention run #{self.pk}"
