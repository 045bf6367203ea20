"""Each object's page shows its audit timeline: who (user, API token or job), when, the
field-level change and the request path or job id. Curators and admins see it; an
annotator's screen does not name other people."""

import pghistory
import pytest

from curation.models import Candidate, Interaction
from tests.support.access import path_of

pytestmark = pytest.mark.django_db

# Page -> a subject its timeline must show (the object itself or one shown on its behalf).
PAGES = {
    "curation:candidate": "candidate #",
    "curation:policy_version": "curation policy #",
    "review:item": "review item #",
    "review:review": "review #",
    "review:guidelines": "Audit history",
    "datasets:pair": "Audit history",
    "datasets:version": "dataset version #",
    "runs:model": "experiment #",
}


def test_every_objects_page_shows_its_timeline(as_user, admin, objects):
    client = as_user(admin)
    for name, subject in PAGES.items():
        page = client.get(path_of(name, objects)).content.decode()
        assert 'id="history"' in page, name
        assert subject.lower() in page.lower(), name


def test_a_change_shows_who_before_after_and_the_request_path(as_user, curator, objects):
    candidate = objects["candidate"]
    with pghistory.context(user=curator.pk, url="/curation/candidates/act/"):
        Candidate.objects.filter(pk=candidate.pk).update(chosen="first edit")
        Candidate.objects.filter(pk=candidate.pk).update(chosen="second edit")
    page = as_user(curator).get(path_of("curation:candidate", objects)).content.decode()
    assert "<del>first edit</del> → <ins>second edit</ins>" in page
    assert f"<td>{curator.username}</td>" in page
    assert "/curation/candidates/act/" in page


def test_a_change_made_by_a_job_names_the_job_and_its_run(as_user, curator, objects):
    interaction = objects["interaction"]
    with pghistory.context(job="7f3c-job", func="curation.jobs.sweep", run=12):
        Interaction.objects.filter(pk=interaction.pk).update(task_type="billing")
    page = as_user(curator).get(path_of("curation:candidate", objects)).content.decode()
    assert "interaction #" in page
    assert "job curation.jobs.sweep" in page and "job 7f3c-job" in page
    assert "run: 12" in page


def test_a_change_made_through_the_api_names_the_token(as_user, curator, objects):
    interaction = objects["interaction"]
    with pghistory.context(token=41, url="/api/v1/interactions"):
        Interaction.objects.filter(pk=interaction.pk).update(task_type="billing")
    page = as_user(curator).get(path_of("curation:candidate", objects)).content.decode()
    assert "API token #41" in page and "/api/v1/interactions" in page


def test_an_annotator_sees_no_timeline_on_their_own_review(as_user, annotator2, objects):
    response = as_user(annotator2).get(path_of("review:review", objects))
    assert response.status_code == 200
    assert 'id="history"' not in response.content.decode()
