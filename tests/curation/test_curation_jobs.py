"""Curation jobs through real Redis and real RQ workers: an in-process
SimpleWorker, and a separate worker process killed with SIGKILL mid-job."""

import os
import signal
import subprocess
import sys
import time

import django_rq
import pytest
from django.db import connection

from curation import jobs, pipeline, runs
from curation.ingest_queue import curation_enqueue
from curation.models import Candidate, CurationRun, FilterDecision, Interaction
from review.models import ReviewItem
from tests.support import ROOT, factories
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, edits, ingest, no_toxicity
from tests.support.jobs import run_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def rows() -> tuple:
    return (
        Candidate.objects.count(),
        FilterDecision.objects.count(),
        ReviewItem.objects.count(),
        Interaction.objects.filter(curation_state="pending").count(),
    )


def test_ingest_hands_interactions_to_a_real_worker_after_commit():
    no_toxicity()
    edits(6)
    assert django_rq.get_queue("curation").count == 1
    run_jobs("curation")
    assert Interaction.objects.filter(curation_state="done").count() == 6
    assert Candidate.objects.filter(kind="preference").count() == 6
    run = CurationRun.objects.get()
    assert run.status == "succeeded"
    assert (run.trigger, run.interactions, run.candidates) == ("ingest", 6, 6)
    assert run.passed + run.failed == 6


def test_running_the_job_twice_gives_the_same_rows():
    no_toxicity()
    interactions = edits(5)
    run_jobs("curation")
    before = rows()
    ids = [i.pk for i in interactions]
    jobs.curate_interactions(ids)
    django_rq.get_queue("curation").enqueue(jobs.curate_interactions, ids)
    run_jobs("curation")
    assert rows() == before


@pytest.mark.slow
def test_a_worker_killed_mid_job_loses_and_doubles_nothing(settings):
    no_toxicity()
    interactions = edits(15)
    django_rq.get_queue("curation").empty()
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "FLYWHEEL_ALLOW_DEV_SECRET": "true",
        # Not the checkout's .run/env: the worker must hash with the test's dev secret.
        "FLYWHEEL_ENV_FILE": "",
        "FLYWHEEL_CURATION_CHUNK": "5",
    }
    # Its second chunk waits inside its transaction until the kill below.
    worker = subprocess.Popen(
        [sys.executable, "-m", "tests.support.stalled_curation_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        curation_enqueue(interaction_ids=[i.pk for i in interactions])
        deadline = time.monotonic() + 180  # a loaded machine starts Django slowly
        while time.monotonic() < deadline:
            run = CurationRun.objects.first()
            if run is not None and run.interactions >= 5:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the worker never finished its first chunk")
        worker.send_signal(signal.SIGKILL)
        worker.wait(timeout=10)
    finally:
        if worker.poll() is None:
            worker.kill()
    pending = Interaction.objects.filter(curation_state="pending").count()
    # Killed in its second chunk: the first committed, the second rolled back, the third
    # never started.
    assert pending == 10
    assert Candidate.objects.count() == 15 - pending

    result = pipeline.sweep(grace_seconds=0)
    assert result["pending"] == pending
    assert Interaction.objects.filter(curation_state="pending").count() == 0
    assert Candidate.objects.count() == 15
    for candidate in Candidate.objects.all():
        names = list(candidate.decisions.values_list("filter", flat=True))
        assert len(names) == len(set(names))  # every decision recorded once
    assert ReviewItem.objects.values("candidate").distinct().count() == ReviewItem.objects.count()


def test_the_sweeper_closes_runs_whose_worker_died(settings):
    from datetime import timedelta

    from django.utils import timezone

    stale = CurationRun.objects.create(
        trigger="ingest",
        status="running",
        started_at=timezone.now()
        - timedelta(seconds=settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S + 61),
    )
    pipeline.sweep(grace_seconds=0)
    stale.refresh_from_db()
    assert stale.status == "failed"
    assert stale.error == runs.ABANDONED


def test_feedback_that_raced_its_interaction_is_linked_and_curated_by_the_sweeper():
    no_toxicity()
    ingest(interactions=[factories.interaction("race", response=GOOD_ANSWER)])
    pipeline.sweep(grace_seconds=0)
    assert Interaction.objects.get().curation_state == "done"
    # Simulate the race: the feedback was committed unlinked after the interaction.
    ingest(feedback=[factories.feedback("race", "race-e", kind="edited", final_text=GOOD_EDIT)])
    from curation.models import Feedback

    Feedback.objects.update(interaction=None)
    Interaction.objects.update(curation_state="done")
    result = pipeline.sweep(grace_seconds=0)
    assert result["linked"] == 1
    assert Candidate.objects.filter(kind="preference").count() == 1
