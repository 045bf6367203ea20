"""POST /api/v1/otel/v1/traces: OTLP/HTTP GenAI spans become interactions, evaluation
events feedback, through the same ingest rules as every other path."""

import base64
import gzip
import json

import pytest
from django.test import Client
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from curation.models import Feedback, Interaction
from tests.support.otel import CHAT, as_otlp_json, event_id, export, parsed_answer, span

pytestmark = pytest.mark.django_db
URL = "/api/v1/otel/v1/traces"
PROTOBUF = "application/x-protobuf"


def post(token, body: bytes, *, content_type=PROTOBUF, headers=None, auth="bearer"):
    headers = dict(headers or {})
    if auth == "bearer":
        headers["Authorization"] = f"Bearer {token}"
    elif auth == "basic":
        headers["Authorization"] = "Basic " + base64.b64encode(f"otel:{token}".encode()).decode()
    return Client().post(URL, body, content_type=content_type, headers=headers)


def answer(response) -> ExportTraceServiceResponse:
    return parsed_answer(response, ExportTraceServiceResponse())


def counts():
    return Interaction.objects.count(), Feedback.objects.count()


@pytest.fixture
def token(ingest_token):
    return ingest_token[1]


def test_it_stores_a_genai_chat_span_as_an_interaction(token):
    result = answer(post(token, export(span(CHAT, trace=7, span_id=9)).SerializeToString()))
    assert not result.HasField("partial_success")
    row = Interaction.objects.get()
    assert row.event_id == event_id(7, 9)
    assert row.messages == [
        {"role": "system", "content": "You are terse."},
        {"role": "user", "content": "What is our refund window?"},
    ]
    assert row.response == "30 days."
    assert row.model == "gpt-4.1-mini-2025-04-14"
    assert row.usage == {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
    assert row.latency_ms == 250
    assert row.session_id == "conv-7"
    assert row.user_hash and "user-42" not in row.user_hash
    assert row.occurred_at.isoformat() == "2026-03-02T12:00:00+00:00"
    otel = row.metadata["otel"]
    assert otel["trace_id"] == f"{7:032x}"
    assert otel["span_id"] == f"{9:016x}"
    assert otel["response_id"] == "chatcmpl-1"
    assert otel["finish_reasons"] == ["stop"]
    assert otel["service"] == "shop"
    assert otel["usage"] == {"cache_read_input_tokens": 8}


def test_a_re_export_is_a_duplicate(token):
    body = export(span(CHAT)).SerializeToString()
    answer(post(token, body))
    answer(post(token, body))
    assert counts() == (1, 0)


def test_otlp_json_gzip_with_json_string_messages_and_tool_parts(token):
    attributes = {
        **CHAT,
        "gen_ai.input.messages": json.dumps(
            [
                {"role": "user", "parts": [{"type": "text", "content": "Weather in Paris?"}]},
                {
                    "role": "assistant",
                    "parts": [
                        {
                            "type": "tool_call",
                            "id": "c1",
                            "name": "weather",
                            "arguments": {"city": "Paris"},
                        }
                    ],
                },
                {
                    "role": "tool",
                    "parts": [{"type": "tool_call_response", "id": "c1", "response": "rainy"}],
                },
            ]
        ),
        "gen_ai.output.messages": json.dumps(
            [
                {
                    "role": "assistant",
                    "parts": [{"type": "text", "content": "Rainy."}],
                    "finish_reason": "stop",
                }
            ]
        ),
    }
    body = gzip.compress(as_otlp_json(export(span(attributes, trace=3, span_id=4))))
    response = post(
        token, body, content_type="application/json", headers={"Content-Encoding": "gzip"}
    )
    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"
    assert json.loads(response.content) == {}
    row = Interaction.objects.get(event_id=event_id(3, 4))
    roles = [m["role"] for m in row.messages]
    assert roles == ["system", "user", "assistant", "tool"]
    assert json.loads(row.messages[2]["content"])["name"] == "weather"
    assert "rainy" in row.messages[3]["content"]
    assert row.response == "Rainy."


def test_spans_that_are_not_genai_are_counted_and_ignored(token):
    body = export(
        span(CHAT, span_id=1),
        span({"http.method": "GET"}, span_id=2, name="GET /"),
        span({"gen_ai.operation.name": "embeddings", "gen_ai.request.model": "e"}, span_id=3),
    ).SerializeToString()
    result = answer(post(token, body))
    assert result.partial_success.rejected_spans == 0
    assert "ignored 2 spans that are not GenAI operations" in result.partial_success.error_message
    assert counts() == (1, 0)


def test_the_legacy_prompt_and_completion_attributes_are_read(token):
    indexed = {
        "gen_ai.system": "openai",
        "gen_ai.request.model": "gpt-3.5-turbo",
        "gen_ai.prompt.0.role": "system",
        "gen_ai.prompt.0.content": "Be kind.",
        "gen_ai.prompt.1.role": "user",
        "gen_ai.prompt.1.content": "Hello",
        "gen_ai.completion.0.role": "assistant",
        "gen_ai.completion.0.content": "Hi there",
        "gen_ai.completion.0.finish_reason": "stop",
        "gen_ai.usage.prompt_tokens": 5,
        "gen_ai.usage.completion_tokens": 2,
    }
    events = [
        ("gen_ai.user.message", {"content": "Ping?"}),
        ("gen_ai.choice", {"message": {"content": "Pong."}, "finish_reason": "stop"}),
    ]
    content_events = [
        (
            "gen_ai.content.prompt",
            {"gen_ai.prompt": json.dumps([{"role": "user", "content": "Q"}])},
        ),
        ("gen_ai.content.completion", {"gen_ai.completion": "A"}),
    ]
    body = export(
        span(indexed, span_id=1),
        span({"gen_ai.request.model": "m"}, span_id=2, events=events),
        span({"gen_ai.request.model": "m"}, span_id=3, events=content_events),
    ).SerializeToString()
    answer(post(token, body))
    rows = {r.event_id: r for r in Interaction.objects.all()}
    first = rows[event_id(1, 1)]
    assert first.messages == [
        {"role": "system", "content": "Be kind."},
        {"role": "user", "content": "Hello"},
    ]
    assert first.response == "Hi there"
    assert first.usage["total_tokens"] == 7
    assert first.metadata["otel"]["provider"] == "openai"
    assert rows[event_id(1, 2)].messages == [{"role": "user", "content": "Ping?"}]
    assert rows[event_id(1, 2)].response == "Pong."
    assert rows[event_id(1, 3)].messages == [{"role": "user", "content": "Q"}]
    assert rows[event_id(1, 3)].response == "A"


def test_evaluation_events_become_feedback_of_the_documented_kinds(token):
    events = [
        (
            "gen_ai.evaluation.result",
            {
                "gen_ai.evaluation.name": "user_feedback",
                "gen_ai.evaluation.score.label": "thumbs_down",
                "gen_ai.evaluation.explanation": "Wrong window",
            },
        ),
        (
            "gen_ai.evaluation.result",
            {"gen_ai.evaluation.name": "user_rating", "gen_ai.evaluation.score.value": 4.0},
        ),
        (
            "gen_ai.evaluation.result",
            {"gen_ai.evaluation.name": "relevance", "gen_ai.evaluation.score.value": 0.9},
        ),
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.explanation": "Too long"}),
        ("gen_ai.evaluation.result", {"flywheel.final_text": "30 days from delivery."}),
    ]
    answer(post(token, export(span(CHAT, events=events)).SerializeToString()))
    rows = list(Feedback.objects.order_by("event_id"))
    assert [(f.kind, f.rating, f.comment, f.final_text) for f in rows] == [
        ("thumbs_down", None, "Wrong window", None),
        ("rating", 4, "", None),
        ("thumbs_up", None, "", None),
        ("comment", None, "Too long", None),
        ("edited", None, "", "30 days from delivery."),
    ]
    interaction = Interaction.objects.get()
    assert all(f.interaction_id == interaction.pk for f in rows)
    assert rows[0].event_id == f"{event_id(1, 1)}:feedback:0"


def test_an_evaluator_span_sent_before_its_parent_is_linked_when_the_parent_arrives(token):
    evaluator = span(
        {"gen_ai.operation.name": "evaluate"},
        span_id=5,
        parent=1,
        name="evaluate",
        events=[("gen_ai.evaluation.result", {"gen_ai.evaluation.score.label": "pass"})],
    )
    answer(post(token, export(evaluator).SerializeToString()))
    feedback = Feedback.objects.get()
    assert feedback.interaction_id is None
    assert feedback.interaction_event_id == event_id(1, 1)
    answer(post(token, export(span(CHAT, span_id=1)).SerializeToString()))
    feedback.refresh_from_db()
    assert feedback.interaction_id == Interaction.objects.get().pk


def test_an_evaluation_naming_a_response_id_finds_its_interaction_in_another_export(token):
    answer(post(token, export(span(CHAT, trace=1, span_id=1)).SerializeToString()))
    later = span(
        {"service": "judge"},
        trace=99,
        span_id=2,
        name="judge",
        events=[
            (
                "gen_ai.evaluation.result",
                {"gen_ai.response.id": "chatcmpl-1", "gen_ai.evaluation.score.value": 0.1},
            )
        ],
    )
    answer(post(token, export(later).SerializeToString()))
    feedback = Feedback.objects.get()
    assert feedback.kind == "thumbs_down"
    assert feedback.interaction_id == Interaction.objects.get().pk


def test_refused_spans_are_counted_in_partial_success_and_the_others_stored(token):
    no_messages = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "m"}
    unmappable = [("gen_ai.evaluation.result", {"gen_ai.evaluation.score.value": 42})]
    body = export(
        span(CHAT, span_id=1),
        span(no_messages, span_id=2),
        span(CHAT, span_id=3, events=unmappable),
    ).SerializeToString()
    result = answer(post(token, body))
    assert result.partial_success.rejected_spans == 2
    message = result.partial_success.error_message
    assert f"span {2:016x}: interactions.1.messages" in message
    assert f"span {3:016x}: score.value is neither" in message
    assert counts() == (2, 0)


def test_an_export_larger_than_a_batch_is_stored_in_batches(token, settings):
    settings.FLYWHEEL_INGEST_MAX_BATCH = 2
    rated = [("gen_ai.evaluation.result", {"gen_ai.evaluation.score.label": "good"})]
    spans = [span(CHAT, span_id=n, events=rated if n == 1 else []) for n in range(1, 6)]
    result = answer(post(token, export(*spans).SerializeToString()))
    assert not result.HasField("partial_success")
    assert counts() == (5, 1)
    assert Feedback.objects.get().interaction.event_id == event_id(1, 1)


def test_pii_is_stripped_from_otlp_spans_and_feedback(token):
    attributes = {
        **CHAT,
        "gen_ai.input.messages": [
            {"role": "user", "parts": [{"type": "text", "content": "I am jane@example.com"}]}
        ],
    }
    events = [
        ("gen_ai.evaluation.result", {"gen_ai.evaluation.explanation": "call +1 415 555 2671"})
    ]
    answer(post(token, export(span(attributes, events=events)).SerializeToString()))
    stored = json.dumps(
        list(Interaction.objects.values("messages")) + list(Feedback.objects.values("comment"))
    )
    assert "jane@example.com" not in stored
    assert "[EMAIL]" in stored
    assert "415 555 2671" not in stored


def test_http_basic_with_the_token_as_password_is_accepted(token):
    answer(post(token, export(span(CHAT)).SerializeToString(), auth="basic"))
    assert counts() == (1, 0)


@pytest.mark.parametrize("auth", ["none", "bad-basic", "bad-bearer"])
def test_without_a_valid_token_it_is_401_and_nothing_is_stored(token, auth):
    headers = {
        "none": {},
        "bad-basic": {"Authorization": "Basic " + base64.b64encode(b"u:nope").decode()},
        "bad-bearer": {"Authorization": "Bearer nope"},
    }[auth]
    response = post(token, export(span(CHAT)).SerializeToString(), headers=headers, auth=None)
    assert response.status_code == 401
    assert response.json()["error"] == "unauthorized"
    assert counts() == (0, 0)


@pytest.mark.parametrize(
    ("content_type", "headers"),
    [("text/plain", {}), ("application/grpc", {}), (PROTOBUF, {"Content-Encoding": "br"})],
)
def test_other_content_types_and_encodings_are_a_json_415(token, content_type, headers):
    body = export(span(CHAT)).SerializeToString()
    response = post(token, body, content_type=content_type, headers=headers)
    assert response.status_code == 415
    assert response.json()["error"] == "unsupported_media_type"
    assert counts() == (0, 0)


def _nested(depth: int) -> list:
    value: object = "leaf"
    for _ in range(depth):
        value = [value]
    return value


def _field(number: int, payload: bytes) -> bytes:
    # A length-delimited protobuf field, by hand: the protobuf runtime will not build a
    # message nested deeper than it would parse.
    length, size = b"", len(payload)
    while True:
        byte, size = size & 0x7F, size >> 7
        length += bytes([byte | (0x80 if size else 0)])
        if not size:
            break
    return bytes([number << 3 | 2]) + length + payload


def _too_deep_for_protobuf(depth: int) -> bytes:
    value = _field(1, b"leaf")  # AnyValue.string_value
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value.values
    attribute = _field(1, b"x") + _field(2, value)  # KeyValue key, value
    spans = span(CHAT).SerializeToString() + _field(9, attribute)  # Span.attributes
    return _field(1, _field(2, _field(2, spans)))  # request.resource_spans.scope_spans.spans


@pytest.mark.parametrize(
    ("case", "status"),
    [
        ("truncated", 400),
        ("garbage", 400),
        ("deep", 400),
        ("very-deep", 400),
        ("bad-json", 400),
        ("bad-gzip", 400),
        ("gzip-bomb", 413),
        ("huge", 413),
    ],
)
def test_hostile_bodies_are_a_4xx_and_change_nothing(token, settings, case, status):
    settings.FLYWHEEL_INGEST_MAX_BODY_BYTES = 64 * 1024
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 64 * 1024
    good = export(span(CHAT, span_id=1)).SerializeToString()
    content_type, headers = PROTOBUF, {}
    if case == "truncated":
        body = good[: len(good) // 2]
    elif case == "garbage":
        body = b"\xff" * 100
    elif case == "deep":
        body = export(span(CHAT, span_id=1), span({**CHAT, "x": _nested(40)}, span_id=2))
        body = body.SerializeToString()
    elif case == "very-deep":
        body = _too_deep_for_protobuf(300)
    elif case == "bad-json":
        body, content_type = b'{"resourceSpans": [' * 2000, "application/json"
    elif case == "bad-gzip":
        body, headers = b"\x1f\x8b not gzip", {"Content-Encoding": "gzip"}
    elif case == "gzip-bomb":
        body, headers = gzip.compress(b"\x00" * (50 * 1024 * 1024)), {"Content-Encoding": "gzip"}
    else:
        body = good + b"\x00" * (100 * 1024)
    response = post(token, body, content_type=content_type, headers=headers)
    assert response.status_code == status
    assert response.json()["error"] in ("malformed", "too_large")
    assert counts() == (0, 0)


def test_the_rate_limit_holds_for_otlp_too(token, settings):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 1
    body = export(span(CHAT)).SerializeToString()
    answer(post(token, body))
    response = post(token, body)
    assert response.status_code == 429
    assert int(response["Retry-After"]) >= 1


def test_the_route_is_in_the_openapi_schema(token):
    schema = Client().get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/otel/v1/traces"]["post"]
    assert set(operation["requestBody"]["content"]) == {PROTOBUF, "application/json"}
