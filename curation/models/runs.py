"""Curation runs (the row the UI polls) and curation's daily rollup."""

from django.db import models

from curation.models.policies import CurationPolicy
from flywheel_site.models import MetricDayBase

RUN_WAITING = "Waiting for a worker."
RUN_STARTED = "Started."
RUN_SO_FAR = "{done} of {total} interaction(s) curated so far."
RUN_STOPPED = "Stopped after {done} of {total}; the sweeper curates what it left (see the error)."
RUN_NOTHING_PENDING = "No interaction was pending; it re-checked held candidates."
RUN_EMPTY = "It was given no interactions."
RUN_ALL_ELSEWHERE = (
    "Nothing left to do: all {total} interaction(s) had already been curated by another run "
    "(a command, another job or the sweeper) when this one started."
)
RUN_SOME_ELSEWHERE = (
    "Curated {done} of {total}; the other {elsewhere} had already been curated by another run."
)
RUN_ALL_HERE = "Curated all {done} interaction(s) it was given."


class CurationRun(models.Model):
    """One curation job, sweep or command: the row the UI polls."""

    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        INGEST = "ingest"
        SWEEPER = "sweeper"
        COMMAND = "command"
        RECURATE = "recurate"
        HELD = "held"

    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    policy = models.ForeignKey(
        CurationPolicy, null=True, blank=True, on_delete=models.PROTECT, related_name="runs"
    )
    job_id = models.CharField(max_length=100, blank=True, default="")
    total = models.PositiveIntegerField(default=0)
    interactions = models.PositiveIntegerField(default=0)
    candidates = models.PositiveIntegerField(default=0)
    passed = models.PositiveIntegerField(default=0)
    failed = models.PositiveIntegerField(default=0)
    held = models.PositiveIntegerField(default=0)
    sampled = models.PositiveIntegerField(default=0)
    failed_by_filter = models.JSONField(default=dict, blank=True)
    # Interactions whose curation raised and were set aside as failed.
    errored = models.PositiveIntegerField(default=0)
    scorer = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        indexes = [models.Index(fields=["-created_at"], name="curationrun_recent_idx")]

    def __str__(self) -> str:
        return f"run #{self.pk} ({self.status})"

    @property
    def explanation(self) -> str:
        """What the run did, in a sentence for its row: "0 / 343" alone reads as a failure
        when the interactions had simply been curated by another run first (the demo
        curates synchronously, then the ingest jobs find nothing left)."""
        done, total = self.interactions, self.total
        elsewhere = max(total - done, 0)
        if self.status == self.Status.QUEUED:
            return RUN_WAITING
        if self.status == self.Status.RUNNING:
            return RUN_SO_FAR.format(done=done, total=total) if total else RUN_STARTED
        if self.status == self.Status.FAILED:
            return RUN_STOPPED.format(done=done, total=total)
        if not total:
            return RUN_NOTHING_PENDING if self.trigger == self.Trigger.SWEEPER else RUN_EMPTY
        if not done:
            return RUN_ALL_ELSEWHERE.format(total=total)
        if elsewhere:
            return RUN_SOME_ELSEWHERE.format(done=done, total=total, elsewhere=elsewhere)
        return RUN_ALL_HERE.format(done=done)


class CurationMetricDay(MetricDayBase):
    """Curation's daily rollup (`curation.rollups`)."""
