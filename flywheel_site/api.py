"""The versioned REST API (/api/v1/): one django-ninja API object, the error handlers
that give every answer the shape of flywheel_site/api_errors.py, and each app's router
mounted under its prefix. It lives in the site, not in an app, because it imports
every app's routes: an app that held it would import the apps downstream of it."""

import json
import logging

import orjson
from django.core.exceptions import PermissionDenied, RequestDataTooBig, SuspiciousOperation
from django.db import InterfaceError, OperationalError
from django.http import Http404
from ninja import NinjaAPI
from ninja.errors import AuthenticationError, HttpError
from ninja.errors import ValidationError as NinjaValidationError
from ninja.parser import Parser

from curation.api import router as ingest_router
from curation.errors import CurationError
from curation.otel.api import router as otel_router
from curation.schemas import JSON_REF, JSON_REF_MARKER, JSON_SCHEMAS, field_errors
from curation.services import MissingScope
from flywheel_site.api_auth import RateLimited
from flywheel_site.api_errors import (
    INTERNAL,
    RETRY_AFTER_S,
    UNAVAILABLE,
    error_body,
    error_code,
)
from training.datasets.api import router as datasets_router
from training.metrics.api import router as metrics_router
from training.registry.api import route_router

logger = logging.getLogger(__name__)

UNAUTHORIZED = "missing, invalid or revoked API token"
RATE_LIMITED = "rate limit exceeded; retry after {seconds} s"
INVALID = "the request does not match the schema"


class FlywheelApi(NinjaAPI):
    def get_openapi_schema(self, **kwargs):
        schema = super().get_openapi_schema(**kwargs)
        # A component the pydantic models refer to but cannot generate (recursive JSON).
        schema.setdefault("components", {}).setdefault("schemas", {}).update(JSON_SCHEMAS)
        return _with_json_refs(schema)


class FastJsonParser(Parser):
    """orjson reads a 1 MB ingest batch several times faster than json. What it refuses
    (NaN, integers past 64 bits, escaped lone surrogates) goes to json as before, so those
    bodies get the same answers as they always did."""

    def parse_body(self, request):
        try:
            return orjson.loads(request.body)
        except orjson.JSONDecodeError:
            return json.loads(request.body)


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
    parser=FastJsonParser(),
)
api.add_router("", ingest_router)
api.add_router("/datasets", datasets_router)
api.add_router("", route_router)
api.add_router("/metrics", metrics_router)
api.add_router("/otel", otel_router)


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


# A real token without the route's scope: the caller needs another token, not a retry.
@api.exception_handler(MissingScope)
def _missing_scope(request, exc: MissingScope):
    return _error(request, 403, "forbidden", exc.message)


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


# A write curation refuses (today: a batch over the limit) is the body's fault.
@api.exception_handler(CurationError)
def _refused(request, exc: CurationError):
    return _error(request, 422, "invalid", INVALID, [{"field": "body", "message": exc.message}])
