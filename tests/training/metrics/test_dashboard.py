"""The flywheel dashboard page: the home of curators and admins, its figures as
tables without JavaScript, its window and filters in the URL, bad input refused."""

import pytest

from tests.support.metrics import D18, D20
from tests.support.review import reviewed_items
from tests.support.training import frozen_version, registered

pytestmark = pytest.mark.django_db


def test_an_annotator_still_lands_on_the_queue(as_user, annotator):
    answer = as_user(annotator).get("/")
    assert answer.status_code == 302 and answer["Location"] == "/review/"


def test_a_curator_lands_on_the_dashboard_with_every_section(as_user, curator, loop):
    answer = as_user(curator).get(f"/?days=3&end={D20}")
    assert answer.status_code == 200
    page = answer.content.decode()
    for section in (
        'id="health"',
        'id="collection"',
        'id="curation"',
        'id="review"',
        'id="training-data"',
        'id="quality"',
        'id="monitor-alerts"',
        'id="filter-agreement"',
    ):
        assert section in page
    # The tables carry the figures without JavaScript.
    assert f'<td>{D18}</td><td class="num">3</td>' in page
    assert "support-v1" in page and "[0.01, 0.09]" in page
    assert 'id="dashboard-data"' in page and "chart-collection" in page


def test_the_window_and_filters_are_read_from_the_url(as_user, admin, loop):
    page = as_user(admin).get(f"/?days=3&end={D20}&task_type=search").content.decode()
    assert f'<td>{D18}</td><td class="num">0</td>' in page
    assert "<option selected>search</option>" in page
    assert 'href="?days=7&amp;task_type=search&amp;end=2026-11-20"' in page


@pytest.mark.parametrize(
    "query", ["days=0", "days=400", "days=x", "end=yesterday", "source=a%00b", "model=" + "m" * 201]
)
def test_bad_parameters_are_a_400_naming_the_field(as_user, curator, query):
    answer = as_user(curator).get(f"/?{query}")
    assert answer.status_code == 400
    assert 'id="filter-errors"' in answer.content.decode()


def test_open_monitor_alerts_and_filter_agreement_are_on_the_dashboard(
    as_user, curator, annotator, admin
):
    from training.models import MonitorAlert

    empty = as_user(curator).get("/").content.decode()
    assert "No open alert" in empty and "No reviewed item in this window" in empty

    model = registered(frozen_version(admin), serving_name="current", status="promoted")
    MonitorAlert.objects.create(
        model=model, metric="bad_outcome", evidence={"rate_control": 0.1, "rate_canary": 0.3}
    )
    reviewed_items(annotator)
    page = as_user(curator).get("/").content.decode()
    alerts = page[page.index('id="monitor-alerts"') : page.index('id="filter-agreement"')]
    assert "bad outcome rose from 0.100 to 0.300" in alerts and model.name in alerts
    agreement = page[page.index('id="filter-agreement"') :]
    # 324 of 624 weighted (tests/support/review.py): 52%, over 24 reviewed items.
    assert "<td>quality</td>" in agreement and "52%" in agreement and ">24</td>" in agreement
