"""The canary the demo leaves running (flywheel_site.demo.canary): simulated users sent by a
periodic job through the real ingest service, decided by the periodic check, bounded, and
silent outside the demo."""

import io
from datetime import UTC, datetime, timedelta

import django_rq
import pytest
import time_machine

from curation.models import Feedback, Interaction
from flywheel_site import redis as fw_redis
from flywheel_site.demo import canary
from flywheel_site.demo.jobs import demo_canary_traffic_run
from tests.support.jobs import run_jobs
from tests.support.training import frozen_version, registered
from training.models import Experiment, ModelVersion
from training.registry import route
from training.runs.jobs import trigger_check

pytestmark = pytest.mark.django_db
T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
# Far more than the few minutes the demo's arms need; the test fails if it takes them all.
MINUTES = 20


@pytest.fixture
def demo_canary(admin, settings):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    route.cache_clear()
    fw_redis.client().delete(canary.KEY)
    candidate = registered(frozen_version(admin), serving_name="acme-support-v3")
    out = io.StringIO()
    with time_machine.travel(T0, tick=False):
        experiment = canary.demo_canary_start(user=admin, stdout=out)
    yield candidate, experiment, out.getvalue()
    fw_redis.client().delete(canary.KEY)
    route.cache_clear()


def _minute(n: int):
    return time_machine.travel(T0 + timedelta(minutes=n, seconds=30), tick=False)


def test_the_demo_leaves_its_last_candidate_in_a_bounded_canary(demo_canary):
    candidate, experiment, out = demo_canary
    assert experiment.canary == candidate and experiment.state == Experiment.State.RUNNING
    assert experiment.control is None  # the base model serves the rest
    assert experiment.deadline - experiment.started_at == timedelta(hours=canary.HOURS)
    assert experiment.feedback_window_s == canary.EXPERIMENT["feedback_window_s"]
    assert 0 < fw_redis.client().ttl(canary.KEY) <= canary.HOURS * 3600
    assert candidate.name in out and "every minute" in out


@pytest.mark.django_db(transaction=True)  # jobs are queued on commit
def test_simulated_users_reach_both_arms_and_the_periodic_check_decides(demo_canary):
    candidate, experiment, _ = demo_canary
    decided_after = None
    for n in range(MINUTES):
        with _minute(n):
            # As rqcron queues them: the traffic job, then the periodic check, on a worker.
            django_rq.get_queue("default").enqueue(demo_canary_traffic_run)
            django_rq.get_queue("default").enqueue(trigger_check)
            run_jobs("default")
        experiment.refresh_from_db()
        if experiment.state != Experiment.State.RUNNING:
            decided_after = n + 1
            break
    assert experiment.state == Experiment.State.COMPLETED, experiment.last_evidence
    assert decided_after is not None and decided_after <= 10
    candidate.refresh_from_db()
    assert candidate.status == ModelVersion.Status.PROMOTED
    served = set(
        Interaction.objects.filter(event_id__startswith="demo-canary-").values_list(
            "model", flat=True
        )
    )
    assert served == {"acme-support-v3", experiment.control_serving_name}
    rates = experiment.last_evidence["rate"]
    assert rates["canary"] < rates["control"]

    # The decision sends the simulated users away: the next minute stores nothing.
    stored = _sent()
    with _minute(decided_after + 1):
        assert canary.demo_canary_traffic() is None
    assert _sent() == stored
    assert not fw_redis.client().exists(canary.KEY)


def _sent() -> tuple[int, int]:
    return (
        Interaction.objects.filter(event_id__startswith="demo-canary-").count(),
        Feedback.objects.filter(event_id__startswith="demo-canary-").count(),
    )


def test_a_retried_minute_stores_nothing_twice(demo_canary):
    with _minute(0):
        first = canary.demo_canary_traffic()
        counts = _sent()
        canary.demo_canary_traffic()
    assert first["arms"]["control"] and first["arms"]["canary"]
    assert sum(first["arms"].values()) == counts[0] == canary.USERS_PER_MINUTE * 2
    assert first["bad"] == counts[1] > 0
    assert _sent() == counts


def test_without_the_demo_the_job_sends_nothing(admin):
    fw_redis.client().delete(canary.KEY)
    with _minute(0):
        assert canary.demo_canary_traffic() is None
    assert _sent() == (0, 0)


def test_the_cron_entry_runs_the_traffic_every_minute_on_the_default_queue():
    from rq import cron

    import flywheel_site.cron  # noqa: F401 (registers the jobs)

    [entry] = [e for e in cron._job_data_registry if e["name"] == "demo-canary-traffic"]
    assert (entry["func"], entry["queue_name"], entry["interval"]) == (
        demo_canary_traffic_run,
        "default",
        60,
    )
