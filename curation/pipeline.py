"""Curation: candidates from interactions, filters with recorded decisions,
and sampling into the reviewer queue.

Every chunk of interactions is curated in one transaction that claims the rows
(`FOR UPDATE SKIP LOCKED` on rows still `pending`), writes candidates,
decisions and sampling decisions (the review app queues sampled candidates in
the same transaction, see `curation.hooks`), and marks the rows `done`. A worker killed halfway
leaves nothing behind: the transaction rolls back, the rows stay pending, and
a retry or the sweeper curates them exactly once. Unique constraints on
(interaction, kind), (candidate, policy, filter) and review item per candidate
make a second run of the same chunk write nothing.

One row that cannot be curated (a value Python cannot hold, a shape no code
expected) must not stall the rest: a chunk that raises is rolled back and
redone one interaction per savepoint, and the interactions that raise again
are marked `failed` with their error, shown on the runs page for a curator to
retry (`interactions_curate_chunk`). The sweeper curates only `pending` rows,
so a failed one is not retried on every sweep.

The steps live in their own modules: `curation.candidates` (which candidates
an interaction makes), `curation.evaluation` (filters and decisions),
`curation.sampling` (keyed hash, stratified, priority), `curation.runs` (run
rows and locks) and `curation.policies`.
"""

import logging
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from rq.timeouts import JobTimeoutException

from curation.candidates import candidates_build
from curation.evaluation import candidates_evaluate
from curation.models import Candidate, CurationPolicy, CurationRun, FilterDecision, Interaction
from curation.orphans import feedback_link_orphans, feedback_orphans_link_all
from curation.policies import policy_current
from curation.rollups import interactions_rollup_delta
from curation.runs import curation_lock, run_add, run_start, run_tracked, runs_close_abandoned
from curation.sampling import candidates_sample

log = logging.getLogger(__name__)

# Failures of the surroundings, not of a row: never a reason to mark rows
# failed. The chunk stays pending for the job's retry or the sweeper.
ENVIRONMENT_ERRORS = (OperationalError, InterfaceError, JobTimeoutException, MemoryError)
CURATION_ERROR = "curation raised {error}"
ERROR_MAX_CHARS = 2000
# Interactions one sweep curates at most: the backlog of a long outage is worked off over
# a few intervals instead of in one sweep that outlives its own interval.
SWEEP_LIMIT = 20_000


@contextmanager
def _chunk_claimed(interaction_ids: Sequence[int]):
    """A transaction holding the curation lock and the chunk's rows still pending
    (`FOR UPDATE SKIP LOCKED`), with their late feedback linked; yields their ids."""
    with transaction.atomic(), connection.cursor() as cursor:
        curation_lock(cursor)
        cursor.execute(
            "SELECT id FROM curation_interaction WHERE id = ANY(%s::bigint[]) "
            "AND curation_state = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED",
            [list(interaction_ids)],
        )
        claimed = [row[0] for row in cursor.fetchall()]
        with interactions_rollup_delta(interaction_ids=claimed):
            if claimed:
                feedback_link_orphans(interaction_ids=claimed)
            yield claimed


def _curate_claimed(claimed: Sequence[int], policy: CurationPolicy) -> dict:
    """Build, evaluate and sample the claimed interactions and mark them done.
    Runs inside the caller's transaction (or savepoint) and lock."""
    interactions = list(Interaction.objects.filter(pk__in=claimed).order_by("pk"))
    new_ids = candidates_build(interactions=interactions, policy=policy)
    candidates = list(Candidate.objects.filter(pk__in=new_ids).order_by("pk"))
    counts = candidates_evaluate(candidates=candidates, policy=policy)
    counts["sampled"] = candidates_sample(candidates=candidates, policy=policy)
    Interaction.objects.filter(pk__in=claimed).update(
        curation_state=Interaction.CurationState.DONE,
        curation_claimed_at=timezone.now(),
        curation_error="",
        curation_failed_at=None,
    )
    counts["interactions"] = len(claimed)
    counts["candidates"] = len(candidates)
    return counts


def _counts_add(totals: dict, counts: dict) -> None:
    for key, value in counts.items():
        if key == "failed_by_filter":
            by_filter = totals.setdefault(key, {})
            for name, n in value.items():
                by_filter[name] = by_filter.get(name, 0) + n
        elif isinstance(value, int):
            totals[key] = totals.get(key, 0) + value
        else:
            totals[key] = value


def _curate_each(*, interaction_ids: Sequence[int], policy: CurationPolicy) -> dict:
    """The chunk again, one interaction per savepoint: each that raises is
    rolled back alone and marked failed with its error; the others are curated
    as the whole chunk would have curated them, in the same id order (dedup
    sees the earlier ones' candidates, which are in this transaction)."""
    totals: dict = {"interactions": 0, "errored": 0}
    failures: dict[int, str] = {}
    with _chunk_claimed(interaction_ids) as claimed:
        if not claimed:
            return totals
        for pk in claimed:
            try:
                with transaction.atomic():
                    counts = _curate_claimed([pk], policy)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as error:
                log.exception("curation of interaction %s failed; set aside as failed", pk)
                failures[pk] = CURATION_ERROR.format(error=repr(error))[:ERROR_MAX_CHARS]
                continue
            _counts_add(totals, counts)
        now = timezone.now()
        for pk, error in failures.items():
            Interaction.objects.filter(pk=pk).update(
                curation_state=Interaction.CurationState.FAILED,
                curation_claimed_at=now,
                curation_error=error,
                curation_failed_at=now,
            )
    totals["interactions"] += len(failures)
    totals["errored"] = len(failures)
    return totals


def interactions_curate_chunk(*, interaction_ids: Sequence[int], policy: CurationPolicy) -> dict:
    """Curate one chunk in one transaction (see the module docstring).

    One bad row must not stall the chunk (and with it every retry and sweep):
    when the chunk raises, it is rolled back and redone item by item, each in
    a savepoint, and the items that raise are marked failed with their error
    (`_curate_each`). The fast path stays one transaction over the whole chunk;
    only a failing chunk pays for the second pass. Errors of the environment
    (the database gone, the job's time up) are not any row's fault: they
    propagate, the chunk stays pending, and the job's retry or the sweeper
    curates it later."""
    try:
        with _chunk_claimed(interaction_ids) as claimed:
            if not claimed:
                return {"interactions": 0}
            counts = _curate_claimed(claimed, policy)
    except ENVIRONMENT_ERRORS:
        raise
    except Exception:
        log.warning("curation chunk failed; redoing it one interaction at a time", exc_info=True)
        return _curate_each(interaction_ids=interaction_ids, policy=policy)
    return counts


def interactions_curate(
    *, interaction_ids: Sequence[int], run: CurationRun | None = None, progress=None
) -> dict:
    """Curate interactions in chunks, each in its own transaction, updating the
    run row after each so the UI shows progress. An interaction whose curation
    raises is marked failed and counted in `errored`; the others carry on."""
    policy = policy_current()
    chunk = settings.FLYWHEEL_CURATION_CHUNK
    ids = sorted(set(interaction_ids))
    totals: dict = {}
    for start in range(0, len(ids), chunk):
        counts = interactions_curate_chunk(
            interaction_ids=ids[start : start + chunk], policy=policy
        )
        run_add(run, counts)
        _counts_add(totals, counts)
        if progress:
            progress(len(ids[start : start + chunk]))
    return totals


def candidates_recurate(
    *,
    policy: CurationPolicy,
    candidate_ids: Sequence[int] | None = None,
    full: bool = False,
    run: CurationRun | None = None,
    progress=None,
) -> dict:
    """Re-run the filters on existing candidates under `policy`. Decisions made
    under other versions are kept; newly passing candidates are sampled
    (items already queued stay queued)."""
    query = Candidate.objects.order_by("pk")
    if candidate_ids is not None:
        query = query.filter(pk__in=candidate_ids)
    ids = list(query.values_list("pk", flat=True))
    chunk = settings.FLYWHEEL_CURATION_CHUNK
    totals: dict = {}
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with transaction.atomic(), connection.cursor() as cursor:
            curation_lock(cursor)
            candidates = list(Candidate.objects.filter(pk__in=part).order_by("pk"))
            with interactions_rollup_delta(interaction_ids={c.interaction_id for c in candidates}):
                # Decisions under this version are recomputed, not duplicated.
                FilterDecision.objects.filter(candidate__in=part, policy=policy).delete()
                counts = candidates_evaluate(candidates=candidates, policy=policy, full=full)
                counts["sampled"] = candidates_sample(candidates=candidates, policy=policy)
            counts["candidates"] = len(candidates)
        run_add(run, counts)
        _counts_add(totals, counts)
        if progress:
            progress(len(part))
    return totals


def held_recheck(*, run: CurationRun | None = None) -> dict:
    """Evaluate held candidates again (the toxicity model may be back)."""
    ids = list(Candidate.objects.filter(status=Candidate.Status.HELD).values_list("pk", flat=True))
    if not ids:
        return {}
    return candidates_recurate(policy=policy_current(), candidate_ids=ids, run=run)


def sweep(*, grace_seconds: int | None = None, limit: int | None = None) -> dict:
    """What the scheduler runs every FLYWHEEL_SWEEP_INTERVAL_S, and THE recovery
    path for anything a dead worker or a lost job left behind: close the run
    rows of processes that are gone, link feedback that raced its interaction,
    send touched interactions back to curation, curate every interaction left
    pending for longer than the grace (Redis was down, a job was lost, a worker
    was killed), and re-check held candidates. So whatever a fault leaves is
    curated within one interval plus the grace of the fault. Bounded by
    `limit` per sweep."""
    grace = settings.FLYWHEEL_SWEEP_GRACE_S if grace_seconds is None else grace_seconds
    runs_close_abandoned(older_than=timedelta(seconds=grace))
    limit = SWEEP_LIMIT if limit is None else limit
    touched = feedback_orphans_link_all()
    cutoff = timezone.now() - timedelta(seconds=grace)
    pending = list(
        Interaction.objects.filter(
            curation_state=Interaction.CurationState.PENDING, received_at__lte=cutoff
        )
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    result = {"linked": len(touched), "pending": len(pending)}
    held = Candidate.objects.filter(status=Candidate.Status.HELD).exists()
    if not pending and not held:
        return result
    with run_tracked(run_start(trigger=CurationRun.Trigger.SWEEPER, total=len(pending))) as run:
        if pending:
            result["curated"] = interactions_curate(interaction_ids=pending, run=run)
        if held:
            result["held"] = held_recheck(run=run)
    return result
