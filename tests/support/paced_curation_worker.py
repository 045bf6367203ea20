"""An RQ curation worker (`python -m tests.support.paced_curation_worker`) whose every
chunk spends at least PACE_S preparing, as a chunk does while a toxicity model runs: two
of them started together curate their chunks at the same time, which is what a test of
concurrent curation needs. Outside the write step, so production code needs no pause."""

import os
import time

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402 (after django.setup)

from curation import pipeline  # noqa: E402

PACE_S = 0.3
_prepare = pipeline.candidates_prepare


def candidates_prepare(**kwargs):
    time.sleep(PACE_S)
    return _prepare(**kwargs)


pipeline.candidates_prepare = candidates_prepare
call_command("rqworker", "curation", "--burst", "--worker-class", "rq.worker.SimpleWorker")
