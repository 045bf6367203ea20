"""Bearer-token authentication for the REST API, one scope per route group (ingest,
export, metrics, route). The tokens themselves are curation's (`ApiToken`, hashed,
scoped per source); this is the django-ninja glue every app's router uses. A token
over its rate limit raises `RateLimited`, answered as 429 by the API object."""

import pghistory
from django.http import HttpRequest
from ninja.security import HttpBearer

from curation.ratelimit import rate_limit_check
from curation.services import api_token_authenticate
from flywheel_site.request_context import actor_set


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after


class TokenAuth(HttpBearer):
    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str):
        api_token = api_token_authenticate(raw=token.strip(), scope=self.scope)
        if api_token is None:
            return None
        # History events written during this request name the token and source.
        pghistory.context(token=api_token.pk, source=api_token.source_id)
        actor_set(f"token:{api_token.pk}")
        wait = rate_limit_check(token_id=api_token.pk)
        if wait is not None:
            raise RateLimited(wait)
        return api_token
