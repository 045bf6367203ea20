"""Property: whatever JSON value lands in whatever field of an ingest body, the
server answers without a 5xx, a 4xx writes nothing, a rejected batch item writes
nothing, and what is stored can be read back by Python.

Each example puts one arbitrary JSON value (NaN, huge and boolean numbers, lone
surrogates and NUL included) at one field path of a valid body, or deletes it.
Examples are derandomised and bounded so `make test` stays quick and repeatable."""

import itertools
import json
from datetime import UTC, datetime

import pytest
import time_machine
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.models import Feedback, Interaction
from tests.support import factories

pytestmark = pytest.mark.django_db

NOW = datetime(2026, 11, 15, 12, 0, tzinfo=UTC)
EXAMPLES = 50
_ids = itertools.count(1)

EDGE_VALUES = [
    float("nan"),
    float("inf"),
    float("-inf"),
    {"deep": [float("nan")]},
    2**31 - 1,
    2**31,
    -(2**31) - 1,
    10**400,
    -1,
    0,
    True,
    4.0,
    "",
    "   ",
    "nul\x00byte",
    "lone \ud800 surrogate",
    "0001-01-01T00:00:00+14:00",
    "9999-12-31T23:59:59-14:00",
    "2024-01-01T00:00:00+16:00",
    "2024-01-01T00:00:00+23:59",
    "alice@example.com 4111111111111111",
]
scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.text(max_size=20)
    | st.sampled_from(EDGE_VALUES)
)
json_values = st.recursive(
    scalars,
    lambda inner: (
        st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=10,
)
DELETE = object()
# Half of the values come from the edges, which plain generation rarely reaches.
replacements = st.sampled_from([*EDGE_VALUES, DELETE]) | json_values


def mutations(kind: str, max_size: int = 3):
    return st.lists(st.tuples(st.sampled_from(PATHS[kind]), replacements), max_size=max_size)


PATHS = {
    "interaction": [
        ("event_id",),
        ("occurred_at",),
        ("model",),
        ("task_type",),
        ("messages",),
        ("messages", 0),
        ("messages", 0, "role"),
        ("messages", 0, "content"),
        ("messages", 0, "name"),
        ("response",),
        ("usage",),
        ("usage", "prompt_tokens"),
        ("usage", "total_tokens"),
        ("latency_ms",),
        ("user_id",),
        ("session_id",),
        ("segment",),
        ("metadata",),
        ("metadata", "locale"),
        ("metadata", "nested", "deep"),
        ("extra_field",),
    ],
    "feedback": [
        ("event_id",),
        ("interaction_event_id",),
        ("kind",),
        ("value",),
        ("final_text",),
        ("occurred_at",),
        ("user_id",),
        ("metadata",),
        ("metadata", "k"),
    ],
    "edit": [
        ("prompt",),
        ("original_llm_output",),
        ("final_user_edit",),
        ("event_id",),
        ("model",),
        ("task_type",),
        ("occurred_at",),
        ("user_id",),
        ("metadata",),
        ("metadata", "k", 0),
    ],
}


def fresh(kind: str) -> dict:
    n = next(_ids)
    if kind == "interaction":
        return factories.interaction(f"fz-i{n}", metadata={"locale": "en", "nested": {}})
    if kind == "feedback":
        kinds = ["rating", "comment", "edited", "thumbs_up"]
        body = factories.feedback(f"fz-i{n}", f"fz-f{n}", kind=kinds[n % 4])
        body.update(value=4 if n % 4 == 0 else "fine", final_text="better text")
        return body
    return factories.edit(event_id=f"fz-e{n}", metadata={"k": [1]})


def mutate(body: dict, path: tuple, value) -> dict:
    node = body
    for part in path[:-1]:
        if isinstance(node, dict):
            node = node.setdefault(part, {})
        elif isinstance(node, list) and isinstance(part, int) and part < len(node):
            node = node[part]
        else:
            return body
    last = path[-1]
    if value is DELETE and isinstance(node, dict):
        node.pop(last, None)
    elif value is not DELETE and (
        isinstance(node, dict)
        or (isinstance(node, list) and isinstance(last, int) and last < len(node))
    ):
        node[last] = value
    return body


def counts() -> tuple[int, int]:
    return Interaction.objects.count(), Feedback.objects.count()


def readable() -> None:
    """Every stored row loads into Python (a year-10000 timestamp would not)."""
    list(Interaction.objects.values_list("occurred_at", "metadata", "usage", "latency_ms"))
    list(Feedback.objects.values_list("occurred_at", "metadata", "rating"))


@pytest.fixture
def fuzz_api(api, settings):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    with time_machine.travel(NOW, tick=False):
        yield api


FUZZ = settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
ENDPOINT = {
    "interaction": "/api/v1/interactions",
    "feedback": "/api/v1/feedback",
    "edit": "/api/v1/edits",
}


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["interaction", "feedback", "edit"])
@FUZZ
@given(data=st.data())
def test_one_item_endpoints_never_fail_and_a_refusal_writes_nothing(fuzz_api, kind, data):
    body = fresh(kind)
    for path, value in data.draw(mutations(kind).filter(bool), label="mutations"):
        mutate(body, path, value)
    before = counts()
    response = fuzz_api.post(ENDPOINT[kind], raw=json.dumps(body))
    assert response.status_code < 500, response.content
    after = counts()
    if response.status_code >= 400:
        assert response.status_code in (400, 422), response.content
        assert after == before
    elif response.status_code == 201:
        expected = {"interaction": (1, 0), "feedback": (0, 1), "edit": (1, 1)}[kind]
        assert (after[0] - before[0], after[1] - before[1]) in (expected, (0, 1))
    else:
        assert after == before  # a duplicate
    readable()


SECTIONS = {"interactions": "interaction", "feedback": "feedback", "edits": "edit"}


@pytest.mark.slow
@FUZZ
@given(data=st.data())
def test_a_batch_never_fails_and_its_rejected_items_write_nothing(fuzz_api, data):
    body = {section: [fresh(kind), fresh(kind)] for section, kind in SECTIONS.items()}
    for section, kind in SECTIONS.items():
        for item in body[section]:
            for path, value in data.draw(mutations(kind, max_size=2), label=section):
                mutate(item, path, value)
    if data.draw(st.integers(0, 9), label="top") == 0:
        key = data.draw(st.sampled_from([*SECTIONS, "other"]), label="key")
        mutate(body, (key,), data.draw(replacements, label="value"))
    sent = json.loads(json.dumps(body))
    before = counts()
    response = fuzz_api.post("/api/v1/batch", raw=json.dumps(body))
    assert response.status_code < 500, response.content
    after = counts()
    if response.status_code != 200:
        assert response.status_code in (400, 422), response.content
        assert after == before
        return
    created = dict.fromkeys(SECTIONS.values(), 0)
    for result in response.json()["results"]:
        if result["status"] == "created":
            created[result["kind"]] += 1
        if result["status"] != "rejected":
            continue
        section = next(s for s, k in SECTIONS.items() if k == result["kind"])
        item = sent[section][result["index"]]
        event_id = item.get("event_id") if isinstance(item, dict) else None
        if isinstance(event_id, str) and event_id.startswith("fz-"):
            assert not Interaction.objects.filter(event_id=event_id).exists()
            assert not Feedback.objects.filter(event_id=event_id).exists()
    new_interactions, new_feedback = after[0] - before[0], after[1] - before[1]
    assert new_feedback == created["feedback"] + created["edit"]
    assert created["interaction"] <= new_interactions <= created["interaction"] + created["edit"]
    readable()
