"""Batch ingest's two write paths: new events are copied straight into their tables;
a batch that meets an event stored already falls back to the staging table, whose
ON CONFLICT sorts the duplicates out. Both answer the same."""

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.models import Feedback, Interaction
from tests.support import factories

pytestmark = pytest.mark.django_db


def _staged(queries) -> bool:
    return any("_ingest_interaction" in q["sql"] for q in queries.captured_queries)


def test_a_batch_of_new_events_is_copied_without_the_staging_table(api):
    api.post("/api/v1/interactions", factories.interaction("old"))
    body = {
        "interactions": [factories.interaction(f"n{i}") for i in range(3)],
        "feedback": [
            factories.feedback("n2", "f-new", kind="thumbs_up"),
            factories.feedback("old", "f-old", kind="thumbs_down"),
            factories.feedback("later", "f-orphan", kind="thumbs_up"),
        ],
        "edits": [factories.edit(event_id="x1")],
    }
    with CaptureQueriesContext(connection) as queries:
        data = api.post("/api/v1/batch", body).json()
    assert not _staged(queries)
    assert (data["created"], data["duplicate"], data["rejected"]) == (7, 0, 0)
    ids = {(r["kind"], r["index"]): r for r in data["results"]}
    by_event = {row.event_id: row for row in Feedback.objects.all()}
    assert by_event["f-new"].interaction_id == ids[("interaction", 2)]["id"]
    assert by_event["f-old"].interaction == Interaction.objects.get(event_id="old")
    assert by_event["f-orphan"].interaction_id is None
    assert by_event["x1"].pk == ids[("edit", 0)]["feedback_id"]
    assert by_event["x1"].interaction_id == ids[("edit", 0)]["id"]
    for (kind, _), result in ids.items():
        if kind == "interaction":
            assert (
                Interaction.objects.get(pk=result["id"]).event_id
                == body["interactions"][result["index"]]["event_id"]
            )


def test_a_batch_meeting_a_stored_event_falls_back_and_stores_only_the_new_ones(api):
    first = api.post("/api/v1/batch", {"interactions": [factories.interaction("a")]}).json()
    body = {
        "interactions": [factories.interaction(e) for e in ("b", "a", "c")],
        "feedback": [factories.feedback("a", "fa"), factories.feedback("c", "fc")],
    }
    with CaptureQueriesContext(connection) as queries:
        data = api.post("/api/v1/batch", body).json()
    assert _staged(queries)
    statuses = [(r["kind"], r["status"]) for r in data["results"]]
    assert statuses == [
        ("interaction", "created"),
        ("interaction", "duplicate"),
        ("interaction", "created"),
        ("feedback", "created"),
        ("feedback", "created"),
    ]
    assert data["results"][1]["id"] == first["results"][0]["id"]
    assert Interaction.objects.count() == 3
    assert Feedback.objects.filter(interaction__isnull=False).count() == 2
