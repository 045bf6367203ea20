"""Two real RQ worker processes curating one stream at the same time: planted exact and
near duplicates, each copy in a different job, are all found; every interaction is
curated exactly once and nothing is queued twice (issue 21 §1)."""

import os
import random
import subprocess
import sys
import time

import django_rq
import pytest
from django.db import connection
from rq.job import Job

from curation import filters, jobs
from curation.models import Candidate, FilterDecision, Interaction
from review.models import ReviewItem
from tests.support import ROOT, factories
from tests.support.curation import GOOD_ANSWER, ingest, no_toxicity

pytestmark = pytest.mark.django_db(transaction=True)

# Words of support answers: texts drawn from them share few 5-character shingles.
WORDS = (
    "account address answer billing browser cache card change check click code confirm "
    "contact copy delete device email enter error export file folder help invoice link "
    "login menu message mobile network open order page password phone plan press profile "
    "refund reset restart save screen search secure select send server settings sign "
    "support tab team ticket update upload user verify wait window"
)
VOCAB = WORDS.split()
GROUPS = 6
UNTESTED = (filters.TOXICITY, filters.QUALITY)
FILLERS = 4


def _text(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(VOCAB) for _ in range(words)) + "."


def _stream() -> tuple[list[dict], list[dict]]:
    """Per group an original, an exact copy and a near copy
    (one word changed), all on the same prompt; then fillers that match nothing."""
    rng = random.Random(21)
    interactions, feedback = [], []
    for g in range(GROUPS + FILLERS):
        prompt = [{"role": "user", "content": f"Question {g}: {_text(rng, 8)}"}]
        body = _text(rng, 70)
        words = body.split()
        words[30] = "zebra"
        variants = {"o": body}
        if g < GROUPS:
            variants |= {"x": body, "n": " ".join(words)}
        for variant, final in variants.items():
            event = f"g{g}{variant}"
            interactions.append(factories.interaction(event, messages=prompt, response=GOOD_ANSWER))
            feedback.append(
                factories.feedback(event, f"{event}-e", kind="edited", final_text=final)
            )
    return interactions, feedback


def _worker(env: dict) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "tests.support.paced_curation_worker"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


@pytest.mark.slow
def test_two_workers_find_every_planted_duplicate_and_curate_each_row_once(settings):
    # Word salad is no quality answer: only dedup may fail these candidates.
    no_toxicity(enabled_filters=[n for n in filters.FILTER_ORDER if n not in UNTESTED])
    interactions, feedback = _stream()
    ingest(interactions=interactions, feedback=feedback)
    queue = django_rq.get_queue("curation")
    queue.empty()
    ids = dict(Interaction.objects.values_list("event_id", "pk"))
    # Each job holds one variant of three groups: every copy is in another job than its
    # original, and consecutive jobs (taken by the two workers at once) hold copies of
    # each other.
    batches = [
        [ids[f"g{g}{v}"] for g in range(start, start + 3)]
        for start in range(0, GROUPS, 3)
        for v in "oxn"
    ]
    batches.append([ids[f"g{g}o"] for g in range(GROUPS, GROUPS + FILLERS)])
    enqueued = [queue.enqueue(jobs.curate_interactions, batch).id for batch in batches]
    env = {
        **os.environ,
        "DATABASE_URL": "postgres://{USER}@{HOST}:{PORT}/{NAME}".format(**connection.settings_dict),
        "REDIS_URL": settings.REDIS_URL,
        "FLYWHEEL_ALLOW_DEV_SECRET": "true",
        "FLYWHEEL_ENV_FILE": "",
    }
    workers = [_worker(env), _worker(env)]
    try:
        deadline = time.monotonic() + 240  # a loaded machine starts Django slowly
        while any(w.poll() is None for w in workers) and time.monotonic() < deadline:
            time.sleep(0.1)
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()
    assert [w.returncode for w in workers] == [0, 0]
    done_by = {Job.fetch(job_id, connection=queue.connection).worker_name for job_id in enqueued}
    assert len(done_by) == 2  # both workers curated part of the stream

    assert set(Interaction.objects.values_list("curation_state", flat=True)) == {"done"}
    candidates = {
        c.interaction.event_id: c for c in Candidate.objects.select_related("interaction")
    }
    assert len(candidates) == Candidate.objects.count() == len(ids)
    for g in range(GROUPS):
        group = [candidates[f"g{g}{v}"] for v in "oxn"]
        assert [c.status for c in group].count("passed") == 1, [c.failed_filter for c in group]
        kept = next(c for c in group if c.status == "passed")
        for copy in group:
            if copy is kept:
                continue
            assert copy.failed_filter in ("dedup_exact", "dedup_near"), (g, copy.failed_filter)
            decision = FilterDecision.objects.get(candidate=copy, filter=copy.failed_filter)
            assert decision.details["duplicate_of"] in {c.pk for c in group}
    for g in range(GROUPS, GROUPS + FILLERS):
        assert candidates[f"g{g}o"].status == "passed"
    queued = ReviewItem.objects.values_list("candidate_id", flat=True)
    assert len(queued) == len(set(queued))
