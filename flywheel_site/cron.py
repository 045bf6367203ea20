"""Periodic jobs, loaded by `python manage.py rqcron flywheel_site.cron`
(a process of scripts/Procfile). rqcron exits on a Redis error; the supervisor
starts it again, and an interval job is enqueued as soon as rqcron starts, so
the first sweep after an outage comes at once."""

from django.conf import settings
from rq import cron

from curation.jobs import sweep
from flywheel_site.audit.jobs import audit_verify_scheduled, retention_purge_scheduled
from flywheel_site.demo.jobs import demo_canary_traffic_run
from training.runs.jobs import trigger_check
from training.webhooks.jobs import webhooks_sweep

cron.register(
    sweep,
    "curation",
    interval=settings.FLYWHEEL_SWEEP_INTERVAL_S,
    job_timeout=settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S,
    name="curation-sweep",
)

# On the default queue, not the training one: it must not wait behind a long training run.
# Its timeout covers freezing a large dataset version.
cron.register(
    trigger_check,
    "default",
    interval=settings.FLYWHEEL_TRAIN_TRIGGER_INTERVAL_S,
    job_timeout=1800,
    name="training-trigger",
)

# Webhook retries are due at their backoff times; this queues them (and the deliveries a
# Redis outage or a dead worker left behind) on the webhooks queue.
cron.register(
    webhooks_sweep,
    "webhooks",
    interval=settings.FLYWHEEL_WEBHOOK_SWEEP_INTERVAL_S,
    job_timeout=300,
    name="webhooks-sweep",
)

# Walks the whole audit chain and every frozen dataset version: hourly by default.
cron.register(
    audit_verify_scheduled,
    "default",
    interval=settings.FLYWHEEL_AUDIT_VERIFY_INTERVAL_S,
    job_timeout=3600,
    name="audit-verify",
)

# Daily by default; batches keep each transaction short.
cron.register(
    retention_purge_scheduled,
    "default",
    interval=settings.FLYWHEEL_RETENTION_INTERVAL_S,
    job_timeout=3600,
    name="retention-purge",
)

# The demo's simulated users for the canary it leaves running: a Redis read and nothing else
# unless `load_demo` started one (bounded: flywheel_site/demo/canary.py).
cron.register(
    demo_canary_traffic_run,
    "default",
    interval=60,
    job_timeout=120,
    name="demo-canary-traffic",
)
