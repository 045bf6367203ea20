"""The ingest routes of the REST API (/api/v1/). django-ninja: pydantic validation and
an OpenAPI schema generated from the same classes, with no serializer layer to keep in
step by hand. The API object, its error handlers and the mounting of each app's router
are the site's (flywheel_site/api.py), as is the token authentication every app's routes
use (flywheel_site/api_auth.py)."""

import orjson
from django.http import HttpResponse
from ninja import Router, Status

from curation import services
from curation.models import TokenScope
from curation.schemas import (
    BatchIn,
    BatchResult,
    EditIn,
    FeedbackIn,
    IngestResult,
    InteractionIn,
)
from flywheel_site.api_auth import TokenAuth
from flywheel_site.api_errors import ErrorOut

router = Router()
ingest_auth = TokenAuth(TokenScope.INGEST)
ERRORS = {400: ErrorOut, 401: ErrorOut, 403: ErrorOut, 413: ErrorOut, 422: ErrorOut, 429: ErrorOut}


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


@router.post(
    "/interactions", auth=ingest_auth, response={200: IngestResult, 201: IngestResult, **ERRORS}
)
def post_interaction(request, payload: InteractionIn):
    """Store one interaction. Re-sending its event_id answers `duplicate` (200)."""
    result = services.interaction_ingest(source=request.auth.source, item=payload)
    return _status(result)


@router.post(
    "/feedback", auth=ingest_auth, response={200: IngestResult, 201: IngestResult, **ERRORS}
)
def post_feedback(request, payload: FeedbackIn):
    """Store one feedback event. It may come before its interaction: it is kept
    unlinked (`linked: false`) and linked when the interaction arrives."""
    result = services.feedback_ingest(source=request.auth.source, item=payload)
    return _status(result)


@router.post("/edits", auth=ingest_auth, response={200: IngestResult, 201: IngestResult, **ERRORS})
def post_edit(request, payload: EditIn):
    """Store an interaction and the user's edit of it, atomically."""
    result = services.edit_ingest(source=request.auth.source, item=payload)
    return _status(result)


@router.post(
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
    result = services.batch_ingest(
        source=request.auth.source,
        interactions=payload.interactions,
        feedback=payload.feedback,
        edits=payload.edits,
    )
    # Rendered as built, in the shape of BatchResult (every field of every item; the
    # tests hold the answer to the schema): validating and rendering 500 results through
    # the schema took about 8% of the batch's CPU in the app.
    return HttpResponse(orjson.dumps(result), content_type="application/json; charset=utf-8")
