"""Canary experiments after the gate (writes): the background decision, an admin's stop,
extension or decision by hand, and the monitor that watches the current model afterwards.

Decisions (training.registry.clustered.decide on the primary metric, canary minus control, per route
key and by intention to treat; selectors_canary.experiment_keyed):
- complete: both arms have the minimum sample of matured interactions and the always-valid
  bound of the non-inferiority contrast lies below 0 (the canary is not worse beyond the
  margin, absolute or relative to the control, with confidence 1 - alpha): the canary
  becomes the current model and serves every key;
- roll back: the difference's lower bound under H0 (`h0_low`: each arm's spread also taken
  around the pooled rate) lies above 0 (the canary is worse, with confidence 1 - alpha),
  checked at every look once both arms have `burn_in` keys: the canary is marked rolled
  back and the route answers the control only;
- paused: the keys' split does not match the share (sample-ratio mismatch): no automatic
  decision from then on; the page and the `experiment.paused` webhook say why, and an
  admin stops it or decides by hand;
- stopped: the maximum duration passed with neither, or an admin stopped it; the canary
  stays a candidate and the control keeps serving.

Every decision writes a ModelEvent with its evidence and ends the experiment with a
conditional UPDATE (running, at the version that was looked at): a second worker, or the
same job run twice, finds the experiment decided and does nothing.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import pghistory
from django.conf import settings
from django.db import transaction
from django.utils import timezone

from training.errors import TrainingError
from training.registry import clustered, rollback, route, sequential
from training.registry import selectors as selectors_canary
from training.registry import services as registry
from training.registry.models import Experiment, ModelEvent, ModelVersion, MonitorAlert
from training.registry.route import route_changed
from training.registry.selectors import current_model
from training.webhooks import services as webhooks
from training.webhooks.services import event_emit

REASON_COMPLETED = (
    "canary experiment #{pk} completed: {metric} {canary:.4f} vs {control:.4f} "
    "(n {n1} vs {n0}, keys {k1} vs {k0}); not worse beyond the {kind} margin {margin} "
    "(bound {ni_high:.4f} < 0)"
)
REASON_ROLLED_BACK = (
    "canary experiment #{pk} rolled back: {metric} {canary:.4f} vs {control:.4f} "
    "(n {n1} vs {n0}, keys {k1} vs {k0}); canary minus control in [{low:.4f}, {high:.4f}], "
    "worse with confidence {confidence}"
)
REASON_EXPIRED = "canary experiment #{pk} reached its maximum duration without a decision"
REASON_MONITOR_ROLLBACK = "rolled back from monitor alert #{alert}: {reason}"
ERR_NOT_RUNNING = "{experiment} is not running (it is {state})."
ERR_NO_EVIDENCE = "Neither arm has traffic yet: there is nothing to decide on."
ERR_NOT_CURRENT = "{model} is not the current model."
ERR_DECISION = "Unknown decision {decision!r}: complete or roll_back."


def _evidence(experiment: Experiment, keyed: dict) -> dict:
    test = keyed["test"].as_dict() if keyed["test"] else {}
    return {
        "experiment": experiment.pk,
        "metric": experiment.metric,
        "n": keyed["n"],
        "keys": keyed["keys"],
        "rate": {
            "control": test.get("rate_control"),
            "canary": test.get("rate_canary"),
        },
        "difference": test.get("difference"),
        "interval": [test.get("low"), test.get("high")] if test else None,
        "h0_low": test.get("h0_low"),
        "ni_high": test.get("ni_high"),
        "log_statistic": test.get("log_statistic"),
        "alpha": experiment.alpha,
        "tau": experiment.tau,
        "margin": experiment.margin,
        "margin_kind": experiment.margin_kind,
        "min_sample": experiment.min_sample,
        "burn_in": experiment.burn_in,
        "compliance": keyed["counts"],
        "feedback_window_s": keyed["feedback_window_s"],
        "srm": keyed["srm"].as_dict(),
        "method": clustered.METHOD,
    }


def _end(experiment: Experiment, *, state: str, reason: str, now: datetime) -> bool:
    """The conditional UPDATE that makes a decision happen once."""
    ended = Experiment.objects.filter(
        pk=experiment.pk, state=Experiment.State.RUNNING, version=experiment.version
    ).update(state=state, ended_at=now, version=experiment.version + 1, decision_reason=reason)
    if ended:
        experiment.state, experiment.ended_at, experiment.decision_reason = state, now, reason
        experiment.version += 1
        route_changed()
    return bool(ended)


def _payload(experiment: Experiment, evidence: dict) -> dict:
    return {
        "experiment": experiment.pk,
        "canary": {"id": experiment.canary_id, "serving_name": experiment.canary_serving_name},
        "control": {"id": experiment.control_id, "serving_name": experiment.control_serving_name},
        "evidence": evidence,
        "link": registry.model_link(experiment.canary),
    }


def _complete(experiment: Experiment, *, evidence: dict, reason: str, user, now) -> bool:
    if not _end(experiment, state=Experiment.State.COMPLETED, reason=reason, now=now):
        return False
    if settings.FLYWHEEL_HOLDBACK_SHARE > 0:
        experiment.holdback_share = settings.FLYWHEEL_HOLDBACK_SHARE
        experiment.holdback_until = now + timedelta(days=settings.FLYWHEEL_HOLDBACK_DAYS)
        Experiment.objects.filter(pk=experiment.pk).update(
            holdback_share=experiment.holdback_share, holdback_until=experiment.holdback_until
        )
    canary = ModelVersion.objects.get(pk=experiment.canary_id)
    registry.model_version_make_current(
        model=canary,
        current=current_model(),
        user=user,
        reason=reason,
        experiment=experiment,
        evidence=evidence,
    )
    event_emit(type=webhooks.EXPERIMENT_COMPLETED, data=_payload(experiment, evidence))
    return True


def _roll_back(experiment: Experiment, *, evidence: dict, reason: str, user, now) -> bool:
    if not _end(experiment, state=Experiment.State.ROLLED_BACK, reason=reason, now=now):
        return False
    rollback.model_version_mark_rolled_back(
        ModelVersion.objects.get(pk=experiment.canary_id),
        reason=reason,
        other=experiment.control,
        user=user,
        experiment=experiment,
        evidence=evidence,
    )
    event_emit(type=webhooks.EXPERIMENT_ROLLED_BACK, data=_payload(experiment, evidence))
    return True


def _stop(experiment: Experiment, *, evidence: dict, reason: str, user, now) -> bool:
    if not _end(experiment, state=Experiment.State.STOPPED, reason=reason, now=now):
        return False
    registry.model_event_record(
        experiment.canary,
        ModelEvent.Action.CANARY_STOPPED,
        from_status=experiment.canary.status,
        reason=reason,
        user=user,
        experiment=experiment,
        evidence=evidence,
    )
    return True


def _pause(experiment: Experiment, *, evidence: dict, reason: str, now: datetime) -> bool:
    """Record the sample-ratio mismatch once: the experiment row, the model's history and
    the webhook. Automatic decisions stay off from then on."""
    paused = Experiment.objects.filter(
        pk=experiment.pk, state=Experiment.State.RUNNING, paused_at__isnull=True
    ).update(paused_at=now, paused_reason=reason)
    if not paused:
        return False
    experiment.paused_at, experiment.paused_reason = now, reason
    registry.model_event_record(
        experiment.canary,
        ModelEvent.Action.CANARY_PAUSED,
        from_status=experiment.canary.status,
        reason=reason,
        user=None,
        experiment=experiment,
        evidence=evidence,
    )
    event_emit(
        type=webhooks.EXPERIMENT_PAUSED,
        data={**_payload(experiment, evidence), "reason": reason},
    )
    return True


def experiment_check(*, experiment_id: int, now: datetime | None = None) -> str:
    """One look at a running experiment: record the evidence, and decide if it is clear.
    Returns the decision taken (continue, paused, complete, roll_back, stopped) or
    "skipped"."""
    now = now or timezone.now()
    experiment = (
        Experiment.objects.select_related("canary", "control")
        .filter(pk=experiment_id, state=Experiment.State.RUNNING)
        .first()
    )
    if experiment is None:
        return "skipped"
    keyed = selectors_canary.experiment_keyed(experiment=experiment, now=now)
    evidence = _evidence(experiment, keyed)
    test, srm = keyed["test"], keyed["srm"]
    verdict = "continue"
    if experiment.paused_at is not None or srm.mismatch:
        verdict = "paused"
    elif test is not None:
        verdict = clustered.decide(
            test, min_sample=experiment.min_sample, burn_in=experiment.burn_in
        )
    with transaction.atomic(), pghistory.context(experiment=experiment.pk, verdict=verdict):
        registry.registry_lock()
        Experiment.objects.filter(pk=experiment.pk, state=Experiment.State.RUNNING).update(
            last_evidence=evidence, last_checked_at=now
        )
        common = {
            "pk": experiment.pk, "metric": experiment.metric, "canary": test.rate_canary,
            "control": test.rate_control, "n1": test.n_canary, "n0": test.n_control,
            "k1": test.keys_canary, "k0": test.keys_control,
        } if test else {}  # fmt: skip
        if verdict == "paused" and now < experiment.deadline:
            if experiment.paused_at is None:
                _pause(experiment, evidence=evidence, reason=srm.reason, now=now)
            return verdict
        if verdict == clustered.VERDICTS[clustered.ROLL_BACK]:
            reason = REASON_ROLLED_BACK.format(
                **common, low=test.low, high=test.high, confidence=1 - experiment.alpha
            )
            done = _roll_back(experiment, evidence=evidence, reason=reason, user=None, now=now)
        elif verdict == clustered.VERDICTS[clustered.COMPLETE]:
            reason = REASON_COMPLETED.format(
                **common, kind=experiment.margin_kind, margin=experiment.margin,
                ni_high=test.ni_high,
            )  # fmt: skip
            done = _complete(experiment, evidence=evidence, reason=reason, user=None, now=now)
        elif now >= experiment.deadline:
            verdict = "stopped"
            reason = REASON_EXPIRED.format(pk=experiment.pk)
            done = _stop(experiment, evidence=evidence, reason=reason, user=None, now=now)
        else:
            return verdict
    return verdict if done else "skipped"


def experiments_check(*, now: datetime | None = None) -> dict:
    """Periodic (in the trigger job): look at the running experiment, then the monitor."""
    decisions = {}
    for pk in Experiment.objects.filter(state=Experiment.State.RUNNING).values_list(
        "pk", flat=True
    ):
        decisions[pk] = experiment_check(experiment_id=pk, now=now)
    alert = monitor_check(now=now)
    return {"experiments": decisions, "alert": alert.pk if alert else None}


def _running(experiment: Experiment) -> Experiment:
    experiment = Experiment.objects.select_related("canary", "control").get(pk=experiment.pk)
    if not experiment.is_running:
        raise TrainingError(
            ERR_NOT_RUNNING.format(experiment=experiment, state=experiment.get_state_display())
        )
    return experiment


def experiment_stop(*, experiment: Experiment, user, reason: str) -> Experiment:
    """An admin ends the experiment without a decision: the control keeps serving."""
    reason = registry.reason_checked(reason)
    now = timezone.now()
    with transaction.atomic(), pghistory.context(reason=reason):
        registry.registry_lock()
        experiment = _running(experiment)
        evidence = _evidence(
            experiment, selectors_canary.experiment_keyed(experiment=experiment, now=now)
        )
        _stop(experiment, evidence=evidence, reason=reason, user=user, now=now)
    return experiment


def experiment_extend(*, experiment: Experiment, user, reason: str, seconds: int) -> Experiment:
    """An admin moves the deadline later (more time to reach the minimum sample)."""
    reason = registry.reason_checked(reason)
    if seconds <= 0:
        raise TrainingError("Extend by a positive number of hours.")
    with transaction.atomic(), pghistory.context(reason=reason):
        registry.registry_lock()
        experiment = _running(experiment)
        experiment.deadline += timedelta(seconds=seconds)
        experiment.version += 1
        experiment.save(update_fields=["deadline", "version"])
        registry.model_event_record(
            experiment.canary,
            ModelEvent.Action.CANARY_EXTENDED,
            from_status=experiment.canary.status,
            reason=reason,
            user=user,
            experiment=experiment,
            evidence={"deadline": experiment.deadline.isoformat(), "seconds": seconds},
        )
        route_changed()
    return experiment


def experiment_decide(*, experiment: Experiment, user, reason: str, decision: str) -> Experiment:
    """An admin completes or rolls back by hand, with the evidence of the moment recorded."""
    reason = registry.reason_checked(reason)
    if decision not in ("complete", "roll_back"):
        raise TrainingError(ERR_DECISION.format(decision=decision))
    now = timezone.now()
    with transaction.atomic(), pghistory.context(reason=reason):
        registry.registry_lock()
        experiment = _running(experiment)
        evidence = _evidence(
            experiment, selectors_canary.experiment_keyed(experiment=experiment, now=now)
        )
        evidence["by_hand"] = True
        action = _complete if decision == "complete" else _roll_back
        action(experiment, evidence=evidence, reason=reason, user=user, now=now)
    return experiment


# --- monitor ------------------------------------------------------------------------------


# Stays whole: the windows, the test and the alert are one decision read top to bottom.
def monitor_check(*, now: datetime | None = None) -> MonitorAlert | None:
    """While a holdback runs (FLYWHEEL_HOLDBACK_SHARE of the keys on the previous model after
    a completed canary), the current model against the holdback (`_holdback_check`, the
    canary's roll-back bound).
    Otherwise the current model's primary metric over the last FLYWHEEL_MONITOR_WINDOW_S against
    its own trailing baseline (since it became current, at most FLYWHEEL_MONITOR_BASELINE_S
    before the window). An alert when the recent rate is worse by more than the bound and
    the always-valid interval of the difference lies above 0. One open alert per model."""
    now = now or timezone.now()
    model = current_model()
    if model is None or model.promoted_at is None:
        return None
    if MonitorAlert.objects.filter(model=model, closed_at__isnull=True).exists():
        return None
    held = route.holdback_active(now=now)
    if held is not None and held.canary_id == model.pk:
        return _holdback_check(held=held, model=model, now=now)
    window_start = now - timedelta(seconds=settings.FLYWHEEL_MONITOR_WINDOW_S)
    baseline_start = max(
        model.promoted_at, window_start - timedelta(seconds=settings.FLYWHEEL_MONITOR_BASELINE_S)
    )
    if baseline_start >= window_start:
        return None
    metric = settings.FLYWHEEL_CANARY_METRIC
    base = selectors_canary.arm_outcomes(
        serving_name=model.serving_name, start=baseline_start, end=window_start
    )
    recent = selectors_canary.arm_outcomes(
        serving_name=model.serving_name, start=window_start, end=now
    )
    if min(base["n"], recent["n"]) < settings.FLYWHEEL_MONITOR_MIN_SAMPLE:
        return None
    test = sequential.always_valid_difference(
        control=(selectors_canary.metric_events(base, metric), base["n"]),
        canary=(selectors_canary.metric_events(recent, metric), recent["n"]),
        alpha=settings.FLYWHEEL_CANARY_ALPHA,
        tau=settings.FLYWHEEL_CANARY_TAU,
    )
    if not (test.low > 0 and test.difference > settings.FLYWHEEL_MONITOR_BOUND):
        return None
    evidence = {
        **test.as_dict(),
        "bound": settings.FLYWHEEL_MONITOR_BOUND,
        "baseline_window": [baseline_start.isoformat(), window_start.isoformat()],
        "recent_window": [window_start.isoformat(), now.isoformat()],
    }
    return _alert_raise(model=model, metric=metric, evidence=evidence)


def _alert_raise(*, model: ModelVersion, metric: str, evidence: dict) -> MonitorAlert | None:
    with transaction.atomic():
        registry.registry_lock()
        if MonitorAlert.objects.filter(model=model, closed_at__isnull=True).exists():
            return None
        alert = MonitorAlert.objects.create(
            model=model,
            previous=selectors_canary.previous_current(model=model),
            metric=metric,
            evidence=evidence,
        )
        event_emit(
            type=webhooks.MONITOR_ALERT,
            data={
                "alert": alert.pk,
                "model": {"id": model.pk, "serving_name": model.serving_name},
                "previous": alert.previous_id,
                "evidence": evidence,
                "link": registry.model_link(model),
            },
        )
    return alert


def _holdback_check(*, held: Experiment, model: ModelVersion, now: datetime):
    """The current model against the keys held back on the previous one, with the canary's
    clustered always-valid test (training.registry.clustered): an alert when the current model is
    worse with confidence 1 - alpha. Same time window for both arms, so no time-of-day
    confounding."""
    keyed = selectors_canary.keyed_outcomes(
        experiment_id=route.holdback_split(held.pk),
        share=held.holdback_share,
        control_name=held.canary_serving_name,
        canary_name=held.control_serving_name,
        metric=held.metric,
        start=held.ended_at,
        end=now,
    )
    current, holdback = keyed["control"], keyed["canary"]
    if min(current.keys, holdback.keys) < held.burn_in:
        return None
    srm = clustered.sample_ratio(
        keys_control=current.keys, keys_canary=holdback.keys, share=held.holdback_share,
        threshold=settings.FLYWHEEL_CANARY_SRM_P,
    )  # fmt: skip
    test = clustered.compare(holdback, current, alpha=held.alpha, tau=held.tau,
                             margin=held.margin, margin_kind=held.margin_kind)  # fmt: skip
    if srm.mismatch or not test.h0_low > 0:
        return None
    evidence = {
        **test.as_dict(),
        "comparison": "current model (canary) against the holdback on the previous model "
        "(control), per route key",
        "holdback": {
            "experiment": held.pk,
            "share": held.holdback_share,
            "until": held.holdback_until.isoformat(),
        },
        "compliance": keyed["counts"],
        "srm": srm.as_dict(),
    }
    return _alert_raise(model=model, metric=held.metric, evidence=evidence)


def model_version_roll_back(*, alert: MonitorAlert, user, reason: str) -> ModelVersion | None:
    """From a monitor alert: the current model is rolled back and the model it replaced is
    current again (or the base model). Closes the alert. Returns the restored model."""
    reason = registry.reason_checked(reason)
    with transaction.atomic(), pghistory.context(reason=reason, alert=alert.pk):
        registry.registry_lock()
        alert = MonitorAlert.objects.select_related("model", "previous").get(pk=alert.pk)
        model = alert.model
        if alert.closed_at is not None or model.status != ModelVersion.Status.PROMOTED:
            raise TrainingError(ERR_NOT_CURRENT.format(model=model))
        full = REASON_MONITOR_ROLLBACK.format(alert=alert.pk, reason=reason)
        previous = alert.previous
        if previous is not None and previous.status != ModelVersion.Status.CANDIDATE:
            previous = None
        rollback.model_versions_roll_back(
            models=[model],
            current=model,
            restored=previous,
            reason=full,
            user=user,
            evidence=alert.evidence,
        )
        MonitorAlert.objects.filter(pk=alert.pk, closed_at__isnull=True).update(
            closed_at=timezone.now()
        )
    return previous
