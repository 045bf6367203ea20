"""An instrumentation package that emits GenAI spans (opentelemetry-instrumentation-openai-v2)
around the real `openai` client, exporting over OTLP/HTTP to the running app. OpenAI itself
is a local HTTP server here: the one third-party network service in the loop."""

import json
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

from curation.models import Interaction
from tests.support.http import http_serve

pytestmark = pytest.mark.django_db(transaction=True)

COMPLETION = {
    "id": "chatcmpl-abc",
    "object": "chat.completion",
    "created": 1770000000,
    "model": "gpt-4.1-mini-2025-04-14",
    "choices": [
        {
            "index": 0,
            "message": {"role": "assistant", "content": "30 days."},
            "finish_reason": "stop",
        }
    ],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}


@pytest.fixture
def fake_openai():
    class Handler(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            body = json.dumps(COMPLETION).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http_serve(server)
    yield f"http://127.0.0.1:{server.server_address[1]}/v1"
    server.shutdown()
    server.server_close()


def test_openai_v2_instrumentation_spans_become_interactions(
    live_server, ingest_token, fake_openai, monkeypatch
):
    import openai
    from opentelemetry.instrumentation.openai_v2 import OpenAIInstrumentor

    # Message content on the span, in the current (v1.37+) attributes.
    monkeypatch.setenv("OTEL_SEMCONV_STABILITY_OPT_IN", "gen_ai_latest_experimental")
    monkeypatch.setenv("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT", "SPAN_ONLY")
    _, raw = ingest_token
    provider = TracerProvider(resource=Resource.create({"service.name": "support-bot"}))
    provider.add_span_processor(
        SimpleSpanProcessor(
            OTLPSpanExporter(
                endpoint=f"{live_server.url}/api/v1/otel/v1/traces",
                headers={"Authorization": f"Bearer {raw}"},
            )
        )
    )
    instrumentor = OpenAIInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    try:
        client = openai.OpenAI(base_url=fake_openai, api_key="not-a-real-key")
        client.chat.completions.create(
            model="gpt-4.1-mini",
            messages=[
                {"role": "system", "content": "Be terse."},
                {"role": "user", "content": "Refund window?"},
            ],
        )
    finally:
        instrumentor.uninstrument()
        provider.shutdown()
    row = Interaction.objects.get()
    assert row.messages == [
        {"role": "system", "content": "Be terse."},
        {"role": "user", "content": "Refund window?"},
    ]
    assert row.response == "30 days."
    assert row.model == "gpt-4.1-mini-2025-04-14"
    assert row.usage == {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}
    assert row.metadata["otel"]["response_id"] == "chatcmpl-abc"
    assert row.metadata["otel"]["provider"] == "openai"
    assert row.metadata["otel"]["service"] == "support-bot"
