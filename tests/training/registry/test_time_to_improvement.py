"""Time to improvement: stored once when a promotion makes a model current, so the
dashboard's cycles read one row per model and never the dataset memberships."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.db import connection
from django.test.utils import CaptureQueriesContext

from tests.support.training import approved, registered
from training.datasets import services as datasets
from training.metrics.selectors import cycles
from training.registry import services as registry
from training.registry.selectors import time_to_improvement

pytestmark = pytest.mark.django_db

T = datetime(2026, 11, 20, 12, tzinfo=UTC)


def promoted(version, current, admin):
    model = registered(version)
    registry.model_version_make_current(model=model, current=current, user=admin, reason="ship")
    model.refresh_from_db()
    return model


def test_a_promotion_stores_the_median_age_of_the_pairs_it_first_shipped(admin):
    with time_machine.travel(T - timedelta(days=5), tick=False):
        dataset = datasets.dataset_create(name="support", user=admin, lag_days=0)
        for _ in range(2):
            approved(received_at=T - timedelta(days=10))
        v1, _ = datasets.dataset_version_freeze(dataset=dataset, user=admin)
        first = promoted(v1, None, admin)
    with time_machine.travel(T, tick=False):
        for _ in range(2):
            approved(received_at=T - timedelta(days=2))
        v2, _ = datasets.dataset_version_freeze(dataset=dataset, user=admin)
        second = promoted(v2, first, admin)

    # v1's pairs waited 5 days; v2 ships the same two again (not counted) and two new ones.
    assert first.time_to_improvement_s == timedelta(days=5).total_seconds()
    assert second.time_to_improvement_s == timedelta(days=2).total_seconds()
    assert second.time_to_improvement_s == time_to_improvement(
        version_id=v2.pk, previous_id=v1.pk, at=second.promoted_at
    )

    with CaptureQueriesContext(connection) as queries:
        shown = cycles()
    assert [c["time_to_improvement_s"] for c in shown] == [5 * 86400.0, 2 * 86400.0]
    assert not [q for q in queries.captured_queries if "training_membership" in q["sql"]]
