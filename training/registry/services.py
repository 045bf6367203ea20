"""The model registry (writes): register a run's model, promote or reject a candidate, start
its canary. Rollback is in `training.registry.rollback`.

- `model_version_promote` makes a candidate current (an admin, or automatically when
  FLYWHEEL_AUTO_PROMOTE is on and the gate passed).

Every change of a model's standing writes a `ModelEvent` with its reason, inside the same
transaction, under one advisory lock, so the registry is changed by one writer at a time.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pghistory
from django.conf import settings
from django.db import connection, transaction
from django.utils import timezone

from flywheel_site.textcheck import CONTROL_REFUSED, has_control_characters

if TYPE_CHECKING:
    from training.runs.models import TrainingRun

from training.datasets.models import DatasetVersion
from training.errors import TrainingError
from training.registry.gate import GateResult
from training.registry.models import Experiment, ModelEvent, ModelVersion
from training.registry.route import route_changed
from training.registry.selectors import (
    BASE_MODEL_NAME,
    current_model,
    time_to_improvement_of,
)
from training.webhooks import services as webhooks
from training.webhooks.services import event_emit

REGISTRY_LOCK = 7_205_001
ERR_PROMOTE_STATUS = "Only a candidate can be promoted; {model} is {status}."
ERR_PROMOTE_QUARANTINED = (
    "{model} was trained on quarantined data ({version}): it cannot be promoted."
)
ERR_PROMOTE_BASELINE = (
    "{model} was gated against {baseline}, but the current model is now {current}: "
    "start a new run so it is compared with the current model."
)
ERR_REJECT_STATUS = "Only a candidate can be rejected; {model} is {status}."
ERR_REASON = "Say why."
REASON_AUTO_PROMOTED = "automatic promotion (FLYWHEEL_AUTO_PROMOTE): gate {detail}"
REASON_REGISTERED = "trained by run #{run} on {version}; gate {detail}"
REASON_REPLACED = "replaced as current by {model}"
REASON_AUTO_CANARY = "automatic canary (FLYWHEEL_AUTO_PROMOTE): gate {detail}"
ERR_EXPERIMENT_RUNNING = (
    "{experiment} is running: decide or stop it before starting another canary."
)
ERR_SERVING_NAME = "The serving name {name!r} is taken (by {owner})."


def reason_checked(reason: str) -> str:
    """An admin's reason for a change of standing, as recorded: trimmed, required, and
    free of control characters (every registry and experiment decision)."""
    reason = (reason or "").strip()
    if not reason:
        raise TrainingError(ERR_REASON)
    if has_control_characters(reason):
        raise TrainingError(CONTROL_REFUSED)
    return reason


def registry_lock() -> None:
    """Serialise every change of a model's standing: call first inside the transaction."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REGISTRY_LOCK])


def model_event_record(
    model: ModelVersion, action: str, *, from_status: str, reason: str, **extra
) -> None:
    """Append to the model's history (`ModelEvent`): every change of standing has one."""
    ModelEvent.objects.create(
        model=model,
        action=action,
        from_status=from_status,
        to_status=model.status,
        reason=reason,
        **extra,
    )


# Stays whole: row, event, automatic promotion or canary and webhook are one transaction.
def model_version_register(
    *, run: TrainingRun, adapter_dir: Path | None, gate_result: GateResult
) -> ModelVersion:
    """Record the run's model: `rejected` if it failed the gate, else a `candidate`,
    promoted at once when the run was started with auto-promotion on and the model it was
    gated against is still current."""
    version = run.dataset_version
    status = (
        ModelVersion.Status.REJECTED
        if gate_result.passed is False
        else ModelVersion.Status.CANDIDATE
    )
    reason = REASON_REGISTERED.format(run=run.pk, version=version, detail=gate_result.detail)
    with transaction.atomic(), pghistory.context(reason=reason, run=run.pk):
        registry_lock()
        name = f"{version.dataset.name}-v{version.number}-run{run.pk}"
        serving_name = (run.config.get("serving_name") or "").strip() or name
        taken = ModelVersion.objects.filter(serving_name=serving_name).first()
        if taken is not None or serving_name == settings.FLYWHEEL_BASE_SERVING_NAME:
            raise TrainingError(
                ERR_SERVING_NAME.format(name=serving_name, owner=taken or "the base model")
            )
        model = ModelVersion.objects.create(
            name=name,
            serving_name=serving_name,
            run=run,
            dataset_version=version,
            method=run.method,
            base_model=run.base_model,
            adapter_dir=str(adapter_dir) if adapter_dir else "",
            metrics=gate_result.metrics,
            baseline=gate_result.baseline,
            baseline_metrics=gate_result.baseline_metrics,
            gate_metric=gate_result.metric,
            gate_margin=gate_result.margin,
            gate_passed=gate_result.passed,
            gate_detail=gate_result.detail,
            status=status,
        )
        action = (
            ModelEvent.Action.REJECTED
            if status == ModelVersion.Status.REJECTED
            else ModelEvent.Action.REGISTERED
        )
        model_event_record(model, action, from_status="", reason=reason)
        if gate_result.passed and run.config.get("auto_promote"):
            current = current_model()
            running = Experiment.objects.filter(state=Experiment.State.RUNNING).exists()
            if current == gate_result.baseline and run.config.get("canary") and not running:
                _experiment_open(
                    model=model,
                    current=current,
                    user=None,
                    reason=REASON_AUTO_CANARY.format(detail=gate_result.detail),
                )
            elif current == gate_result.baseline and not run.config.get("canary"):
                model_version_make_current(
                    model=model,
                    current=current,
                    user=None,
                    reason=REASON_AUTO_PROMOTED.format(detail=gate_result.detail),
                )
        webhooks.event_emit(
            type=webhooks.MODEL_GATED,
            data={
                "model": model.pk,
                "name": model.name,
                "status": model.status,
                "gate_passed": model.gate_passed,
                "gate_metric": model.gate_metric,
                "gate_detail": model.gate_detail,
                "metrics": model.metrics,
                "run": run.pk,
                "dataset_version": version.pk,
                "links": {
                    "model": webhooks.link("runs:model", model.pk),
                    "run": webhooks.link("runs:run", run.pk),
                },
            },
        )
    return model


def model_link(model: ModelVersion) -> str:
    """The model's page as an absolute link (FLYWHEEL_PUBLIC_BASE_URL), for webhook payloads."""
    return webhooks.link("runs:model", model.pk)


# Stays whole: the experiment row, name checks and event are one step under the lock.
def _experiment_open(
    *,
    model: ModelVersion,
    current: ModelVersion | None,
    user,
    reason: str,
    share: float | None = None,
    min_sample: int | None = None,
    max_duration_s: int | None = None,
    margin: float | None = None,
    margin_kind: str | None = None,
    feedback_window_s: int | None = None,
) -> Experiment:
    """Start the canary: `model` serves `share` of the keys beside the current model. The
    candidate stays a candidate until the experiment completes."""
    now = timezone.now()
    experiment = Experiment.objects.create(
        control=current,
        canary=model,
        control_serving_name=(
            current.serving_name if current else settings.FLYWHEEL_BASE_SERVING_NAME
        ),
        canary_serving_name=model.serving_name,
        share=share if share is not None else settings.FLYWHEEL_CANARY_SHARE,
        min_sample=min_sample or settings.FLYWHEEL_CANARY_MIN_SAMPLE,
        metric=settings.FLYWHEEL_CANARY_METRIC,
        alpha=settings.FLYWHEEL_CANARY_ALPHA,
        margin=margin if margin is not None else settings.FLYWHEEL_CANARY_MARGIN,
        margin_kind=margin_kind or settings.FLYWHEEL_CANARY_MARGIN_KIND,
        tau=settings.FLYWHEEL_CANARY_TAU,
        burn_in=settings.FLYWHEEL_CANARY_BURN_IN,
        started_at=now,
        deadline=now + timedelta(seconds=max_duration_s or settings.FLYWHEEL_CANARY_MAX_DURATION_S),
        feedback_window_s=feedback_window_s,
        started_by=user,
    )
    model_event_record(
        model,
        ModelEvent.Action.CANARY_STARTED,
        from_status=model.status,
        reason=reason,
        other=current,
        user=user,
        experiment=experiment,
        evidence={
            "share": experiment.share,
            "min_sample": experiment.min_sample,
            "deadline": experiment.deadline.isoformat(),
            "metric": experiment.metric,
            "alpha": experiment.alpha,
            "margin": experiment.margin,
            "margin_kind": experiment.margin_kind,
        },
    )
    event_emit(
        type=webhooks.EXPERIMENT_STARTED,
        data={
            "experiment": experiment.pk,
            "canary": {"id": model.pk, "serving_name": experiment.canary_serving_name},
            "control": {
                "id": current.pk if current else None,
                "serving_name": experiment.control_serving_name,
            },
            "share": experiment.share,
            "link": model_link(model),
        },
    )
    route_changed()
    return experiment


def _promotable(model: ModelVersion) -> tuple[ModelVersion, ModelVersion | None]:
    """The model, fresh, and the current one; refused unless it may become current (or
    the canary) now. Call under the registry lock."""
    model = ModelVersion.objects.select_related("dataset_version").get(pk=model.pk)
    current = current_model()
    running = Experiment.objects.filter(state=Experiment.State.RUNNING).first()
    if running is not None:
        raise TrainingError(ERR_EXPERIMENT_RUNNING.format(experiment=running))
    if model.status != ModelVersion.Status.CANDIDATE:
        raise TrainingError(ERR_PROMOTE_STATUS.format(model=model, status=model.status))
    if model.dataset_version.status == DatasetVersion.Status.QUARANTINED:
        raise TrainingError(
            ERR_PROMOTE_QUARANTINED.format(model=model, version=model.dataset_version)
        )
    if (
        model.promoted_at is None
        and model.gate_passed is not None
        and model.baseline_id != (current.pk if current else None)
    ):
        raise TrainingError(
            ERR_PROMOTE_BASELINE.format(
                model=model,
                baseline=model.baseline or BASE_MODEL_NAME,
                current=current or BASE_MODEL_NAME,
            )
        )
    return model, current


def model_version_canary_start(
    *,
    model: ModelVersion,
    user,
    reason: str = "",
    share: float | None = None,
    min_sample: int | None = None,
    max_duration_s: int | None = None,
    margin: float | None = None,
    margin_kind: str | None = None,
    feedback_window_s: int | None = None,
) -> Experiment:
    """An admin's promotion when FLYWHEEL_CANARY is on: the same checks as an immediate
    promotion, then a canary experiment against the current model (per-experiment
    overrides of the share, minimum sample, maximum duration, the margin and its kind, and
    the feedback window)."""
    reason = (reason or "").strip() or f"canary started by {user}"
    if has_control_characters(reason):
        raise TrainingError(CONTROL_REFUSED)
    with transaction.atomic(), pghistory.context(reason=reason):
        registry_lock()
        model, current = _promotable(model)
        return _experiment_open(
            model=model,
            current=current,
            user=user,
            reason=reason,
            share=share,
            min_sample=min_sample,
            max_duration_s=max_duration_s,
            margin=margin,
            margin_kind=margin_kind,
            feedback_window_s=feedback_window_s,
        )


def model_version_make_current(
    *,
    model: ModelVersion,
    current: ModelVersion | None,
    user,
    reason: str,
    action: str = ModelEvent.Action.PROMOTED,
    replaced: ModelVersion | None = None,
    **extra,
) -> None:
    """Make `model` current; `current` (still promoted) goes back to candidate. `replaced`
    names the model it takes over from when that one has already left `promoted`."""
    if current is not None:
        current.status = ModelVersion.Status.CANDIDATE
        current.save(update_fields=["status"])
        model_event_record(
            current,
            ModelEvent.Action.REPLACED,
            from_status=ModelVersion.Status.PROMOTED,
            reason=REASON_REPLACED.format(model=model),
            other=model,
            user=user,
        )
    before = model.status
    model.status = ModelVersion.Status.PROMOTED
    model.promoted_at = timezone.now()
    model.promoted_by = user
    model.time_to_improvement_s = time_to_improvement_of(model)
    model.save(update_fields=["status", "promoted_at", "promoted_by", "time_to_improvement_s"])
    model_event_record(
        model,
        action,
        from_status=before,
        reason=reason,
        other=current or replaced,
        user=user,
        **extra,
    )
    route_changed()


def model_version_promote(*, model: ModelVersion, user, reason: str) -> ModelVersion:
    """Make a candidate the current model (an admin's decision, recorded with the reason).

    A model never promoted before must have been gated against the model that is current
    now: a candidate that beat last month's model has not shown it beats today's.
    """
    reason = reason_checked(reason)
    with transaction.atomic(), pghistory.context(reason=reason):
        registry_lock()
        model, current = _promotable(model)
        model_version_make_current(model=model, current=current, user=user, reason=reason)
    return model


def model_version_reject(*, model: ModelVersion, user, reason: str) -> ModelVersion:
    """An admin turns a candidate down (it stays in the registry, never promoted)."""
    reason = reason_checked(reason)
    with transaction.atomic(), pghistory.context(reason=reason):
        registry_lock()
        model = ModelVersion.objects.get(pk=model.pk)
        if model.status != ModelVersion.Status.CANDIDATE:
            raise TrainingError(ERR_REJECT_STATUS.format(model=model, status=model.status))
        model.status = ModelVersion.Status.REJECTED
        model.save(update_fields=["status"])
        model_event_record(
            model,
            ModelEvent.Action.REJECTED,
            from_status=ModelVersion.Status.CANDIDATE,
            reason=reason,
            user=user,
        )
    return model


def model_version_accept(
    *, model: ModelVersion, user, reason: str, **overrides
) -> ModelVersion | Experiment:
    """An admin's yes to a candidate: with FLYWHEEL_CANARY on, a canary experiment against
    the current model (`overrides`: those `model_version_canary_start` takes); otherwise an
    immediate promotion. The one place that decides whether a promotion starts a canary."""
    if settings.FLYWHEEL_CANARY:
        return model_version_canary_start(model=model, user=user, reason=reason, **overrides)
    return model_version_promote(model=model, user=user, reason=reason)
