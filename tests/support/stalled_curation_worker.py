"""An RQ curation worker (`python -m tests.support.stalled_curation_worker`) whose first
chunk commits and whose second never finishes: it waits inside its transaction until the
test kills the process. A test of what a worker killed mid-job leaves behind uses it, so
production code needs no pause for failure testing."""

import os
import threading

import django

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")
django.setup()

from django.core.management import call_command  # noqa: E402 (after django.setup)

from curation import pipeline  # noqa: E402

_sample = pipeline.candidates_sample
_chunks = 0


def candidates_sample(**kwargs):
    global _chunks
    _chunks += 1
    if _chunks > 1:
        threading.Event().wait()  # inside the second chunk's transaction, until SIGKILL
    return _sample(**kwargs)


pipeline.candidates_sample = candidates_sample
call_command("rqworker", "curation", "--burst", "--worker-class", "rq.worker.SimpleWorker")
