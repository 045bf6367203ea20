"""The queue home and the review screen: full pages and HTMX fragments, the
409 on a stale submit, 422 on an incomplete one, and the next item swapped in."""

from datetime import timedelta

import pytest
import time_machine
from django.utils import timezone

from review import services, views
from review.models import Review, ReviewItem, ReviewOutcome, ReviewSkip
from tests.support.curation import GOOD_EDIT
from tests.support.review import RUBRIC, make_items, refresh, review

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


def body(response) -> str:
    return response.content.decode().strip()


def is_fragment(response) -> bool:
    return "<html" not in body(response)


# --- home ---------------------------------------------------------------------


def test_home_shows_items_left_my_reviews_today_and_my_approving_review_rate(as_user, annotator):
    first, second, _ = make_items(3)
    review(first, annotator, "approve")
    review(second, annotator, "reject")
    response = as_user(annotator).get("/review/")
    assert response.context["queued"] == 1
    assert response.context["my_today"] == 2
    assert response.context["my_approving_review_rate"] == 0.5
    page = body(response)
    assert '<span class="figure" id="my-approval">50%</span>' in page
    assert "Start reviewing" in page
    assert "progress" not in page  # annotators see only their own figures


def test_home_polls_its_summary_and_htmx_gets_only_that(as_user, annotator):
    make_items(2)
    response = as_user(annotator).get("/review/", headers=HTMX)
    assert is_fragment(response)
    assert body(response).strip().startswith('<div id="queue-summary"')
    assert 'id="items-left">2<' in body(response)


def test_curators_see_per_annotator_progress(as_user, annotator, annotator2, curator):
    items = make_items(3)
    review(items[0], annotator, "approve")
    review(items[1], annotator, "approve")
    review(items[2], annotator2, "reject")
    response = as_user(curator).get("/review/")
    progress = {row["username"]: row for row in response.context["progress"]}
    assert progress["annie"]["today"] == 2
    assert progress["annie"]["approving_review_rate"] == 1.0
    assert progress["arthur"]["approving_review_rate"] == 0.0
    assert '<table id="progress">' in body(response)


def test_the_start_button_offers_to_resume_a_held_item(as_user, annotator):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    assert f"Resume item #{item.pk}" in body(as_user(annotator).get("/review/"))


# --- claiming -----------------------------------------------------------------


def test_start_redirects_to_the_claimed_item(as_user, annotator):
    (item,) = make_items(1)
    response = as_user(annotator).post("/review/next/")
    assert response.status_code == 302
    assert response["Location"] == f"/review/items/{item.pk}/"
    assert refresh(item).lease_holder_id == annotator.pk


def test_start_over_htmx_swaps_in_the_screen_and_pushes_its_url(as_user, annotator):
    (item,) = make_items(1)
    response = as_user(annotator).post("/review/next/", headers=HTMX)
    assert response.status_code == 200
    assert is_fragment(response)
    assert body(response).startswith('<div id="review-screen"')
    assert response["HX-Push-Url"] == f"/review/items/{item.pk}/"


def test_an_empty_queue_says_so_with_and_without_htmx(as_user, annotator):
    client = as_user(annotator)
    response = client.post("/review/next/", follow=True)
    assert response.redirect_chain == [("/review/", 302)]
    assert views.QUEUE_EMPTY in body(response)
    fragment = client.post("/review/next/", headers=HTMX)
    assert is_fragment(fragment)
    assert views.QUEUE_EMPTY in body(fragment)
    assert fragment["HX-Push-Url"] == "/review/"  # a reload shows the queue, not a stale item


# --- the screen ---------------------------------------------------------------


def test_the_screen_shows_the_conversation_the_diff_scores_and_guidelines(as_user, annotator):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    response = as_user(annotator).get(f"/review/items/{item.pk}/")
    page = body(response)
    assert response.status_code == 200
    assert "You are a helpful support agent" in page  # system message
    assert "How do I reset my password?" in page  # user message
    assert '<del class="diff-del">' in page and '<ins class="diff-ins">' in page
    assert "0.012 (detoxify-original)" in page  # toxicity with its scorer
    assert "email 1" in page  # PII counts
    assert "support-bot-v2" in page and "edited" in page  # model, feedback kind
    assert "Review guidelines" in page  # the guidelines panel
    assert 'hx-trigger="keydown from:body throttle:60s' in page  # lease renewal


def test_the_screen_over_htmx_is_just_the_screen(as_user, annotator):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    response = as_user(annotator).get(f"/review/items/{item.pk}/", headers=HTMX)
    assert is_fragment(response)
    assert body(response).startswith('<div id="review-screen"')


def test_a_needs_answer_item_asks_for_the_answer_and_has_no_plain_approve(as_user, annotator):
    (item,) = make_items(1, kind="needs_answer")
    services.item_claim_next(user=annotator)
    page = body(as_user(annotator).get(f"/review/items/{item.pk}/"))
    assert "The answer that should have been given" in page
    assert 'value="approve"' not in page


# --- submitting ---------------------------------------------------------------


def test_a_plain_submit_saves_and_redirects_to_the_next_item(as_user, annotator):
    first, second = make_items(2)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(
        f"/review/items/{first.pk}/submit/", {"decision": "approve", **RUBRIC, "note": "fine"}
    )
    assert response.status_code == 302
    assert response["Location"] == f"/review/items/{second.pk}/"
    saved = Review.objects.get()
    assert (saved.decision, saved.accuracy, saved.helpfulness, saved.safety, saved.note) == (
        "approve",
        4,
        5,
        5,
        "fine",
    )
    assert saved.started_at is not None


def test_an_htmx_submit_swaps_in_the_next_item(as_user, annotator):
    first, second = make_items(2)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(
        f"/review/items/{first.pk}/submit/",
        {"decision": "reject", "reject_reason": "Wrong or misleading", **RUBRIC},
        headers=HTMX,
    )
    assert response.status_code == 200
    assert is_fragment(response)
    assert f"Item #{second.pk}" in body(response)
    assert views.SAVED in body(response)
    assert response["HX-Push-Url"] == f"/review/items/{second.pk}/"
    assert ReviewOutcome.objects.get(item=first).reason == "Wrong or misleading"


def test_a_free_text_reason_wins_over_the_list(as_user, annotator):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    client.post(
        f"/review/items/{item.pk}/submit/",
        {
            "decision": "reject",
            "reject_reason": "Wrong or misleading",
            "reject_reason_other": "Talks about a different product",
            **RUBRIC,
        },
    )
    assert Review.objects.get().reject_reason == "Talks about a different product"


def test_approve_with_edit_keeps_the_users_version_and_stores_mine(as_user, annotator):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    client.post(
        f"/review/items/{item.pk}/submit/",
        {"decision": "approve_edit", "final_text": GOOD_EDIT + " Call us if not.", **RUBRIC},
    )
    outcome = ReviewOutcome.objects.get(item=item)
    assert outcome.chosen == GOOD_EDIT + " Call us if not."
    assert refresh(item).candidate.chosen == GOOD_EDIT  # the user's version is kept


@pytest.mark.parametrize("htmx", [False, True])
def test_an_incomplete_submit_is_422_with_the_message_and_my_input_kept(as_user, annotator, htmx):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(
        f"/review/items/{item.pk}/submit/",
        {"decision": "approve", "accuracy": "3", "note": "half done"},
        headers=HTMX if htmx else {},
    )
    page = body(response)
    assert response.status_code == 422
    assert services.RUBRIC_REQUIRED in page
    # Said beside the rubric, where the fix is, not in a banner at the top.
    assert '<p class="error field-error" role="alert" id="screen-error">' in page
    assert 'class="banner bad" role="alert" id="screen-error"' not in page
    assert 'name="accuracy" value="3" checked' in page
    assert "half done" in page
    assert is_fragment(response) == htmx
    assert not Review.objects.exists()


def test_back_or_reload_after_a_refused_submit_reaches_the_item_not_a_405(as_user, annotator):
    """Without JavaScript the refusal is shown at the submit URL; a GET there (Back,
    reload, a copied link) leads to the item's screen, still leased, nothing written."""
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    url = f"/review/items/{item.pk}/submit/"
    assert client.post(url, {"decision": "approve", "accuracy": "3"}).status_code == 422
    response = client.get(url, follow=True)
    assert response.redirect_chain == [(f"/review/items/{item.pk}/", 302)]
    assert response.status_code == 200
    assert 'name="decision"' in body(response)
    assert not Review.objects.exists()


@pytest.mark.parametrize("htmx", [False, True])
def test_a_stale_submit_is_409_and_overwrites_nothing(as_user, annotator, annotator2, htmx):
    (item,) = make_items(1)
    as_user(annotator).post("/review/next/")
    later = timezone.now() + timedelta(minutes=11)
    with time_machine.travel(later, tick=False):
        services.item_claim_next(user=annotator2)
        response = as_user(annotator).post(
            f"/review/items/{item.pk}/submit/",
            {"decision": "approve", **RUBRIC},
            headers=HTMX if htmx else {},
        )
    assert response.status_code == 409
    assert services.LEASE_LOST in body(response)
    assert "Take the next item" in body(response)
    assert not Review.objects.exists()
    assert refresh(item).lease_holder_id == annotator2.pk


def test_the_last_submit_over_htmx_shows_the_empty_queue(as_user, annotator):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(
        f"/review/items/{item.pk}/submit/", {"decision": "approve", **RUBRIC}, headers=HTMX
    )
    assert views.QUEUE_EMPTY in body(response)
    assert views.SAVED in body(response)


# --- the three-way diff -------------------------------------------------------


def test_the_diff_endpoint_returns_the_three_way_diff_over_htmx(as_user, annotator):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(
        f"/review/items/{item.pk}/diff/", {"final_text": GOOD_EDIT + " Extra line."}, headers=HTMX
    )
    page = body(response)
    assert page.startswith('<div id="three-way"')
    assert "Model → user" in page and "User → reviewer" in page
    assert '<ins class="diff-ins"> Extra line.</ins>' in page


def test_the_diff_without_javascript_re_renders_the_screen_with_the_edit(as_user, annotator):
    (item,) = make_items(1, kind="needs_answer")
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(f"/review/items/{item.pk}/diff/", {"final_text": "Use Settings."})
    page = body(response)
    assert "<html" in page
    assert 'id="edit-panel" class="panel collapsible open"' in page
    assert "Use Settings.</textarea>" in page
    assert '<ins class="diff-ins">Use Settings.</ins>' in page
    assert not Review.objects.exists()


# --- skip and renew -----------------------------------------------------------


@pytest.mark.parametrize("htmx", [False, True])
def test_skip_releases_the_item_and_moves_on(as_user, annotator, htmx):
    first, second = make_items(2)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(f"/review/items/{first.pk}/skip/", headers=HTMX if htmx else {})
    if htmx:
        assert f"Item #{second.pk}" in body(response)
        assert views.SKIPPED in body(response)
    else:
        assert response["Location"] == f"/review/items/{second.pk}/"
    assert ReviewSkip.objects.filter(item=first, user=annotator).exists()
    assert refresh(first).lease_holder_id is None


def test_renewing_over_htmx_returns_the_new_expiry(as_user, annotator):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    later = timezone.now() + timedelta(minutes=5)
    with time_machine.travel(later, tick=False):
        response = client.post(f"/review/items/{item.pk}/renew/", headers=HTMX)
    assert response.status_code == 200
    assert body(response).startswith('<span id="lease-status"')
    assert refresh(item).lease_expires_at == later + timedelta(minutes=10)


def test_renewing_a_lost_lease_says_so(as_user, annotator, annotator2):
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        services.item_claim_next(user=annotator2)
        fragment = client.post(f"/review/items/{item.pk}/renew/", headers=HTMX)
        plain = client.post(f"/review/items/{item.pk}/renew/")
    assert fragment.status_code == 409
    assert services.LEASE_LOST in body(fragment)
    assert plain.status_code == 302
    assert plain["Location"] == f"/review/items/{item.pk}/"


def test_no_item_is_left_leased_after_a_session_of_reviews(as_user, annotator):
    items = make_items(3)
    client = as_user(annotator)
    client.post("/review/next/")
    for item in items:
        client.post(f"/review/items/{item.pk}/submit/", {"decision": "approve", **RUBRIC})
    assert not ReviewItem.objects.filter(lease_holder__isnull=False).exists()
    assert ReviewItem.objects.filter(status="done").count() == 3


# --- my reviews ---------------------------------------------------------------


def test_my_reviews_page_and_its_htmx_pages(as_user, annotator):
    items = make_items(2)
    for item in items:
        review(item, annotator)
    client = as_user(annotator)
    page = client.get("/review/mine/")
    assert [r.item_id for r in page.context["reviews"]] == [items[1].pk, items[0].pk]
    older = client.get(f"/review/mine/?before={page.context['reviews'][0].pk}", headers=HTMX)
    assert body(older).startswith('<div id="my-reviews">')
    assert f"#{items[0].pk} " in body(older)
    assert f"#{items[1].pk} " not in body(older)


def test_one_review_over_htmx_is_just_the_review(as_user, annotator):
    (item,) = make_items(1)
    saved = review(item, annotator, "approve_edit", final_text="My own words.")
    response = as_user(annotator).get(f"/review/reviews/{saved.pk}/", headers=HTMX)
    assert body(response).startswith('<section class="card" id="review-detail">')
    assert '<ins class="diff-ins">My own words.</ins>' in body(response)
