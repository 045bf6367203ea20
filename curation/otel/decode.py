"""An OTLP/HTTP trace export body to plain Python spans.

Everything hostile is refused here, before any mapping: a body that does not decode, a
gzip body that inflates past the ingest body limit, any-values nested deeper than
metadata may nest. Each refusal is an OtlpRefused with the HTTP status to answer."""

import base64
import gzip
import json
import zlib
from dataclasses import dataclass, field
from typing import Any

from django.conf import settings
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceRequest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from curation.errors import CurationError
from curation.schemas import METADATA_MAX_DEPTH

PROTOBUF = "application/x-protobuf"
JSON = "application/json"
NOT_OTLP = "the body is not a valid OTLP {kind} {message}"
BAD_GZIP = "the body is not valid gzip"
TOO_LARGE = "the body inflates to more than {limit} bytes"
TOO_DEEP = "an attribute value nests more than {limit} levels"
BAD_ENCODING = "unsupported Content-Encoding {encoding!r}; send gzip or none"
# The id fields OTLP/JSON writes as hex where protobuf's JSON mapping expects base64.
_HEX_IDS = ("traceId", "spanId", "parentSpanId")


class OtlpRefused(CurationError):
    """A body refused before anything is written; `status` is the HTTP answer."""


@dataclass
class Event:
    name: str
    time_unix_nano: int
    attributes: dict[str, Any]


@dataclass
class Span:
    trace_id: str  # hex
    span_id: str
    parent_span_id: str
    name: str
    start_unix_nano: int
    end_unix_nano: int
    attributes: dict[str, Any]
    resource: dict[str, Any]
    events: list[Event] = field(default_factory=list)


def inflate(body: bytes, encoding: str) -> bytes:
    """The body without its Content-Encoding, never larger than the ingest body limit."""
    encoding = encoding.strip().lower()
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise OtlpRefused(BAD_ENCODING.format(encoding=encoding[:40]), 415)
    limit = settings.FLYWHEEL_INGEST_MAX_BODY_BYTES
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        # One byte over the limit is enough to know the body is too large: a gzip bomb
        # is never inflated further than that.
        data = inflater.decompress(body, limit + 1)
        if len(data) > limit or inflater.unconsumed_tail:
            raise OtlpRefused(TOO_LARGE.format(limit=limit), 413)
        data += inflater.flush()
    except (zlib.error, gzip.BadGzipFile, EOFError):
        raise OtlpRefused(BAD_GZIP) from None
    if not inflater.eof:
        raise OtlpRefused(BAD_GZIP)
    return data


def parse(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    return _parse(body, content_type, ExportTraceServiceRequest(), _json_spans)


def parse_logs(body: bytes, content_type: str) -> ExportLogsServiceRequest:
    return _parse(body, content_type, ExportLogsServiceRequest(), _json_log_records)


def _parse(body: bytes, content_type: str, message, json_items):
    kind = "protobuf" if content_type == PROTOBUF else "JSON"
    refused = OtlpRefused(NOT_OTLP.format(kind=kind, message=type(message).__name__))
    if content_type == PROTOBUF:
        try:
            # The protobuf runtime refuses messages nested deeper than 100 levels.
            message.ParseFromString(body)
        except (DecodeError, RecursionError, ValueError):
            raise refused from None
        return message
    try:
        document = json.loads(body)
        for item in json_items(document):
            for key in _HEX_IDS:
                if item.get(key):
                    item[key] = base64.b64encode(bytes.fromhex(item[key])).decode()
        json_format.ParseDict(document, message, ignore_unknown_fields=True)
    except (ValueError, TypeError, AttributeError, RecursionError, json_format.ParseError):
        raise refused from None
    return message


def _json_spans(document: dict):
    for resource_spans in document.get("resourceSpans") or []:
        for scope_spans in resource_spans.get("scopeSpans") or []:
            yield from scope_spans.get("spans") or []


def _json_log_records(document: dict):
    for resource_logs in document.get("resourceLogs") or []:
        for scope_logs in resource_logs.get("scopeLogs") or []:
            yield from scope_logs.get("logRecords") or []


def spans(message: ExportTraceServiceRequest) -> list[Span]:
    out = []
    for resource_spans in message.resource_spans:
        resource = attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                out.append(
                    Span(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_unix_nano=span.start_time_unix_nano,
                        end_unix_nano=span.end_time_unix_nano,
                        attributes=attributes(span.attributes),
                        resource=resource,
                        events=[
                            Event(e.name, e.time_unix_nano, attributes(e.attributes))
                            for e in span.events
                        ],
                    )
                )
    return out


def log_records(message: ExportLogsServiceRequest) -> list[Span]:
    """Each log record as a span-shaped carrier of one event: the span it was emitted
    in (its trace and span id, no attributes of its own) and the event itself."""
    out = []
    for resource_logs in message.resource_logs:
        resource = attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for record in scope_logs.log_records:
                values = attributes(record.attributes)
                name = record.event_name or str(values.get("event.name") or "")
                when = record.time_unix_nano or record.observed_time_unix_nano
                out.append(
                    Span(
                        trace_id=record.trace_id.hex(),
                        span_id=record.span_id.hex(),
                        parent_span_id="",
                        name="",
                        start_unix_nano=0,
                        end_unix_nano=0,
                        attributes={},
                        resource=resource,
                        events=[Event(name, when, values)],
                    )
                )
    return out


def attributes(key_values) -> dict[str, Any]:
    return {kv.key: any_value(kv.value, depth=1) for kv in key_values}


def any_value(value, *, depth: int) -> Any:
    """An AnyValue as JSON-like Python, at most METADATA_MAX_DEPTH levels deep."""
    if depth > METADATA_MAX_DEPTH:
        raise OtlpRefused(TOO_DEEP.format(limit=METADATA_MAX_DEPTH))
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(v, depth=depth + 1) for v in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value, depth=depth + 1) for kv in value.kvlist_value.values}
    if kind == "bytes_value":
        return base64.b64encode(value.bytes_value).decode()
    if kind is None:
        return None
    return getattr(value, kind)
