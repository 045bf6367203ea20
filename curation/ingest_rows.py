"""Ingest items turned into rows: PII redacted, user ids hashed, JSON dumped
in a stable form. Pure apart from reading the user-hash key from settings;
`curation.services` writes the rows."""

import functools
import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import orjson

from curation import pii
from curation.models import FeedbackKind
from curation.pii_json import redact_json
from curation.schemas import EditIn, FeedbackIn, InteractionIn, Message
from flywheel_site.hot_settings import hot_settings


@functools.lru_cache(maxsize=4)
def _keyed(key: str) -> "hmac.HMAC":
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def user_hash(user_id: str | None) -> str:
    if not user_id:
        return ""
    # A copy of the keyed state, not hmac.digest(): that one-shot call releases the GIL
    # whatever the length, and under gunicorn's threads each release waited for a busy
    # sibling thread (up to the 5 ms switch interval): 150 us a call instead of 1, a tenth
    # of a batch's wall time in a worker (bench/RESULTS.md, "fourth round"). Copying the
    # state also skips deriving the key's pads for every id.
    keyed = _keyed(hot_settings.FLYWHEEL_USER_HASH_KEY).copy()
    keyed.update(user_id.encode())
    return keyed.hexdigest()


def _dumps(value: Any) -> str:
    try:
        # The same text as json.dumps below for strings; numbers may be spelled otherwise
        # (1e16 for 1e+16), which jsonb does not keep anyway. About five times faster.
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()
    except orjson.JSONEncodeError:  # an integer past 64 bits
        return json.dumps(value, separators=(",", ":"), ensure_ascii=False, sort_keys=True)


def _aware(value: datetime | None, now: datetime) -> datetime:
    if value is None:
        return now
    return value if value.tzinfo else value.replace(tzinfo=UTC)


@dataclass
class InteractionRow:
    event_id: str
    occurred_at: datetime
    model: str
    task_type: str
    messages: str  # JSON
    response: str
    usage: str  # JSON
    latency_ms: int | None
    user_hash: str
    session_id: str
    segment: str
    metadata: str  # JSON
    pii: str  # JSON


@dataclass
class FeedbackRow:
    event_id: str
    interaction_event_id: str
    kind: str
    rating: int | None
    comment: str
    final_text: str | None
    occurred_at: datetime
    user_hash: str
    metadata: str
    pii: str


def _redact_messages(messages: list) -> tuple[list[dict], dict[str, int]]:
    out, counts = [], []
    for message in messages:
        text, found = pii.redact(message.content)
        if found:
            counts.append(found)
        item = {"role": message.role, "content": text}
        if message.name:
            item["name"], found = pii.redact(message.name)
            if found:
                counts.append(found)
        out.append(item)
    return out, pii.merge_counts(*counts)


def prepare_interaction(item: InteractionIn, *, now: datetime) -> InteractionRow:
    messages, found_messages = _redact_messages(item.messages)
    response, found_response = pii.redact(item.response)
    metadata, found_metadata = redact_json(item.metadata)
    # vars(): iterating a pydantic model builds a list of pairs first.
    usage = {k: v for k, v in vars(item.usage).items() if v is not None} if item.usage else {}
    return InteractionRow(
        event_id=item.event_id,
        occurred_at=_aware(item.occurred_at, now),
        model=item.model,
        task_type=item.task_type,
        messages=_dumps(messages),
        response=response,
        usage=_dumps(usage),
        latency_ms=item.latency_ms,
        user_hash=user_hash(item.user_id),
        session_id=item.session_id,
        segment=item.segment,
        metadata=_dumps(metadata),
        pii=_dumps(pii.merge_counts(found_messages, found_response, found_metadata)),
    )


def prepare_feedback(item: FeedbackIn, *, now: datetime) -> FeedbackRow:
    rating = item.value if item.kind == FeedbackKind.RATING else None
    comment, found_comment = "", {}
    if isinstance(item.value, str):
        comment, found_comment = pii.redact(item.value)
    final_text, found_final = (None, {})
    if item.final_text is not None:
        final_text, found_final = pii.redact(item.final_text)
    metadata, found_metadata = redact_json(item.metadata)
    return FeedbackRow(
        event_id=item.event_id,
        interaction_event_id=item.interaction_event_id,
        kind=item.kind,
        rating=rating,
        comment=comment,
        final_text=final_text,
        occurred_at=_aware(item.occurred_at, now),
        user_hash=user_hash(item.user_id),
        metadata=_dumps(metadata),
        pii=_dumps(pii.merge_counts(found_comment, found_final, found_metadata)),
    )


def edit_event_id(item: EditIn) -> str:
    """Without a client event id, the same content sent twice is one event."""
    if item.event_id:
        return item.event_id
    digest = hashlib.sha256(
        _dumps([item.prompt, item.original_llm_output, item.final_user_edit, item.model]).encode()
    ).hexdigest()
    return f"edit-{digest[:40]}"


def edit_parts(item: EditIn) -> tuple[InteractionIn, FeedbackIn]:
    """The interaction and the `edited` feedback an edit stands for. Built without validating
    again: EditIn holds each field to the rule the other schema has for it (or a stricter
    one), which `tests/curation/test_edit_parts.py` checks."""
    event_id = edit_event_id(item)
    interaction = InteractionIn.model_construct(
        event_id=event_id,
        occurred_at=item.occurred_at,
        model=item.model,
        task_type=item.task_type,
        messages=[Message.model_construct(role="user", content=item.prompt, name=None)],
        response=item.original_llm_output,
        usage=None,
        latency_ms=None,
        user_id=item.user_id,
        session_id="",
        segment="",
        metadata=item.metadata,
    )
    feedback = FeedbackIn.model_construct(
        event_id=event_id,
        interaction_event_id=event_id,
        kind=FeedbackKind.EDITED.value,
        value=None,
        final_text=item.final_user_edit,
        occurred_at=item.occurred_at,
        user_id=item.user_id,
        metadata={},
    )
    return interaction, feedback


def prepare_edit(item: EditIn, *, now: datetime) -> tuple[InteractionRow, FeedbackRow]:
    interaction, feedback = edit_parts(item)
    return prepare_interaction(interaction, now=now), prepare_feedback(feedback, now=now)
