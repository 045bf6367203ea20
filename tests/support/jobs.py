"""The one way tests run queued jobs: a real RQ worker in this process."""

import django_rq
from rq import SimpleWorker


def run_jobs(*queues: str) -> None:
    """Run every job queued on these queues, then return. SimpleWorker does not fork: a forked
    worker would share the test's database connection. The job class is the settings' one,
    as in `manage.py rqworker`."""
    django_rq.get_worker(*queues, worker_class=SimpleWorker).work(burst=True)
