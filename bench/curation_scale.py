"""Curation candidates/s with 1,000,000 existing candidates vs none (issue 21 §1).

Run: `make bench`, or `.venv/bin/python bench/curation_scale.py [--existing N]` with
DATABASE_URL and REDIS_URL set. Prints one JSON object on stdout; progress on stderr.

Two databases: `flywheel_bench_scale0` (no candidates but the measured ones) and
`flywheel_bench_scale_big`, filled once by SQL with N filler interactions and candidates
(60% passed, spread over the bench's strata, random LSH bands), their dedup listing and
the curation rollup rebuilt over them. Each round ingests a fresh batch of the edited
interactions of bench/curation.py into each database and curates it in this process with
every filter and the scorer `make run` uses (the offline fallback), alternating the two
databases (0 big 0 big ...) because the machine is shared; medians are reported with
the load average. The first `--warmup` rounds (1) are run and not counted: the first
chunk in a process pays for loading the scorer, and a database that has just been built
or restarted starts with none of its pages in memory, which a running deployment has.
The small database gains a batch per round: "0" means at most rounds x batch candidates.
`--reuse` keeps a big database already filled to the same size (building 1,000,000 takes
minutes); give it another `--seed`, since a batch already ingested there is skipped as a
replay.

The lock shares. A chunk holds the one dedup lock (`curation.candidates.dedup_keys_lock`)
from being granted it, after its writes, to its commit: `held_share` is that time over the
chunk's wall time, per chunk (median and max reported; a race gives the lock back until
the chunk locks again). It is global, so it is the serial fraction:
1 / held_share bounds the speed-up over any number of workers (Amdahl). The other global
lock a chunk takes is the audit chain's head row (flywheel_site/audit/sql.py), from the
commit's deferred audit triggers (the review items it queues are audited) to the commit's
end, inside that hold: `global_lock_share` is the larger of the two per chunk (the commit
alone for a chunk that took no dedup lock).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from contextlib import contextmanager
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    emit,
    ensure_database,
    log,
    machine,
    make_run_scorer_env,
    migrate,
    raise_on_sigterm,
    rounded,
    service_urls,
    with_path,
)
from bench.curation import edit_items, ingest
from bench.curation_workers import policy_all_filters

SMALL_DB = "flywheel_bench_scale0"
BIG_DB = "flywheel_bench_scale_big"
TARGET_RATIO = 0.9
TARGET_HELD_SHARE = 0.05
STRATA = (
    ("support", "support-bot-v3"),
    ("summarisation", "summariser-2026-10"),
    ("qa", "gpt-in-house-7b"),
)

_FILL_INTERACTIONS = """
INSERT INTO curation_interaction (source_id, event_id, occurred_at, received_at, model,
    task_type, messages, response, usage, user_hash, session_id, segment, metadata, pii,
    curation_state, curation_claimed_at, curation_error)
SELECT %(source)s, 'fill-' || g, now() - interval '30 days', now() - interval '30 days',
    (%(models)s::text[])[1 + g %% 3], (%(tasks)s::text[])[1 + g %% 3],
    '[{"role": "user", "content": "filler"}]', 'filler', '{}', '', '', '', '{}', '{}',
    'done', now() - interval '30 days', ''
FROM generate_series(1, %(n)s) g
"""
_FILL_CANDIDATES = """
INSERT INTO curation_candidate (interaction_id, kind, prompt, chosen, rejected, feedback_ids,
    feedback_kinds, task_type, model, status, status_reason, failed_filter, exact_key,
    minhash, lsh_bands, toxicity_scorer, created_at, evaluated_at, priority_details,
    sample_stratum, audit_filter)
SELECT i.id, 'preference', i.messages, 'filler answer ' || i.id, 'filler', '[]', '["edited"]',
    i.task_type, i.model, CASE WHEN i.id %% 5 < 3 THEN 'passed' ELSE 'failed' END, '',
    CASE WHEN i.id %% 5 < 3 THEN '' ELSE 'edit_band' END,
    md5(i.id::text) || md5((-i.id)::text), decode(repeat(md5(i.id::text), 32), 'hex'),
    ARRAY(SELECT hashtextextended(i.id || '-' || b, 0) FROM generate_series(1, 21) b),
    '', i.received_at, i.received_at, '{}', '', ''
FROM curation_interaction i WHERE i.event_id LIKE 'fill-%%'
"""
# Each filler candidate listed under its keys as `candidates.dedup_listing_add` would (the
# exact key's first 64 bits with the top one flipped, and the bands), in key order: the
# primary key then grows at its end instead of at random pages of an index that outgrows
# the buffer cache.
_FILL_LISTING = """
INSERT INTO curation_deduplisting (key, candidate_id, xid)
SELECT k.key, c.id, pg_current_xact_id()::text::bigint FROM curation_candidate c, LATERAL (
    SELECT unnest(c.lsh_bands) AS key
    UNION ALL
    SELECT (('x' || left(c.exact_key, 16))::bit(64) # x'8000000000000000')::bigint
) AS k
ORDER BY k.key, c.id
ON CONFLICT DO NOTHING
"""


def _use(name: str, base_db: str) -> None:
    from django.db import connection

    connection.close()
    connection.settings_dict["NAME"] = name
    os.environ["DATABASE_URL"] = with_path(base_db, name)


def _prepare_database(
    name: str, *, base_db: str, env: dict, existing: int, reuse: bool = False
) -> None:
    from django.db import connection

    url = with_path(base_db, name)
    ensure_database(url=url)
    log(f"migrating {name}")
    migrate(env={**env, "DATABASE_URL": url})
    _use(name, base_db)
    from curation.models import Candidate, Interaction, Source
    from curation.rollups import curation_metrics_rebuild

    filled = Interaction.objects.filter(event_id__startswith="fill-").count()
    if reuse and existing and filled == existing:
        log(f"{name}: reusing its {filled} filler interactions and candidates")
        return
    with connection.cursor() as cursor:
        cursor.execute(
            "TRUNCATE curation_interaction, curation_feedback, curation_candidate, "
            "curation_deduplisting, curation_curationmetricday "
            "RESTART IDENTITY CASCADE"
        )
    if not existing:
        return
    source, _ = Source.objects.get_or_create(name="bench-fill")
    log(f"{name}: filling {existing} interactions and candidates")
    params = {
        "source": source.pk,
        "n": existing,
        "models": [m for _, m in STRATA],
        "tasks": [t for t, _ in STRATA],
    }
    with connection.cursor() as cursor:
        cursor.execute(_FILL_INTERACTIONS, params)
        cursor.execute(_FILL_CANDIDATES, {})
        log(f"{name}: dedup keys of {Candidate.objects.count()} candidates")
        cursor.execute(_FILL_LISTING)
    log(f"{name}: rebuilding the curation rollup")
    curation_metrics_rebuild()
    with connection.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")


@contextmanager
def _lock_timed(shares: list[float], global_shares: list[float]):
    """Appends each chunk's held share (from being granted the dedup lock to the commit, or
    to the race that gives it back, over the chunk's wall time) to `shares`, and the larger
    of that and its commits' share to `global_shares`, while curating inside the block."""
    from django.db import connections, transaction

    from curation import pipeline

    chunk, lock = pipeline.interactions_curate_chunk, pipeline.dedup_keys_lock
    db = connections["default"]
    commit, rollback = db._commit, transaction.savepoint_rollback
    granted: list[float] = []  # when the lock held now was granted
    holds: list[float] = []
    committing: list[float] = []

    def hold_end():
        if granted:
            holds.append(time.perf_counter() - granted.pop())

    def timed_commit():
        started = time.perf_counter()
        try:
            return commit()
        finally:
            committing.append(time.perf_counter() - started)
            hold_end()

    def timed_lock(*, candidates):
        try:
            return lock(candidates=candidates)
        finally:
            if candidates and not granted:  # no candidates: no lock taken
                granted.append(time.perf_counter())

    def timed_rollback(*args, **kwargs):
        # The sampling savepoint's rollback gives the lock back (a race): a hold ends.
        try:
            return rollback(*args, **kwargs)
        finally:
            hold_end()

    def timed_chunk(**kwargs):
        granted.clear()
        holds.clear()
        committing.clear()
        started = time.perf_counter()
        counts = chunk(**kwargs)
        wall = time.perf_counter() - started
        held = sum(holds) / wall
        if holds:
            shares.append(held)
        global_shares.append(max(held, sum(committing) / wall))
        return counts

    pipeline.interactions_curate_chunk, pipeline.dedup_keys_lock = timed_chunk, timed_lock
    transaction.savepoint_rollback = timed_rollback
    db._commit = timed_commit
    try:
        yield
    finally:
        pipeline.interactions_curate_chunk, pipeline.dedup_keys_lock = chunk, lock
        transaction.savepoint_rollback = rollback
        del db._commit


def _round(name: str, *, base_db: str, batch: int, seed: int) -> dict:
    from curation.models import Candidate, Interaction
    from curation.pipeline import interactions_curate

    _use(name, base_db)
    ingest(edit_items(count=batch, seed=seed))  # earlier rounds left nothing pending
    ids = list(Interaction.objects.filter(curation_state="pending").values_list("pk", flat=True))
    existing = Candidate.objects.count()
    shares: list[float] = []
    global_shares: list[float] = []
    started = time.perf_counter()
    with _lock_timed(shares, global_shares):
        totals = interactions_curate(interaction_ids=ids)
    seconds = time.perf_counter() - started
    return {
        "existing": existing,
        "candidates": totals.get("candidates", 0),
        "seconds": seconds,
        "candidates_per_s": totals.get("candidates", 0) / seconds,
        "held_shares": shares,
        "global_shares": global_shares,
        "load_1m": os.getloadavg()[0],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--existing", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=600)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--warmup", type=int, default=1, help="rounds per database run first and not counted"
    )
    parser.add_argument("--seed", type=int, default=100)
    parser.add_argument("--reuse", action="store_true", help="keep a big database of that size")
    args = parser.parse_args()
    raise_on_sigterm()
    began = time.perf_counter()
    base_db, base_redis = service_urls()
    env = make_run_scorer_env(
        database_url=with_path(base_db, SMALL_DB), redis_url=with_path(base_redis, "5")
    )
    ensure_database(url=with_path(base_db, SMALL_DB))
    os.environ.update(env)
    import django

    django.setup()
    for name, existing in ((SMALL_DB, 0), (BIG_DB, args.existing)):
        _prepare_database(name, base_db=base_db, env=env, existing=existing, reuse=args.reuse)
        policy_all_filters(note="bench: scale")
    runs: dict[str, list[dict]] = {SMALL_DB: [], BIG_DB: []}
    for index in range(args.warmup + args.rounds):
        for name in (SMALL_DB, BIG_DB):
            result = _round(name, base_db=base_db, batch=args.batch, seed=args.seed + index)
            counted = index >= args.warmup
            log(
                f"round {index + 1} {name}: {result['candidates_per_s']:.1f} candidates/s"
                + ("" if counted else " (warm-up, not counted)")
            )
            if counted:
                runs[name].append(result)
    shares = {name: [s for r in runs[name] for s in r["held_shares"]] for name in runs}
    global_shares = {name: [s for r in runs[name] for s in r["global_shares"]] for name in runs}
    ratios = [
        big["candidates_per_s"] / small["candidates_per_s"]
        for small, big in zip(runs[SMALL_DB], runs[BIG_DB], strict=True)
    ]
    emit(
        {
            "bench": "curation_scale",
            "machine": machine(),
            "existing_candidates": args.existing,
            "batch": args.batch,
            "small_per_s": [rounded(r["candidates_per_s"], 1) for r in runs[SMALL_DB]],
            "big_per_s": [rounded(r["candidates_per_s"], 1) for r in runs[BIG_DB]],
            "ratios": [rounded(r, 3) for r in ratios],
            "ratio_median": rounded(statistics.median(ratios), 3),
            "held_share": {
                name: {
                    "median": rounded(statistics.median(shares[name]), 4),
                    "max": rounded(max(shares[name]), 4),
                    "chunks": len(shares[name]),
                }
                for name in runs
            },
            "amdahl_bound": rounded(1 / statistics.median(shares[BIG_DB] + shares[SMALL_DB]), 1),
            "global_lock_share": {
                name: {
                    "median": rounded(statistics.median(global_shares[name]), 4),
                    "max": rounded(max(global_shares[name]), 4),
                }
                for name in runs
            },
            "target_held_share": TARGET_HELD_SHARE,
            "load_1m": [rounded(r["load_1m"], 2) for n in runs for r in runs[n]],
            "target_ratio": TARGET_RATIO,
            "targets_met": statistics.median(ratios) >= TARGET_RATIO
            and statistics.median(shares[BIG_DB]) <= TARGET_HELD_SHARE
            and statistics.median(global_shares[BIG_DB]) <= TARGET_HELD_SHARE,
            "total_seconds": rounded(time.perf_counter() - began, 1),
        }
    )


if __name__ == "__main__":
    main()
