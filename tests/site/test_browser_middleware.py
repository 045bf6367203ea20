"""Page-only middleware (between BrowserMiddleware and BrowserEndMiddleware in MIDDLEWARE)
runs for pages, with its view hooks (CSRF), and not for /api/ requests."""

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client
from django.urls import reverse

from tests.support import factories

pytestmark = pytest.mark.django_db


def test_a_page_post_without_a_csrf_token_is_refused(curator):
    """The view has no CSRF decorator of its own: the middleware's view hook refuses it."""
    client = Client(enforce_csrf_checks=True)
    client.force_login(curator)
    response = client.post(reverse("curation:interactions_retry"))
    assert response.status_code == 403
    assert b"CSRF" in response.content


def test_pages_use_the_session_and_api_answers_do_not(api):
    page = Client().get("/login/")
    assert "Cookie" in page.get("Vary", "")
    assert "csrftoken" in page.cookies
    answer = api.post("/api/v1/interactions", factories.interaction("e1"))
    assert answer.status_code == 201, answer.content
    assert "Cookie" not in answer.get("Vary", "")
    assert not answer.cookies
    assert answer["X-Frame-Options"] == "DENY"
    assert answer["X-Content-Type-Options"] == "nosniff"


def test_the_skip_needs_its_end_marker(settings):
    settings.MIDDLEWARE = [m for m in settings.MIDDLEWARE if not m.endswith("BrowserEndMiddleware")]
    with pytest.raises(ImproperlyConfigured, match="BrowserEndMiddleware must follow"):
        Client().get("/login/")
