"""Ingest commits to PostgreSQL first; Redis is only a delivery mechanism."""

import pytest

from curation.ingest_queue import CURATION_INBOX
from curation.models import Interaction
from flywheel_site import redis as fw_redis
from tests.support import factories

pytestmark = pytest.mark.django_db(transaction=True)


def queued_jobs() -> int:
    import django_rq

    return django_rq.get_queue("curation").count


def test_ingest_enqueues_curation_after_commit(api):
    response = api.post("/api/v1/interactions", factories.interaction("q1"))
    assert response.status_code == 201
    assert queued_jobs() == 1


def test_curation_jobs_have_a_timeout_and_retries_with_backoff(api, settings):
    import django_rq

    api.post("/api/v1/interactions", factories.interaction("q2"))
    # A single event goes to the curation inbox; its job takes the ids from there.
    (job,) = django_rq.get_queue("curation").get_jobs()
    assert job.func_name == "curation.jobs.curate_inbox"
    assert job.args == ()
    assert fw_redis.client().lrange(CURATION_INBOX, 0, -1) == [
        str(Interaction.objects.get().pk).encode()
    ]
    assert job.timeout == settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S
    assert job.retries_left == settings.FLYWHEEL_CURATION_RETRIES
    assert job.retry_intervals == [10, 60, 300]


def test_ingest_answers_2xx_and_keeps_everything_when_redis_is_down(api, settings):
    settings.REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    fw_redis.reset()
    responses = [api.post("/api/v1/interactions", factories.interaction(f"d{i}")) for i in range(3)]
    batch = api.post("/api/v1/batch", {"interactions": [factories.interaction("d9")]})
    assert [r.status_code for r in responses] == [201, 201, 201]
    assert batch.status_code == 200 and batch.json()["created"] == 1
    # Still pending in PostgreSQL: the curation sweeper picks these up later.
    assert Interaction.objects.filter(curation_state="pending").count() == 4
