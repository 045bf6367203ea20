"""RQ entry points for curation: thin, take ids, call services. Each is
idempotent: a retry or a second worker finds the rows already done."""

from django.db import close_old_connections
from rq import get_current_job

from curation import actions, ingest_queue, pipeline, runs
from curation.models import CurationRun


def _job_id() -> str:
    job = get_current_job()
    return job.id if job else ""


def curate_interactions(interaction_ids: list[int]) -> dict:
    # Workers outlive database restarts; jobs are not requests, so Django's
    # per-request connection check does not run for them.
    close_old_connections()
    run = runs.run_start(
        trigger=CurationRun.Trigger.INGEST, total=len(interaction_ids), job_id=_job_id()
    )
    with runs.run_tracked(run):
        return pipeline.interactions_curate(interaction_ids=interaction_ids, run=run)


def curate_inbox() -> dict:
    """The curation inbox's job (single events, small batches): a chunk of it, curated as
    `curate_interactions` curates its ids. Run twice, the second finds the inbox emptier."""
    close_old_connections()
    ids = ingest_queue.curation_inbox_take()
    if not ids:
        return {"interactions": 0}
    try:
        return curate_interactions(ids)
    except Exception:
        ingest_queue.curation_inbox_return(interaction_ids=ids)
        raise


def sweep() -> dict:
    close_old_connections()
    return pipeline.sweep()


def candidate_action_perform(action_id: int) -> int:
    close_old_connections()
    return actions.candidate_action_perform(action_id=action_id, job_id=_job_id())
