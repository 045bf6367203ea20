"""Ingest hands what it stored to curation, after commit: a chunk's worth or more as RQ jobs
of their own, fewer (nearly every single event) through the curation inbox, a Redis list one
job empties a chunk at a time. Redis down: the rows stay pending in PostgreSQL and the
sweeper curates them (curation.pipeline.sweep)."""

from django.conf import settings
from rq import Retry

from flywheel_site import redis as fw_redis

CURATION_JOB = "curation.jobs.curate_interactions"
CURATION_INBOX_JOB = "curation.jobs.curate_inbox"
# A few interactions at a time (single events, small batches) wait here for one job that
# takes them a chunk at a time; the flag is set while that job is queued.
CURATION_INBOX = "flywheel:curation:inbox"
CURATION_INBOX_FLAG = "flywheel:curation:inbox-job"
# The flag outlives a lost job (a flushed Redis) by at most this long; a job queued behind
# a longer backlog only means a second one, which finds the inbox emptier.
CURATION_INBOX_FLAG_TTL_S = 60


def curation_enqueue(*, interaction_ids) -> None:
    """Hand interactions to the curation queue. If Redis is down they stay
    pending in PostgreSQL and the sweeper enqueues them later."""
    ids = sorted(interaction_ids)
    # One job per curation chunk (one transaction): a retried job redoes little.
    chunk = settings.FLYWHEEL_CURATION_CHUNK
    for start in range(0, len(ids), chunk):
        enqueued = fw_redis.enqueue(
            "curation",
            CURATION_JOB,
            ids[start : start + chunk],
            job_timeout=settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S,
            retry=_retry(),
        )
        if not enqueued:
            return


def curation_hand_over(*, interaction_ids) -> None:
    """What ingest calls after commit. A chunk's worth or more gets jobs of its own
    (`curation_enqueue`); fewer, nearly every single event, go to the curation inbox in one
    Redis round trip, and the inbox's job curates them a chunk at a time: one curation run
    per chunk instead of one per event (bench/curation_inbox.py)."""
    ids = sorted(interaction_ids)
    if len(ids) >= settings.FLYWHEEL_CURATION_CHUNK:
        curation_enqueue(interaction_ids=ids)
        return
    pushed = fw_redis.inbox_push(
        inbox=CURATION_INBOX,
        items=ids,
        flag=CURATION_INBOX_FLAG,
        flag_ttl_s=CURATION_INBOX_FLAG_TTL_S,
    )
    if pushed:
        _inbox_job_enqueue()


def _inbox_job_enqueue() -> None:
    enqueued = fw_redis.enqueue(
        "curation",
        CURATION_INBOX_JOB,
        job_timeout=settings.FLYWHEEL_CURATION_JOB_TIMEOUT_S,
        retry=_retry(),
    )
    if not enqueued:
        # No job behind the flag: cleared, the next write enqueues one (else the flag's TTL).
        fw_redis.flag_clear(flag=CURATION_INBOX_FLAG)


def curation_inbox_take() -> list[int]:
    """For the inbox's job: up to a chunk of interaction ids. When more are left, another
    job is queued first, so a second worker can take the next chunk meanwhile. Ids taken by
    a job that then dies are still pending in PostgreSQL: the sweeper curates them."""
    ids, left = fw_redis.inbox_take(
        inbox=CURATION_INBOX,
        flag=CURATION_INBOX_FLAG,
        count=settings.FLYWHEEL_CURATION_CHUNK,
    )
    if left and fw_redis.flag_set(flag=CURATION_INBOX_FLAG, ttl_s=CURATION_INBOX_FLAG_TTL_S):
        _inbox_job_enqueue()
    return ids


def curation_inbox_return(*, interaction_ids: list[int]) -> None:
    """Ids a failing inbox job took, back at the inbox's end for the job's retry (after RQ's
    backoff). No job is queued for them: a fault that fails every job (the database gone)
    must not spin up a new one per failure. If the retries run out, the next job or the
    sweeper curates them: they are still pending in PostgreSQL."""
    fw_redis.inbox_push(inbox=CURATION_INBOX, items=interaction_ids)


def _retry() -> Retry | None:
    retries = settings.FLYWHEEL_CURATION_RETRIES
    if not retries:
        return None
    # Transient failures (a database restart, a deadlock) get backoff; a job that
    # still fails is left to the sweeper, which curates whatever stays pending.
    return Retry(max=retries, interval=[10, 60, 300][:retries])
