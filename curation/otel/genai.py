"""GenAI spans to ingest items, following the OpenTelemetry semantic conventions for
generative AI as of semantic-conventions v1.44.0 (status: Development), the version the
pinned opentelemetry-semantic-conventions 0.66b2 ships. Older forms still sent by
instrumentations in the wild are read too. The items are plain dicts shaped as
InteractionIn and FeedbackIn: validation, PII stripping and idempotency are the batch
ingest's, exactly as for a JSON batch.

What maps to what is documented in README ("OpenTelemetry"); keep the two in step."""

import hashlib
import json
import math
import re
from datetime import UTC, datetime
from typing import Any

from curation.otel.decode import Event, Span

# Operations that are one model call with messages in and a response out.
OPERATIONS = {"chat", "text_completion", "generate_content"}
EVALUATION_EVENT = "gen_ai.evaluation.result"
# Flywheel's own convention for a user's edit of the answer, on an evaluation event
# (or an event of this name): the final text the user kept.
FINAL_TEXT = "flywheel.final_text"
EDIT_EVENT = "flywheel.edit"
_ROLES = {"system", "user", "assistant", "tool"}
_ROLE_ALIASES = {"developer": "system", "model": "assistant", "ai": "assistant", "human": "user"}
_UP = {"thumbs_up", "up", "positive", "pass", "passed", "good", "correct", "true", "yes", "1"}
_DOWN = {"thumbs_down", "down", "negative", "fail", "failed", "bad", "incorrect", "false", "no"}
_DEPRECATED_MESSAGE_EVENTS = {
    "gen_ai.system.message": "system",
    "gen_ai.user.message": "user",
    "gen_ai.assistant.message": "assistant",
    "gen_ai.tool.message": "tool",
}
_INDEXED = re.compile(r"^gen_ai\.(prompt|completion)\.(\d+)\.(\w+)$")


def event_id(trace_id: str, span_id: str) -> str:
    """The same span exported again is the same event: a `duplicate`."""
    return f"otel:{trace_id}:{span_id}"


def is_genai(span: Span) -> bool:
    operation = span.attributes.get("gen_ai.operation.name")
    if operation is not None:
        return operation in OPERATIONS
    return any(
        key in span.attributes
        for key in ("gen_ai.request.model", "gen_ai.response.model", "gen_ai.prompt")
    )


def interaction(span: Span) -> dict:
    a = _with_detail_events(span)
    messages = _system_instructions(a.get("gen_ai.system_instructions"))
    messages += _messages(a.get("gen_ai.input.messages"))
    output = _messages(a.get("gen_ai.output.messages"))
    if not messages and not output:
        messages, output = _legacy(span, a)
    finish_reasons = [m.pop("finish_reason") for m in output if m.get("finish_reason")]
    finish_reasons = finish_reasons or _as_list(a.get("gen_ai.response.finish_reasons"))
    item: dict[str, Any] = {
        "event_id": event_id(span.trace_id, span.span_id),
        "occurred_at": _timestamp(span.start_unix_nano),
        "model": _text(a.get("gen_ai.response.model") or a.get("gen_ai.request.model")),
        "messages": [{"role": m["role"], "content": m["content"]} for m in messages],
        "response": "\n".join(m["content"] for m in output),
        "metadata": _metadata(span, a, finish_reasons),
    }
    usage = _usage(a)
    if usage:
        item["usage"] = usage
    if span.end_unix_nano >= span.start_unix_nano > 0:
        item["latency_ms"] = round((span.end_unix_nano - span.start_unix_nano) / 1e6)
    session = a.get("gen_ai.conversation.id") or a.get("session.id")
    if session is not None:
        item["session_id"] = _text(session)
    user = _user(a) or _user(span.resource)
    if user is not None:
        item["user_id"] = user
    return item


def evaluations(span: Span) -> list[tuple[Event, int]]:
    """The span's feedback events with their index (part of the feedback's event id)."""
    return [
        (event, index)
        for index, event in enumerate(span.events)
        if event.name in (EVALUATION_EVENT, EDIT_EVENT)
    ]


def feedback(span: Span, event: Event, suffix: int | str, target: str) -> dict:
    """One feedback item on the interaction `target` (an event id); `suffix` tells the
    span's feedback events apart. Raises ValueError when the event says nothing Flywheel
    can store."""
    a = event.attributes
    item: dict[str, Any] = {
        "event_id": f"{event_id(span.trace_id, span.span_id)}:feedback:{suffix}",
        "interaction_event_id": target,
        "metadata": {
            "otel": {"evaluation": _text(a.get("gen_ai.evaluation.name") or event.name)[:200]}
        },
    }
    if event.time_unix_nano:
        item["occurred_at"] = _timestamp(event.time_unix_nano)
    user = _user(a) or _user(span.attributes)
    if user is not None:
        item["user_id"] = user
    explanation = a.get("gen_ai.evaluation.explanation")
    final_text = a.get(FINAL_TEXT)
    if final_text is not None:
        item.update(kind="edited", final_text=_text(final_text))
        return item
    label = str(a.get("gen_ai.evaluation.score.label") or "").strip().lower()
    score = a.get("gen_ai.evaluation.score.value")
    if isinstance(score, bool):
        score = int(score)
    if label in _UP or label in _DOWN:
        item["kind"] = "thumbs_up" if label in _UP else "thumbs_down"
    elif isinstance(score, int | float) and math.isfinite(score):
        if score == int(score) and 1 <= score <= 5 and (score > 1 or _says_rating(a)):
            item.update(kind="rating", value=int(score))
        elif 0 <= score <= 1:
            item["kind"] = "thumbs_up" if score >= 0.5 else "thumbs_down"
        else:
            raise ValueError("score.value is neither a 1-5 rating nor a 0-1 score")
    elif explanation:
        item.update(kind="comment", value=_text(explanation))
        return item
    else:
        raise ValueError("the evaluation has no score, label, explanation or final text")
    if explanation:
        if item["kind"] == "rating":
            item["metadata"]["explanation"] = _text(explanation)
        else:
            item["value"] = _text(explanation)  # kept as the feedback's comment
    if label:
        item["metadata"]["otel"]["label"] = label[:100]
    return item


def _says_rating(attributes: dict) -> bool:
    # A score of exactly 1 is ambiguous (the lowest 1-5 rating, or a perfect 0-1 score):
    # it is a rating only when the evaluation's name says so.
    return "rating" in str(attributes.get("gen_ai.evaluation.name") or "").lower()


def log_suffix(event: Event) -> str:
    """A log record has no index in a span: its content names it, so that the same
    record exported again is a `duplicate`."""
    content = json.dumps(
        [event.name, event.time_unix_nano, event.attributes], sort_keys=True, default=str
    )
    return "log:" + hashlib.sha256(content.encode()).hexdigest()[:16]


def response_id(span: Span) -> str | None:
    value = span.attributes.get("gen_ai.response.id")
    return value if isinstance(value, str) and value else None


# --- helpers ------------------------------------------------------------------------


def _with_detail_events(span: Span) -> dict:
    # Since v1.37 content may travel on a gen_ai.client.inference.operation.details event
    # rather than on the span; its attributes fill in what the span lacks.
    merged = dict(span.attributes)
    for event in span.events:
        if event.name == "gen_ai.client.inference.operation.details":
            for key, value in event.attributes.items():
                merged.setdefault(key, value)
    return merged


def _decoded(value: Any) -> Any:
    # Structured values arrive as AnyValue trees or as JSON strings; both are read.
    if isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def _messages(value: Any) -> list[dict]:
    value = _decoded(value)
    if value is None:
        return []
    if isinstance(value, str):
        return [{"role": "user", "content": value}]
    if isinstance(value, dict):
        value = [value]
    out = []
    for message in value if isinstance(value, list) else []:
        if not isinstance(message, dict):
            continue
        role = str(message.get("role") or "user").lower()
        role = _ROLE_ALIASES.get(role, role)
        content = _parts_text(message["parts"]) if "parts" in message else message.get("content")
        out.append(
            {
                "role": role if role in _ROLES else "user",
                "content": _content_text(content),
                "finish_reason": message.get("finish_reason"),
            }
        )
    return out


def _system_instructions(value: Any) -> list[dict]:
    value = _decoded(value)
    if value is None:
        return []
    text = value if isinstance(value, str) else _parts_text(value)
    return [{"role": "system", "content": text}] if text else []


def _parts_text(parts: Any) -> str:
    """Text parts as they are; every other part (tool_call, tool_call_response, blob,
    uri, reasoning...) as compact JSON, so that reviewers see it and nothing is lost."""
    if not isinstance(parts, list):
        return _content_text(parts)
    lines = []
    for part in parts:
        if isinstance(part, dict) and part.get("type", "text") == "text":
            lines.append(_text(part.get("content", "")))
        else:
            lines.append(json.dumps(part, ensure_ascii=False, separators=(",", ":")))
    return "\n".join(lines)


def _content_text(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return _parts_text(content)
    return json.dumps(content, ensure_ascii=False, separators=(",", ":"))


def _legacy(span: Span, a: dict) -> tuple[list[dict], list[dict]]:
    """gen_ai.prompt / gen_ai.completion (a string, JSON, or indexed as OpenLLMetry
    writes them: gen_ai.prompt.0.role), and the deprecated per-message events."""
    indexed: dict[tuple[str, int], dict] = {}
    for key, value in a.items():
        match = _INDEXED.match(key)
        if match:
            indexed.setdefault((match[1], int(match[2])), {})[match[3]] = value
    prompt = [indexed[k] for k in sorted(k for k in indexed if k[0] == "prompt")]
    completion = [indexed[k] for k in sorted(k for k in indexed if k[0] == "completion")]
    messages, output = _messages(prompt) if prompt else [], _messages(completion)
    for event in span.events:
        if event.name == "gen_ai.content.prompt" and not messages:
            messages = _messages(event.attributes.get("gen_ai.prompt"))
        elif event.name == "gen_ai.content.completion" and not output:
            output = _messages(event.attributes.get("gen_ai.completion"))
            for m in output:
                m["role"] = "assistant"
        elif event.name in _DEPRECATED_MESSAGE_EVENTS:
            content = event.attributes.get("content", event.attributes.get("gen_ai.prompt"))
            messages.append(
                {
                    "role": _DEPRECATED_MESSAGE_EVENTS[event.name],
                    "content": _content_text(_decoded(content)),
                }
            )
        elif event.name == "gen_ai.choice":
            message = _decoded(event.attributes.get("message")) or {}
            content = message.get("content") if isinstance(message, dict) else message
            output.append(
                {
                    "role": "assistant",
                    "content": _content_text(content),
                    "finish_reason": event.attributes.get("finish_reason"),
                }
            )
    if not messages:
        messages = _messages(a.get("gen_ai.prompt"))
    if not output:
        output = _messages(a.get("gen_ai.completion"))
    return messages, output


def _usage(a: dict) -> dict:
    usage = {}
    prompt = a.get("gen_ai.usage.input_tokens", a.get("gen_ai.usage.prompt_tokens"))
    completion = a.get("gen_ai.usage.output_tokens", a.get("gen_ai.usage.completion_tokens"))
    if prompt is not None:
        usage["prompt_tokens"] = prompt
    if completion is not None:
        usage["completion_tokens"] = completion
    if isinstance(prompt, int) and isinstance(completion, int):
        usage["total_tokens"] = prompt + completion
    return usage


_EXTRA_USAGE = {
    "gen_ai.usage.cache_read.input_tokens": "cache_read_input_tokens",
    "gen_ai.usage.cache_creation.input_tokens": "cache_creation_input_tokens",
    "gen_ai.usage.reasoning.output_tokens": "reasoning_output_tokens",
}


def _metadata(span: Span, a: dict, finish_reasons: list) -> dict:
    otel: dict[str, Any] = {"trace_id": span.trace_id, "span_id": span.span_id}
    if span.parent_span_id:
        otel["parent_span_id"] = span.parent_span_id
    for key, name in (
        ("gen_ai.response.id", "response_id"),
        ("gen_ai.operation.name", "operation"),
        ("gen_ai.provider.name", "provider"),
        ("gen_ai.system", "provider"),
        ("gen_ai.agent.name", "agent"),
    ):
        if a.get(key) is not None and name not in otel:
            otel[name] = _text(a[key])[:200]
    service = span.resource.get("service.name")
    if service is not None:
        otel["service"] = _text(service)[:200]
    if finish_reasons:
        otel["finish_reasons"] = [_text(r)[:100] for r in finish_reasons]
    usage = {name: a[key] for key, name in _EXTRA_USAGE.items() if isinstance(a.get(key), int)}
    if usage:
        otel["usage"] = usage
    return {"otel": otel}


def _user(a: dict) -> str | None:
    value = a.get("user.id", a.get("enduser.id"))
    return None if value is None else _text(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)


def _as_list(value: Any) -> list:
    value = _decoded(value)
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def _timestamp(unix_nano: int) -> str:
    try:
        return datetime.fromtimestamp(unix_nano / 1e9, tz=UTC).isoformat()
    except (OverflowError, ValueError, OSError):
        return "out of range"  # refused by the schema, naming occurred_at
