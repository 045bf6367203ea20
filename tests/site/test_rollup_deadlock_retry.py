"""A write whose rollup upserts met another's in the opposite order is aborted by
PostgreSQL as a deadlock; the service is run again whole, but only when it owns the
transaction (tests/review/test_review_concurrency.py shows it with twenty real reviewers)."""

import pytest
from django.db import OperationalError, transaction
from psycopg.errors import DeadlockDetected

from flywheel_site.deadlock import DEADLOCK_ATTEMPTS, retry_on_deadlock


def failing(times: int, error_class=DeadlockDetected):
    calls = []

    @retry_on_deadlock
    def service():
        calls.append(1)
        if len(calls) <= times:
            raise OperationalError("deadlock detected") from error_class("deadlock detected")
        return len(calls)

    return service, calls


@pytest.mark.django_db(transaction=True)
def test_a_deadlocked_write_is_run_again_whole():
    service, calls = failing(2)
    assert service() == 3 and len(calls) == 3


@pytest.mark.django_db(transaction=True)
def test_it_gives_up_after_its_attempts():
    service, calls = failing(DEADLOCK_ATTEMPTS)
    with pytest.raises(OperationalError):
        service()
    assert len(calls) == DEADLOCK_ATTEMPTS


@pytest.mark.django_db(transaction=True)
def test_inside_someone_elses_transaction_the_error_goes_up():
    service, calls = failing(1)
    with pytest.raises(OperationalError), transaction.atomic():
        service()
    assert len(calls) == 1


@pytest.mark.django_db(transaction=True)
def test_other_database_errors_are_not_retried():
    service, calls = failing(1, error_class=Exception)
    with pytest.raises(OperationalError):
        service()
    assert len(calls) == 1
