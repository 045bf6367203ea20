"""Logging in and out: the app's own pages, passwords of 12+ characters, failed
logins rate-limited by django-axes, the session renewed on login and gone after
logout."""

import pytest
from django.conf import settings
from django.contrib.auth.password_validation import validate_password
from django.core.exceptions import ValidationError
from django.test import Client

from tests.support.personas import PASSWORD

pytestmark = pytest.mark.django_db


def log_in(client, username, password):
    return client.post("/login/", {"username": username, "password": password})


def test_the_login_page_is_in_the_apps_look(client):
    page = client.get("/login/").content.decode()
    assert 'class="brand"' in page and "Log in" in page
    assert "csrfmiddlewaretoken" in page


def test_logging_in_renews_the_session_key(client, annotator):
    session = client.session  # the test client creates one and sets its cookie
    session["seen"] = True
    session.save()
    before = client.cookies[settings.SESSION_COOKIE_NAME].value
    assert before == session.session_key
    response = log_in(client, "annie", PASSWORD)
    assert response.status_code == 302
    assert client.cookies[settings.SESSION_COOKIE_NAME].value != before
    assert client.get("/review/").status_code == 200


def test_logging_out_invalidates_the_session(annotator):
    client = Client()
    log_in(client, "annie", PASSWORD)
    old_cookie = client.cookies[settings.SESSION_COOKIE_NAME].value
    response = client.post("/logout/")
    assert response.status_code == 200
    assert "Your session has ended" in response.content.decode()
    thief = Client()
    thief.cookies[settings.SESSION_COOKIE_NAME] = old_cookie
    assert thief.get("/review/").status_code == 302


def test_failed_logins_are_locked_out_after_the_limit(client, annotator, annotator2):
    limit = settings.AXES_FAILURE_LIMIT
    for _ in range(limit - 1):
        assert log_in(client, "annie", "wrong-password-123").status_code == 200
    locked = log_in(client, "annie", "wrong-password-123")
    assert locked.status_code == 429
    assert "Too many failed logins" in locked.content.decode()
    # Even the right password waits for the cool-off now ...
    assert log_in(client, "annie", PASSWORD).status_code == 429
    # ... while a colleague behind the same address is not locked out.
    assert log_in(Client(), "arthur", PASSWORD).status_code == 302


def test_a_successful_login_resets_the_failure_count(client, annotator):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        log_in(client, "annie", "wrong-password-123")
    assert log_in(client, "annie", PASSWORD).status_code == 302
    client.post("/logout/")
    assert log_in(client, "annie", "wrong-password-123").status_code == 200


@pytest.mark.parametrize(
    ("password", "ok"),
    [
        ("short-pw-1", False),
        ("123456789012345", False),
        ("password1234", False),
        ("correct-horse-battery", True),
    ],
)
def test_passwords_need_twelve_characters_and_must_not_be_common(password, ok):
    if ok:
        validate_password(password)
    else:
        with pytest.raises(ValidationError):
            validate_password(password)
