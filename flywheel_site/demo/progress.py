"""How far a loading demo is, for the banner on every page (`make run` serves first, the
demo loads behind it).

One Redis key, written by whatever is loading (`load_demo`, then the worker training the
cycles) and removed when it is done. It expires on its own, so a loader killed half way
leaves no banner claiming forever that the demo is loading; every step renews it.
"""

from __future__ import annotations

import contextlib
import json

import redis

from flywheel_site import redis as fw_redis

KEY = "flywheel:demo:progress"
# Longer than any step between two renewals (a training cycle takes minutes).
TTL_S = 3600
SIMULATING = "demo still loading: simulated day {day} of {of}"
CYCLE = "demo still loading: cycle {cycle} of {of}"


def progress_set(*, text: str) -> None:
    # A banner is not worth failing the load for.
    with contextlib.suppress(redis.RedisError):
        fw_redis.client().set(KEY, json.dumps({"text": text}), ex=TTL_S)


def progress_clear() -> None:
    with contextlib.suppress(redis.RedisError):
        fw_redis.client().delete(KEY)


def progress_get() -> dict | None:
    """{"text"} while a demo is loading, else None (also when Redis is down)."""
    if not fw_redis.available():
        return None
    try:
        raw = fw_redis.client().get(KEY)
    except redis.RedisError as error:
        fw_redis.mark_down(error)
        return None
    return json.loads(raw) if raw else None
