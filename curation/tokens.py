"""API tokens: created with their source, authenticated per request, revoked at once.
The clear token is shown once and only its hash is stored."""

from django.db import transaction
from django.utils import timezone

from curation.errors import CurationError
from curation.models import ApiToken, Source, TokenScope
from curation.models.sources import generate_token, hash_token

UNKNOWN_SCOPE = "unknown scope {scope!r}; choose from {choices}"


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


def api_token_authenticate(*, raw: str, scope: str) -> ApiToken | None:
    """The active token for `raw` if it has `scope`; None otherwise. Revocation
    is read from the database on every request, so it takes effect at once."""
    token = (
        ApiToken.objects.select_related("source")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
    if token is None or not token.has_scope(scope):
        return None
    now = timezone.now()
    # Write last_used_at at most once a minute: a write per request would make
    # every ingest call contend on the token row.
    if token.last_used_at is None or (now - token.last_used_at).total_seconds() > 60:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
        token.last_used_at = now
    return token


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
