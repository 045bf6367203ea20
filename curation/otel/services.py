"""Writes for OTLP ingest: one trace export to interactions and feedback, stored by the
same batch ingest as a JSON batch (validation, PII stripping, idempotency, linking of
feedback that arrives first). Nothing here writes a row by itself."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from curation.models import Source
from curation.otel import decode, genai, selectors
from curation.services import batch_ingest

NO_TARGET = "the evaluation names no evaluated span: no GenAI span, parent or known response id"


@dataclass
class TracesResult:
    spans: int
    ignored: int  # spans that are no GenAI operation and carry no feedback
    rejected_spans: int  # spans of which an interaction or a feedback event was refused
    created: int
    duplicate: int
    errors: list[str]


def otel_traces_ingest(
    *, source: Source, body: bytes, content_type: str, content_encoding: str = ""
) -> TracesResult:
    """Decode an OTLP/HTTP ExportTraceServiceRequest and ingest what it holds. Raises
    OtlpRefused (nothing written) for a body that is not one, or is hostile."""
    spans = decode.spans(decode.parse(decode.inflate(body, content_encoding), content_type))
    items: list[tuple[str, dict, str]] = []  # (kind, item, key of the span it came from)
    by_response: dict[str, str] = {}
    for span in spans:
        if genai.is_genai(span):
            item = genai.interaction(span)
            items.append(("interaction", item, item["event_id"]))
            rid = genai.response_id(span)
            if rid:
                by_response[rid] = item["event_id"]
    refused: dict[str, str] = {}
    for span in spans:
        key = genai.event_id(span.trace_id, span.span_id)
        for event, index in genai.evaluations(span):
            target = _target(source, span, event, by_response)
            if target is None:
                refused.setdefault(key, f"span {span.span_id}: {NO_TARGET}")
                continue
            try:
                items.append(("feedback", genai.feedback(span, event, index, target), key))
            except ValueError as error:
                refused.setdefault(key, f"span {span.span_id}: {error}")
    created = duplicate = 0
    # A collector may send more spans than a batch holds: they go in batches, interactions
    # first, each batch in its own transaction (a retried export is idempotent all the same).
    limit = settings.FLYWHEEL_INGEST_MAX_BATCH
    for start in range(0, len(items), limit):
        kinds: dict[str, list[tuple[dict, str]]] = {"interaction": [], "feedback": []}
        for kind, item, key in items[start : start + limit]:
            kinds[kind].append((item, key))
        result = batch_ingest(
            source=source,
            interactions=[item for item, _ in kinds["interaction"]],
            feedback=[item for item, _ in kinds["feedback"]],
            edits=[],
        )
        created += result["created"]
        duplicate += result["duplicate"]
        for outcome in result["results"]:
            if outcome["status"] != "rejected":
                continue
            key = kinds[outcome["kind"]][outcome["index"]][1]
            first = outcome["errors"][0] if outcome["errors"] else {}
            refused.setdefault(
                key,
                f"span {key.rsplit(':', 1)[1]}: {first.get('field', '')}: "
                f"{first.get('message', 'refused')}",
            )
    used = {key for _, _, key in items} | set(refused)
    return TracesResult(
        spans=len(spans),
        ignored=sum(1 for s in spans if genai.event_id(s.trace_id, s.span_id) not in used),
        rejected_spans=len(refused),
        created=created,
        duplicate=duplicate,
        errors=list(refused.values()),
    )


def _target(
    source: Source, span: decode.Span, event: decode.Event, by_response: dict[str, str]
) -> str | None:
    """The event id of the interaction an evaluation is about: the response it names,
    else the GenAI span it sits on, else that span's parent (an evaluator's span is a
    child of what it evaluates). A parent not stored yet is linked when it arrives."""
    rid = event.attributes.get("gen_ai.response.id")
    if isinstance(rid, str) and rid:
        if rid in by_response:
            return by_response[rid]
        around = (
            datetime.fromtimestamp(event.time_unix_nano / 1e9, tz=UTC)
            if 0 < event.time_unix_nano < 2**62
            else datetime.now(UTC)
        )
        found = selectors.interaction_event_id_for_response(
            source=source, response_id=rid, around=around
        )
        if found:
            return found
    if genai.is_genai(span):
        return genai.event_id(span.trace_id, span.span_id)
    if span.parent_span_id:
        return genai.event_id(span.trace_id, span.parent_span_id)
    return None
