"""A curation run's row says what happened, in words: "0 / 343" after the demo meant the
interactions had been curated by another run first, not that curation failed."""

import pytest

from curation import pipeline, policies, runs
from curation.models import CurationRun
from curation.models import runs as texts
from tests.support.curation import edited

pytestmark = pytest.mark.django_db


def test_a_job_that_finds_its_interactions_already_curated_says_so(as_user, curator):
    policies.policy_create(changes={"enabled_filters": ["user_action", "length"]})
    a, b = edited("x1"), edited("x2")
    # What the demo does: curate at once from the command...
    command = runs.run_start(trigger="command", total=2)
    pipeline.interactions_curate(interaction_ids=[a.pk, b.pk], run=command)
    runs.run_finish(run=command)
    # ...and then the ingest job queued for the same interactions runs (its body: the job
    # itself first closes the connection, which a test's transaction cannot survive).
    job = runs.run_start(trigger="ingest", total=2)
    with runs.run_tracked(job):
        pipeline.interactions_curate(interaction_ids=[a.pk, b.pk], run=job)

    job_run = CurationRun.objects.filter(trigger="ingest").get()
    command.refresh_from_db()
    assert (job_run.status, job_run.interactions, job_run.total) == ("succeeded", 0, 2)
    assert job_run.explanation == texts.RUN_ALL_ELSEWHERE.format(total=2)
    assert command.explanation == texts.RUN_ALL_HERE.format(done=2)
    page = as_user(curator).get("/curation/runs/").content.decode()
    assert texts.RUN_ALL_ELSEWHERE.format(total=2) in page
    assert texts.RUN_ALL_HERE.format(done=2) in page


@pytest.mark.parametrize(
    ("fields", "text"),
    [
        ({"status": "queued", "total": 5}, texts.RUN_WAITING),
        (
            {"status": "running", "total": 5, "interactions": 2},
            texts.RUN_SO_FAR.format(done=2, total=5),
        ),
        ({"status": "running"}, texts.RUN_STARTED),
        (
            {"status": "failed", "total": 5, "interactions": 2},
            texts.RUN_STOPPED.format(done=2, total=5),
        ),
        ({"status": "succeeded", "trigger": "sweeper"}, texts.RUN_NOTHING_PENDING),
        ({"status": "succeeded", "trigger": "ingest"}, texts.RUN_EMPTY),
        (
            {"status": "succeeded", "total": 5, "interactions": 3},
            texts.RUN_SOME_ELSEWHERE.format(done=3, total=5, elsewhere=2),
        ),
    ],
)
def test_every_state_of_a_run_is_explained(fields, text):
    run = CurationRun(**{"trigger": "ingest", **fields})
    assert run.explanation == text


def test_consecutive_runs_that_did_nothing_are_one_row_with_a_count(as_user, curator):
    worked = CurationRun.objects.create(trigger="ingest", status="succeeded", total=1,
                                        interactions=1, candidates=1)  # fmt: skip
    idle = [CurationRun.objects.create(trigger="sweeper", status="succeeded") for _ in range(30)]

    page = as_user(curator).get("/curation/runs/").content.decode()

    assert page.count('class="idle-runs"') == 1
    assert f"#{idle[0].pk}\u2013#{idle[-1].pk}" in page and "30 runs</span>" in page
    assert page.count(texts.RUN_NOTHING_PENDING) == 1
    assert f'id="run-{worked.pk}"' in page  # the run that curated something keeps its row
