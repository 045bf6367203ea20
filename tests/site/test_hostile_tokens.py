"""A token reads its own source: the metrics API keeps a token of one source to that
source's figures unless it holds the all_sources scope, and never names a reviewer
(issue 18, row 3)."""

import pytest
import time_machine

from curation.services import api_token_create
from tests.support.api import ApiClient
from tests.support.metrics import ASKED, flywheel_loop

pytestmark = pytest.mark.django_db


def token(source: str, *scopes: str) -> ApiClient:
    _, raw = api_token_create(source_name=source, name="t", scopes=["metrics", *scopes])
    return ApiClient(raw)


@pytest.fixture
def loop(api, annotator, admin):
    """Traffic, reviews and a promoted model, all from the source shop-assistant."""
    return flywheel_loop(api, annotator, admin)


def read(client: ApiClient, query: str = ""):
    with time_machine.travel(ASKED, tick=False):
        return client.get(f"/api/v1/metrics?days=3{query}")


def test_a_token_of_another_source_sees_none_of_its_figures(loop):
    other = token("elsewhere")
    answer = read(other)
    assert answer.status_code == 200
    body = answer.json()
    assert body["window"]["source"] == "elsewhere"
    assert sum(d["interactions"] for d in body["days"]) == 0
    assert body["queue"]["total"] == 0
    assert body["cycles"] == [] and body["training"] == []


@pytest.mark.parametrize("asked", ["shop-assistant", "nope"])
def test_naming_another_source_is_a_403_that_changes_nothing(loop, asked):
    answer = read(token("elsewhere"), f"&source={asked}")
    assert answer.status_code == 403
    assert answer.json()["error"] == "forbidden"
    assert "reads only its own source (elsewhere)" in answer.json()["message"]


def test_a_token_reads_its_own_source_without_names(loop, annotator):
    body = read(token("shop-assistant")).json()
    assert sum(d["interactions"] for d in body["days"]) == 4
    reviewers = {name for d in body["days"] for name in d["reviews_by"]}
    assert len(reviewers) == 1 and next(iter(reviewers)).startswith("reviewer-")
    assert annotator.username not in str(body)
    assert body["cycles"] == []  # models are trained on every source's data


def test_the_all_sources_scope_reads_every_source_still_without_names(loop, annotator):
    wide = token("elsewhere", "all_sources")
    everything = read(wide).json()
    assert sum(d["interactions"] for d in everything["days"]) == 4
    assert everything["window"]["source"] == ""
    assert everything["cycles"]
    assert annotator.username not in str(everything)
    narrowed = read(wide, "&source=shop-assistant").json()
    assert sum(d["interactions"] for d in narrowed["days"]) == 4
