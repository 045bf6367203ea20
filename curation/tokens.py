"""API tokens: created with their source, authenticated per request, revoked at once.
The clear token is shown once and only its hash is stored.

Each web process keeps the tokens it has authenticated, for at most CACHE_TTL_S, together
with the token generation read from Redis: every change to a token (revoke, admin edit or
delete) bumps the generation, and a process whose cached generation differs reads the
database again. A request then costs one Redis GET instead of a database query, and a
revocation still takes effect on the next request in every process. Without Redis nothing
is cached; a change made while Redis was unreachable (so no new generation) reaches the
other processes within CACHE_TTL_S."""

import time
import uuid

import redis
from django.db import transaction
from django.utils import timezone

from curation.errors import CurationError
from curation.models import ApiToken, Source, TokenScope
from curation.models.sources import generate_token, hash_token
from flywheel_site import redis as fw_redis

CACHE_TTL_S = 30.0
CACHE_MAX = 1000
GENERATION_KEY = "flywheel:tokens:generation"
# token hash -> (token, generation it was read under, monotonic time it was read)
_cache: dict[str, tuple[ApiToken, bytes, float]] = {}

UNKNOWN_SCOPE = "unknown scope {scope!r}; choose from {choices}"
MISSING_SCOPE = "this token lacks the `{scope}` scope; create a token with it"


class MissingScope(CurationError):
    def __init__(self, scope: str):
        super().__init__(MISSING_SCOPE.format(scope=scope))
        self.scope = scope


def api_token_create(*, source_name: str, name: str, scopes: list[str]) -> tuple[ApiToken, str]:
    """Create a token (and its source if new). Returns the row and the clear
    token, which is shown once and never stored."""
    for scope in scopes:
        if scope not in TokenScope.values:
            raise CurationError(
                UNKNOWN_SCOPE.format(scope=scope, choices=", ".join(TokenScope.values))
            )
    raw = generate_token()
    with transaction.atomic():
        source, _ = Source.objects.get_or_create(name=source_name)
        token = ApiToken.objects.create(
            source=source,
            name=name,
            hint=raw[:10],
            token_hash=hash_token(raw),
            scopes=sorted(set(scopes)),
        )
    return token, raw


def _generation() -> bytes | None:
    if not fw_redis.available():
        return None
    try:
        return fw_redis.client().get(GENERATION_KEY) or b"0"
    except redis.RedisError as error:
        fw_redis.mark_down(error)
        return None


def _bump() -> None:
    _cache.clear()
    if not fw_redis.available():
        return
    try:
        # A fresh random value, not a counter: a Redis restart cannot bring back a
        # generation some process cached under.
        fw_redis.client().set(GENERATION_KEY, uuid.uuid4().hex)
    except redis.RedisError as error:  # the TTL still bounds how long a change waits
        fw_redis.mark_down(error)


def api_tokens_changed() -> None:
    """Call with every write to tokens. Bumped now and again after commit: a process that
    reads the token between the two would otherwise cache what is about to change."""
    _bump()
    transaction.on_commit(_bump)


def _token_lookup(token_hash: str) -> ApiToken | None:
    generation = _generation()
    cached = _cache.get(token_hash)
    if (
        cached is not None
        and generation is not None
        and cached[1] == generation
        and time.monotonic() - cached[2] < CACHE_TTL_S
    ):
        return cached[0]
    token = (
        ApiToken.objects.select_related("source")
        .filter(token_hash=token_hash, revoked_at__isnull=True)
        .first()
    )
    if token is not None and generation is not None:
        if len(_cache) >= CACHE_MAX:
            _cache.clear()
        _cache[token_hash] = (token, generation, time.monotonic())
    return token


def api_token_authenticate(*, raw: str, scope: str) -> ApiToken | None:
    """The active token for `raw` if it has `scope`; None if there is no active token.
    An active token without the scope raises `MissingScope`, so the caller learns which
    scope to ask for rather than suspecting the token. A revocation takes effect on the
    next request (see the module's docstring)."""
    token = _token_lookup(hash_token(raw))
    if token is None:
        return None
    if not token.has_scope(scope):
        raise MissingScope(scope)
    now = timezone.now()
    # Write last_used_at at most once a minute: a write per request would make
    # every ingest call contend on the token row.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_tokens_revoke(*, tokens) -> int:
    """Revoke the active tokens of a queryset; the number revoked."""
    count = tokens.filter(revoked_at__isnull=True).update(revoked_at=timezone.now())
    api_tokens_changed()
    return count


def api_token_revoke(*, token: ApiToken) -> None:
    api_tokens_revoke(tokens=ApiToken.objects.filter(pk=token.pk))
