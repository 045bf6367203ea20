"""Ingest (the API's /interactions, /feedback, /edits and /batch): limits and the
end-user hash key."""

from flywheel_site.env import env_int, env_str
from flywheel_site.settings.base import SECRET_KEY

FLYWHEEL_INGEST_MAX_BATCH = env_int("FLYWHEEL_INGEST_MAX_BATCH", 1000, minimum=1)
FLYWHEEL_INGEST_MAX_BODY_BYTES = env_int(
    "FLYWHEEL_INGEST_MAX_BODY_BYTES", 5 * 1024 * 1024, minimum=1024
)
# Requests per token per window; 0 turns the limiter off.
FLYWHEEL_INGEST_RATE_LIMIT = env_int("FLYWHEEL_INGEST_RATE_LIMIT", 1200, minimum=0)
FLYWHEEL_INGEST_RATE_WINDOW_S = env_int("FLYWHEEL_INGEST_RATE_WINDOW_S", 60, minimum=1)
FLYWHEEL_METADATA_MAX_BYTES = env_int("FLYWHEEL_METADATA_MAX_BYTES", 16 * 1024, minimum=2)
FLYWHEEL_TEXT_MAX_CHARS = env_int("FLYWHEEL_TEXT_MAX_CHARS", 200_000, minimum=1)
# occurred_at is accepted from January 1 of this year to now + this many seconds.
FLYWHEEL_INGEST_EARLIEST_YEAR = env_int(
    "FLYWHEEL_INGEST_EARLIEST_YEAR", 2000, minimum=1971, maximum=9000
)
FLYWHEEL_INGEST_MAX_FUTURE_S = env_int(
    "FLYWHEEL_INGEST_MAX_FUTURE_S", 86400, minimum=0, maximum=10 * 366 * 86400
)
# Key for the HMAC of end-user ids; defaults to SECRET_KEY. Changing it breaks
# correlation of users across the change.
FLYWHEEL_USER_HASH_KEY = env_str("FLYWHEEL_USER_HASH_KEY", "") or SECRET_KEY
# Django's own cap on request bodies is the ingest body limit, so an oversized
# body is refused before it is read.
DATA_UPLOAD_MAX_MEMORY_SIZE = FLYWHEEL_INGEST_MAX_BODY_BYTES

# /api/ answers a JSON 414 past this many bytes of URL (path and query) and a JSON 431 past
# this many bytes of headers: below gunicorn's own limits (4094-byte request line, 8190-byte
# header field), whose refusals are HTML.
FLYWHEEL_API_MAX_URL_BYTES = env_int("FLYWHEEL_API_MAX_URL_BYTES", 2048, minimum=256, maximum=4000)
FLYWHEEL_API_MAX_HEADER_BYTES = env_int(
    "FLYWHEEL_API_MAX_HEADER_BYTES", 8000, minimum=1024, maximum=8000
)
