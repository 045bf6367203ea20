"""Redis stopped during ingest: ingest keeps answering 2xx, nothing is lost,
and once Redis is back the sweeper (through a real worker) catches up."""

import django_rq
import pytest

from curation import filters, policies
from curation.jobs import sweep
from curation.models import Candidate, Interaction
from flywheel_site import redis as fw_redis
from tests.support import factories
from tests.support.curation import GOOD_EDIT
from tests.support.jobs import run_jobs
from tests.support.redis_server import start_redis, stop_redis
from tests.support.workers import free_port

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def private_redis(settings):
    port = free_port()
    start_redis(port)
    url = f"redis://127.0.0.1:{port}/0"
    settings.REDIS_URL = url
    settings.RQ_QUEUES = {name: {**conf, "URL": url} for name, conf in settings.RQ_QUEUES.items()}
    fw_redis.reset()
    yield port
    stop_redis(port)
    fw_redis.reset()


@pytest.mark.slow  # a Redis server of its own, stopped and restarted
def test_ingest_survives_redis_stopping_and_the_sweeper_catches_up(api, private_redis, settings):
    settings.FLYWHEEL_SWEEP_GRACE_S = 0
    enabled = [n for n in filters.FILTER_ORDER if n != filters.TOXICITY]
    policies.policy_create(changes={"enabled_filters": enabled})

    def send(i: int):
        return api.post(
            "/api/v1/edits", factories.edit(event_id=f"o{i}", final_user_edit=f"{GOOD_EDIT} {i}")
        )

    before = [send(i) for i in range(3)]
    stop_redis(private_redis)
    during = [send(i) for i in range(3, 8)]
    assert [r.status_code for r in before + during] == [201] * 8
    assert Interaction.objects.count() == 8  # nothing lost

    start_redis(private_redis)
    fw_redis.reset()
    django_rq.get_queue("curation").enqueue(sweep)
    # Jobs enqueued before the stop died with that Redis; the sweeper finds the rows.
    run_jobs("curation")
    assert Interaction.objects.filter(curation_state="pending").count() == 0
    assert Candidate.objects.count() == 8
