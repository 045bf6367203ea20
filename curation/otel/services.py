"""Writes for OTLP ingest: one trace export to interactions and feedback, stored by the
same batch ingest as a JSON batch (validation, PII stripping, idempotency, linking of
feedback that arrives first). Nothing here writes a row by itself."""

from dataclasses import dataclass
from datetime import UTC, datetime

from django.conf import settings

from curation.ingest_counts import results_count
from curation.models import Source
from curation.otel import decode, genai, selectors
from curation.services import batch_ingest

NO_TARGET = "the evaluation names no evaluated span: no GenAI span, parent or known response id"


@dataclass
class IngestResult:
    received: int  # spans, or log records
    ignored: int  # neither a GenAI operation nor feedback
    rejected: int  # spans (records) of which an interaction or a feedback event was refused
    created: int
    duplicate: int
    errors: list[str]


def otel_traces_ingest(
    *, source: Source, body: bytes, content_type: str, content_encoding: str = ""
) -> IngestResult:
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
    # Refused before the batch ingest, which counts its own results.
    results_count([{"kind": "feedback", "status": "rejected"}] * len(refused))
    created, duplicate = _store(source, items, refused)
    used = {key for _, _, key in items} | set(refused)
    return IngestResult(
        received=len(spans),
        ignored=sum(1 for s in spans if genai.event_id(s.trace_id, s.span_id) not in used),
        rejected=len(refused),
        created=created,
        duplicate=duplicate,
        errors=list(refused.values()),
    )


def otel_logs_ingest(
    *, source: Source, body: bytes, content_type: str, content_encoding: str = ""
) -> IngestResult:
    """Decode an OTLP/HTTP ExportLogsServiceRequest: its gen_ai.evaluation.result events
    (the log records the conventions define them as) become feedback on the span each was
    emitted in, or on the response it names. Other records are counted and ignored."""
    records = decode.log_records(
        decode.parse_logs(decode.inflate(body, content_encoding), content_type)
    )
    items: list[tuple[str, dict, str]] = []
    refused: dict[str, str] = {}
    ignored = 0
    for number, carrier in enumerate(records):
        event = carrier.events[0]
        if event.name not in (genai.EVALUATION_EVENT, genai.EDIT_EVENT):
            ignored += 1
            continue
        key = f"record {number}"
        target = _target(source, carrier, event, {}, record=True)
        if target is None:
            refused[key] = f"{key}: {NO_TARGET}"
            continue
        try:
            items.append(
                ("feedback", genai.feedback(carrier, event, genai.log_suffix(event), target), key)
            )
        except ValueError as error:
            refused[key] = f"{key}: {error}"
    # Refused before the batch ingest, which counts its own results.
    results_count([{"kind": "feedback", "status": "rejected"}] * len(refused))
    created, duplicate = _store(source, items, refused)
    return IngestResult(
        received=len(records),
        ignored=ignored,
        rejected=len(refused),
        created=created,
        duplicate=duplicate,
        errors=list(refused.values()),
    )


def _store(source: Source, items: list[tuple[str, dict, str]], refused: dict[str, str]):
    """Store (kind, item, key) through the batch ingest; refusals go into `refused` by
    key. Returns the created and duplicate counts."""
    created = duplicate = 0
    # A collector may send more than a batch holds: they go in batches, interactions
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
            where = f"span {key.rsplit(':', 1)[1]}" if key.startswith("otel:") else key
            refused.setdefault(
                key, f"{where}: {first.get('field', '')}: {first.get('message', 'refused')}"
            )
    return created, duplicate


def _target(
    source: Source,
    span: decode.Span,
    event: decode.Event,
    by_response: dict[str, str],
    *,
    record: bool = False,
) -> str | None:
    """The event id of the interaction an evaluation is about: the response it names,
    else the GenAI span it sits on (or the span a log record was emitted in), else that
    span's parent (an evaluator's span is a child of what it evaluates). A span not
    stored yet is linked when it arrives."""
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
    if genai.is_genai(span) or (record and span.span_id.strip("0")):
        # A GenAI span, or the span a log record was emitted in.
        return genai.event_id(span.trace_id, span.span_id)
    if span.parent_span_id:
        return genai.event_id(span.trace_id, span.parent_span_id)
    return None
