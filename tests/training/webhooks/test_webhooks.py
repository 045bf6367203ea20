"""Signed webhooks against a real HTTP receiver on 127.0.0.1 that verifies every request
with the `standardwebhooks` package, on real PostgreSQL, Redis and RQ workers: delivery,
retries with backoff, the SSRF guard, at-least-once across a lost worker or Redis, the
delivery log and "send again", hostile input, and the four events training emits."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import django_rq
import pytest
import time_machine
from django.db import connection, transaction
from django.urls import reverse

from flywheel_site import redis as fw_redis
from tests.support import ROOT, factories
from tests.support.http import http_serve
from tests.support.jobs import run_jobs
from tests.support.training import frozen_version, registered
from tests.support.webhooks import LOOPBACK, Receiver
from training.datasets import services
from training.errors import TrainingError
from training.models import (
    TrainingRun,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)
from training.registry import gate
from training.registry import services as registry
from training.runs import services as runs
from training.webhooks import delivery as webhook_http
from training.webhooks import jobs
from training.webhooks import services as webhooks

# A fixed reference time: nothing here depends on today's date.
T0 = datetime(2026, 3, 2, 12, 0, tzinfo=UTC)

# --- a real receiver ------------------------------------------------------------------------


@pytest.fixture
def hook_settings(settings):
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = False
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    settings.FLYWHEEL_WEBHOOK_TIMEOUT_S = 2.0
    settings.FLYWHEEL_WEBHOOK_BACKOFF_BASE_S = 10.0
    settings.FLYWHEEL_WEBHOOK_BACKOFF_MAX_S = 3600.0
    settings.FLYWHEEL_WEBHOOK_MAX_ATTEMPTS = 5
    settings.FLYWHEEL_PUBLIC_BASE_URL = "https://flywheel.example.com"
    return settings


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.close()


def endpoint_for(receiver, *, types=(webhooks.MODEL_GATED,), host="127.0.0.1", **extra):
    endpoint = webhooks.webhook_endpoint_create(
        url=receiver.url(host), event_types=list(types), **extra
    )
    receiver.secret = endpoint.secret
    return endpoint


def emit(type_=webhooks.MODEL_GATED, **data) -> None:
    with transaction.atomic():
        webhooks.event_emit(type=type_, data={"model": 7, **data})


# --- delivery ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_subscribed_endpoint_receives_one_signed_event_through_a_real_worker(
    hook_settings, receiver
):
    endpoint = endpoint_for(receiver)
    other = Receiver()  # subscribed to another type: gets nothing
    try:
        webhooks.webhook_endpoint_create(url=other.url(), event_types=[webhooks.QUARANTINE_APPLIED])
        disabled = endpoint_for(other)  # subscribed but disabled: gets nothing
        webhooks.webhook_endpoint_enable(endpoint=disabled, enabled=False)
        receiver.secret = endpoint.secret

        emit(name="support-v1")
        # The emitting transaction committed without waiting for any receiver.
        assert receiver.requests == [] and WebhookDelivery.objects.count() == 1
        run_jobs("webhooks")
    finally:
        other.close()

    assert other.requests == []
    assert len(receiver.requests) == 1
    got = receiver.requests[0]
    assert got["verified"], got["payload"]
    event = WebhookEvent.objects.get()
    assert got["payload"] == {
        "type": "model.gated",
        "timestamp": event.timestamp.isoformat(),
        "data": {"model": 7, "name": "support-v1"},
    }
    assert got["headers"]["webhook-id"] == event.message_id
    assert got["headers"]["Host"] == f"127.0.0.1:{receiver.port}"
    delivery = WebhookDelivery.objects.get()
    assert (delivery.endpoint, delivery.status, delivery.attempts) == (endpoint, "delivered", 1)
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.ok, attempt.error) == (200, True, "")
    assert attempt.response_excerpt == '{"got": 1}'
    # A duplicate job (a retry, a second worker) finds the delivery done and sends nothing.
    assert jobs.webhook_deliver(delivery.pk)["result"] == "skipped"
    assert len(receiver.requests) == 1


@pytest.mark.django_db(transaction=True)
def test_an_endpoint_failing_twice_gets_the_event_on_the_third_attempt_after_growing_delays(
    hook_settings, receiver
):
    receiver.statuses = [500, 503]
    endpoint_for(receiver)
    with time_machine.travel(T0, tick=True) as clock:
        emit()
        run_jobs("webhooks")  # attempt 1: 500
        delivery = WebhookDelivery.objects.get()
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        first_wait = delivery.next_attempt_at - WebhookAttempt.objects.get().started_at
        # Not due yet: the sweeper queues nothing and a stray job does nothing.
        assert webhooks.deliveries_sweep()["queued"] == 0
        assert jobs.webhook_deliver(delivery.pk)["result"] == "skipped"

        clock.shift(timedelta(seconds=11))
        assert webhooks.deliveries_sweep()["queued"] == 1
        run_jobs("webhooks")  # attempt 2: 503
        delivery.refresh_from_db()
        assert (delivery.status, delivery.attempts) == ("pending", 2)
        second = WebhookAttempt.objects.get(number=2)
        second_wait = delivery.next_attempt_at - second.started_at

        clock.shift(timedelta(seconds=21))
        assert webhooks.deliveries_sweep()["queued"] == 1
        run_jobs("webhooks")  # attempt 3: 200
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 3)
    assert 10 <= first_wait.total_seconds() < 11
    assert 20 <= second_wait.total_seconds() < 21
    codes = list(WebhookAttempt.objects.order_by("number").values_list("status_code", flat=True))
    assert codes == [500, 503, 200]
    assert [r["verified"] for r in receiver.requests] == [True, True, True]
    # The same webhook-id every time, so the receiver can drop repeats; fresh timestamps.
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1
    stamps = [int(r["headers"]["webhook-timestamp"]) for r in receiver.requests]
    assert stamps == sorted(stamps) and stamps[-1] - stamps[0] >= 31


def test_the_backoff_doubles_up_to_its_cap(hook_settings):
    hook_settings.FLYWHEEL_WEBHOOK_BACKOFF_BASE_S = 30
    hook_settings.FLYWHEEL_WEBHOOK_BACKOFF_MAX_S = 200
    assert [webhooks.backoff_seconds(n) for n in range(1, 6)] == [30, 60, 120, 200, 200]


@pytest.mark.django_db(transaction=True)
def test_a_delivery_gives_up_after_the_maximum_attempts(hook_settings, receiver):
    hook_settings.FLYWHEEL_WEBHOOK_MAX_ATTEMPTS = 2
    hook_settings.FLYWHEEL_WEBHOOK_BACKOFF_BASE_S = 0
    receiver.statuses = [500, 500, 500]
    endpoint_for(receiver)
    emit()
    run_jobs("webhooks")
    webhooks.deliveries_sweep()
    run_jobs("webhooks")
    delivery = WebhookDelivery.objects.get()
    assert (delivery.status, delivery.attempts) == ("failed", 2)
    assert webhooks.deliveries_sweep()["queued"] == 0
    assert len(receiver.requests) == 2


# --- at-least-once ----------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_a_delivery_claimed_by_a_worker_that_died_is_sent_by_the_sweeper(hook_settings, receiver):
    endpoint_for(receiver)
    with time_machine.travel(T0, tick=True) as clock:
        emit()
        delivery = WebhookDelivery.objects.get()
        # What a worker killed with -9 mid-request leaves: the row claimed, the job gone.
        assert webhooks.delivery_claim(delivery_id=delivery.pk) is not None
        django_rq.get_queue("webhooks").empty()
        assert webhooks.deliveries_sweep() == {"reclaimed": 0, "queued": 0}  # claim is live

        clock.shift(timedelta(seconds=webhooks._claim_seconds() + 1))
        assert webhooks.deliveries_sweep()["reclaimed"] == 1
        delivery.refresh_from_db()
        assert delivery.status == "pending"
        lost = WebhookAttempt.objects.get()
        assert lost.error == webhooks.ERR_ABANDONED

        clock.shift(timedelta(seconds=11))
        assert webhooks.deliveries_sweep()["queued"] == 1
        run_jobs("webhooks")
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert len(receiver.requests) == 1 and receiver.requests[0]["verified"]


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_worker_killed_mid_request_loses_nothing(hook_settings, receiver):
    """A real `rqworker webhooks` process is killed with SIGKILL while the receiver holds its
    request; the sweeper takes the delivery back and another worker delivers it (again:
    at-least-once, the same webhook-id)."""
    endpoint_for(receiver)
    receiver.hold = threading.Event()
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": hook_settings.REDIS_URL,
        "FLYWHEEL_ALLOW_DEV_SECRET": "true",
        "FLYWHEEL_ENV_FILE": "",
        "FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS": "127.0.0.0/8",
        "FLYWHEEL_WEBHOOK_TIMEOUT_S": "30",
    }
    emit()
    worker = subprocess.Popen(
        [
            *(sys.executable, "manage.py", "rqworker", "webhooks", "--burst"),
            *("--worker-class", "rq.worker.SimpleWorker"),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180  # a loaded machine starts Django slowly
        while not receiver.requests and time.monotonic() < deadline:
            time.sleep(0.05)
        assert receiver.requests, "the worker never sent the request"
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    receiver.hold.set()
    receiver.hold = None
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "sending"  # claimed by the dead worker

    later = delivery.claimed_until + timedelta(seconds=1)
    with time_machine.travel(later, tick=True) as clock:
        assert webhooks.deliveries_sweep()["reclaimed"] == 1
        clock.shift(timedelta(seconds=11))
        assert webhooks.deliveries_sweep()["queued"] == 1
        run_jobs("webhooks")
    delivery.refresh_from_db()
    assert (delivery.status, delivery.attempts) == ("delivered", 2)
    assert len(receiver.requests) == 2 and all(r["verified"] for r in receiver.requests)
    assert len({r["headers"]["webhook-id"] for r in receiver.requests}) == 1


@pytest.mark.django_db(transaction=True)
def test_the_sweeper_is_a_periodic_job_on_the_webhooks_queue(hook_settings, receiver):
    from rq import cron

    import flywheel_site.cron  # noqa: F401 (registers the jobs)

    [entry] = [e for e in cron._job_data_registry if e["name"] == "webhooks-sweep"]
    assert (entry["func"], entry["queue_name"]) == (jobs.webhooks_sweep, "webhooks")
    assert entry["interval"] == hook_settings.FLYWHEEL_WEBHOOK_SWEEP_INTERVAL_S
    endpoint_for(receiver)
    # An event exists only if the change it announces committed.
    with transaction.atomic():
        webhooks.event_emit(type=webhooks.MODEL_GATED, data={})
        transaction.set_rollback(True)
    assert not WebhookEvent.objects.exists()
    assert django_rq.get_queue("webhooks").count == 0
    assert jobs.webhooks_sweep() == {"reclaimed": 0, "queued": 0}


@pytest.mark.django_db(transaction=True)
def test_events_emitted_while_redis_is_down_are_delivered_after_it_returns(hook_settings, receiver):
    endpoint_for(receiver)
    fw_redis.mark_down(ConnectionError("redis is down"))
    emit()  # the commit succeeds; the enqueue is skipped
    delivery = WebhookDelivery.objects.get()
    assert delivery.status == "pending"
    assert django_rq.get_queue("webhooks").count == 0

    fw_redis.reset()
    assert webhooks.deliveries_sweep()["queued"] == 1
    # A second sweep before the worker runs does not queue it twice.
    assert webhooks.deliveries_sweep()["queued"] == 0
    run_jobs("webhooks")
    delivery.refresh_from_db()
    assert delivery.status == "delivered"
    assert len(receiver.requests) == 1


# --- the SSRF guard ---------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("url", "kind"),
    [
        ("http://127.0.0.1:8000/x", "loopback"),
        ("http://localhost/x", "loopback"),
        ("http://[::1]/x", "loopback"),
        ("http://[::ffff:127.0.0.1]/x", "loopback"),
        ("http://10.1.2.3/x", "private"),
        ("http://192.168.0.10/x", "private"),
        ("http://169.254.169.254/latest/meta-data/", "link-local"),
        ("http://224.0.0.1/x", "multicast"),
        ("http://0.0.0.0/x", "unspecified"),
        ("http://100.64.0.1/x", "non-public"),
    ],
)
def test_the_guard_refuses_non_public_receivers_by_default(settings, url, kind):
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = False
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = []
    with pytest.raises(TrainingError) as refused:
        webhooks.webhook_endpoint_create(url=url, event_types=[webhooks.MODEL_GATED])
    assert "is not a public address: refused" in refused.value.message, kind
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
@pytest.mark.parametrize(
    "url",
    ["ftp://example.com/x", "file:///etc/passwd", "http://user:pw@example.com/", "http:///x"],
)
def test_the_guard_refuses_other_schemes_credentials_and_no_host(settings, url):
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = True
    with pytest.raises(TrainingError):
        webhooks.webhook_endpoint_create(url=url, event_types=[webhooks.MODEL_GATED])
    assert not WebhookEndpoint.objects.exists()


@pytest.mark.django_db
def test_loopback_is_allowed_by_a_setting(settings):
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = []
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = True
    assert webhooks.webhook_endpoint_create(
        url="http://127.0.0.1:9/x", event_types=[webhooks.MODEL_GATED]
    )
    settings.FLYWHEEL_WEBHOOK_ALLOW_PRIVATE = False
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    assert webhooks.webhook_endpoint_create(
        url="http://127.0.0.2:9/x", event_types=[webhooks.MODEL_GATED]
    )
    with pytest.raises(TrainingError):  # the allow-list is not a blanket
        webhooks.webhook_endpoint_create(url="http://10.0.0.1/x", event_types=["model.gated"])


@pytest.mark.django_db(transaction=True)
def test_the_guard_runs_again_at_send_time(hook_settings, receiver):
    """Registered while allowed, `localhost` is refused when the delivery is attempted with
    the setting off: nothing reaches the receiver and the attempt says why."""
    endpoint_for(receiver, host="localhost")
    hook_settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = []
    emit()
    run_jobs("webhooks")
    attempt = WebhookAttempt.objects.get()
    assert receiver.requests == []
    assert (attempt.ok, attempt.status_code) == (False, None)
    assert "localhost is not a public address: refused" in attempt.error
    assert WebhookDelivery.objects.get().status == "pending"


@pytest.mark.django_db(transaction=True)
def test_the_request_goes_to_the_address_that_was_checked_with_the_host_header_kept(
    hook_settings, receiver, monkeypatch
):
    """One resolution decides: the connection is made to the address checked (here the
    receiver's), not to whatever a second DNS lookup would say, and the Host is the URL's."""
    real = socket.getaddrinfo
    lookups = []

    def resolver(host, *args, **kwargs):
        if host == "hooks.example.test":
            lookups.append(host)
            return real("127.0.0.1", *args, **kwargs)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", resolver)
    endpoint_for(receiver, host="hooks.example.test")
    lookups.clear()
    emit()
    run_jobs("webhooks")
    assert lookups == ["hooks.example.test"]  # once per attempt, by the guard
    assert receiver.requests[0]["headers"]["Host"] == f"hooks.example.test:{receiver.port}"
    assert receiver.requests[0]["verified"]


def test_https_goes_to_the_checked_address_with_sni_and_the_certificate_of_the_host(
    hook_settings, tmp_path, monkeypatch
):
    """A TLS receiver with a certificate for hooks.example.test only, reached at the
    127.0.0.1 the guard resolved: the handshake names the host (SNI) and the certificate is
    verified against it, so pinning the address costs no TLS check."""
    if shutil.which("openssl") is None:
        pytest.skip("needs the openssl command to make a certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(
        [
            *("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2"),
            *("-keyout", str(key), "-out", str(cert), "-subj", "/CN=hooks.example.test"),
            *("-addext", "subjectAltName=DNS:hooks.example.test"),
        ],
        check=True,
        capture_output=True,
    )
    seen, names = [], []

    class Tls(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            seen.append(self.headers["Host"])
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Tls)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    context.sni_callback = lambda sock, name, ctx: names.append(name)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    http_serve(server)
    real = socket.getaddrinfo
    monkeypatch.setattr(
        socket,
        "getaddrinfo",
        lambda host, *a, **k: real("127.0.0.1" if host == "hooks.example.test" else host, *a, **k),
    )
    url = f"https://hooks.example.test:{server.server_address[1]}/in"
    try:
        untrusted = webhook_http.post(url=url, body=b"{}", headers={}, excerpt_max=1000)
        monkeypatch.setenv("SSL_CERT_FILE", str(cert))  # trust the test certificate
        trusted = webhook_http.post(url=url, body=b"{}", headers={}, excerpt_max=1000)
    finally:
        server.shutdown()
        server.server_close()
    assert "CERTIFICATE_VERIFY_FAILED" in untrusted.error
    assert (trusted.ok, trusted.status_code) == (True, 204)
    assert seen == [f"hooks.example.test:{server.server_address[1]}"]
    assert names == ["hooks.example.test", "hooks.example.test"]


@pytest.mark.django_db(transaction=True)
def test_redirects_are_not_followed(hook_settings, receiver):
    receiver.statuses = [302]
    endpoint_for(receiver)
    emit()
    run_jobs("webhooks")
    attempt = WebhookAttempt.objects.get()
    assert (attempt.status_code, attempt.ok) == (302, False)
    assert len(receiver.requests) == 1


def test_a_receiver_that_drips_its_answer_cannot_hold_the_worker(hook_settings):
    class Drip(BaseHTTPRequestHandler):
        def do_POST(self):
            self.rfile.read(int(self.headers["Content-Length"]))
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            for _ in range(1000):
                self.wfile.write(b"x")
                self.wfile.flush()
                time.sleep(0.05)

        def log_message(self, *args):
            pass

    hook_settings.FLYWHEEL_WEBHOOK_TIMEOUT_S = 0.5
    server = ThreadingHTTPServer(("127.0.0.1", 0), Drip)
    http_serve(server)
    try:
        result = webhook_http.post(
            url=f"http://127.0.0.1:{server.server_address[1]}/",
            body=b"{}",
            headers={},
            excerpt_max=1000,
        )
    finally:
        server.shutdown()
        server.server_close()
    # Within twice the timeout plus one read, not the 50 s the answer would take.
    assert result.latency_ms < 2000
    assert (result.ok, result.status_code) == (True, 200)
    assert 0 < len(result.excerpt) < 1000


def test_a_dead_endpoint_fails_fast_with_the_error_recorded(hook_settings):
    with socket.socket() as sock:  # a port that nobody listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    result = webhook_http.post(
        url=f"http://127.0.0.1:{port}/", body=b"{}", headers={}, excerpt_max=1000
    )
    assert result.ok is False and result.status_code is None
    assert "refused" in result.error.lower()
    assert result.latency_ms < 2000


# --- pages ------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_delivery_log_pages_and_send_again(
    hook_settings, receiver, admin, client, django_capture_on_commit_callbacks
):
    endpoint = endpoint_for(receiver)
    with django_capture_on_commit_callbacks(execute=False):
        for n in range(55):
            webhooks.event_emit(type=webhooks.MODEL_GATED, data={"model": n})
    first = WebhookDelivery.objects.order_by("pk").first()
    webhooks.delivery_attempt(delivery_id=first.pk)
    client.force_login(admin)

    page = client.get(reverse("webhooks:deliveries"))
    html = page.content.decode()
    assert page.status_code == 200
    assert html.count('<tr id="delivery-') == 50
    newest = WebhookDelivery.objects.order_by("-pk")[49].pk
    assert f"before={newest}" in html
    older = client.get(reverse("webhooks:deliveries"), {"before": newest, "endpoint": endpoint.pk})
    html = older.content.decode()
    assert html.count('<tr id="delivery-') == 5
    row = html.split(f'id="delivery-{first.pk}"')[1].split("</tr>")[0]
    assert "delivered" in row and ">200<" in row and " ms" in row and "{&quot;got&quot;: 1}" in row
    assert "Send again" in row

    detail = client.get(reverse("webhooks:delivery", args=[first.pk])).content.decode()
    assert first.event.message_id in detail and "&quot;model&quot;:0" in detail

    with django_capture_on_commit_callbacks(execute=True):
        resent = client.post(reverse("webhooks:resend", args=[first.pk]))
    assert resent.status_code == 302
    first.refresh_from_db()
    assert (first.status, first.attempts) == ("pending", 0)
    webhooks.delivery_attempt(delivery_id=first.pk)
    first.refresh_from_db()
    assert (first.status, first.attempt_rows.count()) == ("delivered", 2)
    assert [r["headers"]["webhook-id"] for r in receiver.requests] == [first.event.message_id] * 2

    # A pending delivery is not sent "again": refused, unchanged.
    pending = WebhookDelivery.objects.order_by("-pk").first()
    refused = client.post(reverse("webhooks:resend", args=[pending.pk]), follow=True)
    assert "still on its way" in refused.content.decode()
    pending.refresh_from_db()
    assert (pending.status, pending.attempts) == ("pending", 0)


@pytest.mark.django_db
def test_an_admin_registers_edits_disables_and_tests_an_endpoint(
    hook_settings, receiver, admin, client, django_capture_on_commit_callbacks
):
    client.force_login(admin)
    created = client.post(
        reverse("webhooks:endpoints"),
        {"url": receiver.url(), "event_types": ["model.gated", "monitor.alert"]},
    )
    endpoint = WebhookEndpoint.objects.get()
    assert created["Location"] == reverse("webhooks:endpoint", args=[endpoint.pk])
    assert endpoint.secret.startswith("whsec_") and endpoint.created_by == admin
    receiver.secret = endpoint.secret
    page = client.get(created["Location"]).content.decode()
    assert endpoint.secret in page  # viewable by admins
    assert "Webhooks</a>" in page  # the nav link

    client.post(
        reverse("webhooks:endpoint", args=[endpoint.pk]),
        {"url": receiver.url(), "event_types": ["dataset.version_frozen"], "description": "ops"},
    )
    endpoint.refresh_from_db()
    assert (endpoint.event_types, endpoint.description) == (["dataset.version_frozen"], "ops")

    with django_capture_on_commit_callbacks(execute=False):
        client.post(reverse("webhooks:test", args=[endpoint.pk]))
    event = WebhookEvent.objects.get()
    assert event.type == webhooks.TEST
    webhooks.delivery_attempt(delivery_id=event.deliveries.get().pk)
    assert receiver.requests[0]["verified"]
    assert receiver.requests[0]["payload"]["data"]["links"]["endpoint"] == (
        f"https://flywheel.example.com/webhooks/{endpoint.pk}/"
    )

    client.post(reverse("webhooks:enable", args=[endpoint.pk]), {"enabled": "off"})
    endpoint.refresh_from_db()
    assert endpoint.enabled is False
    webhooks.event_emit(type=webhooks.DATASET_VERSION_FROZEN, data={})
    assert WebhookDelivery.objects.count() == 1  # the disabled endpoint got no delivery


@pytest.mark.django_db
@pytest.mark.parametrize(
    "data",
    [
        {"url": "file:///etc/passwd", "event_types": ["model.gated"]},
        {"url": "http://127.0.0.1/" + "a" * 3000, "event_types": ["model.gated"]},
        {"url": "http://10.0.0.1/x", "event_types": ["model.gated"]},
        {"url": "http://127.0.0.1/x", "event_types": ["model.deleted"]},
        {"url": "http://127.0.0.1/x", "event_types": []},
        {"url": "http://127.0.0.1/x", "event_types": ["model.gated"], "description": "d" * 201},
        {"url": "http://127.0.0.1/x", "event_types": ["model.gated"], "secret": "hunter2"},
        {"url": "http://127.0.0.1/x", "event_types": ["model.gated"], "secret": "whsec_AAAA"},
    ],
)
def test_hostile_input_is_refused_with_400_and_changes_nothing(hook_settings, admin, client, data):
    existing = webhooks.webhook_endpoint_create(
        url="http://127.0.0.1:9/ok", event_types=["model.gated"]
    )
    client.force_login(admin)
    assert client.post(reverse("webhooks:endpoints"), data).status_code == 400
    if "secret" not in data:  # the edit form has no secret field
        edit = client.post(reverse("webhooks:endpoint", args=[existing.pk]), data)
        assert edit.status_code == 400
    enable = client.post(reverse("webhooks:enable", args=[existing.pk]), {"enabled": "x"})
    assert enable.status_code == 400
    after = WebhookEndpoint.objects.get()
    assert (after.url, after.event_types, after.enabled) == (
        "http://127.0.0.1:9/ok",
        ["model.gated"],
        True,
    )


@pytest.mark.django_db
def test_back_after_a_refused_switch_reaches_the_endpoint_page_not_a_405(
    hook_settings, admin, client
):
    endpoint = webhooks.webhook_endpoint_create(
        url="http://127.0.0.1:9/ok", event_types=["model.gated"]
    )
    client.force_login(admin)
    url = reverse("webhooks:enable", args=[endpoint.pk])
    assert client.post(url, {"enabled": "x"}).status_code == 400
    back = client.get(url, follow=True)
    assert back.redirect_chain == [(reverse("webhooks:endpoint", args=[endpoint.pk]), 302)]
    assert back.status_code == 200
    assert WebhookEndpoint.objects.get().enabled is True


@pytest.mark.django_db
def test_unknown_event_types_cannot_be_emitted():
    with pytest.raises(ValueError, match="Unknown event type"):
        webhooks.event_emit(type="model.deleted", data={})
    assert not WebhookEvent.objects.exists()


# --- the four events training emits -----------------------------------------------------------


@pytest.fixture
def subscriber(hook_settings):
    return webhooks.webhook_endpoint_create(
        url="http://127.0.0.1:9/all", event_types=list(webhooks.EVENT_TYPES)
    )


def running(version) -> TrainingRun:
    return factories.training_run(version, config={"auto_promote": False})


def events(type_: str) -> list[WebhookEvent]:
    return list(WebhookEvent.objects.filter(type=type_).order_by("pk"))


@pytest.mark.django_db
def test_freezing_a_version_emits_one_dataset_version_frozen(subscriber, admin):
    version = frozen_version(admin)
    services.dataset_version_freeze(dataset=version.dataset, user=admin)  # nothing new
    (event,) = events(webhooks.DATASET_VERSION_FROZEN)
    assert event.data["dataset_version"] == version.pk
    assert event.data["links"]["version"] == (
        f"https://flywheel.example.com/datasets/{version.dataset.name}/v{version.number}/"
    )
    assert event.deliveries.get().endpoint == subscriber


@pytest.mark.django_db
def test_registering_a_gated_model_emits_one_model_gated(subscriber, admin):
    version = frozen_version(admin)
    run = running(version)
    result = gate.GateResult(
        passed=True,
        detail="passes",
        metric="normalised_accuracy",
        margin=0.0,
        metrics={"normalised_accuracy": 0.8},
        baseline=None,
        baseline_metrics={},
    )
    model = registry.model_version_register(run=run, adapter_dir=None, gate_result=result)
    (event,) = events(webhooks.MODEL_GATED)
    assert (event.data["model"], event.data["gate_passed"]) == (model.pk, True)
    assert event.data["links"]["model"].endswith(f"/training/models/{model.pk}/")
    assert event.deliveries.count() == 1


@pytest.mark.django_db
def test_a_finished_run_emits_one_training_run_finished(subscriber, admin):
    version = frozen_version(admin)
    model = registered(version)
    run = model.run
    TrainingRun.objects.filter(pk=run.pk).update(status="running")
    assert runs.training_run_succeed(run_id=run.pk, metrics={"loss": 1.0}, model=model)
    assert not runs.training_run_succeed(run_id=run.pk, metrics={}, model=model)
    failing = running(version)
    runs.training_run_fail(run=failing, error="boom")
    runs.training_run_fail(run=failing, error="boom again")
    done, failed = events(webhooks.TRAINING_RUN_FINISHED)
    assert (done.data["run"], done.data["status"], done.data["model"]) == (
        run.pk,
        "succeeded",
        model.pk,
    )
    assert (failed.data["run"], failed.data["status"], failed.data["error"]) == (
        failing.pk,
        "failed",
        "boom",
    )


@pytest.mark.django_db
def test_applying_a_quarantine_emits_one_quarantine_applied(subscriber, admin):
    version = frozen_version(admin)
    model = registered(version, status="promoted")
    quarantine, _ = services.quarantine_apply(
        user=admin, kind="dataset_version", dataset_version=version, reason="leaked PII"
    )
    (event,) = events(webhooks.QUARANTINE_APPLIED)
    assert event.data["quarantine"] == quarantine.pk
    assert event.data["rolled_back_models"] == [model.pk]
    assert event.deliveries.get().endpoint == subscriber


@pytest.mark.django_db
def test_a_refused_registration_re_renders_at_a_url_that_answers_get(hook_settings, admin, client):
    client.force_login(admin)
    page = reverse("webhooks:endpoints")
    refused = client.post(page, {"url": "file:///etc/passwd", "event_types": ["model.gated"]})
    assert refused.status_code == 400 and 'role="alert"' in refused.content.decode()
    assert f'action="{page}"' in refused.content.decode()  # the form posts to its own page
    assert client.get(page).status_code == 200  # what Back or reload asks for
    assert not WebhookEndpoint.objects.exists()
