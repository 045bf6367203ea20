"""Django's PostgreSQL backend, with a health check that costs no round trip for a
connection in steady use while the server has said nothing.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before its first use in
each request with `SELECT 1`: a round trip on every request, and for a single ingest
event, whose writes are one statement (`curation.ingest_sql`), one of its two. The check
exists for a connection the server or the network has ended. Here:
- A connection last checked more than FRESH_S ago gets Django's own check. Connections
  that sat idle are the ones a proxy, a NAT entry or a load balancer may have dropped
  without a word (their idle timeouts are a minute or more); only a real round trip
  finds those.
- A connection checked within FRESH_S, at the start of a request that then ran without
  an error (one that failed is checked or closed by Django at its end), skips the round
  trip if nothing is waiting on its socket. A server that ends a connection (a restart,
  `pg_terminate_backend`) sends its FATAL message and closes, so the socket turns
  readable, and then Django's check runs, closes it, and the request reconnects. A
  healthy idle connection is readable only if the server sent something unasked (this
  app LISTENs to nothing), which costs just the check.
A connection lost between two requests FRESH_S apart in a way that leaves the socket
quiet fails that request's first query, as a connection lost mid-request always did.
"""

import select
import time

import psycopg
from django.db.backends.postgresql import base

# Seconds since the last check within which a quiet connection is taken as healthy:
# well under the idle timeouts of the proxies and NATs that drop connections silently.
FRESH_S = 5.0


def _quiet(connection) -> bool:
    """Whether nothing has arrived on the connection's socket since it last answered."""
    try:
        if connection.closed:
            return False
        poller = select.poll()  # not select(): gthread workers may hold fds past 1024
        poller.register(connection.fileno(), select.POLLIN | select.POLLPRI)
        return not poller.poll(0)
    except (OSError, ValueError, psycopg.Error):
        return False


class DatabaseWrapper(base.DatabaseWrapper):
    checked_at = float("-inf")

    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
        ):
            now = time.monotonic()
            fresh = now - self.checked_at < FRESH_S
            self.checked_at = now
            if fresh and _quiet(self.connection):
                self.health_check_done = True
                return
        super().close_if_health_check_failed()
