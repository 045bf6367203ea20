"""The database health check before a request's first query (flywheel_site/postgres):
no round trip for a connection in steady use while the server has said nothing; a
connection idle for longer gets the real check; one the server ended is closed and the
request gets a new one."""

import time

import pytest
from django.db import connection, connections

from flywheel_site.postgres.base import FRESH_S

pytestmark = pytest.mark.django_db(transaction=True)


def _pid() -> int:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_backend_pid()")
        return cursor.fetchone()[0]


def _last_query(other, pid: int) -> str:
    with other.cursor() as cursor:
        cursor.execute("SELECT query FROM pg_stat_activity WHERE pid = %s", [pid])
        return cursor.fetchone()[0]


@pytest.fixture
def other():
    other = connections.create_connection("default")
    yield other
    other.close()


def _check() -> None:
    connection.health_check_done = False  # as at the start of a request
    connection.close_if_health_check_failed()


def test_a_quiet_connection_in_steady_use_is_kept_and_sends_no_query(other):
    pid = _pid()
    connection.checked_at = float("-inf")  # not checked lately (earlier tests share it)
    _check()
    assert _last_query(other, pid) == "SELECT 1"
    _pid()
    driver = connection.connection
    _check()
    assert connection.connection is driver
    assert connection.health_check_done
    assert _last_query(other, pid) == "SELECT pg_backend_pid()"


def test_a_connection_idle_for_longer_gets_the_real_check(other):
    pid = _pid()
    _check()
    _pid()
    connection.checked_at -= FRESH_S + 1  # as if the last request were that long ago
    _check()
    assert _last_query(other, pid) == "SELECT 1"


def test_a_connection_the_server_ended_is_replaced(other):
    pid = _pid()
    _check()
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True
    driver = connection.connection
    deadline = time.monotonic() + 10
    # The server's goodbye reaches the socket asynchronously.
    while time.monotonic() < deadline:
        _check()
        if connection.connection is not driver:
            break
        time.sleep(0.02)
    assert connection.connection is not driver
    assert _pid() != pid
