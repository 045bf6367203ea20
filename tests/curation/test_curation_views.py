"""Curation pages: access from every side, HTMX and plain responses."""

import pytest

from curation import pipeline, policies, runs
from curation.models import CurationPolicy, CurationRun
from curation.views import POLICY_SAVED, SAMPLE_RATE_WARNING
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


def test_a_sample_rate_outside_five_to_ten_percent_is_warned_about(as_user, curator):
    policies.policy_create(changes={"sample_rate": 0.2})
    body = as_user(curator).get("/curation/policy/").content.decode()
    assert SAMPLE_RATE_WARNING.format(rate=0.2) in body
    assert "0.2 is outside the recommended band of 0.05-0.10" in body  # one unit: fractions


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
