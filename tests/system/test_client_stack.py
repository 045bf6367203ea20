"""The Python client (clients/python) against the real app: gunicorn, PostgreSQL, Redis.

A local proxy in the test stands between the client and gunicorn and answers 429 and 503
part of the time, sometimes after gunicorn stored the batch (the answer is lost, so the
retry meets its own events); gunicorn is killed and started again once in the middle.
Every event must be stored exactly once. Then, with the server unreachable, the app's
calls stay under a millisecond, memory under the queue bound, and close(2) under 2.5 s."""

import http.client
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote, urlparse

import psutil
import pytest
from django.conf import settings
from django.db import connection
from flywheel_client import Flywheel

from curation.models import Interaction
from curation.services import api_token_create
from tests.support.http import http_serve

MESSAGES = [{"role": "user", "content": "What is the refund window?"}]


def _database_url() -> str:
    db = connection.settings_dict
    password = f":{quote(db['PASSWORD'])}" if db["PASSWORD"] else ""
    return f"postgres://{quote(db['USER'])}{password}@{db['HOST']}:{db['PORT']}/{db['NAME']}"


class Gunicorn:
    """The app under gunicorn on a socket the test holds, so that a restart keeps the
    address and connections made while it is down wait in the backlog."""

    def __init__(self):
        self.listener = socket.socket()
        self.listener.bind(("127.0.0.1", 0))
        self.listener.listen(64)
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.env = {**os.environ, "DATABASE_URL": _database_url()}
        self.process = None

    def start(self):
        self.process = subprocess.Popen(
            [
                f"{sys.prefix}/bin/gunicorn",
                "flywheel_site.wsgi:application",
                "--bind",
                f"fd://{self.listener.fileno()}",
                "--workers",
                "2",
                "--log-level",
                "warning",
            ],
            pass_fds=[self.listener.fileno()],
            env=self.env,
            cwd=settings.BASE_DIR,
            start_new_session=True,
        )

    def kill(self):
        # SIGKILL to the whole group: requests in flight die mid-way, as in a crash.
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)

    def stop(self):
        if self.process and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=30)
        self.listener.close()


class FaultyProxy:
    """Forwards to gunicorn; answers 429 (Retry-After) or 503 before forwarding part of
    the time, and 503 after forwarding (the batch stored, the answer lost) part of it."""

    def __init__(self, upstream: str, seed: int = 20):
        self.upstream = urlparse(upstream)
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts = {"429": 0, "503": 0, "lost": 0, "forwarded": 0, "upstream_error": 0}
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                with proxy.lock:
                    draw = proxy.random.random()
                if draw < 0.10:
                    proxy._count("429")
                    return self._answer(
                        429,
                        b'{"error":"rate_limited"}',
                        {"Retry-After": "1" if draw < 0.02 else "0"},
                    )
                if draw < 0.20:
                    proxy._count("503")
                    return self._answer(503, b'{"error":"unavailable"}', {})
                try:
                    status, answer = proxy._forward(self.path, body, self.headers)
                except (OSError, http.client.HTTPException):
                    proxy._count("upstream_error")
                    return self._answer(502, b'{"error":"bad_gateway"}', {})
                if draw < 0.25 and status == 200:
                    proxy._count("lost")
                    return self._answer(503, b'{"error":"unavailable"}', {})
                proxy._count("forwarded")
                return self._answer(status, answer, {})

            def _answer(self, status, body, headers):
                self.send_response(status)
                for key, value in {
                    **headers,
                    "Content-Type": "application/json",
                    "Content-Length": str(len(body)),
                }.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        http_serve(self.server)

    def _count(self, name):
        with self.lock:
            self.counts[name] += 1

    def _forward(self, path, body, headers):
        upstream = http.client.HTTPConnection(
            self.upstream.hostname, self.upstream.port, timeout=60
        )
        try:
            upstream.request(
                "POST",
                path,
                body,
                {
                    "Authorization": headers["Authorization"],
                    "Content-Type": headers["Content-Type"],
                },
            )
            response = upstream.getresponse()
            return response.status, response.read()
        finally:
            upstream.close()

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def gunicorn():
    server = Gunicorn()
    server.start()
    yield server
    server.stop()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_burst_through_429s_503s_and_a_gunicorn_restart_is_stored_exactly_once(gunicorn):
    _, raw = api_token_create(source_name="burst", name="client", scopes=["ingest"])
    proxy = FaultyProxy(gunicorn.url)
    fw = Flywheel(
        proxy.url,
        raw,
        max_queue=20_000,
        batch_size=200,
        flush_interval=0.2,
        backoff_base=0.05,
        backoff_max=2,
        request_timeout=30,
    )
    ids: list[list[str]] = [[] for _ in range(8)]

    def burst(n):
        for i in range(1250):
            ids[n].append(fw.log_interaction(messages=MESSAGES, response=f"{n}:{i}", model="m1"))

    threads = [threading.Thread(target=burst, args=(n,)) for n in range(8)]
    began = time.monotonic()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    deadline = time.monotonic() + 120
    while fw.stats().sent < 3000 and time.monotonic() < deadline:
        time.sleep(0.05)
    gunicorn.kill()  # in the middle of the burst: batches in flight die with it
    time.sleep(1)
    gunicorn.start()
    assert fw.flush(timeout=180), fw.stats()
    stats = fw.stats()
    fw.close(timeout=1)
    proxy.stop()
    print(f"\nburst: {time.monotonic() - began:.1f} s, {stats}, proxy {proxy.counts}")

    sent = {event_id for per_thread in ids for event_id in per_thread}
    assert len(sent) == 10_000
    stored = list(
        Interaction.objects.filter(source__name="burst").values_list("event_id", flat=True)
    )
    assert len(stored) == 10_000
    assert set(stored) == sent
    assert (stats.sent, stats.dropped, stats.rejected, stats.failed) == (10_000, 0, 0, 0)
    # The faults really happened, and the retried batches met their own stored events.
    assert proxy.counts["429"] and proxy.counts["503"] and proxy.counts["lost"]
    assert stats.retries >= proxy.counts["429"] + proxy.counts["503"] + proxy.counts["lost"]


def _hanging_server():
    """Connections are accepted by the kernel and never answered: every request hangs
    until its timeout, the worst kind of unreachable for a client."""
    hole = socket.socket()
    hole.bind(("127.0.0.1", 0))
    hole.listen(1024)
    return hole


# Every duration the client waits on is one of its settings, so "a minute unreachable" runs
# as a minute of the client's own time at a tenth of the scale: 6 s with every timeout,
# backoff and flush interval divided by ten goes through as many timeouts, backoff cycles and
# queue overflows as a real minute does; the calls and close(timeout=2) are timed for real.
# The 10 s case keeps the real timeouts (two whole request timeouts). Both take seconds of
# real time, so `make test` runs them and the inner loop does not.
@pytest.mark.slow
@pytest.mark.parametrize(
    ("seconds", "scale"),
    [(10, 1), (60, 0.1)],
    ids=["10s", "60s-at-a-tenth-of-the-time-scale"],
)
def test_with_the_server_unreachable_calls_stay_fast_and_memory_bounded(seconds, scale):
    hole = _hanging_server()
    max_queue = 5000
    fw = Flywheel(
        f"http://127.0.0.1:{hole.getsockname()[1]}",
        "t",
        max_queue=max_queue,
        flush_interval=1.0 * scale,
        request_timeout=5 * scale,
        backoff_base=0.2 * scale,
        backoff_max=2 * scale,
    )
    response = "x" * 1000
    process = psutil.Process()
    # Fill the queue once, then measure: what grows after this is what is not bounded.
    for _ in range(max_queue * 2):
        fw.log_interaction(messages=MESSAGES, response=response)
    baseline = process.memory_info().rss
    end = time.monotonic() + seconds * scale
    # Counters, not a list of every call time: the measurement must not grow memory itself.
    calls = over_1ms = 0
    total = slowest = 0.0
    while time.monotonic() < end:
        for _ in range(1000):
            started = time.perf_counter()
            fw.log_interaction(messages=MESSAGES, response=response)
            took = time.perf_counter() - started
            total += took
            slowest = max(slowest, took)
            over_1ms += took >= 0.001
        calls += 1000
        time.sleep(0.01)  # an app does other work between its calls
    grown = process.memory_info().rss - baseline
    started = time.monotonic()
    closed = fw.close(timeout=2)
    close_s = time.monotonic() - started
    hole.close()
    stats = fw.stats()
    print(  # the figures the report quotes
        f"\n{seconds}s unreachable: {calls} calls, mean {total / calls * 1e6:.1f} us, "
        f"{over_1ms} calls >= 1 ms, max {slowest * 1e3:.2f} ms, "
        f"RSS grown {grown / 1e6:.1f} MB, close {close_s:.2f} s, dropped {stats.dropped}"
    )
    assert calls > 100_000
    # Unbounded, the events logged here would take calls x ~1.2 KB (over 100 MB).
    assert grown < 10_000_000
    # Under a millisecond at the 99th percentile (measured: about 0.15% of calls over, on
    # a 2-core machine shared by several test runs: the CPU taken away, not the client
    # waiting on anything, since a call only takes a lock and appends to a deque).
    assert over_1ms / calls < 0.01
    assert total / calls < 0.0001
    assert closed is False
    assert close_s < 2.5
    assert stats.dropped >= calls
