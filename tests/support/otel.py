"""OTLP request bodies built with the real protobuf classes (opentelemetry-proto)."""

import base64
import json
from datetime import UTC, datetime

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

# A fixed instant inside the ingest window, so no test depends on today's date.
START_NS = int(datetime(2026, 3, 2, 12, 0, tzinfo=UTC).timestamp()) * 10**9
CHAT = {
    "gen_ai.operation.name": "chat",
    "gen_ai.provider.name": "openai",
    "gen_ai.request.model": "gpt-4.1-mini",
    "gen_ai.response.model": "gpt-4.1-mini-2025-04-14",
    "gen_ai.response.id": "chatcmpl-1",
    "gen_ai.system_instructions": [{"type": "text", "content": "You are terse."}],
    "gen_ai.input.messages": [
        {"role": "user", "parts": [{"type": "text", "content": "What is our refund window?"}]}
    ],
    "gen_ai.output.messages": [
        {
            "role": "assistant",
            "parts": [{"type": "text", "content": "30 days."}],
            "finish_reason": "stop",
        }
    ],
    "gen_ai.usage.input_tokens": 12,
    "gen_ai.usage.output_tokens": 3,
    "gen_ai.usage.cache_read.input_tokens": 8,
    "gen_ai.conversation.id": "conv-7",
    "user.id": "user-42",
}


def any_value(value) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    out = AnyValue()
    if isinstance(value, dict):
        out.kvlist_value.values.extend(key_values(value))
    else:
        out.array_value.values.extend(any_value(v) for v in value)
    return out


def key_values(attributes: dict) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attributes.items()]


def span(
    attributes: dict,
    *,
    trace: int = 1,
    span_id: int = 1,
    parent: int = 0,
    name: str = "chat",
    events: list[tuple[str, dict]] = (),
    duration_ms: int = 250,
) -> Span:
    out = Span(
        trace_id=trace.to_bytes(16, "big"),
        span_id=span_id.to_bytes(8, "big"),
        parent_span_id=parent.to_bytes(8, "big") if parent else b"",
        name=name,
        start_time_unix_nano=START_NS,
        end_time_unix_nano=START_NS + duration_ms * 10**6,
        attributes=key_values(attributes),
    )
    for event_name, event_attributes in events:
        out.events.add(
            name=event_name,
            time_unix_nano=START_NS + 10**9,
            attributes=key_values(event_attributes),
        )
    return out


def export(*spans: Span, service: str = "shop") -> ExportTraceServiceRequest:
    return ExportTraceServiceRequest(
        resource_spans=[
            ResourceSpans(
                resource={"attributes": key_values({"service.name": service})},
                scope_spans=[ScopeSpans(spans=list(spans))],
            )
        ]
    )


def event_id(trace: int, span_id: int) -> str:
    return f"otel:{trace:032x}:{span_id:016x}"


def as_otlp_json(request: ExportTraceServiceRequest) -> bytes:
    """OTLP/JSON: protobuf's JSON mapping, with the ids as hex (not base64)."""
    document = json_format.MessageToDict(request)
    for resource_spans in document["resourceSpans"]:
        for scope_spans in resource_spans["scopeSpans"]:
            for item in scope_spans["spans"]:
                for key in ("traceId", "spanId", "parentSpanId"):
                    if key in item:
                        item[key] = base64.b64decode(item[key]).hex()
    return json.dumps(document).encode()


def parsed_answer(response, message):
    """The OTLP protobuf answer of a 200, parsed into `message`."""
    assert response.status_code == 200, response.content
    message.ParseFromString(response.content)
    return message
