"""Curators settle items whose reviews disagree, on the same screen, seeing
every review; the adjudicated outcome is final."""

import pytest

from review import services, views
from review.models import ReviewOutcome
from tests.support.review import make_items, refresh, review

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.fixture
def disputed(annotator, annotator2):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator, "approve_edit", final_text="Annie's better answer.")
    review(item, annotator2, "reject", reject_reason="Wrong or misleading", note="bad premise")
    assert refresh(item).status == "adjudication"
    return item


def test_the_adjudication_list_shows_disputed_items(as_user, curator, disputed):
    response = as_user(curator).get("/review/adjudication/")
    page = response.content.decode()
    assert f'id="adj-{disputed.pk}"' in page
    assert "annie: approve with edit" in page and "arthur: reject" in page
    fragment = as_user(curator).get("/review/adjudication/", headers=HTMX)
    assert fragment.content.decode().strip().startswith('<div id="adjudication-list"')


def test_the_adjudication_screen_shows_every_review(as_user, curator, disputed):
    client = as_user(curator)
    response = client.post("/review/adjudication/next/", follow=True)
    page = response.content.decode()
    assert response.redirect_chain == [(f"/review/items/{disputed.pk}/", 302)]
    assert response.context["mode"] == "adjudicate"
    assert "annie" in page and "arthur" in page
    assert "Wrong or misleading" in page and "bad premise" in page
    assert "Use annie's text" in page
    # The latest reviewer edit is where the curator's text starts.
    assert "Annie&#x27;s better answer.</textarea>" in page


@pytest.mark.parametrize("htmx", [False, True])
def test_a_curator_settles_the_item_and_the_outcome_is_final(as_user, curator, disputed, htmx):
    client = as_user(curator)
    client.post("/review/adjudication/next/")
    response = client.post(
        f"/review/items/{disputed.pk}/adjudicate/",
        {"decision": "approve_edit", "final_text": "The curated answer.", "note": "merged"},
        headers=HTMX if htmx else {},
    )
    outcome = ReviewOutcome.objects.get(item=disputed)
    assert (outcome.result, outcome.chosen, outcome.adjudicated_by_id, outcome.note) == (
        "approved",
        "The curated answer.",
        curator.pk,
        "merged",
    )
    assert refresh(disputed).status == "done"
    if htmx:
        assert views.ADJUDICATED in response.content.decode()
        assert views.ADJUDICATION_EMPTY in response.content.decode()
    else:
        assert response.status_code == 302
        assert response["Location"] == "/review/"
    again = client.post(
        f"/review/items/{disputed.pk}/adjudicate/", {"decision": "reject", "reject_reason": "x"}
    )
    assert again.status_code == 409
    assert services.NOT_ADJUDICATION in again.content.decode()
    assert ReviewOutcome.objects.get(item=disputed).chosen == "The curated answer."


def test_a_curator_can_pick_a_named_item_from_the_list(as_user, curator, disputed):
    client = as_user(curator)
    inspect = client.get(f"/review/items/{disputed.pk}/")
    assert inspect.context["mode"] == "inspect"
    assert "Adjudicate this item" in inspect.content.decode()
    response = client.post(f"/review/items/{disputed.pk}/claim/", headers=HTMX)
    assert response.context["mode"] == "adjudicate"
    assert response["HX-Push-Url"] == f"/review/items/{disputed.pk}/"


def test_a_second_curator_cannot_take_an_item_being_adjudicated(as_user, curator, admin, disputed):
    as_user(curator).post("/review/adjudication/next/")
    response = as_user(admin).post(f"/review/items/{disputed.pk}/claim/")
    assert response.status_code == 409
    assert services.item_claim_next(user=admin, mode="adjudication") is None


def test_a_rejection_by_adjudication_needs_a_reason(as_user, curator, disputed):
    client = as_user(curator)
    client.post("/review/adjudication/next/")
    response = client.post(f"/review/items/{disputed.pk}/adjudicate/", {"decision": "reject"})
    assert response.status_code == 422
    assert services.REJECT_REASON_REQUIRED in response.content.decode()
    assert not ReviewOutcome.objects.exists()


def test_an_empty_adjudication_queue_says_so(as_user, curator):
    response = as_user(curator).post("/review/adjudication/next/", follow=True)
    assert views.ADJUDICATION_EMPTY in response.content.decode()


def test_starting_adjudication_over_htmx_swaps_in_the_screen(as_user, curator, disputed):
    response = as_user(curator).post("/review/adjudication/next/", headers=HTMX)
    assert response.content.decode().strip().startswith('<div id="review-screen"')
    assert response.context["mode"] == "adjudicate"
    assert response["HX-Push-Url"] == f"/review/items/{disputed.pk}/"


def test_taking_a_named_item_without_htmx_redirects_to_it(as_user, curator, disputed):
    response = as_user(curator).post(f"/review/items/{disputed.pk}/claim/")
    assert response.status_code == 302
    assert response["Location"] == f"/review/items/{disputed.pk}/"
    assert refresh(disputed).lease_holder_id == curator.pk
