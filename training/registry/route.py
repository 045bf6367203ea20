"""Which model serves a key: the answer of GET /api/v1/route.

The split is a keyed hash: HMAC-SHA256 of the key's user hash (the same HMAC that ingest
stores as `Interaction.user_hash` when the app sends the key as `user_id`) under a key
derived from SECRET_KEY and the experiment id, read as a number in [0, 1) and compared with
the canary share. It is deterministic (a user stays on one arm for the whole experiment),
independent between experiments (a new experiment reshuffles who is in the canary), and not
predictable by a
client that does not know SECRET_KEY (nobody can pick keys to land on the canary). Hashing
the user hash rather than the raw key lets the analysis recompute every stored
interaction's assigned arm (intention to treat) without storing the key itself.

The answer reads no row on most calls and writes none: the experiment's snapshot (serving
names, share, state, version) is cached in-process for FLYWHEEL_ROUTE_CACHE_S. Every change
of an experiment or of the current model bumps a generation counter in Redis after commit;
a process whose cached generation differs reads the snapshot again, so a rollback reaches
every web process on its next call. Without Redis the TTL alone bounds the staleness.
"""

from __future__ import annotations

import functools
import hashlib
import hmac
import threading
import time
from dataclasses import dataclass

import redis
from django.conf import settings
from django.db import transaction

from curation.ingest_rows import user_hash
from flywheel_site import redis as fw_redis
from training.registry.models import Experiment, ModelVersion

GENERATION_KEY = "flywheel:route:generation"
CONTROL = "control"
CANARY = "canary"
HOLDBACK = "holdback"


@dataclass(frozen=True)
class Snapshot:
    control: str
    canary: str | None
    share: float
    experiment: int | None
    version: int
    # After a completed canary: `canary` is the previous model, kept for `share` of the keys.
    holdback: bool = False


@dataclass(frozen=True)
class Route:
    model: str
    arm: str
    experiment: int | None
    ttl_s: int

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "arm": self.arm,
            "experiment": self.experiment,
            "ttl_s": self.ttl_s,
        }


_lock = threading.Lock()
_cached: tuple[float, bytes | None, Snapshot] | None = None


@functools.lru_cache(maxsize=16)
def _derived_key(secret: str, experiment_id: int) -> bytes:
    return hmac.new(
        secret.encode(), f"flywheel-route:{experiment_id}".encode(), hashlib.sha256
    ).digest()


def bucket_for_hash(*, experiment_id: int, key_hash: str) -> float:
    """The place in [0, 1) of the key whose user hash is `key_hash`, for this experiment."""
    derived = _derived_key(settings.SECRET_KEY, experiment_id)
    digest = hmac.new(derived, key_hash.encode(), hashlib.sha256).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def bucket(*, experiment_id: int, key: str) -> float:
    """The key's place in [0, 1) for this experiment."""
    return bucket_for_hash(experiment_id=experiment_id, key_hash=user_hash(key))


def arm_for_hash(*, experiment_id: int, share: float, key_hash: str) -> str:
    """The arm a stored interaction's key was assigned to (its `user_hash`)."""
    place = bucket_for_hash(experiment_id=experiment_id, key_hash=key_hash)
    return CANARY if place < share else CONTROL


def arm_for(*, experiment_id: int, share: float, key: str) -> str:
    return arm_for_hash(experiment_id=experiment_id, share=share, key_hash=user_hash(key))


def holdback_split(experiment_id: int) -> int:
    """The hash label of a completed experiment's holdback: its own split, independent of
    who was in the canary (a negative id never names a running experiment)."""
    return -experiment_id


def holdback_active(*, now=None) -> Experiment | None:
    """The completed experiment whose holdback still runs, while its canary is current."""
    from django.utils import timezone

    return (
        Experiment.objects.filter(
            state=Experiment.State.COMPLETED,
            holdback_share__gt=0,
            holdback_until__gt=now or timezone.now(),
            canary__status=ModelVersion.Status.PROMOTED,
        )
        .order_by("-pk")
        .first()
    )


def snapshot_read() -> Snapshot:
    experiment = Experiment.objects.filter(state=Experiment.State.RUNNING).first()
    if experiment is not None:
        return Snapshot(
            control=experiment.control_serving_name,
            canary=experiment.canary_serving_name,
            share=experiment.share,
            experiment=experiment.pk,
            version=experiment.version,
        )
    held = holdback_active()
    if held is not None:
        return Snapshot(
            control=held.canary_serving_name,
            canary=held.control_serving_name,
            share=held.holdback_share,
            experiment=held.pk,
            version=held.version,
            holdback=True,
        )
    current = ModelVersion.objects.filter(status=ModelVersion.Status.PROMOTED).first()
    return Snapshot(
        control=current.serving_name if current else settings.FLYWHEEL_BASE_SERVING_NAME,
        canary=None,
        share=0.0,
        experiment=None,
        version=0,
    )


def _generation() -> bytes | None:
    if not fw_redis.available():
        return None
    try:
        return fw_redis.client().get(GENERATION_KEY)
    except redis.RedisError as error:
        fw_redis.mark_down(error)
        return None


def _snapshot() -> Snapshot:
    global _cached
    generation = _generation()
    now = time.monotonic()
    cached = _cached
    if cached is not None and cached[0] > now and cached[1] == generation:
        return cached[2]
    snapshot = snapshot_read()
    with _lock:
        _cached = (now + settings.FLYWHEEL_ROUTE_CACHE_S, generation, snapshot)
    return snapshot


def route_for(*, key: str) -> Route:
    snapshot = _snapshot()
    ttl = settings.FLYWHEEL_ROUTE_TTL_S
    if snapshot.canary is None or snapshot.experiment is None:
        return Route(model=snapshot.control, arm=CONTROL, experiment=None, ttl_s=ttl)
    if snapshot.holdback:
        held = arm_for(experiment_id=holdback_split(snapshot.experiment), share=snapshot.share,
                       key=key) == CANARY  # fmt: skip
        model = snapshot.canary if held else snapshot.control
        return Route(model=model, arm=HOLDBACK if held else CONTROL, experiment=None, ttl_s=ttl)
    arm = arm_for(experiment_id=snapshot.experiment, share=snapshot.share, key=key)
    model = snapshot.canary if arm == CANARY else snapshot.control
    # A client must not keep an answer past the experiment's end for long.
    return Route(model=model, arm=arm, experiment=snapshot.experiment, ttl_s=ttl)


def cache_clear() -> None:
    global _cached
    with _lock:
        _cached = None


def _bump() -> None:
    cache_clear()
    if not fw_redis.available():
        return
    try:
        fw_redis.client().incr(GENERATION_KEY)
    except redis.RedisError as error:
        fw_redis.mark_down(error)


def route_changed() -> None:
    """Call inside the transaction that changes what the route answers."""
    transaction.on_commit(_bump)
