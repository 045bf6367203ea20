"""Retrying a transaction PostgreSQL aborted as one side of a deadlock."""

import functools
import random
import time

from django.db import OperationalError, connection

# PostgreSQL's code for "deadlock detected": it aborts one of the transactions.
DEADLOCK = "40P01"
DEADLOCK_ATTEMPTS = 5


def retry_on_deadlock(service):
    """Run a write service again, whole, when PostgreSQL aborted it as one side of a
    deadlock. Each write adjusts the rollups twice (subtract, then add), so two concurrent
    writes can meet on the same rollup rows in opposite orders; PostgreSQL then aborts
    one, and its documented remedy is to retry the transaction. Only an outermost call
    retries: inside someone else's transaction the error goes up to its owner."""

    @functools.wraps(service)
    def run(*args, **kwargs):
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return service(*args, **kwargs)
            except OperationalError as error:
                deadlock = getattr(error.__cause__, "sqlstate", None) == DEADLOCK
                if not deadlock or connection.in_atomic_block or attempt == DEADLOCK_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    return run
