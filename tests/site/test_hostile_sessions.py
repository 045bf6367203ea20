"""Sessions end when idle and after 12 hours, destructive admin actions (the Django admin,
django-rq, erasing a user) ask for the password again, and login lockout is keyed on the
real client behind a trusted proxy, with a per-address throttle for usernames that name
nobody (issue 18, row 8)."""

from datetime import UTC, datetime, timedelta

import django_rq
import pytest
import time_machine
from django.conf import settings
from django.test import Client, RequestFactory

from flywheel_site.login import client_ip
from tests.support.personas import PASSWORD

pytestmark = pytest.mark.django_db

T0 = datetime(2026, 11, 16, 9, 0, tzinfo=UTC)
PROXY = "10.0.0.5"


def at(minutes: float):
    return time_machine.travel(T0 + timedelta(minutes=minutes), tick=False)


def test_a_session_idle_for_31_minutes_is_logged_out_and_sent_to_log_in(client, annotator):
    with at(0):
        client.force_login(annotator)
        assert client.get("/review/").status_code == 200
    with at(29):
        assert client.get("/review/").status_code == 200  # activity moves the idle clock
    with at(29 + 31):
        gone = client.get("/review/mine/")
    assert gone.status_code == 302 and gone["Location"] == "/login/?next=/review/mine/"
    with at(29 + 31.5):
        assert client.get("/review/").status_code == 302  # logged out, not only redirected


def test_an_htmx_request_of_an_idle_session_sends_the_browser_to_log_in(client, annotator):
    with at(0):
        client.force_login(annotator)
        client.get("/review/")
    with at(45):
        gone = client.post("/review/next/", headers={"HX-Request": "true"})
    assert gone.status_code == 200 and gone["HX-Redirect"] == "/login/?next=/review/next/"


def test_an_active_session_still_ends_12_hours_after_the_log_in(client, annotator):
    with at(0):
        client.force_login(annotator)
        client.get("/review/")
    for minute in range(20, 12 * 60, 20):
        with at(minute):
            assert client.get("/review/").status_code == 200, minute
    with at(12 * 60 + 1):
        assert client.get("/review/").status_code == 302


def test_the_idle_timeout_is_a_setting(client, annotator, settings):
    settings.FLYWHEEL_SESSION_IDLE_MINUTES = 5
    with at(0):
        client.force_login(annotator)
        client.get("/review/")
    with at(6):
        assert client.get("/review/").status_code == 302


@pytest.fixture
def staff_admin(admin):
    admin.is_staff = True
    admin.save(update_fields=["is_staff"])
    return admin


def test_emptying_a_queue_asks_for_the_password_when_the_log_in_is_old(client, staff_admin):
    queue = django_rq.get_queue("default", commit_mode="auto")
    queue.enqueue("builtins.print", "kept")
    with at(0):
        client.force_login(staff_admin)
        client.get("/django-rq/")
    with at(15):
        asked = client.post("/django-rq/queues/0/empty/", {"post": "yes"})
        assert asked.status_code == 302 and asked["Location"].startswith("/reauth/?next=")
        assert queue.count == 1
        wrong = client.post("/reauth/", {"password": "not-it-at-all", "next": "/django-rq/"})
        assert wrong.status_code == 422 and "not your password" in wrong.content.decode()
        right = client.post("/reauth/", {"password": PASSWORD, "next": "/django-rq/"})
        assert right.status_code == 302 and right["Location"] == "/django-rq/"
        done = client.post("/django-rq/queues/0/empty/", {"post": "yes"})
    # django-rq's answer once it has emptied the queue: back to the queue's jobs.
    assert done.status_code == 302 and done["Location"] == "/django-rq/queues/0/"


def test_erasing_a_user_asks_for_the_password_when_the_log_in_is_old(client, admin):
    from flywheel_site.audit.models import Erasure

    with at(0):
        client.force_login(admin)
        client.get("/audit/erase/")
    with at(15):
        asked = client.post("/audit/erase/", {"user_id": "carol"})
        assert asked.status_code == 302 and asked["Location"] == "/reauth/?next=%2Faudit%2Ferase%2F"
        assert not Erasure.objects.exists()
        client.post("/reauth/", {"password": PASSWORD, "next": "/audit/erase/"})
        done = client.post("/audit/erase/", {"user_id": "carol"})
    assert done.status_code == 302 and done["Location"] == "/audit/erase/"
    assert Erasure.objects.count() == 1


def test_reauth_never_redirects_off_the_site(client, staff_admin):
    client.force_login(staff_admin)
    answer = client.post("/reauth/", {"password": PASSWORD, "next": "https://evil.example/"})
    assert answer["Location"] == "/"


@pytest.mark.parametrize(
    ("remote", "forwarded", "client"),
    [
        (PROXY, "1.2.3.4", "1.2.3.4"),
        (PROXY, "6.6.6.6, 1.2.3.4", "1.2.3.4"),  # the client wrote 6.6.6.6 itself
        (PROXY, "1.2.3.4, 10.0.0.9", "1.2.3.4"),  # two trusted proxies in a row
        ("8.8.4.4", "1.2.3.4", "8.8.4.4"),  # not from a trusted proxy: the header is ignored
        (PROXY, "", PROXY),
        (PROXY, "not-an-ip, 1.2.3.4", "1.2.3.4"),
        (PROXY, "1.2.3.4, junk", PROXY),
    ],
)
def test_the_client_address_believes_only_trusted_proxies(settings, remote, forwarded, client):
    import ipaddress

    settings.FLYWHEEL_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)
    assert client_ip(request) == client


def log_in(client, username, password, address):
    return client.post(
        "/login/",
        {"username": username, "password": password},
        REMOTE_ADDR=PROXY,
        HTTP_X_FORWARDED_FOR=address,
    )


@pytest.fixture
def behind_proxy(settings):
    import ipaddress

    settings.FLYWHEEL_TRUSTED_PROXIES = [ipaddress.ip_network("10.0.0.0/8")]


def test_a_stranger_behind_the_proxy_cannot_lock_a_colleague_out(behind_proxy, annotator):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), "annie", "wrong-password-123", "6.6.6.6")
    assert log_in(Client(), "annie", "wrong-password-123", "6.6.6.6").status_code == 429
    assert log_in(Client(), "annie", PASSWORD, "1.2.3.4").status_code == 302


def test_unknown_usernames_are_throttled_per_address(behind_proxy, annotator):
    for n in range(settings.AXES_FAILURE_LIMIT):
        log_in(Client(), f"nobody-{n}", "wrong-password-123", "6.6.6.6")
    assert log_in(Client(), "nobody-else", "wrong-password-123", "6.6.6.6").status_code == 429
    # Another address, and a real account from the same one, are not held up.
    assert log_in(Client(), "nobody-else", "wrong-password-123", "1.2.3.4").status_code == 200
    assert log_in(Client(), "annie", PASSWORD, "6.6.6.6").status_code == 302
