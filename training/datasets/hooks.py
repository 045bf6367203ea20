"""Extension points where the model registry plugs into datasets.

Inside training the sub-packages depend one way (metrics -> runs -> registry -> datasets):
datasets never imports the registry, yet a quarantine must roll back the models trained on
the data it removes, in the transaction that records it. So datasets announces the
quarantine here, and the site wires the rollback in `flywheel_site.apps`, the way curation
hands sampled candidates to review (curation.hooks). A hook runs inside the caller's
transaction: if it raises, the quarantine is not recorded either.
"""

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field


@dataclass
class Rollback:
    """What a quarantine did to the models: the ones it rolled back, the model that was
    current before (when it was among them) and the one restored in its place."""

    rolled_back: list = field(default_factory=list)
    previous_current: object | None = None
    restored: object | None = None


QuarantineHook = Callable[..., Rollback]
AffectedReader = Callable[..., list]
_quarantined: list[QuarantineHook] = []
_affected: list[AffectedReader] = []


def on_quarantine_recorded(hook: QuarantineHook) -> QuarantineHook:
    """Register `hook(quarantine=..., user=...) -> Rollback`, called in the transaction
    that records a quarantine. Registering the same hook twice has no effect."""
    if hook not in _quarantined:
        _quarantined.append(hook)
    return hook


def on_models_affected(reader: AffectedReader) -> AffectedReader:
    """Register `reader(versions=[...]) -> [model, ...]`: the models a quarantine of those
    dataset versions would roll back, for the confirmation pages."""
    if reader not in _affected:
        _affected.append(reader)
    return reader


def quarantine_recorded(*, quarantine, user=None) -> Rollback:
    result = Rollback()
    for hook in _quarantined:
        done = hook(quarantine=quarantine, user=user)
        result.rolled_back += done.rolled_back
        result.previous_current = result.previous_current or done.previous_current
        result.restored = result.restored or done.restored
    return result


def models_affected(*, versions: Sequence) -> list:
    return [model for reader in _affected for model in reader(versions=list(versions))]
