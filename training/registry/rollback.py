"""The registry's rollback, the one way a model loses its standing for good: every model
trained on quarantined data (`models_rollback_for`, through the datasets' quarantine hook)
or the current model on a monitor alert (`model_versions_roll_back`) is flagged
`rolled_back`, and the model that was current before it is restored (or the base model).
Same lock and history as every registry write (`training.registry.services`).
"""

from __future__ import annotations

import pghistory
from django.db import transaction
from django.utils import timezone

from training.datasets import selectors
from training.datasets.hooks import Rollback
from training.datasets.models import Quarantine
from training.registry.models import Experiment, ModelEvent, ModelVersion
from training.registry.route import route_changed
from training.registry.selectors import current_model
from training.registry.services import (
    model_event_record,
    model_version_make_current,
    registry_lock,
)

REASON_RESTORED = "restored as current: {model} was rolled back ({reason})"
REASON_ROLLED_BACK = "trained on quarantined data: quarantine #{pk} ({kind}): {reason}"
REASON_NO_PREVIOUS = "; no earlier model to restore, the base model is current again"


def model_version_mark_rolled_back(
    model: ModelVersion, *, reason: str, other, user, **extra
) -> None:
    """Flag one model rolled back, for good; `other` names the model serving in its place.
    Rolling back the current model goes through `model_versions_roll_back`."""
    before = model.status
    model.status = ModelVersion.Status.ROLLED_BACK
    model.save(update_fields=["status"])
    model_event_record(
        model,
        ModelEvent.Action.ROLLED_BACK,
        from_status=before,
        reason=reason,
        other=other,
        user=user,
        **extra,
    )


def models_rollback_for(*, quarantine: Quarantine, user=None) -> Rollback:
    """Flag every model trained on a version the quarantine affects `rolled_back`; if the
    current model is among them, restore the model that was current before it (the latest
    promoted of the others that is not rolled back), or fall back to the base model.

    Idempotent: models already rolled back are left alone. Call it in the transaction that
    records the quarantine.
    """
    versions = selectors.versions_affected(quarantine=quarantine)
    reason = REASON_ROLLED_BACK.format(
        pk=quarantine.pk, kind=quarantine.get_kind_display(), reason=quarantine.reason
    )
    with transaction.atomic(), pghistory.context(reason=reason, quarantine=quarantine.pk):
        registry_lock()
        affected = list(
            ModelVersion.objects.filter(dataset_version__in=versions)
            .exclude(status=ModelVersion.Status.ROLLED_BACK)
            .order_by("pk")
        )
        current = current_model()
        affected_ids = {m.pk for m in affected}
        # A canary, or its control, trained on quarantined data: the comparison is moot.
        for experiment in Experiment.objects.filter(state=Experiment.State.RUNNING):
            if {experiment.canary_id, experiment.control_id} & affected_ids:
                experiment.state = Experiment.State.STOPPED
                experiment.ended_at = timezone.now()
                experiment.version += 1
                experiment.decision_reason = reason
                experiment.save(update_fields=["state", "ended_at", "version", "decision_reason"])
                route_changed()
        was_current = current is not None and current.pk in affected_ids
        restored = None
        if was_current:
            restored = (
                ModelVersion.objects.filter(
                    status=ModelVersion.Status.CANDIDATE, promoted_at__isnull=False
                )
                .exclude(pk__in=[m.pk for m in affected])
                .order_by("-promoted_at", "-pk")
                .first()
            )
        model_versions_roll_back(
            models=affected,
            current=current,
            restored=restored,
            reason=reason,
            user=user,
            quarantine=quarantine,
        )
    return Rollback(
        rolled_back=affected, previous_current=current if was_current else None, restored=restored
    )


def model_versions_roll_back(
    *,
    models: list[ModelVersion],
    current: ModelVersion | None,
    restored: ModelVersion | None,
    reason: str,
    user,
    **extra,
) -> None:
    """The one rollback (quarantine, monitor alert): flag `models` rolled back (`extra` on
    their events); if the current model is among them, `restored` becomes current in its
    place (None: the base model). Call under the registry lock."""
    was_current = current is not None and any(model.pk == current.pk for model in models)
    for model in models:
        is_current = was_current and model.pk == current.pk
        note = REASON_NO_PREVIOUS if is_current and restored is None else ""
        model_version_mark_rolled_back(
            model,
            reason=reason + note,
            other=restored if is_current else None,
            user=user,
            **extra,
        )
    if was_current:
        route_changed()
    if was_current and restored is not None:
        model_version_make_current(
            model=restored,
            current=None,
            user=user,
            reason=REASON_RESTORED.format(model=current, reason=reason),
            action=ModelEvent.Action.RESTORED,
            replaced=current,
        )
