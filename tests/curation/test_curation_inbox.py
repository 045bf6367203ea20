"""The curation inbox: single events and small batches wait in one Redis list for one job,
which curates them a chunk at a time (curation.ingest_queue.curation_hand_over). Real Redis,
real RQ workers in this process."""

import django_rq
import pytest

from curation import ingest_queue, jobs
from curation.models import CurationRun, Interaction
from flywheel_site import redis as fw_redis
from tests.support import factories
from tests.support.curation import edits, no_toxicity
from tests.support.jobs import run_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def queued() -> list[str]:
    return [job.func_name for job in django_rq.get_queue("curation").get_jobs()]


def inbox() -> list[int]:
    return [int(i) for i in fw_redis.client().lrange(ingest_queue.CURATION_INBOX, 0, -1)]


def test_single_events_share_one_job_and_it_curates_them_all(api):
    no_toxicity()
    for i in range(12):
        assert api.post("/api/v1/interactions", factories.interaction(f"s{i}")).status_code == 201
    assert queued() == [ingest_queue.CURATION_INBOX_JOB]
    assert len(inbox()) == 12
    run_jobs("curation")
    assert Interaction.objects.filter(curation_state="done").count() == 12
    run = CurationRun.objects.get()
    assert (run.trigger, run.interactions, run.status) == ("ingest", 12, "succeeded")
    assert inbox() == [] and queued() == []


def test_the_inbox_is_taken_a_chunk_at_a_time_and_the_next_job_queued_first(settings):
    no_toxicity()
    settings.FLYWHEEL_CURATION_CHUNK = 4
    for i in range(3):
        edits(3, prefix=f"c{i}-")  # three writes of 3: each under a chunk
    assert queued() == [ingest_queue.CURATION_INBOX_JOB] and len(inbox()) == 9
    # One job takes one chunk and, with more left, queues the next before curating.
    assert jobs.curate_inbox()["interactions"] == 4
    assert queued() == [ingest_queue.CURATION_INBOX_JOB, ingest_queue.CURATION_INBOX_JOB]
    run_jobs("curation")
    assert Interaction.objects.filter(curation_state="done").count() == 9
    assert sorted(CurationRun.objects.values_list("interactions", flat=True)) == [1, 4, 4]


def test_running_the_inbox_job_again_changes_nothing():
    no_toxicity()
    edits(5)
    run_jobs("curation")
    done = list(Interaction.objects.filter(curation_state="done").values_list("pk", flat=True))
    assert jobs.curate_inbox() == {"interactions": 0}
    ingest_queue.curation_hand_over(interaction_ids=done)  # the same ids handed over twice
    run_jobs("curation")
    assert Interaction.objects.filter(curation_state="done").count() == len(done) == 5
    assert CurationRun.objects.filter(interactions__gt=0).count() == 1


def test_a_chunk_of_interactions_or_more_gets_jobs_of_its_own(settings):
    settings.FLYWHEEL_CURATION_CHUNK = 4
    no_toxicity()
    edits(9)
    assert queued() == [ingest_queue.CURATION_JOB] * 3  # 4 + 4 + 1, by ids as before
    assert inbox() == []
    jobs_ = django_rq.get_queue("curation").get_jobs()
    ids = sorted(Interaction.objects.values_list("pk", flat=True))
    assert [job.args for job in jobs_] == [(ids[:4],), (ids[4:8],), (ids[8:],)]
    for job in jobs_:
        assert job.timeout == settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S
        assert job.retries_left == settings.FLYWHEEL_CURATION_RETRIES
        assert job.retry_intervals == [10, 60, 300]


def test_ids_a_failing_job_took_wait_for_its_retry_and_no_job_is_spun_up(monkeypatch, settings):
    no_toxicity()
    edits(3)
    ids = inbox()

    def fail(interaction_ids):
        raise RuntimeError("the database went away")

    monkeypatch.setattr(jobs, "curate_interactions", fail)
    run_jobs("curation")  # a real worker: the job fails and RQ schedules its retry
    assert inbox() == ids
    # Only the retry, after its backoff: no new job per failure while the fault lasts.
    assert queued() == []
    queue = django_rq.get_queue("curation")
    (job_id,) = queue.scheduled_job_registry.get_job_ids()
    assert queue.fetch_job(job_id).retries_left == settings.FLYWHEEL_CURATION_RETRIES - 1
    monkeypatch.undo()
    assert jobs.curate_inbox()["interactions"] == 3  # what the retry will do
    assert Interaction.objects.filter(curation_state="done").count() == 3


def test_a_flag_whose_job_could_not_be_queued_is_cleared(monkeypatch):
    no_toxicity()
    monkeypatch.setattr(fw_redis, "enqueue", lambda *args, **kwargs: False)
    edits(2, prefix="down-")
    assert fw_redis.client().exists(ingest_queue.CURATION_INBOX_FLAG) == 0
    monkeypatch.undo()
    edits(1, prefix="back-")  # the next write queues the job, which takes all three
    assert queued() == [ingest_queue.CURATION_INBOX_JOB]
    run_jobs("curation")
    assert Interaction.objects.filter(curation_state="done").count() == 3


def test_an_item_pushed_after_a_take_gets_a_job_and_one_pushed_before_is_taken():
    flag = ingest_queue.CURATION_INBOX_FLAG
    push = dict(inbox=ingest_queue.CURATION_INBOX, flag=flag, flag_ttl_s=60)
    assert fw_redis.inbox_push(items=[1], **push) is True  # sets the flag: enqueue a job
    assert fw_redis.inbox_push(items=[2], **push) is False  # a job is queued already
    taken, left = fw_redis.inbox_take(inbox=ingest_queue.CURATION_INBOX, flag=flag, count=10)
    assert (taken, left) == ([1, 2], 0)
    assert fw_redis.inbox_push(items=[3], **push) is True  # after the take: a job of its own
