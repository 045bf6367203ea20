"""The direct write path copies rows in COPY's binary format (`ingest_sql.rows_copy`), with
JSON text passed to jsonb as its binary form; the staging path copies text. Whatever the
content (backslashes, tabs, newlines, emoji, JSON escapes, the integer and date bounds), the
two paths must store the same values. Each example sends the same items as two sources: one
batch of new events (direct), and one that meets an event stored already (staging)."""

import uuid
from datetime import UTC, datetime

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.models import Feedback, Interaction, Source
from curation.schemas import INT4_MAX
from curation.services import batch_ingest

pytestmark = pytest.mark.django_db

texts = st.text(
    st.characters(exclude_categories=("Cs",), exclude_characters="\x00"), min_size=1, max_size=80
).filter(str.strip)
json_leaves = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    texts,
)
metadata = st.dictionaries(texts, st.recursive(json_leaves, st.lists, max_leaves=6), max_size=4)
instants = st.datetimes(
    min_value=datetime(2000, 1, 2), max_value=datetime(2026, 1, 1), timezones=st.just(UTC)
)

INTERACTION_FIELDS = (
    "occurred_at", "model", "task_type", "messages", "response", "usage", "latency_ms",
    "user_hash", "session_id", "segment", "metadata", "pii", "curation_state",
)  # fmt: skip
FEEDBACK_FIELDS = (
    "kind", "rating", "comment", "final_text", "occurred_at", "user_hash", "metadata", "pii",
    "interaction_event_id",
)  # fmt: skip


@st.composite
def batches(draw):
    interaction = {
        "occurred_at": draw(instants).isoformat(),
        "model": draw(texts),
        "task_type": draw(texts),
        "messages": [{"role": "user", "content": draw(texts)}],
        "response": draw(texts),
        "usage": {"prompt_tokens": draw(st.integers(0, INT4_MAX))},
        "latency_ms": draw(st.one_of(st.none(), st.integers(0, INT4_MAX))),
        "user_id": draw(st.one_of(st.none(), texts)),
        "session_id": draw(texts),
        "segment": draw(texts),
        "metadata": draw(metadata),
    }
    when = draw(instants).isoformat()
    feedback = [
        {"kind": "rating", "value": draw(st.integers(1, 5)), "occurred_at": when},
        {"kind": "comment", "value": draw(texts), "occurred_at": when},
        {
            "kind": "edited",
            "final_text": draw(texts),
            "metadata": draw(metadata),
            "occurred_at": when,
        },
    ]
    return interaction, feedback


def _send(source: Source, interaction: dict, feedback: list[dict], *, staged: bool) -> None:
    key = uuid.uuid4().hex
    items = [{**interaction, "event_id": f"{key}-i{n}"} for n in range(2)]
    if staged:
        # An event stored already: the batch below cannot be copied straight in.
        batch_ingest(source=source, interactions=[items[0]], feedback=[], edits=[])
    result = batch_ingest(
        source=source,
        interactions=items,
        feedback=[
            {**f, "event_id": f"{key}-f{n}", "interaction_event_id": items[1]["event_id"]}
            for n, f in enumerate(feedback)
        ],
        edits=[],
    )
    assert result["rejected"] == 0, result


def _stored(source: Source) -> tuple[list, list]:
    interactions = Interaction.objects.filter(source=source).order_by("event_id")
    feedback = Feedback.objects.filter(source=source).order_by("event_id")
    return (
        [
            ([getattr(row, name) for name in INTERACTION_FIELDS], row.event_id[-2:])
            for row in interactions
        ],
        [
            (
                [getattr(row, name) for name in FEEDBACK_FIELDS[:-1]],
                row.event_id[-2:],
                row.interaction.event_id[-2:],
            )
            for row in feedback
        ],
    )


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(batch=batches())
def test_binary_copy_stores_what_the_staging_path_stores(batch):
    interaction, feedback = batch
    direct, staged = (Source.objects.create(name=uuid.uuid4().hex) for _ in range(2))
    _send(direct, interaction, feedback, staged=False)
    _send(staged, interaction, feedback, staged=True)
    assert _stored(direct) == _stored(staged)
    row = Interaction.objects.filter(source=direct).first()
    assert row.response == interaction["response"] or row.pii
    assert row.latency_ms == interaction["latency_ms"]
    assert row.occurred_at == datetime.fromisoformat(interaction["occurred_at"])
