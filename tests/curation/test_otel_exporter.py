"""The real OpenTelemetry SDK and OTLP/HTTP exporter, configured as README says, export
GenAI spans and evaluation events to the running app (live_server)."""

import base64
import json

import pytest
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from curation.models import Feedback, Interaction

pytestmark = pytest.mark.django_db(transaction=True)

INPUT = [{"role": "user", "parts": [{"type": "text", "content": "Refund window?"}]}]
OUTPUT = [
    {
        "role": "assistant",
        "parts": [{"type": "text", "content": "30 days."}],
        "finish_reason": "stop",
    }
]


def _chat_and_evaluation(provider: TracerProvider) -> tuple[str, str]:
    """One chat span with a user's rating on it, and an evaluator's child span."""
    tracer = provider.get_tracer("shop.llm")
    with tracer.start_as_current_span("chat gpt-4.1-mini") as chat:
        chat.set_attributes(
            {
                "gen_ai.operation.name": "chat",
                "gen_ai.provider.name": "openai",
                "gen_ai.request.model": "gpt-4.1-mini",
                "gen_ai.response.id": "chatcmpl-9",
                # The SDK holds no maps in attributes: structured values go as JSON strings.
                "gen_ai.input.messages": json.dumps(INPUT),
                "gen_ai.output.messages": json.dumps(OUTPUT),
                "gen_ai.usage.input_tokens": 9,
                "gen_ai.usage.output_tokens": 3,
                "gen_ai.conversation.id": "conv-1",
            }
        )
        chat.add_event(
            "gen_ai.evaluation.result",
            {"gen_ai.evaluation.name": "user_rating", "gen_ai.evaluation.score.value": 5},
        )
        with tracer.start_as_current_span("evaluate") as judge:
            judge.add_event(
                "gen_ai.evaluation.result",
                {
                    "gen_ai.evaluation.name": "correctness",
                    "gen_ai.evaluation.score.label": "fail",
                    "gen_ai.evaluation.explanation": "The window is 14 days.",
                },
            )
            judge.set_attribute("http.route", "/judge")  # no GenAI operation of its own
        context = chat.get_span_context()
    return f"{context.trace_id:032x}", f"{context.span_id:016x}"


def _assert_stored(trace_id: str, span_id: str) -> None:
    interaction = Interaction.objects.get()
    assert interaction.event_id == f"otel:{trace_id}:{span_id}"
    assert interaction.messages == [{"role": "user", "content": "Refund window?"}]
    assert interaction.response == "30 days."
    assert interaction.usage["total_tokens"] == 12
    assert interaction.session_id == "conv-1"
    assert interaction.metadata["otel"]["service"] == "shop"
    kinds = sorted(Feedback.objects.values_list("kind", "rating", "comment", "interaction_id"))
    assert kinds == [
        ("rating", 5, "", interaction.pk),
        ("thumbs_down", None, "The window is 14 days.", interaction.pk),
    ]


def test_the_sdk_exporter_configured_by_environment_variables(
    live_server, ingest_token, monkeypatch
):
    _, raw = ingest_token
    # README's snippet, as the SDK reads it.
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"{live_server.url}/api/v1/otel")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"Authorization=Bearer%20{raw}")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_COMPRESSION", "gzip")
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter()))
    trace_id, span_id = _chat_and_evaluation(provider)
    assert provider.force_flush(timeout_millis=30_000)
    provider.shutdown()
    _assert_stored(trace_id, span_id)


def test_a_re_export_succeeds_as_duplicates_and_basic_auth_works(live_server, ingest_token):
    _, raw = ingest_token
    memory = InMemorySpanExporter()
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(memory))
    trace_id, span_id = _chat_and_evaluation(provider)
    spans = memory.get_finished_spans()
    basic = base64.b64encode(f"flywheel:{raw}".encode()).decode()
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/api/v1/otel/v1/traces",
        headers={"Authorization": f"Basic {basic}"},
        compression=Compression.Gzip,
    )
    assert exporter.export(spans) == SpanExportResult.SUCCESS
    assert exporter.export(spans) == SpanExportResult.SUCCESS  # the same spans again
    _assert_stored(trace_id, span_id)
    assert Interaction.objects.count() == 1
    assert Feedback.objects.count() == 2
    exporter.shutdown()


def test_a_wrong_token_fails_the_export_and_stores_nothing(live_server, ingest_token):
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    _chat_and_evaluation(provider)
    exporter = OTLPSpanExporter(
        endpoint=f"{live_server.url}/api/v1/otel/v1/traces",
        headers={"Authorization": "Bearer not-a-token"},
    )
    assert exporter.export(memory.get_finished_spans()) == SpanExportResult.FAILURE
    assert Interaction.objects.count() == 0
    exporter.shutdown()
    assert trace.get_tracer_provider() is not provider  # the global provider was never set
