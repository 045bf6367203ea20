"""Redis stopped during ingest: ingest keeps answering 2xx, nothing is lost,
and once Redis is back the sweeper (through a real worker) catches up."""

import contextlib
import socket
import subprocess
import time

import django_rq
import pytest
import redis
from rq import SimpleWorker

from curation import filters, policies
from curation.jobs import sweep
from curation.models import Candidate, Interaction
from flywheel_site import redis as fw_redis
from tests import factories
from tests.curation_helpers import GOOD_EDIT

pytestmark = pytest.mark.django_db(transaction=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_redis(port: int) -> None:
    subprocess.run(
        [
            "redis-server",
            "--port",
            str(port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "yes",
        ],
        check=True,
        stdout=subprocess.DEVNULL,
    )
    client = redis.Redis(port=port)
    for _ in range(100):
        try:
            client.ping()
            return
        except redis.ConnectionError:
            time.sleep(0.05)
    raise RuntimeError("redis did not start")


def stop_redis(port: int) -> None:
    # Shutdown closes the connection it came on.
    with contextlib.suppress(redis.ConnectionError):
        redis.Redis(port=port).shutdown(nosave=True)


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
    queue = django_rq.get_queue("curation")
    queue.enqueue(sweep)
    # Jobs enqueued before the stop died with that Redis; the sweeper finds the rows.
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    assert Interaction.objects.filter(curation_state="pending").count() == 0
    assert Candidate.objects.count() == 8
