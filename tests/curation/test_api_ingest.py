"""The ingest endpoints: happy paths, idempotency, linking, and every error."""

import json
import threading

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.ingest_rows import user_hash
from curation.models import Feedback, Interaction
from curation.schemas import BAD_CHARACTERS, FINAL_TEXT_REQUIRED, RATING_REQUIRED, BatchResult
from curation.services import BATCH_TOO_LARGE
from flywheel_site.api import INVALID, RATE_LIMITED, UNAUTHORIZED
from flywheel_site.middleware import BODY_TOO_LARGE
from tests.support import factories

pytestmark = pytest.mark.django_db


def test_it_stores_an_interaction(api):
    response = api.post("/api/v1/interactions", factories.interaction("e1"))
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["status"] == "created"
    row = Interaction.objects.get(pk=body["id"])
    assert row.event_id == "e1"
    assert row.messages[1]["role"] == "user"
    assert row.usage == {"prompt_tokens": 31, "completion_tokens": 17, "total_tokens": 48}
    assert row.latency_ms == 412
    assert row.curation_state == "pending"
    assert row.source.name == "shop-assistant"


def test_it_stores_user_ids_only_as_a_keyed_hash(api):
    api.post("/api/v1/interactions", factories.interaction("e1", user_id="alice@example.com"))
    row = Interaction.objects.get(event_id="e1")
    assert row.user_hash == user_hash("alice@example.com")
    assert len(row.user_hash) == 64
    assert "alice" not in json.dumps(Interaction.objects.values().get(), default=str)


def test_it_answers_duplicate_for_a_replayed_interaction(api):
    first = api.post("/api/v1/interactions", factories.interaction("e1"))
    second = api.post("/api/v1/interactions", factories.interaction("e1", response="changed"))
    assert second.status_code == 200
    assert second.json() == {
        "status": "duplicate",
        "id": first.json()["id"],
        "feedback_id": None,
        "linked": None,
    }
    assert Interaction.objects.get().response != "changed"


def test_it_stores_feedback_linked_to_its_interaction(api):
    api.post("/api/v1/interactions", factories.interaction("e1"))
    response = api.post("/api/v1/feedback", factories.feedback("e1", "f1", kind="rating", value=4))
    assert response.status_code == 201
    assert response.json()["linked"] is True
    fb = Feedback.objects.get(event_id="f1")
    assert fb.interaction.event_id == "e1"
    assert fb.rating == 4


def test_it_keeps_feedback_that_comes_before_its_interaction_and_links_it_later(api):
    response = api.post("/api/v1/feedback", factories.feedback("later", "f1"))
    assert response.status_code == 201
    assert response.json()["linked"] is False
    assert Feedback.objects.get().interaction is None

    api.post("/api/v1/interactions", factories.interaction("later"))
    fb = Feedback.objects.get()
    assert fb.interaction is not None
    assert fb.interaction.event_id == "later"


def test_one_interaction_is_one_statement_that_links_its_feedback(api):
    """The single route writes the interaction, links the feedback that came first and
    counts both in the rollup in one statement (here inside the test's transaction;
    test_ingest_one_statement.py runs it in a transaction of its own)."""
    api.post("/api/v1/feedback", factories.feedback("ahead", "f1", kind="thumbs_up"))
    with CaptureQueriesContext(connection) as queries:
        response = api.post("/api/v1/interactions", factories.interaction("ahead"))
    assert response.status_code == 201, response.content
    writes = [q["sql"] for q in queries if "curation_interaction" in q["sql"]]
    assert len(writes) == 1, writes
    assert "UPDATE curation_feedback" in writes[0]
    assert Feedback.objects.get().interaction_id == response.json()["id"]
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT metric, key, sum(n) FROM curation_curationmetricday GROUP BY 1, 2 ORDER BY 1"
        )
        assert cursor.fetchall() == [
            ("feedback", "thumbs_up", 1),
            ("interactions", "", 1),
            ("with_feedback", "", 1),
        ]


def test_it_links_feedback_and_interaction_sent_in_one_batch_in_either_order(api):
    body = {
        "feedback": [factories.feedback("b1", "fb-b1", kind="thumbs_down")],
        "interactions": [factories.interaction("b1")],
    }
    response = api.post("/api/v1/batch", body)
    assert response.status_code == 200
    assert Feedback.objects.get().interaction.event_id == "b1"


def test_it_stores_an_edit_as_interaction_and_edited_feedback(api):
    response = api.post("/api/v1/edits", factories.edit(event_id="ed1"))
    assert response.status_code == 201
    body = response.json()
    interaction = Interaction.objects.get(pk=body["id"])
    fb = Feedback.objects.get(pk=body["feedback_id"])
    assert interaction.event_id == fb.event_id == "ed1"
    assert interaction.messages[0]["role"] == "user"
    assert interaction.messages[0]["content"].startswith("Summarise our refund policy")
    assert interaction.response.startswith("Refunds are possible within 30 days if")
    assert fb.kind == "edited"
    assert fb.interaction_id == interaction.pk
    assert fb.final_text.startswith("Refunds are possible within 30 days of purchase")


def test_an_edit_without_event_id_is_one_event_when_sent_twice(api):
    payload = factories.edit()
    first = api.post("/api/v1/edits", payload)
    second = api.post("/api/v1/edits", payload)
    assert first.status_code == 201
    assert second.status_code == 200
    assert second.json()["status"] == "duplicate"
    assert Interaction.objects.count() == 1
    assert Feedback.objects.count() == 1


def test_a_batch_reports_a_result_per_item_and_stores_the_good_ones(api):
    body = {
        "interactions": [factories.interaction("i1"), {"event_id": "bad"}],
        "feedback": [factories.feedback("i1", "f1", kind="edited")],
        "edits": [factories.edit(event_id="x1")],
    }
    response = api.post("/api/v1/batch", body)
    assert response.status_code == 200
    data = response.json()
    assert (data["created"], data["duplicate"], data["rejected"]) == (2, 0, 2)
    by_kind = {(r["kind"], r["index"]): r for r in data["results"]}
    assert by_kind[("interaction", 0)]["status"] == "created"
    bad = by_kind[("interaction", 1)]
    assert bad["status"] == "rejected"
    fields = {e["field"] for e in bad["errors"]}
    assert {"interactions.1.messages", "interactions.1.response"} <= fields
    assert by_kind[("feedback", 0)]["status"] == "rejected"
    assert by_kind[("feedback", 0)]["errors"][0]["message"] == FINAL_TEXT_REQUIRED
    assert by_kind[("edit", 0)]["status"] == "created"
    assert Interaction.objects.count() == 2
    assert Feedback.objects.count() == 1


def test_the_batch_answer_is_shaped_as_its_schema_says(api):
    """The route renders the service's results as they are: they carry every field of
    BatchResult, as validating them through the schema would."""
    body = {
        "interactions": [factories.interaction("a"), {"event_id": ""}],
        "feedback": [factories.feedback("a", "fa", kind="rating", value=5)],
        "edits": [factories.edit(event_id="ed1")],
    }
    response = api.post("/api/v1/batch", body)
    assert response.status_code == 200, response.content
    assert response["Content-Type"] == "application/json; charset=utf-8"
    answer = response.json()
    assert answer == BatchResult.model_validate(answer).model_dump(mode="json")
    assert [r["status"] for r in answer["results"]] == ["created", "rejected", "created", "created"]
    assert answer["results"][3]["feedback_id"] == Feedback.objects.get(event_id="ed1").pk
    assert answer["results"][0]["feedback_id"] is None


def test_replaying_a_batch_answers_all_duplicate_and_writes_nothing(api):
    body = {
        "interactions": [factories.interaction(f"r{i}") for i in range(20)],
        "feedback": [factories.feedback(f"r{i}", f"rf{i}") for i in range(20)],
        "edits": [factories.edit(event_id=f"re{i}") for i in range(5)],
    }
    first = api.post("/api/v1/batch", body).json()
    assert first["created"] == 45
    counts = (Interaction.objects.count(), Feedback.objects.count())
    second = api.post("/api/v1/batch", body).json()
    assert second["created"] == 0
    assert second["duplicate"] == 45
    assert {r["status"] for r in second["results"]} == {"duplicate"}
    first_ids = [r["id"] for r in first["results"]]
    assert [r["id"] for r in second["results"]] == first_ids
    assert (Interaction.objects.count(), Feedback.objects.count()) == counts


def test_a_repeated_event_id_inside_one_batch_is_stored_once(api):
    body = {"interactions": [factories.interaction("same"), factories.interaction("same")]}
    data = api.post("/api/v1/batch", body).json()
    assert [r["status"] for r in data["results"]] == ["created", "duplicate"]
    assert data["results"][0]["id"] == data["results"][1]["id"]
    assert Interaction.objects.count() == 1


@pytest.mark.django_db(transaction=True)
def test_the_same_batch_posted_concurrently_is_stored_once(ingest_token):
    from tests.support.api import ApiClient

    _, raw = ingest_token
    body = {
        "interactions": [factories.interaction(f"c{i}") for i in range(200)],
        "feedback": [factories.feedback(f"c{i}", f"cf{i}") for i in range(200)],
    }
    # Opposite orders make the deadlock case likely if inserts were unordered.
    reversed_body = {k: list(reversed(v)) for k, v in body.items()}
    results, errors = [], []
    barrier = threading.Barrier(4)

    def send(payload):
        try:
            barrier.wait()
            response = ApiClient(raw).post("/api/v1/batch", payload)
            results.append(response)
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connection.close()

    threads = [
        threading.Thread(target=send, args=(b,)) for b in (body, reversed_body, body, reversed_body)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [r.status_code for r in results] == [200, 200, 200, 200]
    created = sum(r.json()["created"] for r in results)
    assert created == 400
    assert Interaction.objects.count() == 200
    assert Feedback.objects.count() == 200
    assert Feedback.objects.filter(interaction__isnull=True).count() == 0


# --- errors -------------------------------------------------------------------


def test_malformed_json_is_a_400_with_a_json_body(api):
    response = api.post("/api/v1/interactions", raw=b'{"event_id": "x",')
    assert response.status_code == 400
    assert response.json()["error"] == "malformed"
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"messages": []}, "messages"),
        ({"messages": [{"role": "robot", "content": "hi"}]}, "messages.0.role"),
        ({"latency_ms": -5}, "latency_ms"),
        ({"event_id": ""}, "event_id"),
        ({"usage": {"prompt_tokens": "many"}}, "usage.prompt_tokens"),
        ({"respones": "typo"}, "respones"),
        ({"metadata": {"blob": "x" * 20000}}, "metadata"),
        ({"response": "nul\x00byte"}, "response"),
        ({"occurred_at": "yesterday"}, "occurred_at"),
    ],
)
def test_a_schema_violation_is_a_422_naming_the_field(api, payload, field):
    response = api.post("/api/v1/interactions", {**factories.interaction("v1"), **payload})
    assert response.status_code == 422, response.content
    body = response.json()
    assert body["error"] == "invalid"
    assert body["message"] == INVALID
    assert field in {e["field"] for e in body["errors"]}
    assert Interaction.objects.count() == 0


def test_error_bodies_never_echo_the_record(api):
    secret = "very-secret-text-" * 10
    response = api.post(
        "/api/v1/interactions", factories.interaction("v1", latency_ms="x", response=secret)
    )
    assert response.status_code == 422
    assert "very-secret-text" not in response.content.decode()


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        ({"kind": "rating", "value": 9}, RATING_REQUIRED),
        ({"kind": "rating"}, RATING_REQUIRED),
        ({"kind": "edited"}, FINAL_TEXT_REQUIRED),
        ({"kind": "corrected", "final_text": "   "}, FINAL_TEXT_REQUIRED),
        ({"kind": "thumbs_up", "value": "\ud800"}, BAD_CHARACTERS),
    ],
)
def test_feedback_rules_by_kind_are_422s(api, payload, message):
    response = api.post("/api/v1/feedback", factories.feedback("x", **payload))
    assert response.status_code == 422
    assert message in {e["message"] for e in response.json()["errors"]}


def test_an_unknown_feedback_kind_is_a_422(api):
    response = api.post("/api/v1/feedback", factories.feedback("x", kind="loved_it"))
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "kind"


def test_a_body_over_the_limit_is_a_413_and_nothing_is_written(api, settings):
    settings.FLYWHEEL_INGEST_MAX_BODY_BYTES = 2048
    response = api.post("/api/v1/interactions", factories.interaction("big", response="y" * 4000))
    assert response.status_code == 413
    assert response.json()["message"] == BODY_TOO_LARGE.format(limit=2048)
    assert Interaction.objects.count() == 0


def test_a_batch_over_the_item_limit_is_a_422(api, settings):
    settings.FLYWHEEL_INGEST_MAX_BATCH = 3
    body = {"interactions": [factories.interaction() for _ in range(4)]}
    response = api.post("/api/v1/batch", body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["message"] == BATCH_TOO_LARGE.format(limit=3, count=4)
    assert Interaction.objects.count() == 0


@pytest.mark.parametrize("token", [None, "fw_not-a-real-token", "Basic abc"])
def test_a_missing_or_bad_token_is_a_401(api, token):
    response = api.post("/api/v1/interactions", factories.interaction(), token=token)
    assert response.status_code == 401
    assert response.json()["message"] == UNAUTHORIZED
    assert Interaction.objects.count() == 0


def test_a_token_without_the_ingest_scope_is_a_403_naming_the_scope(db):
    from curation.services import api_token_create
    from tests.support.api import ApiClient

    _, raw = api_token_create(source_name="s", name="export-only", scopes=["export"])
    response = ApiClient(raw).post("/api/v1/interactions", factories.interaction())
    assert response.status_code == 403
    assert response.json()["error"] == "forbidden"
    assert "lacks the `ingest` scope" in response.json()["message"]
    assert Interaction.objects.count() == 0


def test_a_trailing_slash_is_a_404_naming_the_path_it_probably_meant(api):
    response = api.post("/api/v1/edits/", factories.interaction())
    assert response.status_code == 404
    assert response.json()["message"] == "not found; did you mean /api/v1/edits?"
    assert api.get("/api/v1/nowhere/").json()["message"] == "not found"


@pytest.mark.parametrize("placeholder", ["...", "…", " - ", "??"])
def test_a_placeholder_edit_is_refused_and_nothing_is_stored(api, placeholder):
    body = {"prompt": "Summarise the refund policy", "original_llm_output": "Refunds vary.",
            "final_user_edit": placeholder}  # fmt: skip
    response = api.post("/api/v1/edits", body)
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "final_user_edit"
    assert "placeholder" in response.json()["errors"][0]["message"]
    assert Interaction.objects.count() == 0


def test_going_over_the_rate_limit_is_a_429_with_retry_after(api, settings):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 2
    codes = [
        api.post("/api/v1/interactions", factories.interaction()).status_code for _ in range(3)
    ]
    assert codes == [201, 201, 429]
    response = api.post("/api/v1/interactions", factories.interaction())
    assert response.status_code == 429
    retry_after = int(response["Retry-After"])
    assert 1 <= retry_after <= settings.FLYWHEEL_INGEST_RATE_WINDOW_S
    assert response.json()["message"] == RATE_LIMITED.format(seconds=retry_after)
    assert Interaction.objects.count() == 2


def test_the_openapi_schema_is_published(client):
    response = client.get("/api/v1/openapi.json")
    assert response.status_code == 200
    schema = response.json()
    assert {"/api/v1/interactions", "/api/v1/feedback", "/api/v1/edits", "/api/v1/batch"} <= set(
        schema["paths"]
    )
    assert "InteractionIn" in schema["components"]["schemas"]
