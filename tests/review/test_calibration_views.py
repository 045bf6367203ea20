"""The calibration page and its one action, on real PostgreSQL: reviewed items
with recorded filter decisions, reviewed through the real services."""

import json
import re

import pytest
from django.test import Client

from curation import policies
from curation.actions import candidate_action_create
from curation.models import Candidate, CurationPolicy, FilterDecision, SampleDraw
from review import selectors
from review.models import ReviewItem
from review.rollups import review_metrics_rebuild
from tests.support.review import make_items, review

pytestmark = pytest.mark.django_db


def client_of(user) -> Client:
    client = Client()
    client.force_login(user)
    return client


def test_the_page_says_so_when_nothing_is_reviewed(curator):
    response = client_of(curator).get("/review/calibration/")
    assert response.status_code == 200
    html = response.content.decode()
    assert 'id="calibration-empty"' in html
    assert "<canvas" not in html


def test_the_page_shows_weighted_figures_a_chart_and_a_suggestion(curator, reviewed):
    response = client_of(curator).get("/review/calibration/")
    assert response.status_code == 200
    html = response.content.decode()
    row = re.search(r'<tr id="calibration-quality">(.*?)</tr>', html, re.S).group(1)
    cells = re.findall(r'<td class="num(?: thin)?">(.*?)</td>', row, re.S)
    # n 24; precision 12 of 12 passed approved; recall 2*12 / (2*12 + 50*6) = 24 / 324.
    assert cells[0].endswith("%")  # the audit rate in the page's one unit
    assert cells[1] == "24"
    # 24 reviewed items are too few to act on: each figure is greyed and says so.
    assert row.count('<td class="num thin">') == 3 and "too few reviewed items" in row
    assert cells[2].startswith("100%") and cells[3] == "12"
    assert cells[4].startswith("7%") and cells[5] == "18"
    # What population each figure describes and how many reviewed items it rests on.
    populations = re.search(r'<p id="calibration-populations">(.*?)</p>', html, re.S).group(1)
    assert populations.count("rests on") == 3
    # The chart: a canvas, its data as JSON, and the same bins as a table.
    assert 'id="calibration-chart-quality"' in html
    data = json.loads(
        re.search(
            r'<script id="calibration-chart-quality-data" type="application/json">(.*?)</script>',
            html,
            re.S,
        ).group(1)
    )
    assert data["rates"][0] == 0.0 and data["rates"][-1] == 100.0
    assert sum(data["counts"]) == 24
    assert "vendor/chart-4.6.1.umd.min.js" in html
    # Lowering quality_min to 0.5 keeps the approved answers at 0.5.
    suggestion = re.search(r'id="suggestion-quality">(.*?)</form>', html, re.S).group(1)
    assert 'name="threshold" value="0.5"' in suggestion
    assert "pass rate" in suggestion and "(-300," in suggestion


def test_filter_agreement_is_weighted_with_its_interval(reviewed):
    (row,) = selectors.filter_agreement()
    # Agreement: 12 * 2 (pass, approve) + 6 * 50 (fail, reject) of 24 + 600.
    assert row["filter"] == "quality" and row["n"] == 24
    assert row["agreement"] == pytest.approx(324 / 624)
    assert row["low"] < row["agreement"] < row["high"]


def test_an_item_the_policys_draw_did_not_pick_never_enters_the_estimates(reviewed):
    # Sent by hand, or drawn only under an earlier policy: no draw under its policy.
    SampleDraw.objects.filter(candidate_id=reviewed[0].candidate_id).delete()
    # The dashboard reads review's rollup, kept by the services: a raw delete is followed
    # by the rebuild the rollup equals (tests/training/metrics/test_metrics_rollups.py).
    review_metrics_rebuild()

    (row,) = selectors.filter_agreement()

    assert row["n"] == 23
    assert row["agreement"] == pytest.approx(322 / 622)


def test_an_item_a_curator_sent_by_hand_never_enters_the_estimates(reviewed, curator, annotator):
    # A rejection of the quality filter that the audit sample did not draw, sent to review
    # through the candidates explorer and approved: weighted, it would stand for a whole
    # stratum of rejections the filter got wrong.
    (made,) = make_items(1)
    ReviewItem.objects.filter(pk=made.pk).delete()
    policy = policies.policy_current()
    Candidate.objects.filter(pk=made.candidate_id).update(
        policy=policy, status="failed", failed_filter="quality", quality=0.3
    )
    FilterDecision.objects.create(
        candidate_id=made.candidate_id, policy=policy, filter="quality", passed=False,
        score=0.3, reason="quality 0.3", scorer="flywheel.filters", scorer_version="1",
    )  # fmt: skip
    candidate_action_create(
        user=curator, kind="queue", reason="looks fine to me", filters={"pk": made.candidate_id},
        max_id=made.candidate_id, expected=1,
    )  # fmt: skip
    item = ReviewItem.objects.get(candidate_id=made.candidate_id)
    review(item, annotator, "approve")
    assert item.candidate.review_item.outcome.result == "approved"

    (row,) = selectors.filter_agreement()

    assert not SampleDraw.objects.filter(candidate_id=made.candidate_id).exists()
    assert row["n"] == 24
    assert row["agreement"] == pytest.approx(324 / 624)


def test_a_suggestion_becomes_a_policy_version_with_who_and_why(curator, reviewed):
    before = policies.policy_current()
    response = client_of(curator).post(
        "/review/calibration/apply/",
        {"filter": "quality", "threshold": "0.5", "reason": "Audit: good answers at 0.5"},
    )
    assert response.status_code == 302
    created = policies.policy_current()
    assert created.version == before.version + 1
    assert created.quality_min == 0.5
    assert created.created_by == curator
    assert "Audit: good answers at 0.5" in created.note
    assert "quality_min 0.6 -> 0.5" in created.note
    # Everything else is carried over from the previous version.
    assert created.toxicity_threshold == before.toxicity_threshold
    assert created.audit_rates == before.audit_rates


@pytest.mark.parametrize(
    "form",
    [
        {"filter": "quality", "threshold": "0.5", "reason": "   "},
        {"filter": "quality", "threshold": "0.5"},
        {"filter": "edit_band", "threshold": "0.5", "reason": "why"},
        {"filter": "quality", "threshold": "nan", "reason": "why"},
        {"filter": "quality", "threshold": "7", "reason": "why"},
        {"filter": "length", "threshold": "2.5", "reason": "why"},
        {"filter": "quality", "threshold": "0.5", "reason": "why\x00"},
        {"filter": "quality\x00", "threshold": "0.5", "reason": "why"},
    ],
)
def test_a_refused_suggestion_changes_nothing(curator, form):
    before = CurationPolicy.objects.count()
    response = client_of(curator).post("/review/calibration/apply/", form)
    assert response.status_code == 422
    assert 'id="calibration-error"' in response.content.decode()
    assert CurationPolicy.objects.count() == before


def test_annotators_cannot_change_the_policy(annotator):
    before = CurationPolicy.objects.count()
    response = client_of(annotator).post(
        "/review/calibration/apply/", {"filter": "quality", "threshold": "0.5", "reason": "x"}
    )
    assert response.status_code == 403
    assert CurationPolicy.objects.count() == before
