"""GET /api/v1/route: which model serves a user or session (training.registry.route), for
a token with the `route` scope. Reads only."""

import re

from django.http import HttpRequest
from ninja import Query, Router, Schema
from pydantic import Field, field_validator

from curation.models import TokenScope
from flywheel_site.api_auth import TokenAuth
from flywheel_site.api_errors import ErrorOut
from training.registry import route

route_router = Router(tags=["serving"])
ROUTE_KEY_MAX = 200
ROUTE_KEY_PATTERN = r"^[\x21-\x7e]+$"
BAD_ROUTE_KEY = f"the key must be 1-{ROUTE_KEY_MAX} printable ASCII characters, no spaces"


class RouteIn(Schema):
    # Checked by the validator rather than by Field's own rules, whose refusal quotes the
    # regex; the schema still documents the rules for generated clients.
    key: str = Field(
        json_schema_extra={
            "minLength": 1,
            "maxLength": ROUTE_KEY_MAX,
            "pattern": ROUTE_KEY_PATTERN,
        },
        description="An opaque, stable id of the user or session (printable ASCII, no "
        "spaces): the same key always gets the same arm within an experiment.",
    )

    @field_validator("key")
    @classmethod
    def _key_in_words(cls, key: str) -> str:
        if len(key) > ROUTE_KEY_MAX or not re.fullmatch(ROUTE_KEY_PATTERN, key):
            raise ValueError(BAD_ROUTE_KEY)
        return key


class RouteOut(Schema):
    model: str = Field(description="The serving name to call, and to report as `model`.")
    arm: str = Field(description="control or canary")
    experiment: int | None = Field(description="The running canary experiment, or null.")
    ttl_s: int = Field(description="How long this answer may be reused for this key.")


@route_router.get(
    "/route",
    # The id the schema had before training became sub-packages: generated clients name it.
    operation_id="training_api_route_get",
    auth=TokenAuth(TokenScope.ROUTE),
    summary="Which model to serve for a user or session",
    description="Answers the serving name to use for `key`. While a canary experiment runs, "
    "a keyed hash of the key puts it on the canary arm with the experiment's share, the "
    "same arm on every call; otherwise the current model. Reads only; reuse the answer for "
    "`ttl_s` seconds. Report the returned `model` on the interactions you ingest.",
    response={200: RouteOut, 401: ErrorOut, 403: ErrorOut, 422: ErrorOut, 429: ErrorOut},
)
def route_get(request: HttpRequest, params: Query[RouteIn]):
    return route.route_for(key=params.key).as_dict()
