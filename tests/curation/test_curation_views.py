"""Curation pages: access from every side, HTMX and plain responses."""

from datetime import UTC, datetime

import pytest
import time_machine

from curation import pipeline, policies, runs
from curation.models import CurationPolicy, CurationRun
from curation.views import POLICY_SAVED
from flywheel_site.access import FORBIDDEN
from tests.support.curation import edited

pytestmark = pytest.mark.django_db

PAGES = ["/curation/runs/", "/curation/candidates/", "/curation/policy/", "/curation/policy/v1/"]


@pytest.mark.parametrize("url", PAGES)
def test_anonymous_users_are_sent_to_log_in(client, url):
    response = client.get(url)
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("persona", ["annotator", "outsider"])
def test_annotators_and_outsiders_are_refused(as_user, request, url, persona):
    response = as_user(request.getfixturevalue(persona)).get(url)
    assert response.status_code == 403
    assert FORBIDDEN.encode() in response.content or response.status_code == 403


@pytest.mark.parametrize("url", PAGES)
@pytest.mark.parametrize("persona", ["curator", "admin"])
def test_curators_and_admins_see_the_pages(as_user, request, url, persona):
    assert as_user(request.getfixturevalue(persona)).get(url).status_code == 200


def test_the_runs_page_shows_counts_per_filter(as_user, curator):
    policies.policy_create(changes={"enabled_filters": ["user_action", "length", "edit_band"]})
    a, b = edited("v1"), edited("v2", final="short")
    run = runs.run_start(trigger="command", total=2)
    pipeline.interactions_curate(interaction_ids=[a.pk, b.pk], run=run)
    runs.run_finish(run=run)
    response = as_user(curator).get("/curation/runs/")
    body = response.content.decode()
    assert f'id="run-{run.pk}"' in body
    assert "length 1" in body
    assert "succeeded" in body
    assert "hx-trigger" not in body  # nothing running: no polling


def test_a_running_run_is_polled_and_htmx_gets_only_the_table(as_user, curator):
    run = CurationRun.objects.create(trigger="ingest", status="running", total=10)
    client = as_user(curator)
    full = client.get("/curation/runs/").content.decode()
    assert 'hx-trigger="every 2s"' in full
    assert "<html" in full
    partial = client.get("/curation/runs/", headers={"HX-Request": "true"}).content.decode()
    assert "<html" not in partial
    assert partial.strip().startswith('<section class="card scroll" id="runs-table"')
    assert f'id="run-{run.pk}"' in partial


def test_saving_the_policy_form_creates_a_new_version(as_user, curator):
    client = as_user(curator)
    form = client.get("/curation/policy/").context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and k != "id"}
    data.update(
        min_words=7,
        note="shorter",
        enabled_filters=["user_action", "length"],
        toxicity_per_label="{}",
        audit_rates='{"pii": 0}',
        blocklist_terms="darn\nheck",
    )
    response = client.post("/curation/policy/", data, follow=True)
    assert response.status_code == 200
    latest = CurationPolicy.objects.order_by("-version").first()
    assert latest.version == 2
    assert latest.min_words == 7
    assert latest.blocklist_terms == ["darn", "heck"]
    assert latest.audit_rates == {"pii": 0}
    assert latest.created_by == curator
    assert POLICY_SAVED.format(version=2) in response.content.decode()
    assert CurationPolicy.objects.get(version=1).min_words == 20


def test_a_bad_regex_in_the_policy_form_is_refused(as_user, curator):
    client = as_user(curator)
    form = client.get("/curation/policy/").context["form"]
    data = {k: v for k, v in form.initial.items() if v is not None and k != "id"}
    data.update(
        blocklist_patterns="(unclosed",
        toxicity_per_label="{}",
        audit_rates="{}",
        enabled_filters=["user_action"],
    )
    response = client.post("/curation/policy/", data)
    assert response.status_code == 200
    assert "not a valid regular expression" in response.content.decode()
    assert CurationPolicy.objects.count() == 1


@pytest.mark.parametrize(
    ("rate", "says"),
    [
        (0.2, "The sample rate is 0.2, outside the recommended 0.05-0.10: reviewers spend"),
        (1.0, "The sample rate is 1, outside the recommended 0.05-0.10: every passed candidate"),
        (0.01, "The sample rate is 0.01, outside the recommended 0.05-0.10: too few passed"),
    ],
)
def test_a_sample_rate_outside_the_band_is_warned_about_with_what_it_does(
    as_user, curator, rate, says
):
    policies.policy_create(changes={"sample_rate": rate})
    body = as_user(curator).get("/curation/policy/").content.decode()
    assert says in body
    assert "Set it between 0.05 and 0.10 below and save." in body
    assert "%" not in policies.sample_rate_warning(CurationPolicy.objects.get(version=2))


def test_a_sample_rate_inside_the_band_is_not_warned_about(as_user, curator):
    policies.policy_create(changes={"sample_rate": 0.07})
    body = as_user(curator).get("/curation/policy/").content.decode()
    assert "outside the recommended" not in body


def test_policy_versions_are_listed_newest_first_with_readable_dates(as_user, curator):
    for day in (2, 9):
        with time_machine.travel(datetime(2026, 3, day, 10, 30, tzinfo=UTC), tick=False):
            policies.policy_create(changes={"min_words": day}, user=curator, note=f"day {day}")
    body = as_user(curator).get("/curation/policy/").content.decode()
    table = body[body.index("<h2>Versions</h2>") :]
    assert table.index(">v3<") < table.index(">v2<") < table.index(">v1<")
    assert "<td>2026-03-09 10:30</td>" in table and "<td>2026-03-02 10:30</td>" in table
    assert "+00:00" not in table


def test_every_policy_field_says_what_it_decides():
    from curation.forms import PolicyForm

    form = PolicyForm()
    assert [name for name, field in form.fields.items() if not field.help_text] == []
    assert form.fields["band_low"].label == "Edit band: lowest similarity"


def test_a_candidate_page_shows_every_decision(as_user, curator):
    policies.policy_create(changes={"enabled_filters": ["user_action", "length"]})
    pipeline.interactions_curate(interaction_ids=[edited("c1", final="too short").pk])
    from curation.models import Candidate

    candidate = Candidate.objects.get()
    body = as_user(curator).get(f"/curation/candidates/{candidate.pk}/").content.decode()
    assert "Chosen text has 2 words, fewer than 20." in body
    assert "v2" in body


@pytest.mark.parametrize("url", ["/curation/candidates/999999/", "/curation/policy/v999/"])
def test_an_unknown_candidate_or_policy_version_is_not_found(as_user, curator, url):
    assert as_user(curator).get(url).status_code == 404
