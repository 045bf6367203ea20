"""GET /api/v1/metrics against known data put in through the ingest API, the curation
pipeline, the review services, a freeze and a registered model: every figure of the
answer is checked, with the clock fixed."""

import pytest
import time_machine
from django.contrib.auth.models import User

from curation.models import Candidate
from curation.services import api_token_create
from review.models import ReviewItem
from tests.support.api import ApiClient
from tests.support.metrics import ASKED, CURATED, D18, D19, D20
from training.metrics.api import HAS_NUL, NO_NUL
from training.metrics.selectors import _gate, reviewer_pseudonym
from training.models import ModelVersion

pytestmark = pytest.mark.django_db


def empty(day: str) -> dict:
    return {
        "date": day,
        "interactions": 0,
        "with_feedback": 0,
        "feedback": {},
        "edits": 0,
        "candidates": {},
        "passed": 0,
        "failed": {},
        "held": 0,
        "queued": 0,
        "reviews": 0,
        "reviews_by": {},
        "approved": 0,
        "rejected": 0,
        "adjudicated": 0,
        "adjudication": 0,
        "gold": 0,
        "versions": 0,
        "lag": {},
        "lag_p50_s": None,
        "lag_p95_s": None,
        "alpha": None,
    }


@pytest.fixture
def metrics_api(api):
    # The cross-source principal: this file checks every figure of every source.
    _, raw = api_token_create(
        source_name="shop-assistant", name="dash", scopes=["metrics", "all_sources"]
    )
    return ApiClient(raw)


def test_every_figure_matches_the_data_put_in(metrics_api, loop):
    candidates = list(Candidate.objects.all())
    by_kind, failed = {}, {}
    for c in candidates:
        by_kind[c.kind] = by_kind.get(c.kind, 0) + 1
        if c.status == "failed":
            failed[c.failed_filter] = failed.get(c.failed_filter, 0) + 1
    passed = sum(c.status == "passed" for c in candidates)
    held = sum(c.status == "held" for c in candidates)
    items = list(ReviewItem.objects.select_related("candidate"))
    still_queued = [i for i in items if i.status == "queued"]
    depth = {}
    for item in still_queued:
        depth[item.candidate.kind] = depth.get(item.candidate.kind, 0) + 1
    assert len(candidates) == 3 and len(items) >= 2

    days = [empty(D18), empty(D19), empty(D20)]
    days[0].update(interactions=3, with_feedback=2, feedback={"thumbs_up": 1})
    days[1].update(
        interactions=1,
        with_feedback=1,
        feedback={"edited": 1, "thumbs_down": 1},
        edits=1,
        candidates=by_kind,
        passed=passed,
        failed=failed,
        held=held,
        queued=len(items),
        lag={"30": 4},  # 20 s after ingest: the bucket up to 30 s
        lag_p50_s=30.0,
        lag_p95_s=30.0,
    )
    days[2].update(
        reviews=2,
        reviews_by={reviewer_pseudonym(User.objects.get(username=loop.username).pk): 2},
        approved=1,
        rejected=1,
        gold=1,
        versions=1,
    )
    decided = passed + sum(failed.values())
    totals = {
        "interactions": 4,
        "with_feedback": 3,
        "feedback": {"thumbs_up": 1, "edited": 1, "thumbs_down": 1},
        "edits": 1,
        "candidates": by_kind,
        "passed": passed,
        "failed": failed,
        "held": held,
        "queued": len(items),
        "reviews": 2,
        "reviews_by": {reviewer_pseudonym(User.objects.get(username=loop.username).pk): 2},
        "approved": 1,
        "rejected": 1,
        "adjudicated": 0,
        "adjudication": 0,
        "gold": 1,
        "versions": 1,
        "lag": {"30": 4},
        "pass_rate": passed / decided if decided else None,
        "feedback_rate": 0.75,
        "approval_rate": 0.5,
        "lag_p50_s": 30.0,
        "lag_p95_s": 30.0,
        "alpha": None,  # one review per item: nothing to compare
    }
    oldest_age = (ASKED - CURATED).total_seconds()
    causes = []
    if totals["pass_rate"] is not None and totals["pass_rate"] < 0.2:
        causes.append(f"filter too strict: pass rate {totals['pass_rate']:.0%} is under 20%")
    # A week ago the queue was empty: every item entered this week, but a few items from 0
    # are not a backlog (FLYWHEEL_HEALTH_QUEUE_GROWTH_MIN_ITEMS).
    assert len(still_queued) < 25

    with time_machine.travel(ASKED, tick=False):
        answer = metrics_api.get("/api/v1/metrics?days=3")
    assert answer.status_code == 200, answer.content
    assert answer.json() == {
        "window": {
            "days": 3,
            "start": D18,
            "end": D20,
            "source": "",
            "task_type": "",
            "model": "",
        },
        "days": days,
        "totals": totals,
        "queue": {
            "depth": depth,
            "total": len(still_queued),
            "oldest_age_s": oldest_age if still_queued else None,
            "adjudication": 0,
        },
        "cycles": [
            {
                "dataset_version": "support v1",
                "gold": 1,
                "model": "support-v1",
                "status": "promoted",
                "gate_metric": "normalised_accuracy",
                "candidate": 0.8,
                "baseline": 0.75,
                "delta": 0.05,
                "delta_ci": [0.01, 0.09],
                "n": 60,
                "test": "paired bootstrap",
                "passed": True,
                "promoted_at": "2026-11-20T11:00:00+00:00",
                # The one pair was ingested at T0 and shipped at the promotion: 25 hours.
                "time_to_improvement_s": 25 * 3600.0,
            }
        ],
        "training": [{"dataset": "support", "latest_version": 1, "new_gold": 0, "threshold": 5000}],
        "health": {"verdict": "stalling" if causes else "healthy", "causes": causes},
    }


def test_filters_narrow_the_days_to_one_task_type_model_and_source(metrics_api, loop):
    with time_machine.travel(ASKED, tick=False):
        search = metrics_api.get("/api/v1/metrics?days=3&task_type=search&model=bot-b").json()
        other = metrics_api.get("/api/v1/metrics?days=3&source=elsewhere").json()
    assert [d["interactions"] for d in search["days"]] == [0, 1, 0]
    assert search["totals"]["feedback"] == {"thumbs_down": 1}
    assert search["window"]["task_type"] == "search"
    assert sum(d["interactions"] for d in other["days"]) == 0
    assert other["queue"]["total"] == 0


@pytest.mark.parametrize(
    "query",
    [
        "days=0",
        "days=367",
        "days=x",
        "source=" + "s" * 101,
        "model=" + "m" * 201,
        "task_type=a%00b",
    ],
)
def test_out_of_bounds_parameters_are_a_422(metrics_api, query):
    answer = metrics_api.get(f"/api/v1/metrics?{query}")
    assert answer.status_code == 422
    assert answer.json()["error"] == "invalid"


@pytest.mark.parametrize("name", ["source", "task_type", "model"])
def test_a_nul_in_a_name_is_refused_in_words_not_with_the_regex(metrics_api, name):
    answer = metrics_api.get(f"/api/v1/metrics?{name}=a%00b")
    assert answer.status_code == 422
    (error,) = answer.json()["errors"]
    assert error["message"] == HAS_NUL
    assert "^[" not in answer.content.decode()


def test_only_a_token_with_the_metrics_scope_may_read(api, metrics_api):
    assert api.get("/api/v1/metrics").status_code == 403  # an ingest token
    assert ApiClient(None).get("/api/v1/metrics").status_code == 401
    assert metrics_api.get("/api/v1/metrics?days=1").status_code == 200


def test_the_schema_documents_the_metrics_endpoint(client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/metrics"]["get"]
    params = {p["name"]: p["schema"] for p in operation["parameters"]}
    assert params["days"]["maximum"] == 366 and params["days"]["minimum"] == 1
    assert params["source"]["maxLength"] == 100
    assert params["model"]["pattern"] == NO_NUL  # the rule, for generated clients
    ref = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    out = schema["components"]["schemas"][ref.rsplit("/", 1)[1]]
    assert {"days", "queue", "cycles", "health"} <= set(out["properties"])
    day = schema["components"]["schemas"]["DayOut"]["properties"]
    assert day["interactions"]["type"] == "integer"
    assert day["feedback"]["additionalProperties"]["type"] == "integer"


def test_the_gate_figures_fall_back_to_what_older_gates_stored():
    older = ModelVersion(
        metrics={"normalised_accuracy": 0.7},
        baseline_metrics={"normalised_accuracy": 0.6},
        gate_metric="normalised_accuracy",
        gate_passed=True,
    )
    figures = _gate(older)
    assert figures["gate_metric"] == "normalised_accuracy"
    assert figures["delta"] == pytest.approx(0.1)
    assert figures["delta_ci"] == [None, None] and figures["n"] is None
