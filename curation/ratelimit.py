"""Per-token rate limit held in Redis (a fixed window counter).

If Redis is unreachable the limiter lets the request through: refusing
production data because the limiter is down would lose more than it protects.
"""

import time

import redis
from django.conf import settings

from flywheel_site import redis as fw_redis


def rate_limit_check(*, token_id: int) -> int | None:
    """None when the request may go ahead, else the seconds to wait."""
    limit = settings.FLYWHEEL_INGEST_RATE_LIMIT
    if limit <= 0 or not fw_redis.available():
        return None
    window = settings.FLYWHEEL_INGEST_RATE_WINDOW_S
    now = time.time()
    bucket = int(now // window)
    key = f"flywheel:ratelimit:{token_id}:{bucket}"
    try:
        pipe = fw_redis.client().pipeline(transaction=False)
        pipe.incr(key)
        pipe.expire(key, window + 1)
        count, _ = pipe.execute()
    except redis.RedisError as error:
        fw_redis.mark_down(error)
        return None
    if count <= limit:
        return None
    return max(1, int((bucket + 1) * window - now + 0.999))
