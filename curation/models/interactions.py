"""What production traffic leaves behind: interactions and feedback. Invariants live in
database constraints so no code path (bulk SQL, admin, shell) can break them."""

import pghistory
from django.db import models
from django.db.models import Q
from django.db.models.fields.json import KeyTransform
from django.db.models.lookups import IsNull

from curation.models.sources import Source

ROLES = ("system", "user", "assistant", "tool")


class FeedbackKind(models.TextChoices):
    # Labels are what people read on every page (issue 12: no raw keys on screen).
    THUMBS_UP = "thumbs_up", "thumbs up"
    THUMBS_DOWN = "thumbs_down", "thumbs down"
    RATING = "rating", "rating"
    ACCEPTED = "accepted", "accepted"
    COPIED = "copied", "copied"
    REGENERATED = "regenerated", "regenerated"
    EDITED = "edited", "edited"
    CORRECTED = "corrected", "corrected"
    COMMENT = "comment", "comment"


TEXT_KINDS = (FeedbackKind.EDITED, FeedbackKind.CORRECTED)


@pghistory.track(
    # Curation bookkeeping changes on every row; a snapshot per state change would
    # double the table. Only changes to the content are history.
    pghistory.UpdateEvent(
        condition=pghistory.AnyChange(
            exclude=[
                "curation_state",
                "curation_claimed_at",
                "curation_error",
                "curation_failed_at",
            ]
        )
    ),
    pghistory.DeleteEvent(),
)
class Interaction(models.Model):
    """One model call as the producing app saw it, with PII already redacted."""

    class CurationState(models.TextChoices):
        PENDING = "pending"
        DONE = "done"
        # Curating this row raised: set aside with its error so the rest of its
        # chunk, and every later sweep, carry on. A curator retries it.
        FAILED = "failed"

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="interactions")
    event_id = models.CharField(max_length=200)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    model = models.CharField(max_length=200, blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")
    messages = models.JSONField()
    response = models.TextField()
    usage = models.JSONField(default=dict, blank=True)
    latency_ms = models.IntegerField(null=True, blank=True)
    user_hash = models.CharField(max_length=64, blank=True, default="")
    session_id = models.CharField(max_length=200, blank=True, default="")
    segment = models.CharField(max_length=100, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    pii = models.JSONField(default=dict, blank=True)
    # Outbox for curation: ingest leaves rows pending; jobs and the sweeper move
    # them to done, so nothing committed is ever forgotten if Redis loses a job.
    curation_state = models.CharField(
        max_length=10, choices=CurationState.choices, default=CurationState.PENDING
    )
    curation_claimed_at = models.DateTimeField(null=True, blank=True)
    # db_default: ingest writes rows with raw SQL that names no bookkeeping column.
    curation_error = models.TextField(blank=True, default="", db_default="")
    curation_failed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="interaction_unique_event"),
            models.CheckConstraint(
                condition=Q(curation_state__in=["pending", "done", "failed"]),
                name="interaction_valid_curation_state",
            ),
            models.CheckConstraint(
                condition=~Q(curation_state="failed") | Q(curation_failed_at__isnull=False),
                name="interaction_failed_has_time",
            ),
            models.CheckConstraint(
                condition=Q(latency_ms__isnull=True) | Q(latency_ms__gte=0),
                name="interaction_latency_non_negative",
            ),
        ]
        indexes = [
            models.Index(
                fields=["received_at"],
                condition=Q(curation_state="pending"),
                name="interaction_pending_idx",
            ),
            # The runs page lists failed rows, newest first; they are few.
            models.Index(
                fields=["-curation_failed_at"],
                condition=Q(curation_state="failed"),
                name="interaction_failed_idx",
            ),
            models.Index(fields=["occurred_at"], name="interaction_occurred_idx"),
            # The canary reads each arm's interactions by model over a time window.
            models.Index(fields=["model", "received_at"], name="interaction_model_recv_idx"),
            # OTLP feedback names the response it evaluates by gen_ai.response.id
            # (curation.otel.selectors): an exact lookup per source. Partial, so the
            # interactions that came in by other paths cost the index nothing.
            models.Index(
                "source",
                KeyTransform("response_id", KeyTransform("otel", "metadata")),
                condition=Q(
                    IsNull(KeyTransform("response_id", KeyTransform("otel", "metadata")), False)
                ),
                name="interaction_otel_response_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.source_id}:{self.event_id}"

    @property
    def prompt_text(self) -> str:
        return "\n".join(m.get("content", "") for m in self.messages if m.get("role") == "user")


@pghistory.track(pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Feedback(models.Model):
    """What a user did with an interaction's output. May arrive before the
    interaction: it is then kept with `interaction` empty and linked later."""

    source = models.ForeignKey(Source, on_delete=models.PROTECT, related_name="feedback")
    event_id = models.CharField(max_length=200)
    interaction_event_id = models.CharField(max_length=200)
    # Indexed for linked rows only (feedback_linked_idx): see there.
    interaction = models.ForeignKey(
        Interaction,
        null=True,
        blank=True,
        on_delete=models.PROTECT,
        related_name="feedback",
        db_index=False,
    )
    kind = models.CharField(max_length=20, choices=FeedbackKind.choices)
    rating = models.SmallIntegerField(null=True, blank=True)
    comment = models.TextField(blank=True, default="")
    final_text = models.TextField(null=True, blank=True)
    occurred_at = models.DateTimeField()
    received_at = models.DateTimeField()
    user_hash = models.CharField(max_length=64, blank=True, default="")
    metadata = models.JSONField(default=dict, blank=True)
    pii = models.JSONField(default=dict, blank=True)

    class Meta:
        verbose_name_plural = "feedback"
        constraints = [
            models.UniqueConstraint(fields=["source", "event_id"], name="feedback_unique_event"),
            models.CheckConstraint(
                condition=Q(kind__in=FeedbackKind.values), name="feedback_valid_kind"
            ),
            models.CheckConstraint(
                condition=~Q(kind__in=TEXT_KINDS)
                | (Q(final_text__isnull=False) & ~Q(final_text="")),
                name="feedback_edit_has_final_text",
            ),
            models.CheckConstraint(
                condition=~Q(kind=FeedbackKind.RATING)
                | (Q(rating__isnull=False) & Q(rating__gte=1) & Q(rating__lte=5)),
                name="feedback_rating_in_range",
            ),
        ]
        indexes = [
            # The event first: linking a batch's orphans looks them up by event alone
            # (curation.orphans), so that this is the only index that can find them.
            models.Index(
                fields=["interaction_event_id", "source"],
                condition=Q(interaction__isnull=True),
                name="feedback_unlinked_event_idx",
            ),
            # Partial, so that the one index holding unlinked feedback is the one above. With a
            # full index on interaction_id, a planner whose statistics are older than a burst
            # of orphans read *every* orphan to link a batch's: 87 ms a batch at 20,000
            # orphans, against 0.6 ms through the index above.
            models.Index(
                fields=["interaction"],
                condition=Q(interaction__isnull=False),
                name="feedback_linked_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.kind} on {self.interaction_event_id}"
