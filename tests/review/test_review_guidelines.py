"""Guidelines: Markdown curators edit in the app, rendered safely, every version
kept and readable."""

import pytest

from flywheel_site.text_render import render_markdown
from review import guidelines, services, views
from review.models import Guideline

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}


@pytest.mark.parametrize(
    ("markdown", "present", "absent"),
    [
        ("**bold** and *em*", "<strong>bold</strong>", None),
        ("- one\n- two", "<li>one</li>", None),
        ("<script>alert(1)</script>hi", "hi", "<script"),
        # Raw HTML and unsafe links are shown as the text they are (issue 18).
        ("[x](javascript:alert(1))", "[x](javascript:alert(1))", 'href="javascript'),
        ('<img src=x onerror="alert(1)">', "&lt;img src=x", "<img"),
        ("[doc](https://example.com)", 'rel="noopener noreferrer"', None),
        ("<style>body{display:none}</style>", None, "<style"),
    ],
)
def test_markdown_is_rendered_and_cleaned(markdown, present, absent):
    html = render_markdown(markdown)
    if present:
        assert present in html
    if absent:
        assert absent not in html


def test_a_curator_saves_a_new_version_and_the_old_one_stays(as_user, curator):
    client = as_user(curator)
    first = Guideline.objects.get(version=1)
    response = client.post(
        "/review/guidelines/edit/", {"body": "# New rules\n\nBe **brief**.", "note": "short"}
    )
    assert response.status_code == 302
    assert response["Location"] == "/review/guidelines/"
    page = client.get("/review/guidelines/").content.decode()
    assert "<strong>brief</strong>" in page
    assert views.GUIDELINES_SAVED.format(version=2) in page
    old = client.get("/review/guidelines/?v=1").content.decode()
    assert "You are the gate" in old and "an old version" in old
    assert Guideline.objects.get(version=1).body == first.body


def test_the_review_screen_shows_the_current_guidelines(as_user, annotator, curator):
    from tests.support.review import make_items

    guidelines.guideline_update(body="Always check **dates**.", user=curator)
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    page = as_user(annotator).get(f"/review/items/{item.pk}/").content.decode()
    assert "Always check <strong>dates</strong>." in page


def test_saving_over_htmx_redirects_the_client(as_user, curator):
    response = as_user(curator).post("/review/guidelines/edit/", {"body": "v2"}, headers=HTMX)
    assert response.status_code == 200
    assert response["HX-Redirect"] == "/review/guidelines/"


def test_empty_guidelines_are_refused_with_a_message(as_user, curator):
    response = as_user(curator).post("/review/guidelines/edit/", {"body": "  "})
    assert response.status_code == 422
    assert guidelines.GUIDELINE_EMPTY in response.content.decode()
    assert Guideline.objects.count() == 1


@pytest.mark.parametrize("url", ["/review/guidelines/edit/", "/review/guidelines/preview/"])
def test_a_nul_byte_is_refused_and_changes_nothing(as_user, curator, url):
    response = as_user(curator).post(url, {"body": "rules\x00", "note": "n"}, headers=HTMX)
    assert response.status_code == 422
    assert 'role="alert"' in response.content.decode()
    assert Guideline.objects.count() == 1


def test_the_preview_is_a_fragment_over_htmx_and_a_page_without(as_user, curator):
    client = as_user(curator)
    fragment = client.post(
        "/review/guidelines/preview/", {"body": "*hi*<script>x</script>"}, headers=HTMX
    )
    text = fragment.content.decode().strip()
    assert text.startswith('<div id="preview"')
    assert "<em>hi</em>" in text and "<script" not in text
    page = client.post("/review/guidelines/preview/", {"body": "*hi*"})
    assert "<html" in page.content.decode()
    assert "*hi*</textarea>" in page.content.decode()
    assert Guideline.objects.count() == 1


def test_an_old_version_over_htmx_is_just_the_guideline(as_user, annotator):
    response = as_user(annotator).get("/review/guidelines/?v=1", headers=HTMX)
    assert response.content.decode().strip().startswith('<section class="card" id="guideline">')
    assert as_user(annotator).get("/review/guidelines/?v=99").status_code == 404


def test_the_edit_form_over_htmx_is_just_the_form(as_user, curator):
    response = as_user(curator).get("/review/guidelines/edit/", headers=HTMX)
    assert (
        response.content.decode().strip().startswith('<section class="card" id="guidelines-form">')
    )
