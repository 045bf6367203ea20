"""Every page of the RQ dashboard answers a staff admin without a server error."""

import django_rq
import pytest
from django.urls import URLPattern, reverse
from rq import SimpleWorker

from flywheel_site.urls import RQ_URLS

pytestmark = pytest.mark.django_db


def _noop():
    return "done"


@pytest.fixture
def finished_job():
    """A job run to completion by a registered worker, so the job, result and worker pages
    all have something to show."""
    queue = django_rq.get_queue("default", commit_mode="auto")
    job = queue.enqueue(_noop)
    worker = django_rq.get_worker("default", worker_class=SimpleWorker)
    worker.work(burst=True)
    worker.register_birth()
    job.refresh()
    return job, worker


def _args(route: URLPattern, job, worker) -> dict:
    values = {
        "queue_index": 0,
        "connection_index": 0,
        "job_id": job.id,
        "result_id": job.latest_result().id,
        "key": worker.key,
        "scheduler_name": "no-such-scheduler",
        "cron_job_name": "no/such/job",
        "token": "not-the-token",
    }
    return {name: values[name] for name in getattr(route.pattern, "converters", {})}


def test_every_rq_dashboard_page_answers_staff_without_a_server_error(admin_client, finished_job):
    admin_client.raise_request_exception = False
    answers = {}
    for route in RQ_URLS:
        # Regex routes (stats.json, its token optional) have no converters and no arguments.
        url = reverse(f"django_rq:{route.name}", kwargs=_args(route, *finished_job))
        answers[url] = admin_client.get(url).status_code
    assert len(answers) >= len(RQ_URLS) - 1
    assert answers["/django-rq/"] == 200
    assert {url: status for url, status in answers.items() if status >= 500} == {}


def test_the_rq_scheduler_page_is_gone(admin_client):
    assert admin_client.get("/django-rq/schedulers/0/").status_code == 404
