"""Who may open every review URL: anonymous, outsider, annotator, curator, admin.
An annotator never sees another annotator's reviews or any curator/admin page."""

import pytest
from django.test import Client

from flywheel_site.access import FORBIDDEN
from review import services
from review.models import Review
from tests.support.review import make_items, review

pytestmark = pytest.mark.django_db

ANNOTATOR_GETS = ["/review/", "/review/mine/", "/review/guidelines/"]
CURATOR_GETS = ["/review/adjudication/", "/review/stats/", "/review/guidelines/edit/"]
ANNOTATOR_POSTS = [
    "/review/next/",
    "/review/items/{pk}/submit/",
    "/review/items/{pk}/skip/",
    "/review/items/{pk}/renew/",
    "/review/items/{pk}/diff/",
]
CURATOR_POSTS = [
    "/review/adjudication/next/",
    "/review/items/{pk}/claim/",
    "/review/items/{pk}/adjudicate/",
    "/review/guidelines/edit/",
    "/review/guidelines/preview/",
]
ITEM_GET = "/review/items/{pk}/"
REVIEW_GET = "/review/reviews/{pk}/"
EVERY_URL = [("get", u) for u in [*ANNOTATOR_GETS, *CURATOR_GETS, ITEM_GET, REVIEW_GET]] + [
    ("post", u) for u in ANNOTATOR_POSTS + CURATOR_POSTS
]


@pytest.fixture
def urls(annotator2):
    (item,) = make_items(1)
    make_items(2, priority=0.1)
    done = review(item, annotator2)
    return {"pk": item.pk, "review": done.pk}


def fill(url: str, ids: dict) -> str:
    return url.format(pk=ids["review"] if url == REVIEW_GET else ids["pk"])


@pytest.mark.parametrize(("method", "url"), EVERY_URL)
def test_anonymous_visitors_are_sent_to_log_in(client, urls, method, url):
    response = getattr(client, method)(fill(url, urls))
    assert response.status_code == 302
    assert response["Location"].startswith("/login/")


@pytest.mark.parametrize(("method", "url"), EVERY_URL)
def test_users_without_a_role_are_refused_everywhere(as_user, outsider, urls, method, url):
    response = getattr(as_user(outsider), method)(fill(url, urls))
    assert response.status_code == 403
    assert FORBIDDEN in response.content.decode()


@pytest.mark.parametrize(
    ("method", "url"), [("get", u) for u in CURATOR_GETS] + [("post", u) for u in CURATOR_POSTS]
)
def test_annotators_are_refused_curator_pages(as_user, annotator, urls, method, url):
    response = getattr(as_user(annotator), method)(fill(url, urls))
    assert response.status_code == 403


@pytest.mark.parametrize("persona", ["annotator", "curator", "admin"])
@pytest.mark.parametrize("url", ANNOTATOR_GETS)
def test_every_role_opens_the_annotator_pages(as_user, request, urls, persona, url):
    assert as_user(request.getfixturevalue(persona)).get(url).status_code == 200


@pytest.mark.parametrize("persona", ["curator", "admin"])
@pytest.mark.parametrize("url", CURATOR_GETS)
def test_curators_and_admins_open_the_curator_pages(as_user, request, urls, persona, url):
    assert as_user(request.getfixturevalue(persona)).get(url).status_code == 200


@pytest.mark.parametrize("persona", ["annotator", "curator", "admin"])
@pytest.mark.parametrize("url", ANNOTATOR_POSTS)
def test_annotator_actions_are_open_to_every_role(as_user, request, urls, persona, url):
    user = request.getfixturevalue(persona)
    services.item_claim_next(user=user)
    response = as_user(user).post(fill(url, urls), {"decision": "approve"})
    assert response.status_code != 403
    assert "/login/" not in response.get("Location", "")


@pytest.mark.parametrize("persona", ["curator", "admin"])
def test_curators_and_admins_see_every_review_of_an_item(as_user, request, urls, persona):
    response = as_user(request.getfixturevalue(persona)).get(ITEM_GET.format(pk=urls["pk"]))
    assert response.status_code == 200
    assert "arthur" in response.content.decode()
    assert (
        as_user(request.getfixturevalue(persona))
        .get(REVIEW_GET.format(pk=urls["review"]))
        .status_code
        == 200
    )


def test_an_annotator_cannot_open_another_annotators_review(as_user, annotator, urls):
    response = as_user(annotator).get(REVIEW_GET.format(pk=urls["review"]))
    assert response.status_code == 404


def test_an_annotator_sees_their_own_review(as_user, annotator2, urls):
    response = as_user(annotator2).get(REVIEW_GET.format(pk=urls["review"]))
    assert response.status_code == 200
    assert f"Review #{urls['review']}" in response.content.decode()


def test_an_annotator_cannot_see_an_item_they_do_not_hold(as_user, annotator, urls):
    response = as_user(annotator).get(ITEM_GET.format(pk=urls["pk"]))
    body = response.content.decode()
    assert response.status_code == 409
    assert services.LEASE_LOST in body
    assert "arthur" not in body
    assert "How do I reset my password" not in body


def test_my_reviews_lists_only_mine(as_user, annotator, annotator2, urls):
    response = as_user(annotator).get("/review/mine/")
    assert response.context["reviews"] == []
    theirs = as_user(annotator2).get("/review/mine/").context["reviews"]
    assert [r.pk for r in theirs] == [urls["review"]]
    assert Review.objects.count() == 1


@pytest.mark.parametrize("url", ["/admin/", "/django-rq/"])
def test_an_annotator_gets_no_admin_page(as_user, annotator, url):
    response = as_user(annotator).get(url, follow=True)
    body = response.content.decode()
    # Django's admin sends non-staff to its login page, which says they are not authorised.
    assert "Site administration" not in body
    assert "not authorized" in body or response.status_code in (403, 404)


def test_every_post_needs_the_csrf_token_including_htmx_ones(annotator):
    make_items(1)
    client = Client(enforce_csrf_checks=True)
    client.force_login(annotator)
    assert client.post("/review/next/").status_code == 403
    assert client.post("/review/next/", headers={"HX-Request": "true"}).status_code == 403
    client.get("/review/")  # sets the csrftoken cookie, as the page does
    token = client.cookies["csrftoken"].value
    response = client.post("/review/next/", headers={"HX-Request": "true", "X-CSRFToken": token})
    assert response.status_code == 200
    assert 'id="review-screen"' in response.content.decode()
