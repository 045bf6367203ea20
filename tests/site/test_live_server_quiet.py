"""The wait that keeps a transactional test's flush from meeting a request the live server is
still serving (tests/support/live_server.py): a fresh-clone run lost its flush to such a
request as a deadlock."""

import threading
import time
import urllib.request

import pytest
from django.core.signals import request_finished, request_started

from tests.support.live_server import in_progress, wait_until_quiet


def serving(release: threading.Event, *, hold: float = 0.0) -> threading.Thread:
    """A thread that serves one request (the signals a server sends) until `release` is set,
    then `hold` seconds more."""
    started = threading.Event()

    def serve():
        request_started.send(sender=None)
        started.set()
        release.wait(10)
        time.sleep(hold)
        request_finished.send(sender=None)

    thread = threading.Thread(target=serve)
    thread.start()
    started.wait(10)
    return thread


def test_the_wait_lasts_until_the_last_request_has_finished():
    before = in_progress()
    release = threading.Event()
    thread = serving(release, hold=0.3)
    assert in_progress() == before + 1
    release.set()
    began = time.monotonic()
    wait_until_quiet(limit=5)
    assert time.monotonic() - began >= 0.3
    assert not thread.is_alive() and in_progress() == before


def test_a_request_that_never_ends_is_named_after_the_limit():
    before = in_progress()
    release = threading.Event()
    thread = serving(release)
    try:
        with pytest.raises(AssertionError, match=f"still had {before + 1} request"):
            wait_until_quiet(limit=0.2)
    finally:
        release.set()
        thread.join(10)
    assert in_progress() == before


def test_a_response_left_unread_here_or_by_a_finished_thread_is_not_waited_for():
    # The test client's streaming responses send request_finished only when read to the end.
    before = in_progress()
    request_started.send(sender=None)
    leaked = threading.Thread(target=lambda: request_started.send(sender=None))
    leaked.start()
    leaked.join(10)
    try:
        began = time.monotonic()
        wait_until_quiet(limit=5)
        assert in_progress() == before and time.monotonic() - began < 1
    finally:
        request_finished.send(sender=None)


def test_the_live_servers_requests_are_counted(live_server):
    seen = []
    original = request_started.receivers[:]

    def look():
        # Asked from another thread: a thread does not wait for its own requests (and this
        # one may have left a download unread in an earlier test).
        looker = threading.Thread(target=lambda: seen.append(in_progress()))
        looker.start()
        looker.join(10)

    def note(**kwargs):
        look()

    look()

    request_started.connect(note, weak=False, dispatch_uid="test-live-server-quiet")
    try:
        url = f"{live_server.url}/healthz"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our server)
            assert response.status == 200
    finally:
        request_started.disconnect(dispatch_uid="test-live-server-quiet")
    # Counted while it ran (in the server's own thread), and no longer once it has ended.
    before, during = seen
    assert during == before + 1
    wait_until_quiet(limit=5)
    look()
    assert seen[-1] == before and request_started.receivers == original
