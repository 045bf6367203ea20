"""The versioned REST API (/api/v1/). django-ninja: pydantic validation and an
OpenAPI schema generated from the same classes, with no serializer layer to keep
in step by hand."""

import logging

import pghistory
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404, HttpRequest
from ninja import NinjaAPI, Status
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.security import HttpBearer

from curation import services
from curation.models import TokenScope
from curation.ratelimit import rate_limit_check
from curation.schemas import (
    JSON_REF,
    JSON_REF_MARKER,
    JSON_SCHEMAS,
    BatchIn,
    BatchResult,
    EditIn,
    ErrorOut,
    FeedbackIn,
    IngestResult,
    InteractionIn,
    field_errors,
)
from flywheel_site.api_errors import (
    INTERNAL,
    RETRY_AFTER_S,
    UNAVAILABLE,
    error_body,
    error_code,
)

logger = logging.getLogger(__name__)

UNAUTHORIZED = "missing, invalid or revoked API token, or a token without the needed scope"
RATE_LIMITED = "rate limit exceeded; retry after {seconds} s"
INVALID = "the request does not match the schema"


class RateLimited(Exception):
    def __init__(self, retry_after: int):
        self.retry_after = retry_after


class TokenAuth(HttpBearer):
    def __init__(self, scope: str):
        super().__init__()
        self.scope = scope

    def authenticate(self, request: HttpRequest, token: str):
        api_token = services.api_token_authenticate(raw=token.strip(), scope=self.scope)
        if api_token is None:
            return None
        # History events written during this request name the token and source.
        pghistory.context(token=api_token.pk, source=api_token.source_id)
        wait = rate_limit_check(token_id=api_token.pk)
        if wait is not None:
            raise RateLimited(wait)
        return api_token


class FlywheelApi(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        # A component the pydantic models refer to but cannot generate (recursive JSON).
        schema.setdefault("components", {}).setdefault("schemas", {}).update(JSON_SCHEMAS)
        return _with_json_refs(schema)


def _with_json_refs(node):
    if node == JSON_REF_MARKER:
        return JSON_REF
    if isinstance(node, dict):
        return {key: _with_json_refs(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_with_json_refs(value) for value in node]
    return node


api = FlywheelApi(
    title="Flywheel API",
    version="1",
    description="Ingest production LLM traffic and feedback; export reviewed datasets.",
    urls_namespace="api-v1",
)


def _error(request, status: int, error: str, message: str, errors=None, headers=None):
    response = api.create_response(request, error_body(error, message, errors), status=status)
    for key, value in (headers or {}).items():
        response[key] = value
    return response


@api.exception_handler(NinjaValidationError)
def _validation_error(request, exc: NinjaValidationError):
    errors = []
    for item in exc.errors:
        # ninja prefixes body fields with ("body", "<param name>"); clients know fields by path.
        body = len(item.get("loc", ())) >= 2 and item["loc"][0] == "body"
        errors += field_errors([item], skip=2 if body else 0)
    return _error(request, 422, "invalid", INVALID, errors)


@api.exception_handler(AuthenticationError)
def _unauthorized(request, exc):
    return _error(
        request, 401, "unauthorized", UNAUTHORIZED, headers={"WWW-Authenticate": "Bearer"}
    )


@api.exception_handler(RateLimited)
def _rate_limited(request, exc: RateLimited):
    return _error(
        request,
        429,
        "rate_limited",
        RATE_LIMITED.format(seconds=exc.retry_after),
        headers={"Retry-After": str(exc.retry_after)},
    )


@api.exception_handler(HttpError)
def _http_error(request, exc: HttpError):
    if exc.status_code == 400:
        return _error(request, 400, "malformed", "the request body is not valid JSON")
    return _error(request, exc.status_code, error_code(exc.status_code), str(exc))


@api.exception_handler(Http404)
def _not_found(request, exc):
    return _error(request, 404, "not_found", str(exc) or "not found")


# Django turns these into 413/400/403 by itself, but only when they escape the view; the
# catch-all below would otherwise make them 500s.
@api.exception_handler(RequestDataTooBig)
def _too_large(request, exc):
    return _error(request, 413, "too_large", "the request body is too large")


@api.exception_handler(SuspiciousOperation)
def _suspicious(request, exc):
    return _error(request, 400, "malformed", "the request was refused as malformed")


@api.exception_handler(PermissionDenied)
def _forbidden(request, exc):
    return _error(request, 403, "forbidden", str(exc) or "forbidden")


# The database unreachable (connection refused, dropped, fail-over): the request may succeed
# if retried, so 503 and Retry-After. Which service is down is /healthz's business, not the
# client's.
@api.exception_handler(OperationalError)
@api.exception_handler(InterfaceError)
def _unavailable(request, exc):
    logger.error("API request failed, database unavailable: %s", exc)
    return _error(
        request,
        503,
        "unavailable",
        UNAVAILABLE.format(seconds=RETRY_AFTER_S),
        headers={"Retry-After": str(RETRY_AFTER_S)},
    )


# Replaces django-ninja's default, which answers a text/plain traceback with DEBUG and
# Django's HTML 500 page without.
@api.exception_handler(Exception)
def _internal(request, exc):
    logger.exception("API request failed")
    return _error(request, 500, "internal", INTERNAL)


@api.exception_handler(services.BatchTooLarge)
def _batch_too_large(request, exc):
    return _error(request, 422, "invalid", INVALID, [{"field": "body", "message": str(exc)}])


ingest_auth = TokenAuth(TokenScope.INGEST)
ERRORS = {400: ErrorOut, 401: ErrorOut, 413: ErrorOut, 422: ErrorOut, 429: ErrorOut}


def _batch_items(schema: str) -> dict:
    # Any object is accepted as an item: the batch answers 200 and rejects an item
    # that does not match its schema, with that item's errors.
    return {
        "type": "array",
        "description": f"Items shaped as {schema}. Each is validated on its own; one that "
        "does not match is `rejected` in the results and the others are stored.",
        "items": {"anyOf": [{"$ref": f"#/components/schemas/{schema}"}, {"type": "object"}]},
    }


def _status(result: dict) -> Status:
    return Status(201 if result["status"] == "created" else 200, result)


@api.post(
    "/interactions", auth=ingest_auth, response={200: IngestResult, 201: IngestResult, **ERRORS}
)
def post_interaction(request, payload: InteractionIn):
    """Store one interaction. Re-sending its event_id answers `duplicate` (200)."""
    result = services.interaction_ingest(source=request.auth.source, item=payload)
    return _status(result)


@api.post("/feedback", auth=ingest_auth, response={200: IngestResult, 201: IngestResult, **ERRORS})
def post_feedback(request, payload: FeedbackIn):
    """Store one feedback event. It may come before its interaction: it is kept
    unlinked (`linked: false`) and linked when the interaction arrives."""
    result = services.feedback_ingest(source=request.auth.source, item=payload)
    return _status(result)


@api.post("/edits", auth=ingest_auth, response={200: IngestResult, 201: IngestResult, **ERRORS})
def post_edit(request, payload: EditIn):
    """Store an interaction and the user's edit of it, atomically."""
    result = services.edit_ingest(source=request.auth.source, item=payload)
    return _status(result)


@api.post(
    "/batch",
    auth=ingest_auth,
    response={200: BatchResult, **ERRORS},
    openapi_extra={
        "requestBody": {
            "content": {
                "application/json": {
                    "schema": {
                        "type": "object",
                        "additionalProperties": False,
                        "properties": {
                            "interactions": _batch_items("InteractionIn"),
                            "feedback": _batch_items("FeedbackIn"),
                            "edits": _batch_items("EditIn"),
                        },
                    }
                }
            },
            "required": True,
        }
    },
)
def post_batch(request, payload: BatchIn):
    """Up to FLYWHEEL_INGEST_MAX_BATCH items. Each item is validated on its own:
    bad items are `rejected` with their errors, the good ones are stored."""
    return services.batch_ingest(
        source=request.auth.source,
        interactions=payload.interactions,
        feedback=payload.feedback,
        edits=payload.edits,
    )


# Mounted last: training.api imports TokenAuth from this module.
from training.api import router as training_router  # noqa: E402

api.add_router("/datasets", training_router)
