"""The live server's requests end before the test's flush starts.

A browser test ends when its assertion holds, and the page may still have a request on the
server then (an htmx swap that loads the next item, a poll). Closing the page does not stop
the server's thread: its transaction and the flush that ends a transactional test then lock
the same rows in opposite orders, and PostgreSQL ended the flush as a deadlock (a fresh-clone
run at 7d43e18: the flush failed, its rows stayed, and the worker's next six tests failed on
them). Every test that uses `live_server` waits here, after its own fixtures (the pages)
are closed and before the flush, until no request is in progress."""

import threading
import time

import pytest
from django.core.signals import request_finished, request_started

_lock = threading.Lock()
_in_progress = 0
# A request the client sent just before its page closed may not have started yet: the count
# must stay at zero this long before the wait ends.
_QUIET_SECONDS = 0.05
_LIMIT_SECONDS = 30.0


def _started(**kwargs) -> None:
    global _in_progress
    with _lock:
        _in_progress += 1


def _finished(**kwargs) -> None:
    global _in_progress
    with _lock:
        _in_progress -= 1


request_started.connect(_started, weak=False, dispatch_uid="flywheel-tests-live-started")
request_finished.connect(_finished, weak=False, dispatch_uid="flywheel-tests-live-finished")


def in_progress() -> int:
    """Requests started and not finished, in this process (the live server's threads and the
    test client alike)."""
    with _lock:
        return _in_progress


def wait_until_quiet(*, limit: float = _LIMIT_SECONDS) -> None:
    """Return once no request has been in progress for `_QUIET_SECONDS`; fail after `limit`."""
    deadline = time.monotonic() + limit
    quiet_since = None
    while True:
        now = time.monotonic()
        if in_progress() > 0:
            quiet_since = None
        elif quiet_since is None:
            quiet_since = now
        elif now - quiet_since >= _QUIET_SECONDS:
            return
        if now > deadline:
            raise AssertionError(
                f"the live server still had {in_progress()} request(s) in progress "
                f"{limit:.0f} s after the test ended"
            )
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def _live_server_requests_end(request):
    # Autouse and registered after pytest-django: set up after its database fixture, so torn
    # down before it (the flush), and after the test's own fixtures (the pages) are closed.
    yield
    if "live_server" in request.fixturenames:
        wait_until_quiet()
