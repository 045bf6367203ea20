"""Curation: candidates from interactions, filters with recorded decisions,
and sampling into the reviewer queue.

A chunk of interactions is curated in two steps, so that curation scales with its
workers (issue 21):
1. Prepare, in no transaction and holding no lock: read the chunk's pending
   interactions and their feedback, build the candidates and their signatures, and
   run every filter but dedup, the toxicity model and the judge included
   (`evaluation.candidates_prepare`).
2. Write, in one short transaction: claim the rows still `pending`
   (`FOR UPDATE SKIP LOCKED`: a row another worker holds is skipped), link late
   feedback, set aside a row whose feedback changed since step 1 (it is prepared
   again), give the new candidates ids, read the candidates committed under their
   dedup keys (`dedup_earlier`), decide dedup against them (and the chunk's own with
   smaller ids), insert the candidates with their verdicts and record the decisions,
   and mark the rows `done`, and write the curation rollup; the new candidates are
   listed under their dedup keys first (`candidates.dedup_listing_add`). Then read what
   other workers listed under the chunk's keys since the first read
   (`dedup_earlier.EarlierCandidates.unchanged`), sample, take the dedup lock
   (`candidates.dedup_keys_lock`, one for every key) and read again what was listed
   since that check. If either check finds that another worker committed a candidate
   that changes one of the chunk's dedup verdicts, give the lock back, decide dedup
   again, store again the few rows that differ (`evaluation.candidates_redecide`, the
   rollup with them) and check again (after `RACE_ATTEMPTS` races, decide holding the
   lock). The sampling decisions (the review app queues sampled candidates in the same
   transaction, see `curation.hooks`) are recorded just before the lock, in a savepoint
   that a race rolls back, to record them again on the verdicts as stored. So the lock
   is held for one short read and the commit, not for the chunk's writes, and a race
   costs a few rows and a second sampling, not the write.
Workers wait for each other only for that hold (its share of a chunk, and the speed-up
it bounds: bench/RESULTS.md); two chunks commit one after the other, and the second sees
the first's candidates, so a duplicate is found whichever worker saw the earlier copy.
A worker killed halfway
leaves nothing behind: step 1 wrote nothing, and step 2 rolls back, the rows stay
pending, and a retry or the sweeper curates them exactly once. Unique constraints on
(interaction, kind), (candidate, policy, filter) and review item per candidate make a
second run of the same chunk write nothing.

One row that cannot be curated (a value Python cannot hold, a shape no code
expected) must not stall the rest: a chunk that raises is halved and each half
curated on its own, down to single rows; a single row that raises is marked
`failed` with its error, shown on the runs page for a curator to retry
(`interactions_curate_chunk`). The sweeper curates only `pending` rows, so a
failed one is not retried on every sweep.

The steps live in their own modules: `curation.candidates` (which candidates
an interaction makes, dedup keys), `curation.evaluation` (filters and decisions),
`curation.sampling` (keyed hash, stratified, priority), `curation.runs` (run
rows and locks) and `curation.policies`.
"""

import copy
import logging
from collections.abc import Sequence
from contextlib import contextmanager
from datetime import timedelta

from django.conf import settings
from django.db import InterfaceError, OperationalError, connection, transaction
from django.utils import timezone
from rq.timeouts import JobTimeoutException

from curation import hooks
from curation.candidates import (
    candidates_fresh,
    candidates_new,
    dedup_keys_lock,
    dedup_listing_add,
    feedback_by_interaction,
)
from curation.dedup_earlier import EarlierCandidates
from curation.evaluation import (
    candidates_decide,
    candidates_evaluate,
    candidates_prepare,
    candidates_redecide,
)
from curation.models import Candidate, CurationPolicy, CurationRun, FilterDecision, Interaction
from curation.orphans import feedback_link_orphans, feedback_orphans_link_all
from curation.policies import policy_current
from curation.rollups import interactions_rollup_delta
from curation.runs import run_add, run_start, run_tracked, runs_close_abandoned
from curation.sampling import candidates_sample
from flywheel_site.deadlock import retry_on_deadlock

log = logging.getLogger(__name__)

# Failures of the surroundings, not of a row: never a reason to mark rows
# failed. The chunk stays pending for the job's retry or the sweeper.
ENVIRONMENT_ERRORS = (OperationalError, InterfaceError, JobTimeoutException, MemoryError)
CURATION_ERROR = "curation raised {error}"
ERROR_MAX_CHARS = 2000
# Interactions one sweep curates at most: the backlog of a long outage is worked off over
# a few intervals instead of in one sweep that outlives its own interval.
SWEEP_LIMIT = 20_000


# How often a chunk is prepared again for rows whose feedback changed while it was
# prepared; what is still changing after that is left pending for the sweeper.
PREPARE_ATTEMPTS = 3
# How often a chunk whose dedup verdicts another worker's commit changed decides again
# without the dedup lock before it decides holding it.
RACE_ATTEMPTS = 3


def _prepare(interaction_ids: Sequence[int], policy: CurationPolicy):
    """Step 1 (module docstring): the pending interactions' candidates with every
    filter but dedup run, and the feedback ids each interaction was prepared with."""
    interactions = list(
        Interaction.objects.filter(
            pk__in=interaction_ids, curation_state=Interaction.CurationState.PENDING
        ).order_by("pk")
    )
    feedback = feedback_by_interaction([i.pk for i in interactions])
    seen = {i.pk: [f.pk for f in feedback.get(i.pk, [])] for i in interactions}
    candidates = candidates_new(interactions=interactions, feedback=feedback, policy=policy)
    return candidates, candidates_prepare(candidates=candidates, policy=policy), seen


@contextmanager
def _chunk_claimed(interaction_ids: Sequence[int]):
    """A transaction holding the chunk's rows still pending (`FOR UPDATE SKIP
    LOCKED`); yields their ids."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT id FROM curation_interaction WHERE id = ANY(%s::bigint[]) "
            "AND curation_state = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED",
            [list(interaction_ids)],
        )
        yield [row[0] for row in cursor.fetchall()]


@contextmanager
def _rows_curating(claimed: Sequence[int]):
    """Around the writes to claimed rows: their late feedback linked, and the curation
    rollup kept exact (its rows written at the end of the block)."""
    with interactions_rollup_delta(interaction_ids=claimed):
        if claimed:
            feedback_link_orphans(interaction_ids=claimed)
        yield


# Django's foreign keys are deferred to the commit: checked now instead, so that they are
# not checked while the chunk holds the dedup lock. Only foreign keys: the audit chain's
# deferred trigger takes the chain's one lock row, and stays deferred so that every
# writer holds that row only for its commit.
_FOREIGN_KEYS = """
SELECT string_agg(DISTINCT quote_ident(conname), ', ') FROM pg_constraint
WHERE contype = 'f' AND condeferrable AND connamespace = current_schema()::regnamespace
"""


def _foreign_keys_check() -> None:
    with connection.cursor() as cursor:
        cursor.execute(_FOREIGN_KEYS)
        names = cursor.fetchone()[0]
        if names:
            cursor.execute(f"SET CONSTRAINTS {names} IMMEDIATE")


def _keys_locked(
    *,
    inserted: list[Candidate],
    undecided: list[Candidate],
    earlier: EarlierCandidates,
    decided: dict,
    prepared,
    policy: CurationPolicy,
    counts: dict,
    interaction_ids: Sequence[int],
) -> list[Candidate]:
    """Step 2's last part, the candidates and the rollup written (their foreign keys
    checked here): check what other workers listed under the chunk's keys since the
    first read, sample, take the dedup lock and check again what was listed since that
    check (usually nothing: the lock is held for a short read and the commit). When
    either check finds a verdict changed, roll the sampling back (and the lock with it:
    it was taken after the savepoint), store the verdicts again as deciding them now
    would (only the rows that differ, and the rollup with them) without the lock, and
    check again. After `RACE_ATTEMPTS` such races, decide again holding the lock, which
    nothing can overtake. `undecided`: copies of the candidates before they were
    decided; `interaction_ids`: theirs. Returns the candidates as stored; updates
    `counts`."""
    _foreign_keys_check()
    stored = inserted
    state = {"undecided": undecided, "decided": decided, "earlier": earlier}
    for _ in range(RACE_ATTEMPTS):
        # Checked first without the lock: a race found here costs no hold and no sampling.
        if earlier.unchanged():
            sampling = transaction.savepoint()
            counts["sampled"] = candidates_sample(candidates=stored, policy=policy)
            dedup_keys_lock(candidates=inserted)
            if earlier.unchanged():
                transaction.savepoint_commit(sampling)
                return stored
            transaction.savepoint_rollback(sampling)
        stored = _redecided(prepared, policy, counts, interaction_ids, **state)
    dedup_keys_lock(candidates=inserted)
    earlier.catch_up()  # what was listed before the lock was taken again
    stored = _redecided(prepared, policy, counts, interaction_ids, **state)
    counts["sampled"] = candidates_sample(candidates=stored, policy=policy)
    return stored


def _redecided(
    prepared, policy, counts, interaction_ids, *, undecided, decided, earlier
) -> list[Candidate]:
    with interactions_rollup_delta(interaction_ids=interaction_ids):
        stored, again = candidates_redecide(
            candidates=[copy.copy(c) for c in undecided],
            prepared=prepared,
            policy=policy,
            earlier=earlier,
            decided=decided,
        )
    counts.update(again)
    return stored


@retry_on_deadlock
def _write(seen: dict[int, list[int]], candidates, prepared, policy) -> tuple[dict, list[int]]:
    """Step 2 (module docstring). Returns the counts and the rows set aside because their
    feedback changed since they were prepared. Writes copies of `candidates` (given ids
    and verdicts here): a try that rolls back leaves the prepared ones as they were."""
    candidates = [copy.copy(c) for c in candidates]
    with _chunk_claimed(list(seen)) as claimed:
        with _rows_curating(claimed):
            feedback = feedback_by_interaction(claimed)
            changed = [pk for pk in claimed if [f.pk for f in feedback.get(pk, [])] != seen[pk]]
            done = sorted(set(claimed) - set(changed))
            if not done:
                return {"interactions": 0}, changed
            curated = set(done)
            mine = [c for c in candidates if c.interaction_id in curated]
            inserted = candidates_fresh(mine)
            # Listed first: the listing depends on no verdict.
            dedup_listing_add(candidates=inserted)
            undecided = [copy.copy(c) for c in inserted]
            earlier, decided = (
                EarlierCandidates.of_policy(inserted, policy=policy, by_commit=True),
                {},
            )
            counts = candidates_decide(
                candidates=inserted,
                prepared=prepared,
                policy=policy,
                earlier=earlier,
                insert=True,
                decided=decided,
            )
            Interaction.objects.filter(pk__in=done).update(
                curation_state=Interaction.CurationState.DONE,
                curation_claimed_at=timezone.now(),
                curation_error="",
                curation_failed_at=None,
            )
        # The rollup is written: the dedup lock is held for the re-check and the commit.
        inserted = _keys_locked(
            inserted=inserted,
            undecided=undecided,
            earlier=earlier,
            decided=decided,
            prepared=prepared,
            policy=policy,
            counts=counts,
            interaction_ids=done,
        )
    counts["interactions"] = len(done)
    counts["candidates"] = len(inserted)
    return counts, changed


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


def _chunk_curate(interaction_ids: Sequence[int], policy: CurationPolicy) -> dict:
    totals: dict = {"interactions": 0}
    ids = list(interaction_ids)
    for _ in range(PREPARE_ATTEMPTS):
        candidates, prepared, seen = _prepare(ids, policy)
        if not seen:
            break
        counts, ids = _write(seen, candidates, prepared, policy)
        _counts_add(totals, counts)
        if not ids:
            break
    return totals


def _failed_mark(pk: int, error: Exception) -> dict:
    message = CURATION_ERROR.format(error=repr(error))[:ERROR_MAX_CHARS]
    with _chunk_claimed([pk]) as claimed, _rows_curating(claimed):
        now = timezone.now()
        marked = Interaction.objects.filter(pk__in=claimed).update(
            curation_state=Interaction.CurationState.FAILED,
            curation_claimed_at=now,
            curation_error=message,
            curation_failed_at=now,
        )
    return {"interactions": marked, "errored": marked}


def interactions_curate_chunk(*, interaction_ids: Sequence[int], policy: CurationPolicy) -> dict:
    """Curate one chunk (see the module docstring).

    One bad row must not stall the chunk (and with it every retry and sweep):
    when the chunk raises, nothing of it was written; it is halved and each half
    curated alone, so a bad row among n costs about 2 log2(n) more tries (not n
    one-row tries, each paying the model's fixed cost per call), and a single row
    that raises is marked failed with its error. Errors of the environment (the
    database gone, the job's time up) are not any row's fault: they propagate, the
    chunk stays pending, and the job's retry or the sweeper curates it later."""
    ids = sorted(set(interaction_ids))
    try:
        return _chunk_curate(ids, policy)
    except ENVIRONMENT_ERRORS:
        raise
    except Exception as error:
        if len(ids) == 1:
            log.exception("curation of interaction %s failed; set aside as failed", ids[0])
            return _failed_mark(ids[0], error)
        log.warning("curation chunk of %d failed; curating its halves", len(ids), exc_info=True)
    totals: dict = {}
    half = len(ids) // 2
    for part in (ids[:half], ids[half:]):
        _counts_add(totals, interactions_curate_chunk(interaction_ids=part, policy=policy))
    return totals


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
        counts = _recurate_chunk(part, policy=policy, full=full)
        run_add(run, counts)
        _counts_add(totals, counts)
        if progress:
            progress(len(part))
    return totals


# Whole again on a deadlock: it holds its rollup rows while it waits for the dedup lock,
# whose holder may be writing rows of the same rollup shard.
@retry_on_deadlock
def _recurate_chunk(part: Sequence[int], *, policy: CurationPolicy, full: bool) -> dict:
    with transaction.atomic():
        candidates = list(Candidate.objects.filter(pk__in=part).order_by("pk"))
        with (
            interactions_rollup_delta(interaction_ids={c.interaction_id for c in candidates}),
            hooks.candidates_recurating(candidate_ids=part),
        ):
            # Decisions under this version are recomputed, not duplicated.
            FilterDecision.objects.filter(candidate__in=part, policy=policy).delete()
            counts = candidates_evaluate(candidates=candidates, policy=policy, full=full)
            counts["sampled"] = candidates_sample(candidates=candidates, policy=policy)
        counts["candidates"] = len(candidates)
    return counts


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
