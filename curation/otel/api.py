"""POST /api/v1/otel/v1/traces: the OTLP/HTTP traces endpoint, so that an OpenTelemetry
exporter pointed at /api/v1/otel sends its GenAI spans here as they are."""

import base64
import binascii

from django.http import HttpRequest, HttpResponse
from google.protobuf import json_format
from ninja import Router
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTracePartialSuccess,
    ExportTraceServiceResponse,
)
from pydantic import BaseModel

from curation.api import ERRORS, TokenAuth
from curation.models import TokenScope
from curation.otel import decode, services
from curation.schemas import ErrorOut
from flywheel_site.api_errors import error_response

UNSUPPORTED = "send OTLP as application/x-protobuf or application/json"


class OtlpTokenAuth(TokenAuth):
    """The ingest token as a Bearer token, or as the password of HTTP Basic: some
    exporters can only be given a user and password."""

    def __call__(self, request: HttpRequest):
        scheme, _, credentials = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() != "basic":
            return super().__call__(request)
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode()
        except (binascii.Error, ValueError):
            return None
        _, _, password = decoded.partition(":")
        return self.authenticate(request, password) if password else None


class PartialSuccessOut(BaseModel):
    # OTLP/JSON writes int64 as a string.
    rejectedSpans: str | None = None  # OTLP's JSON names
    errorMessage: str | None = None


class ExportTraceServiceResponseOut(BaseModel):
    """OTLP's ExportTraceServiceResponse (as protobuf when the request was protobuf)."""

    partialSuccess: PartialSuccessOut | None = None


router = Router(tags=["opentelemetry"])


@router.post(
    "/v1/traces",
    auth=OtlpTokenAuth(TokenScope.INGEST),
    response={200: ExportTraceServiceResponseOut, **ERRORS, 415: ErrorOut},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                decode.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
                decode.JSON: {"schema": {"type": "object"}},
            },
        }
    },
)
def post_traces(request: HttpRequest):
    """An OTLP ExportTraceServiceRequest (protobuf or JSON, optionally gzip). GenAI spans
    become interactions, gen_ai.evaluation.result events feedback; other spans are
    counted and ignored. The answer is an ExportTraceServiceResponse in the request's
    encoding, with `partial_success` when spans were rejected or ignored."""
    content_type = request.content_type
    if content_type not in (decode.PROTOBUF, decode.JSON):
        return error_response(415, UNSUPPORTED)
    try:
        result = services.otel_traces_ingest(
            source=request.auth.source,
            body=request.body,
            content_type=content_type,
            content_encoding=request.headers.get("Content-Encoding", ""),
        )
    except decode.OtlpRefused as error:
        return error_response(error.status, error.message)
    notes = [*result.errors[:5]]
    if result.ignored:
        notes.append(f"ignored {result.ignored} spans that are not GenAI operations")
    answer = ExportTraceServiceResponse()
    if notes or result.rejected_spans:
        answer.partial_success.CopyFrom(
            ExportTracePartialSuccess(
                rejected_spans=result.rejected_spans, error_message="; ".join(notes)
            )
        )
    if content_type == decode.PROTOBUF:
        return HttpResponse(answer.SerializeToString(), content_type=decode.PROTOBUF)
    return HttpResponse(json_format.MessageToJson(answer, indent=None), content_type=decode.JSON)
