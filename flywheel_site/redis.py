"""Redis access for the web process.

Web requests use a client with short timeouts and a small circuit breaker: when
Redis is down, ingest must notice within milliseconds and carry on (data is
already in PostgreSQL), not hang per request. Workers keep django-rq's own
connections, whose blocking dequeue needs no socket timeout.
"""

import logging
import threading
import time
from collections.abc import Sequence

import django_rq
import redis
from django.conf import settings

log = logging.getLogger(__name__)

_lock = threading.Lock()
_client: redis.Redis | None = None
_down_until = 0.0
# After a failure, skip Redis for this long instead of paying a timeout per request.
BREAKER_SECONDS = 2.0
# Short socket timeouts: when Redis is down, ingest must notice fast and carry on.
SOCKET_TIMEOUT_S = 0.5


def client() -> redis.Redis:
    global _client
    if _client is None:
        with _lock:
            if _client is None:
                _client = redis.Redis.from_url(
                    settings.REDIS_URL,
                    socket_timeout=SOCKET_TIMEOUT_S,
                    socket_connect_timeout=SOCKET_TIMEOUT_S,
                    health_check_interval=30,
                )
    return _client


def available() -> bool:
    return time.monotonic() >= _down_until


def mark_down(error: Exception) -> None:
    global _down_until
    _down_until = time.monotonic() + BREAKER_SECONDS
    log.warning("redis unavailable, continuing without it: %r", error)


def reset() -> None:
    """Forget the breaker state and the client (tests, after a Redis restart)."""
    global _client, _down_until
    _client = None
    _down_until = 0.0


def enqueue(queue_name: str, func, *args, **kwargs) -> bool:
    """Enqueue now (call it after commit). Returns False, logged, if Redis is down:
    the outbox row stays pending and the sweeper picks it up later."""
    if not available():
        return False
    try:
        queue = django_rq.get_queue(queue_name, connection=client(), commit_mode="auto")
        queue.enqueue(func, *args, **kwargs)
    except redis.RedisError as error:
        mark_down(error)
        return False
    return True


def inbox_push(
    *, inbox: str, items: Sequence[int], flag: str = "", flag_ttl_s: int = 0
) -> bool | None:
    """Append `items` to the list `inbox` and, with a `flag`, set it unless it is set, in one
    round trip (an RQ enqueue is several, plus pickling). True when this call set the flag:
    the caller then enqueues the job that empties the inbox; False when it was set already
    (or no flag was given); None, logged, when Redis is down (the rows stay pending in
    PostgreSQL for the sweeper, as with `enqueue`)."""
    if not available():
        return None
    try:
        pipe = client().pipeline(transaction=False)
        pipe.rpush(inbox, *items)
        if flag:
            pipe.set(flag, 1, nx=True, ex=flag_ttl_s)
        replies = pipe.execute()
    except redis.RedisError as error:
        mark_down(error)
        return None
    return bool(flag and replies[-1])


def flag_set(*, flag: str, ttl_s: int) -> bool:
    """Set `flag` for `ttl_s` unless it is set; True if this call set it. False, logged, when
    Redis is down."""
    try:
        return bool(client().set(flag, 1, nx=True, ex=ttl_s))
    except redis.RedisError as error:
        mark_down(error)
        return False


def flag_clear(*, flag: str) -> None:
    """Delete `flag`; nothing, logged, when Redis is down (the flag then lapses with its TTL)."""
    try:
        client().delete(flag)
    except redis.RedisError as error:
        mark_down(error)


def inbox_take(*, inbox: str, flag: str, count: int) -> tuple[list[int], int]:
    """Clear `flag`, take up to `count` items from the head of `inbox`, and count what is
    left, atomically (MULTI; LRANGE and LTRIM rather than LPOP with a count, which needs Redis
    6.2). Clearing the flag before taking means an item pushed after the take sets it again
    and gets a job of its own; one pushed before is taken here or by a later job. Raises
    redis.RedisError: a job that cannot reach Redis fails and is retried."""
    pipe = client().pipeline(transaction=True)
    pipe.delete(flag)
    pipe.lrange(inbox, 0, count - 1)
    pipe.ltrim(inbox, count, -1)
    pipe.llen(inbox)
    _, items, _, left = pipe.execute()
    return [int(item) for item in items], left


def ping() -> tuple[bool, str]:
    try:
        client().ping()
    except redis.RedisError as error:
        return False, type(error).__name__
    return True, "ok"
