"""A page never traps a reviewer (issue 18, rows 1 and 2): text that used to take seconds
is shown as written, text that used to raise renders, and an item whose screen fails anyway
goes to a curator with the reason while the annotator gets the next one."""

import pytest

from curation.models import Candidate, Interaction
from review import presenters, services
from review.models import ReviewItem
from tests.support.review import make_items

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
DEEP = "* " * 600 + "deep"


def test_a_list_nested_600_deep_shows_on_the_review_and_candidate_pages(
    as_user, annotator, curator
):
    (item,) = make_items(1, kind="sft")
    Interaction.objects.filter(pk=item.candidate.interaction_id).update(response=DEEP)
    Candidate.objects.filter(pk=item.candidate_id).update(chosen=DEEP)
    client = as_user(annotator)
    served = client.post("/review/next/", headers=HTMX)
    assert served.status_code == 200 and "deep" in served.content.decode()
    assert client.get(f"/review/items/{item.pk}/").status_code == 200
    page = as_user(curator).get(f"/curation/candidates/{item.candidate_id}/")
    assert page.status_code == 200 and "nested too deep" in page.content.decode()


@pytest.mark.parametrize(
    "text", ["Please summarise this: " + "[" * 4000, "![" * 4000], ids=["brackets", "images"]
)
def test_text_that_took_seconds_is_shown_as_written_on_every_page_that_shows_it(
    as_user, annotator, curator, text
):
    """Before, these took 9.8 s and 15.7 s per page load (the issue's figures)."""
    (item,) = make_items(1, kind="sft")
    Interaction.objects.filter(pk=item.candidate.interaction_id).update(response=text)
    Candidate.objects.filter(pk=item.candidate_id).update(chosen=text)
    client = as_user(annotator)
    pages = [client.post("/review/next/", headers=HTMX), client.get(f"/review/items/{item.pk}/")]
    pages.append(as_user(curator).get(f"/curation/candidates/{item.candidate_id}/"))
    for page in pages:
        assert page.status_code == 200
        assert "Shown as written (too much markup to render)" in page.content.decode()


def test_a_guideline_preview_of_20000_brackets_is_shown_as_written(as_user, curator):
    """Before, this held a web worker at 100% CPU until gunicorn killed it at 120 s."""
    page = as_user(curator).post("/review/guidelines/preview/", {"body": "[" * 20_000})
    assert page.status_code == 200
    assert "Shown as written (too much markup to render)" in page.content.decode()


@pytest.fixture
def broken(monkeypatch):
    """Items whose screen raises, as a presenter bug would."""
    pks: set[int] = set()
    screen = presenters.screen

    def failing(*, item, **kwargs):
        if item.pk in pks:
            raise RecursionError("maximum recursion depth exceeded")
        return screen(item=item, **kwargs)

    monkeypatch.setattr(presenters, "screen", failing)
    return pks


def test_an_item_that_cannot_be_shown_goes_to_a_curator_and_the_next_is_served(
    as_user, annotator, broken, caplog
):
    make_items(2)
    first = services.item_claim_next(user=annotator)
    broken.add(first.pk)
    response = as_user(annotator).get(f"/review/items/{first.pk}/")
    first.refresh_from_db()
    assert first.status == ReviewItem.Status.ADJUDICATION
    assert first.escalated_reason == "Its review screen could not be shown (RecursionError)."
    assert first.lease_holder_id is None
    following = ReviewItem.objects.get(lease_holder=annotator)
    assert following.pk != first.pk
    assert response.status_code == 302 and response["Location"] == f"/review/items/{following.pk}/"
    assert f"Review item {first.pk} could not be shown" in caplog.text


def test_with_htmx_the_next_item_replaces_the_one_that_failed(as_user, annotator, broken):
    items = make_items(2)
    broken.update(item.pk for item in items[:1])
    response = as_user(annotator).post("/review/next/", headers=HTMX)
    assert response.status_code == 200
    assert "could not be shown, so it went to a curator" in response.content.decode()
    assert ReviewItem.objects.get(lease_holder=annotator).pk == items[1].pk
    assert ReviewItem.objects.get(pk=items[0].pk).status == ReviewItem.Status.ADJUDICATION


def test_the_curator_sees_why_it_came(as_user, annotator, curator, broken):
    (item,) = make_items(1)
    broken.add(item.pk)
    as_user(annotator).post("/review/next/", headers=HTMX)
    page = as_user(curator).get("/review/adjudication/").content.decode()
    assert "Its review screen could not be shown (RecursionError)." in page
