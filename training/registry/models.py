"""The model registry: model versions, their standing, canary experiments and monitor alerts.

A successful run registers a `ModelVersion`: the candidate adapter, its eval metrics, the
model it was gated against and the verdict. `ModelEvent` is the append-only log of every
change of a model's standing (promotion, rejection, rollback, restoration) with its reason.

Invariants held by the database:
- at most one model is promoted at any time (a partial unique index);
- a model that failed the gate is never promoted;
- a rolled-back model stays rolled back, and no model is ever deleted;
- model events are append-only.

Other models are referenced by string ("training.TrainingRun"), so the sub-packages'
models import none of each other.
"""

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

__all__ = ["Experiment", "ModelEvent", "ModelVersion", "MonitorAlert"]


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(condition=pghistory.AnyChange("status")),
)
class ModelVersion(models.Model):
    """A trained adapter and its standing. "Current" is the promoted one, or the base model
    when none is promoted."""

    class Status(models.TextChoices):
        CANDIDATE = "candidate"
        PROMOTED = "promoted"
        REJECTED = "rejected"
        ROLLED_BACK = "rolled_back", "rolled back"

    name = models.CharField(max_length=200, unique=True)
    # What the serving application reports as `model` on its interactions, and what
    # GET /api/v1/route answers: how live traffic is attributed to this version.
    serving_name = models.CharField(max_length=200, unique=True)
    run = models.OneToOneField(
        "training.TrainingRun", on_delete=models.PROTECT, related_name="model_version"
    )
    dataset_version = models.ForeignKey(
        "training.DatasetVersion", on_delete=models.PROTECT, related_name="model_versions"
    )
    method = models.CharField(max_length=10)
    base_model = models.CharField(max_length=500)
    # Empty when an external trainer left no LoRA adapter we can load.
    adapter_dir = models.CharField(max_length=500, blank=True, default="")
    # The candidate on the version's eval split (training.runs.trainer.evaluate_preferences).
    metrics = models.JSONField(default=dict, blank=True)
    # The model it was gated against: the promoted model at the time, or None (the base).
    baseline = models.ForeignKey(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    baseline_metrics = models.JSONField(default=dict, blank=True)
    gate_metric = models.CharField(max_length=40, blank=True, default="")
    gate_margin = models.FloatField(null=True, blank=True)
    # None: not gated (an external trainer's output we cannot evaluate).
    gate_passed = models.BooleanField(null=True, blank=True)
    gate_detail = models.TextField(blank=True, default="")
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.CANDIDATE)
    # The last time it became current (promotion or restoration): rollback restores the
    # model that was current before, i.e. the latest of these among the others.
    promoted_at = models.DateTimeField(null=True, blank=True)
    promoted_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Median seconds from ingest to `promoted_at` of the pairs this promotion first shipped,
    # stored when it becomes current (registry.selectors.time_to_improvement): the dashboard
    # then reads one row per model, never the memberships.
    time_to_improvement_s = models.FloatField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(status__in=["candidate", "promoted", "rejected", "rolled_back"]),
                name="modelversion_valid_status",
            ),
            models.UniqueConstraint(
                fields=["status"],
                condition=Q(status="promoted"),
                name="modelversion_one_promoted",
            ),
            models.CheckConstraint(
                condition=~Q(status="promoted") | Q(promoted_at__isnull=False),
                name="modelversion_promoted_has_time",
            ),
            models.CheckConstraint(
                condition=~Q(status="promoted", gate_passed=False),
                name="modelversion_failed_gate_never_promoted",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="modelversion_rolled_back_final",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    "OLD.status = 'rolled_back' AND NEW.status <> 'rolled_back'"
                ),
            ),
            pgtrigger.Protect(name="modelversion_kept", operation=pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def gate_reason(self) -> str:
        """The gate's detail without its leading verdict, for a page that states the verdict
        beside it (else it reads "failed fails: ...")."""
        for verdict in ("passes: ", "fails: "):
            if self.gate_detail.startswith(verdict):
                return self.gate_detail.removeprefix(verdict)
        return self.gate_detail


class ModelEvent(models.Model):
    """One change of a model's standing, with who and why. Append-only."""

    class Action(models.TextChoices):
        REGISTERED = "registered"
        PROMOTED = "promoted"
        REJECTED = "rejected"
        # Replaced as current by another model's promotion; back to candidate.
        REPLACED = "replaced"
        ROLLED_BACK = "rolled_back", "rolled back"
        RESTORED = "restored", "restored as current"
        CANARY_STARTED = "canary_started", "canary experiment started"
        CANARY_STOPPED = "canary_stopped", "canary experiment stopped"
        CANARY_EXTENDED = "canary_extended", "canary experiment extended"
        CANARY_PAUSED = "canary_paused", "canary decisions paused (sample-ratio mismatch)"

    model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="changes")
    action = models.CharField(max_length=20, choices=Action.choices)
    from_status = models.CharField(max_length=12, blank=True, default="")
    to_status = models.CharField(max_length=12)
    reason = models.TextField()
    # For promoted/restored: the model it replaced as current (None: the base model).
    # For replaced: the model that replaced it.
    other = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    quarantine = models.ForeignKey(
        "training.Quarantine", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    experiment = models.ForeignKey(
        "training.Experiment", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # A decision's evidence: n per arm, rates, interval, statistic (training.registry.sequential).
    evidence = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="modelevent_has_reason"),
        ]
        indexes = [models.Index(fields=["-created_at"], name="modelevent_recent_idx")]
        triggers = [
            pgtrigger.Protect(
                name="modelevent_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.model} {self.action}"


@pghistory.track(
    pghistory.InsertEvent(),
    pghistory.UpdateEvent(condition=pghistory.AnyChange("state", "version")),
)
class Experiment(models.Model):
    """A canary: the candidate serves `share` of the route keys beside the current model
    until the sequential test completes the rollout or rolls it back
    (training.registry.experiments).
    `version` goes up on every change the route must see (state, share, deadline)."""

    class State(models.TextChoices):
        RUNNING = "running"
        COMPLETED = "completed"
        ROLLED_BACK = "rolled_back", "rolled back"
        STOPPED = "stopped"

    # None: the base model is the control.
    control = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    canary = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="experiments")
    # Snapshots: what the route answers, and what interactions are matched on.
    control_serving_name = models.CharField(max_length=200)
    canary_serving_name = models.CharField(max_length=200)
    share = models.FloatField()
    min_sample = models.PositiveIntegerField()
    metric = models.CharField(max_length=30)
    alpha = models.FloatField()
    margin = models.FloatField()
    # absolute: canary - control < margin; relative: canary < (1 + margin) * control.
    margin_kind = models.CharField(max_length=10, default="absolute", db_default="absolute")
    tau = models.FloatField()
    burn_in = models.PositiveIntegerField()
    state = models.CharField(max_length=12, choices=State.choices, default=State.RUNNING)
    # A sample-ratio mismatch pauses automatic decisions (training.registry.clustered): when
    # and why.
    paused_at = models.DateTimeField(null=True, blank=True)
    paused_reason = models.TextField(blank=True, default="", db_default="")
    # After completion, this share of the keys stays on the control until `holdback_until`:
    # the monitor compares the new current model with it
    # (training.registry.experiments.monitor_check).
    holdback_share = models.FloatField(default=0.0, db_default=0.0)
    holdback_until = models.DateTimeField(null=True, blank=True)
    # How long after an interaction its feedback is waited for; None: the setting
    # FLYWHEEL_CANARY_FEEDBACK_WINDOW_S. The demo's simulated users answer within seconds.
    feedback_window_s = models.PositiveIntegerField(null=True, blank=True)
    version = models.PositiveIntegerField(default=1)
    started_at = models.DateTimeField()
    deadline = models.DateTimeField()
    ended_at = models.DateTimeField(null=True, blank=True)
    started_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The last look of the background check, shown on the model page.
    last_evidence = models.JSONField(default=dict, blank=True)
    last_checked_at = models.DateTimeField(null=True, blank=True)
    decision_reason = models.TextField(blank=True, default="")

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(state__in=["running", "completed", "rolled_back", "stopped"]),
                name="experiment_valid_state",
            ),
            models.CheckConstraint(
                condition=Q(share__gt=0) & Q(share__lt=1), name="experiment_share_open_unit"
            ),
            models.CheckConstraint(
                condition=Q(margin_kind__in=["absolute", "relative"]),
                name="experiment_valid_margin_kind",
            ),
            models.CheckConstraint(
                condition=Q(state="running") | Q(ended_at__isnull=False),
                name="experiment_ended_has_time",
            ),
            # The route answers for one experiment at a time.
            models.UniqueConstraint(
                fields=["state"], condition=Q(state="running"), name="experiment_one_running"
            ),
        ]

    def __str__(self) -> str:
        return f"experiment #{self.pk} ({self.canary_serving_name} vs {self.control_serving_name})"

    @property
    def is_running(self) -> bool:
        return self.state == self.State.RUNNING


class MonitorAlert(models.Model):
    """The current model's primary metric worse than its own trailing baseline beyond the
    bound. One open alert per model; closed by a rollback or by an admin."""

    model = models.ForeignKey(ModelVersion, on_delete=models.PROTECT, related_name="alerts")
    # The model a rollback would restore (None: the base model).
    previous = models.ForeignKey(
        ModelVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    metric = models.CharField(max_length=30)
    evidence = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True)
    closed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["model"], condition=Q(closed_at__isnull=True), name="monitoralert_one_open"
            ),
        ]

    def __str__(self) -> str:
        return f"alert #{self.pk} on {self.model}"
