"""POST /api/v1/otel/v1/traces and /v1/logs: the OTLP/HTTP endpoints, so that an
OpenTelemetry exporter pointed at /api/v1/otel sends its GenAI spans and evaluation
events here as they are."""

import base64
import binascii

from django.http import HttpRequest, HttpResponse
from google.protobuf import json_format
from ninja import Router
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse
from pydantic import BaseModel

from curation.api import ERRORS
from curation.models import TokenScope
from curation.otel import decode, services
from flywheel_site.api_auth import TokenAuth
from flywheel_site.api_errors import ErrorOut, error_response

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
    # OTLP's JSON names; OTLP/JSON writes int64 as a string.
    rejectedSpans: str | None = None
    rejectedLogRecords: str | None = None
    errorMessage: str | None = None


class ExportResponseOut(BaseModel):
    """OTLP's Export{Trace,Logs}ServiceResponse (as protobuf when the request was)."""

    partialSuccess: PartialSuccessOut | None = None


router = Router(tags=["opentelemetry"])


_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            decode.PROTOBUF: {"schema": {"type": "string", "format": "binary"}},
            decode.JSON: {"schema": {"type": "object"}},
        },
    }
}


def _otlp_route(path: str):
    return router.post(
        path,
        auth=OtlpTokenAuth(TokenScope.INGEST),
        response={200: ExportResponseOut, **ERRORS, 415: ErrorOut},
        openapi_extra=_BODY,
    )


@_otlp_route("/v1/traces")
def post_traces(request: HttpRequest):
    """An OTLP ExportTraceServiceRequest (protobuf or JSON, optionally gzip). GenAI spans
    become interactions, gen_ai.evaluation.result span events feedback; other spans are
    counted and ignored. The answer is an ExportTraceServiceResponse in the request's
    encoding, with `partial_success` when spans were rejected or ignored."""
    return _export(
        request,
        services.otel_traces_ingest,
        ExportTraceServiceResponse(),
        "rejected_spans",
        "spans that are not GenAI operations",
    )


@_otlp_route("/v1/logs")
def post_logs(request: HttpRequest):
    """An OTLP ExportLogsServiceRequest: gen_ai.evaluation.result events (log records)
    become feedback on the span they were emitted in or the response they name; other
    records are counted and ignored. The answer is an ExportLogsServiceResponse."""
    return _export(
        request,
        services.otel_logs_ingest,
        ExportLogsServiceResponse(),
        "rejected_log_records",
        "log records that are not evaluation events",
    )


def _export(request: HttpRequest, ingest, answer, rejected_field: str, ignored_what: str):
    content_type = request.content_type
    if content_type not in (decode.PROTOBUF, decode.JSON):
        return error_response(415, UNSUPPORTED)
    try:
        result = ingest(
            source=request.auth.source,
            body=request.body,
            content_type=content_type,
            content_encoding=request.headers.get("Content-Encoding", ""),
        )
    except decode.OtlpRefused as error:
        return error_response(error.status, error.message)
    notes = [*result.errors[:5]]
    if result.ignored:
        notes.append(f"ignored {result.ignored} {ignored_what}")
    if notes or result.rejected:
        setattr(answer.partial_success, rejected_field, result.rejected)
        answer.partial_success.error_message = "; ".join(notes)
    if content_type == decode.PROTOBUF:
        return HttpResponse(answer.SerializeToString(), content_type=decode.PROTOBUF)
    return HttpResponse(json_format.MessageToJson(answer, indent=None), content_type=decode.JSON)
