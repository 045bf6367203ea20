"""The database health check before a request's first query (flywheel_site/postgres):
no round trip while the server has said nothing; a connection the server ended is
closed and the request gets a new one."""

import time

import pytest
from django.db import connection, connections

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


def test_a_quiet_connection_is_kept_and_sends_no_query(other):
    pid = _pid()
    assert _last_query(other, pid) == "SELECT pg_backend_pid()"
    driver = connection.connection
    connection.health_check_done = False  # as at the start of a request
    connection.close_if_health_check_failed()
    assert connection.connection is driver
    assert connection.health_check_done
    assert _last_query(other, pid) == "SELECT pg_backend_pid()"


def test_a_connection_the_server_ended_is_replaced(other):
    pid = _pid()
    with other.cursor() as cursor:
        cursor.execute("SELECT pg_terminate_backend(%s)", [pid])
        assert cursor.fetchone()[0] is True
    driver = connection.connection
    deadline = time.monotonic() + 10
    # The server's goodbye reaches the socket asynchronously.
    while time.monotonic() < deadline:
        connection.health_check_done = False
        connection.close_if_health_check_failed()
        if connection.connection is not driver:
            break
        time.sleep(0.02)
    assert connection.connection is not driver
    assert _pid() != pid
