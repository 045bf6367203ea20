"""The one way tests run queued jobs: a real RQ worker in this process."""

import django_rq
from django_rq.jobs import get_job_class
from rq import SimpleWorker


def run_jobs(*queues: str) -> None:
    """Run every job queued on these queues, then return. SimpleWorker does not fork: a forked
    worker would share the test's database connection. The job class is the one
    `manage.py rqworker` uses (settings.RQ), so jobs run under their request's id and their
    audit events name the job."""
    connection = django_rq.get_connection(queues[0])
    SimpleWorker(
        [django_rq.get_queue(name) for name in queues],
        connection=connection,
        job_class=get_job_class(),
    ).work(burst=True)
