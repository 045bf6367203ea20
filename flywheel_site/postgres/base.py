"""Django's PostgreSQL backend, with a health check that costs no round trip while the
server has said nothing.

With CONN_HEALTH_CHECKS, Django checks a persistent connection before its first use in
each request with `SELECT 1`: a round trip on every request, and for a single ingest
event, whose writes are one statement (`curation.ingest_sql`), one of its two. The check
exists for a connection the server has ended (a restart, `pg_terminate_backend`,
an idle timeout). A server that ends a connection says so on the socket: it sends its
FATAL message and closes, so the socket turns readable, while a healthy idle connection
never is (nothing else reaches a session that has not asked: this app LISTENs to
nothing). So: no data waiting, the connection is taken as healthy with no query;
anything waiting, or a closed connection, gets Django's own check, which closes it if
it fails and the request reconnects. A network that drops without a word is caught
by neither check until a query fails, and then Django closes the connection
(`errors_occurred`), as before.
"""

import select

from django.db.backends.postgresql import base


def _quiet(connection) -> bool:
    """Whether nothing has arrived on the connection's socket since it last answered."""
    if connection.closed:
        return False
    try:
        readable, _, _ = select.select([connection.fileno()], [], [], 0)
    except (OSError, ValueError):
        return False
    return not readable


class DatabaseWrapper(base.DatabaseWrapper):
    def close_if_health_check_failed(self):
        if (
            self.connection is not None
            and self.health_check_enabled
            and not self.health_check_done
            and not self.pool
            and _quiet(self.connection)
        ):
            self.health_check_done = True
            return
        super().close_if_health_check_failed()
