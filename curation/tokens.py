"""API tokens: created with their source, authenticated per request, revoked at once.
The clear token is shown once and only its hash is stored."""

from django.db import transaction
from django.utils import timezone

from curation.errors import CurationError
from curation.models import ApiToken, Source, TokenScope, generate_token, hash_token

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


def api_token_authenticate(*, raw: str, scope: str) -> ApiToken | None:
    """The active token for `raw` if it has `scope`; None if there is no active token.
    An active token without the scope raises `MissingScope`, so the caller learns which
    scope to ask for rather than suspecting the token. Revocation is read from the
    database on every request, so it takes effect at once."""
    token = (
        ApiToken.objects.select_related("source")
        .filter(token_hash=hash_token(raw), revoked_at__isnull=True)
        .first()
    )
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


def api_token_revoke(*, token: ApiToken) -> None:
    ApiToken.objects.filter(pk=token.pk, revoked_at__isnull=True).update(revoked_at=timezone.now())
