"""Writes for quarantines: `quarantine_create` records data that is no longer trusted
(later freezes exclude it); `quarantine_apply` also rolls back the models trained on it,
through training.datasets.hooks."""

from __future__ import annotations

from datetime import datetime

import pghistory
from django.db import transaction
from django.utils import timezone

from training.datasets import hooks
from training.datasets.models import (
    DatasetVersion,
    GoldPair,
    Quarantine,
)
from training.datasets.rollups import version_rollup_delta
from training.errors import TrainingError
from training.webhooks import services as webhooks

ERR_QUARANTINE_REASON = "A quarantine needs a reason."
ERR_QUARANTINE_NOT_FROZEN = "Only a frozen version can be quarantined; {version} is {status}."
ERR_QUARANTINE_KIND = "Unknown quarantine kind {kind!r}."
ERR_QUARANTINE_WINDOW = "The window must start before it ends."
ERR_QUARANTINE_MISSING = "A {kind} quarantine needs its {field}."
ERR_QUARANTINE_PAIR_TWICE = "Gold pair #{pk} is already quarantined."


_QUARANTINE_FIELDS = {
    Quarantine.Kind.DATASET_VERSION: ("dataset_version",),
    Quarantine.Kind.WINDOW: ("window_start", "window_end"),
    Quarantine.Kind.SOURCE: ("source",),
    Quarantine.Kind.POLICY: ("policy",),
    Quarantine.Kind.PAIR: ("pair",),
}


def quarantine_preview(
    *,
    kind: str,
    reason: str,
    user=None,
    dataset_version: DatasetVersion | None = None,
    source=None,
    policy=None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    pair: GoldPair | None = None,
) -> Quarantine:
    """The quarantine these arguments would record, checked but not saved: what a
    confirmation page shows the consequences of
    (training.datasets.selectors.quarantine_consequences)."""
    reason = (reason or "").strip()
    if not reason:
        raise TrainingError(ERR_QUARANTINE_REASON)
    if kind not in _QUARANTINE_FIELDS:
        raise TrainingError(ERR_QUARANTINE_KIND.format(kind=kind))
    values = {
        "dataset_version": dataset_version,
        "source": source,
        "policy": policy,
        "window_start": window_start,
        "window_end": window_end,
        "pair": pair,
    }
    for field in _QUARANTINE_FIELDS[kind]:
        if values[field] is None:
            raise TrainingError(ERR_QUARANTINE_MISSING.format(kind=kind, field=field))
    if kind == Quarantine.Kind.WINDOW and not window_start < window_end:
        raise TrainingError(ERR_QUARANTINE_WINDOW)
    # Only the fields of this kind are stored; the constraint refuses any other.
    kept = {f: v for f, v in values.items() if f in _QUARANTINE_FIELDS[kind]}
    return Quarantine(kind=kind, reason=reason, created_by=user, **kept)


def quarantine_create(*, user=None, **fields) -> Quarantine:
    """Record a quarantine. A version quarantine also marks the version (kept, never
    deleted). Pairs it covers are excluded from every later freeze."""
    quarantine = quarantine_preview(user=user, **fields)
    kind, reason, pair = quarantine.kind, quarantine.reason, quarantine.pair
    kept = {f: getattr(quarantine, f) for f in _QUARANTINE_FIELDS[kind]}
    with transaction.atomic(), pghistory.context(reason=reason):
        if kind == Quarantine.Kind.DATASET_VERSION:
            version = DatasetVersion.objects.select_for_update().get(pk=kept["dataset_version"].pk)
            if version.status != DatasetVersion.Status.FROZEN:
                raise TrainingError(
                    ERR_QUARANTINE_NOT_FROZEN.format(version=version, status=version.status)
                )
            version.status = DatasetVersion.Status.QUARANTINED
            version.quarantined_at = timezone.now()
            with version_rollup_delta(version_ids=[version.pk]):
                version.save(update_fields=["status", "quarantined_at"])
            kept["dataset_version"] = version
        if kind == Quarantine.Kind.PAIR:
            # Gold pairs are never updated: the row lock only serialises two admins
            # quarantining the same pair, so the second is told rather than hitting the
            # unique constraint.
            GoldPair.objects.select_for_update().filter(pk=pair.pk).first()
            if Quarantine.objects.filter(kind=Quarantine.Kind.PAIR, pair=pair).exists():
                raise TrainingError(ERR_QUARANTINE_PAIR_TWICE.format(pk=pair.pk), status=409)
        return Quarantine.objects.create(kind=kind, reason=reason, created_by=user, **kept)


def quarantine_apply(*, user=None, **fields):
    """Record a quarantine and, in the same transaction, roll back every model trained on a
    version it affects (through training.datasets.hooks, which the site wires to the
    registry), restoring the model that was current before. What the pages call. Returns
    (quarantine, rollback)."""
    with transaction.atomic():
        quarantine = quarantine_create(user=user, **fields)
        rollback = hooks.quarantine_recorded(quarantine=quarantine, user=user)
        webhooks.event_emit(
            type=webhooks.QUARANTINE_APPLIED,
            data={
                "quarantine": quarantine.pk,
                "kind": quarantine.kind,
                "reason": quarantine.reason,
                "dataset_version": quarantine.dataset_version_id,
                "rolled_back_models": [model.pk for model in rollback.rolled_back],
                "restored_model": rollback.restored.pk if rollback.restored else None,
                "links": {"quarantines": webhooks.link("datasets:quarantines")},
            },
        )
    return quarantine, rollback
