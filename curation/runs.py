"""Curation run rows: what the runs page shows and polls. A running row is
held by a session advisory lock of the process doing the work, so the sweeper
can tell an abandoned run from a slow one (`runs_close_abandoned`)."""

import logging
from contextlib import contextmanager
from datetime import timedelta

import pghistory
from django.db import DatabaseError, connection
from django.db.models import F
from django.utils import timezone

from curation.models import CurationRun
from curation.policies import policy_current

log = logging.getLogger(__name__)

ABANDONED = "abandoned: the worker stopped before finishing; the sweeper curates what it left"


def run_add(run: CurationRun | None, counts: dict) -> None:
    if run is None:
        return
    by_filter = dict(run.failed_by_filter)
    for name, n in counts.get("failed_by_filter", {}).items():
        by_filter[name] = by_filter.get(name, 0) + n
    CurationRun.objects.filter(pk=run.pk).update(
        interactions=F("interactions") + counts.get("interactions", 0),
        candidates=F("candidates") + counts.get("candidates", 0),
        passed=F("passed") + counts.get("passed", 0),
        failed=F("failed") + counts.get("failed", 0),
        held=F("held") + counts.get("held", 0),
        sampled=F("sampled") + counts.get("sampled", 0),
        errored=F("errored") + counts.get("errored", 0),
        failed_by_filter=by_filter,
        **({"scorer": counts["scorer"]} if counts.get("scorer") else {}),
    )
    run.failed_by_filter = by_filter


# A running run holds a session advisory lock on (RUN_LOCK_SPACE, run id) from the
# connection of the process doing the work. PostgreSQL drops it when that
# process dies (kill -9, OOM) or loses its connection, so the sweeper knows
# the run is abandoned without waiting for any timeout.
RUN_LOCK_SPACE = 7202
_runs_held: set[int] = set()


def _run_lock_key(pk: int) -> list[int]:
    # The two-int form of an advisory lock takes 32-bit keys.
    return [RUN_LOCK_SPACE, pk % 2**31]


def _run_lock(run: CurationRun) -> None:
    if run.pk in _runs_held:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", _run_lock_key(run.pk))
    _runs_held.add(run.pk)


def _run_unlock(run: CurationRun) -> None:
    if run.pk not in _runs_held:
        return
    _runs_held.discard(run.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", _run_lock_key(run.pk))


def run_start(*, trigger: str, total: int = 0, job_id: str = "") -> CurationRun:
    run = CurationRun.objects.create(
        trigger=trigger,
        status=CurationRun.Status.RUNNING,
        total=total,
        job_id=job_id,
        policy=policy_current(),
        started_at=timezone.now(),
    )
    _run_lock(run)
    return run


@contextmanager
def run_tracked(run: CurationRun):
    """Close the run row as succeeded, or failed with the error's repr, however
    the block ends (a killed worker's row is closed by the sweeper instead)."""
    _run_lock(run)
    try:
        # Every audit event the run writes names it (beside the job, when a worker runs it).
        with pghistory.context(curation_run=run.pk):
            yield run
    except BaseException as error:
        run_finish(run=run, error=error)
        raise
    run_finish(run=run)


def run_finish(*, run: CurationRun, error: BaseException | None = None) -> None:
    try:
        CurationRun.objects.filter(pk=run.pk).update(
            status=CurationRun.Status.FAILED if error else CurationRun.Status.SUCCEEDED,
            error=repr(error) if error else "",
            finished_at=timezone.now(),
        )
    finally:
        try:
            _run_unlock(run)
        except DatabaseError:
            # The connection is gone, and the lock with it: the sweeper closes the row.
            log.warning("could not release the lock of curation run %s", run.pk)


def runs_close_abandoned(*, older_than: timedelta) -> int:
    """Close running rows whose process is gone: their advisory lock is free.
    Rows younger than `older_than` are left alone (a run takes its lock right
    after creating its row)."""
    closed = 0
    cutoff = timezone.now() - older_than
    ids = CurationRun.objects.filter(
        status=CurationRun.Status.RUNNING, started_at__lt=cutoff
    ).values_list("pk", flat=True)
    for pk in ids:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", _run_lock_key(pk))
            if not cursor.fetchone()[0]:
                continue
            try:
                closed += CurationRun.objects.filter(
                    pk=pk, status=CurationRun.Status.RUNNING
                ).update(
                    status=CurationRun.Status.FAILED, error=ABANDONED, finished_at=timezone.now()
                )
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", _run_lock_key(pk))
    if closed:
        log.warning("closed %d curation runs whose process stopped", closed)
    return closed
