"""The curators' statistics page, checked against figures computed by hand."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine

from review import services
from review.stats import stats
from tests.support.review import RUBRIC, make_items

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
# Statistics count by UTC day: a fixed mid-day moment, so "an hour ago" and "five minutes
# ago" are today whenever the suite runs (they were yesterday between 00:00 and 01:00).
NOW = datetime(2026, 3, 4, 12, 0, tzinfo=UTC)


@pytest.fixture(autouse=True)
def frozen_now():
    with time_machine.travel(NOW, tick=False):
        yield NOW


def reviewed_at(item, user, decision, *, at, seconds, **fields):
    """Claim ``item`` at ``at`` and submit ``seconds`` later."""
    with time_machine.travel(at, tick=False):
        claimed = services.item_claim_next(user=user)
        assert claimed.pk == item.pk
    with time_machine.travel(at + timedelta(seconds=seconds), tick=False):
        values = {**RUBRIC, **fields}
        if decision == "reject":
            values.setdefault("reject_reason", "Wrong or misleading")
        services.review_submit(item=item, reviewer=user, decision=decision, **values)


@pytest.fixture
def two_reviewers(annotator, annotator2):
    """Four items, each reviewed by annie and arthur:

        annie:  approve approve reject approve   (3 of 4 approvals)
        arthur: approve reject  reject approve   (2 of 4)

    Cohen's kappa: p_o = 3/4; p_e = (3*2 + 1*2) / 16 = 1/2; kappa = (3/4 - 1/2) / (1/2) = 1/2.
    Krippendorff's alpha (nominal): 8 values, approve 5, reject 3; one disagreeing unit gives
    D_o = 2/8; D_e = 2 * 5 * 3 / (8 * 7) = 30/56; alpha = 1 - (2/8) / (30/56) = 8/15.
    Safety scores (annie 5,5,5,5; arthur 5,5,4,5) disagree on one unit too.
    """
    items = make_items(4, reviews_required=2)
    start = NOW - timedelta(hours=1)
    annie = ["approve", "approve", "reject", "approve"]
    arthur = ["approve", "reject", "reject", "approve"]
    for k, item in enumerate(items):
        at = start + timedelta(minutes=2 * k)
        reviewed_at(item, annotator, annie[k], at=at, seconds=30 * (k + 1))
        safety = 4 if k == 2 else 5
        reviewed_at(
            item, annotator2, arthur[k], at=at + timedelta(minutes=1), seconds=10, safety=safety
        )
    return items


def test_reviews_per_annotator_per_day_and_approving_review_rates(as_user, curator, two_reviewers):
    response = as_user(curator).get("/review/stats/")
    context = response.context
    rows = {row["username"]: row for row in context["annotators"]}
    assert rows["annie"]["per_day"][-1] == 4 and sum(rows["annie"]["per_day"]) == 4
    assert rows["annie"]["approving_review_rate"] == 0.75
    assert rows["arthur"]["approving_review_rate"] == 0.5
    assert context["total_reviews"] == 8
    assert context["approving_review_rate"] == 5 / 8


def test_median_time_per_item(as_user, curator, two_reviewers):
    context = as_user(curator).get("/review/stats/").context
    rows = {row["username"]: row for row in context["annotators"]}
    assert rows["annie"]["median_seconds"] == pytest.approx(75.0)  # 30, 60, 90, 120
    assert rows["arthur"]["median_seconds"] == pytest.approx(10.0)
    assert context["median_seconds"] == pytest.approx(20.0)  # 10 x4, 30, 60, 90, 120


def test_agreement_matches_the_hand_computed_figures(as_user, curator, two_reviewers):
    response = as_user(curator).get("/review/stats/")
    agreement = {row["field"]: row for row in response.context["agreement"]}
    assert agreement["decision"]["kappa"] == pytest.approx(0.5)
    assert agreement["decision"]["alpha"] == pytest.approx(8 / 15)
    assert agreement["decision"]["observed_agreement"] == pytest.approx(0.75)
    assert agreement["decision"]["n_items"] == 4
    # Four items are too few to act on: the figures are greyed and say so.
    assert '<td class="num thin">0.500</td>' in response.content.decode()
    assert "(too few items to act on)" in response.content.decode()
    assert agreement["accuracy"]["alpha"] is None  # all 4s: no variation, no verdict
    assert agreement["safety"]["observed_agreement"] == pytest.approx(0.75)
    per_annotator = {row["username"]: row for row in response.context["annotators"]}
    assert per_annotator["annie"]["agreement_with_others"] == pytest.approx(0.75)
    assert per_annotator["annie"]["kappa_vs_others"] == pytest.approx(0.5)
    queues = response.context["agreement_by_queue"]
    assert [q["queue"] for q in queues] == ["support|support-bot-v2"]
    page = response.content.decode()
    assert "0.533" in page and "0.500" in page


def test_disagreement_is_counted_as_waiting_for_adjudication(as_user, curator, two_reviewers):
    assert as_user(curator).get("/review/stats/").context["adjudication_waiting"] == 1


def test_queue_depth_is_worked_back_from_today(annotator):
    now = NOW
    with time_machine.travel(now - timedelta(days=2), tick=False):
        old = make_items(3)
    with time_machine.travel(now - timedelta(days=1), tick=False):
        make_items(2, priority=0.01)
    reviewed_at(old[0], annotator, "approve", at=now - timedelta(days=1), seconds=5)
    reviewed_at(old[1], annotator, "approve", at=now - timedelta(minutes=5), seconds=5)
    series = stats(days=7, now=now)["queue_depth"]
    assert [row["open"] for row in series] == [0, 0, 0, 0, 3, 4, 3]
    assert [row["added"] for row in series][-3:] == [3, 2, 0]
    assert [row["settled"] for row in series][-3:] == [0, 1, 1]


def test_the_window_switches_over_htmx(as_user, curator, two_reviewers):
    client = as_user(curator)
    response = client.get("/review/stats/?days=30", headers=HTMX)
    page = response.content.decode().strip()
    assert page.startswith('<div id="stats-body">')
    assert response.context["days"] == 30
    assert len(response.context["day_list"]) == 30
    assert client.get("/review/stats/?days=5").context["days"] == 7  # unknown: the default
