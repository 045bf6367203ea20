"""What goes on the wire: event ids, JSON encoding, batch chunks, the HTTP call and the
reading of Retry-After. No state: the client (client.py) holds the queue and the thread."""

from __future__ import annotations

import datetime
import json
import time
import urllib.error
import urllib.request
import uuid
from email.utils import parsedate_to_datetime


def new_id() -> str:
    return uuid.uuid4().hex


def request(
    url: str, token: str, method: str, path: str, body: bytes | None, *, timeout: float
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers with lower-case names, body). Raises OSError or HTTPException
    when there is no answer at all (refused, reset, timed out)."""
    prepared = urllib.request.Request(  # noqa: S310 (the URL the app configured)
        url + path,
        data=body,
        method=method,
        headers={
            "Authorization": f"Bearer {token}",
            "Content-Type": "application/json",
            "User-Agent": "flywheel-client/0.1",
        },
    )
    try:
        with urllib.request.urlopen(prepared, timeout=timeout) as response:  # noqa: S310
            return response.status, _lower(response.headers), response.read()
    except urllib.error.HTTPError as error:
        with error:
            return error.code, _lower(error.headers), error.read()


def _lower(headers) -> dict[str, str]:
    return {key.lower(): value for key, value in (headers or {}).items()}


def retry_after_seconds(value: str | None) -> float | None:
    """Retry-After as seconds from now: a number of seconds, or an HTTP date."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def encode(item: dict) -> bytes:
    # NaN and Infinity are not JSON: the server would refuse the whole batch for them.
    return json.dumps(
        item, separators=(",", ":"), ensure_ascii=False, allow_nan=False, default=_json_default
    ).encode()


def _json_default(value: object) -> str:
    if isinstance(value, datetime.datetime | datetime.date):
        if isinstance(value, datetime.datetime) and value.tzinfo is None:
            value = value.replace(tzinfo=datetime.UTC)  # the server reads naive times as UTC
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} is not JSON")


def chunks(encoded: list[tuple[str, bytes]], max_bytes: int):
    """Encoded items in chunks of at most `max_bytes` of JSON (an item larger than that
    goes alone, and the server answers for it)."""
    chunk: list[tuple[str, bytes]] = []
    size = 0
    for kind, item in encoded:
        if chunk and size + len(item) + 64 > max_bytes:
            yield chunk
            chunk, size = [], 0
        chunk.append((kind, item))
        size += len(item) + 1
    if chunk:
        yield chunk
