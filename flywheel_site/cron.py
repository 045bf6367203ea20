"""Periodic jobs, loaded by `python manage.py rqcron flywheel_site.cron`
(started by `make run` beside the worker)."""

from django.conf import settings
from rq import cron

from curation.jobs import sweep

cron.register(
    sweep,
    "curation",
    interval=settings.FLYWHEEL_SWEEP_INTERVAL_S,
    job_timeout=settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S,
    name="curation-sweep",
)
