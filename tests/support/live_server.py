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
# Requests started and not finished, by the thread serving them. The test client sends
# request_started in the test's own thread and request_finished only once a streaming
# response is read to its end, so a test that leaves a download unread leaves its thread
# here: only other threads still alive count (the live server serves each request in a
# thread of its own, and a WSGI server always closes the response).
_open: dict[threading.Thread, int] = {}
# A request the client sent just before its page closed may not have started yet: nothing
# must be in progress for this long before the wait ends.
_QUIET_SECONDS = 0.05
_LIMIT_SECONDS = 30.0


def _started(**kwargs) -> None:
    thread = threading.current_thread()
    with _lock:
        _open[thread] = _open.get(thread, 0) + 1


def _finished(**kwargs) -> None:
    thread = threading.current_thread()
    with _lock:
        if _open.get(thread, 0) <= 1:
            _open.pop(thread, None)
        else:
            _open[thread] -= 1


request_started.connect(_started, weak=False, dispatch_uid="flywheel-tests-live-started")
request_finished.connect(_finished, weak=False, dispatch_uid="flywheel-tests-live-finished")


def in_progress() -> int:
    """Requests in progress in other threads of this process that are still alive: the live
    server's, and those of any thread a test started."""
    me = threading.current_thread()
    with _lock:
        for thread in [t for t in _open if not t.is_alive()]:
            del _open[thread]
        return sum(n for thread, n in _open.items() if thread is not me)


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
