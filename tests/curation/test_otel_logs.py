"""POST /api/v1/otel/v1/logs: gen_ai.evaluation.result events sent as log records (how
the conventions define events) become feedback on the span they were emitted in."""

import gzip
import json

import pytest
from django.test import Client
from opentelemetry._logs import LogRecord
from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord as LogRecordProto
from opentelemetry.proto.logs.v1.logs_pb2 import ResourceLogs, ScopeLogs
from opentelemetry.sdk._logs import LoggerProvider
from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from curation.models import Feedback, Interaction
from tests.support.otel import (
    CHAT,
    START_NS,
    event_id,
    export,
    key_values,
    parsed_answer,
    span,
)

URL = "/api/v1/otel/v1/logs"
TRACES = "/api/v1/otel/v1/traces"
PROTOBUF = "application/x-protobuf"


def record(attributes: dict, *, trace=1, span_id=1, name="gen_ai.evaluation.result"):
    return LogRecordProto(
        time_unix_nano=START_NS + 10**9,
        event_name=name,
        trace_id=trace.to_bytes(16, "big"),
        span_id=span_id.to_bytes(8, "big"),
        attributes=key_values(attributes),
    )


def logs(*records) -> bytes:
    return ExportLogsServiceRequest(
        resource_logs=[ResourceLogs(scope_logs=[ScopeLogs(log_records=list(records))])]
    ).SerializeToString()


def post(token, body, *, url=URL, content_type=PROTOBUF, headers=None):
    headers = {"Authorization": f"Bearer {token}", **(headers or {})}
    return Client().post(url, body, content_type=content_type, headers=headers)


def answer(response) -> ExportLogsServiceResponse:
    return parsed_answer(response, ExportLogsServiceResponse())


@pytest.mark.django_db
def test_evaluation_records_become_feedback_on_their_span_and_others_are_ignored(ingest_token):
    token = ingest_token[1]
    answer(post(token, export(span(CHAT, span_id=1)).SerializeToString(), url=TRACES))
    body = logs(
        record({"gen_ai.evaluation.name": "user_rating", "gen_ai.evaluation.score.value": 2}),
        record({"gen_ai.evaluation.score.label": "thumbs_up"}, span_id=1),
        record({"message": "hello"}, name="app.log"),
    )
    result = answer(post(token, body))
    assert result.partial_success.rejected_log_records == 0
    assert "ignored 1 log records" in result.partial_success.error_message
    interaction = Interaction.objects.get()
    rows = sorted(Feedback.objects.values_list("kind", "rating", "interaction_id"))
    assert rows == [("rating", 2, interaction.pk), ("thumbs_up", None, interaction.pk)]
    answer(post(token, body))  # exported again: duplicates
    assert Feedback.objects.count() == 2


@pytest.mark.django_db
def test_a_record_before_its_span_is_linked_later_and_json_gzip_works(ingest_token):
    token = ingest_token[1]
    document = {
        "resourceLogs": [
            {
                "scopeLogs": [
                    {
                        "logRecords": [
                            {
                                "timeUnixNano": str(START_NS),
                                "eventName": "gen_ai.evaluation.result",
                                "traceId": f"{5:032x}",
                                "spanId": f"{6:016x}",
                                "attributes": [
                                    {
                                        "key": "flywheel.final_text",
                                        "value": {"stringValue": "Edited."},
                                    }
                                ],
                            }
                        ]
                    }
                ]
            }
        ]
    }
    response = post(
        token,
        gzip.compress(json.dumps(document).encode()),
        content_type="application/json",
        headers={"Content-Encoding": "gzip"},
    )
    assert response.status_code == 200
    assert json.loads(response.content) == {}
    feedback = Feedback.objects.get()
    assert (feedback.kind, feedback.final_text, feedback.interaction_id) == (
        "edited",
        "Edited.",
        None,
    )
    assert feedback.interaction_event_id == event_id(5, 6)
    post(token, export(span(CHAT, trace=5, span_id=6)).SerializeToString(), url=TRACES)
    feedback.refresh_from_db()
    assert feedback.interaction_id == Interaction.objects.get().pk


@pytest.mark.django_db
def test_records_without_a_span_or_a_known_response_are_rejected(ingest_token):
    body = logs(
        record({"gen_ai.evaluation.score.label": "pass"}, span_id=0),
        record({"gen_ai.evaluation.score.value": 99}, span_id=3),
    )
    result = answer(post(ingest_token[1], body))
    assert result.partial_success.rejected_log_records == 2
    assert (
        "record 0: the evaluation names no evaluated span" in result.partial_success.error_message
    )
    assert "record 1: score.value is neither" in result.partial_success.error_message
    assert Feedback.objects.count() == 0


@pytest.mark.django_db
@pytest.mark.parametrize(("body", "status"), [(b"\x0a\xff\xff", 400), (b"{", 400)])
def test_malformed_logs_are_a_4xx_and_change_nothing(ingest_token, body, status):
    content_type = PROTOBUF if body.startswith(b"\x0a") else "application/json"
    response = post(ingest_token[1], body, content_type=content_type)
    assert response.status_code == status
    assert response.json()["error"] == "malformed"
    assert Feedback.objects.count() == 0


@pytest.mark.django_db(transaction=True)
def test_the_sdk_log_exporter_sends_evaluation_events_of_a_traced_call(live_server, ingest_token):
    _, raw = ingest_token
    endpoint = f"{live_server.url}/api/v1/otel/v1"
    headers = {"Authorization": f"Bearer {raw}"}
    resource = Resource.create({"service.name": "shop"})
    tracer_provider = TracerProvider(resource=resource)
    tracer_provider.add_span_processor(
        SimpleSpanProcessor(OTLPSpanExporter(endpoint=f"{endpoint}/traces", headers=headers))
    )
    logger_provider = LoggerProvider(resource=resource)
    logger_provider.add_log_record_processor(
        SimpleLogRecordProcessor(OTLPLogExporter(endpoint=f"{endpoint}/logs", headers=headers))
    )
    attributes = {
        **{k: v for k, v in CHAT.items() if isinstance(v, str | int)},
        "gen_ai.input.messages": json.dumps(CHAT["gen_ai.input.messages"]),
        "gen_ai.output.messages": json.dumps(CHAT["gen_ai.output.messages"]),
    }
    with tracer_provider.get_tracer("shop").start_as_current_span("chat", attributes=attributes):
        # Emitted inside the span: the record carries its trace and span id.
        logger_provider.get_logger("shop.evals").emit(
            LogRecord(
                event_name="gen_ai.evaluation.result",
                attributes={
                    "gen_ai.evaluation.name": "user_feedback",
                    "gen_ai.evaluation.score.label": "thumbs_down",
                    "gen_ai.evaluation.explanation": "Out of date.",
                },
            )
        )
    logger_provider.shutdown()
    tracer_provider.shutdown()
    interaction = Interaction.objects.get()
    feedback = Feedback.objects.get()
    assert (feedback.kind, feedback.comment) == ("thumbs_down", "Out of date.")
    assert feedback.interaction_id == interaction.pk
