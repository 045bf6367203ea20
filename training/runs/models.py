"""Training runs.

A `TrainingRun` row is the source of truth for one training job (the RQ job only delivers
it): status, stage log, live progress, metrics, artifact location, error. A successful run
registers a model version in the registry (training.registry.models).

Invariants held by the database:
- at most one run per dataset version is queued or running, and the threshold trigger starts
  at most one run per version.

Other models are referenced by string ("training.DatasetVersion"), so the sub-packages'
models import none of each other.
"""

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q

__all__ = ["TrainingRun"]


@pghistory.track(
    pghistory.InsertEvent(),
    # Progress updates every few steps; history only wants the changes of status.
    pghistory.UpdateEvent(condition=pghistory.AnyChange("status")),
)
class TrainingRun(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        RUNNING = "running"
        SUCCEEDED = "succeeded"
        FAILED = "failed"

    class Trigger(models.TextChoices):
        THRESHOLD = "threshold", "new gold reached the dataset's threshold"
        MANUAL = "manual", "started by an admin"

    class Trainer(models.TextChoices):
        BUILTIN = "builtin", "built-in (TRL + LoRA)"
        EXTERNAL = "external", "external command"

    dataset_version = models.ForeignKey(
        "training.DatasetVersion", on_delete=models.PROTECT, related_name="training_runs"
    )
    trigger = models.CharField(max_length=10, choices=Trigger.choices)
    trainer = models.CharField(max_length=10, choices=Trainer.choices)
    # dpo or sft, from the dataset's kind.
    method = models.CharField(max_length=10)
    # The export format trained on (one of the version's formats).
    export_format = models.CharField(max_length=30)
    base_model = models.CharField(max_length=500, blank=True, default="")
    # The settings the run was started with (steps, learning rate, ... or the command), so a
    # later change of settings does not rewrite what an old run did.
    config = models.JSONField(default=dict, blank=True)
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=40, blank=True, default="")
    progress_step = models.PositiveIntegerField(default=0)
    progress_total = models.PositiveIntegerField(default=0)
    progress_loss = models.FloatField(null=True, blank=True)
    # [[step, loss], ...], thinned to a bounded length for long runs.
    loss_curve = models.JSONField(default=list, blank=True)
    # [[step, eval loss], ...] at the trainer's eval steps (held-out split).
    eval_loss_curve = models.JSONField(default=list, blank=True)
    log = models.TextField(blank=True, default="")
    # {"train": ..., "eval": ..., "external": ...}
    metrics = models.JSONField(default=dict, blank=True)
    artifact_dir = models.CharField(max_length=500, blank=True, default="")
    error = models.TextField(blank=True, default="")
    requested_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running", "succeeded", "failed"]),
                name="trainingrun_valid_status",
            ),
            models.CheckConstraint(
                condition=Q(trigger__in=["threshold", "manual"]), name="trainingrun_valid_trigger"
            ),
            models.CheckConstraint(
                condition=Q(trainer__in=["builtin", "external"]), name="trainingrun_valid_trainer"
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "running"]) | Q(finished_at__isnull=False),
                name="trainingrun_finished_has_time",
            ),
            # Two runs of one version at once would only race for the same artifacts.
            models.UniqueConstraint(
                fields=["dataset_version"],
                condition=Q(status__in=["queued", "running"]),
                name="trainingrun_one_active_per_version",
            ),
            # The trigger is retried by a periodic job: a version is trained on at most once
            # by it, whatever the timing.
            models.UniqueConstraint(
                fields=["dataset_version"],
                condition=Q(trigger="threshold"),
                name="trainingrun_one_automatic_per_version",
            ),
        ]
        indexes = [
            models.Index(fields=["-created_at"], name="trainingrun_recent_idx"),
            models.Index(fields=["status", "created_at"], name="trainingrun_status_idx"),
        ]

    def __str__(self) -> str:
        return f"training run #{self.pk} ({self.status})"

    @property
    def rq_job_id(self) -> str:
        # Deterministic, so the sweeper can tell whether Redis still holds this run's job.
        return f"training-run-{self.pk}"

    @property
    def is_active(self) -> bool:
        return self.status in (self.Status.QUEUED, self.Status.RUNNING)

    @property
    def progress_percent(self) -> int:
        if not self.progress_total:
            return 0
        return min(100, round(100 * self.progress_step / self.progress_total))
