"""The wait that keeps a transactional test's flush from meeting a request the live server is
still serving (tests/support/live_server.py): a fresh-clone run lost its flush to such a
request as a deadlock."""

import threading
import time
import urllib.request

import pytest
from django.core.signals import request_finished, request_started

from tests.support.live_server import in_progress, wait_until_quiet


def test_the_wait_lasts_until_the_last_request_has_finished():
    request_started.send(sender=None)
    finished_at = []

    def finish():
        time.sleep(0.3)
        finished_at.append(time.monotonic())
        request_finished.send(sender=None)

    threading.Thread(target=finish).start()
    assert in_progress() == 1
    wait_until_quiet(limit=5)
    assert finished_at and time.monotonic() >= finished_at[0]
    assert in_progress() == 0


def test_a_request_that_never_ends_is_named_after_the_limit():
    request_started.send(sender=None)
    try:
        with pytest.raises(AssertionError, match="still had 1 request"):
            wait_until_quiet(limit=0.2)
    finally:
        request_finished.send(sender=None)
    assert in_progress() == 0


def test_the_live_servers_requests_are_counted(live_server):
    seen = []
    original = request_started.receivers[:]

    def note(**kwargs):
        seen.append(in_progress())

    request_started.connect(note, weak=False, dispatch_uid="test-live-server-quiet")
    try:
        url = f"{live_server.url}/healthz"
        with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 (our server)
            assert response.status == 200
    finally:
        request_started.disconnect(dispatch_uid="test-live-server-quiet")
    # Counted while it ran (in the server's own thread), and no longer once it has ended.
    assert seen == [1]
    wait_until_quiet(limit=5)
    assert in_progress() == 0 and request_started.receivers == original
