"""The reads the product makes per page or on a schedule, at 10,000 and at 10,000,000
interactions, and batch ingest at 10,000,000 existing interactions vs at 0 (issue 21).

Run: `scripts/bench.sh reads_scale`, or `.venv/bin/python bench/reads_scale.py` with
DATABASE_URL and REDIS_URL set (`eval "$(scripts/services.sh env)"`). `--big N` changes
the large history (default 10,000,000), `--keep` keeps the databases for a rerun (the
default drops them at the end). Prints one JSON object on stdout; progress on stderr.
Figures and the command: bench/RESULTS.md.

1. Two databases, `flywheel_bench_reads_small` and `flywheel_bench_reads_big`, filled
   server-side by `bench/metrics.py`'s fill (90 days of interactions with short texts:
   about 200 bytes a row, not the 2 KB of real traffic, so 10M rows fit this shared disk;
   feedback on one in five, a candidate on one in fifty), with the database's triggers off
   during the fill (`session_replication_role = replica`: no audit events for bench rows).
   Then, in proportion: one candidate in ten is reviewed (two filter decisions under the
   candidate's policy, its draw at probability 1, 0.05 or 0.02, a review item and an
   outcome), approved outcomes become gold pairs, two frozen dataset versions hold them
   and two promoted models were trained on those versions. The same canary traffic (2,000
   interactions per arm in the last day, feedback on one in five) is added to both.
2. Each read is timed in a child process per database (Django set up against it), in
   rounds that alternate the two databases: the canary's per-arm reads (`arm_outcomes`,
   `keyed_outcomes`), the dashboard's selectors (`flywheel_metrics` for 90 days,
   `filter_choices`, `filter_agreement`, `monitor_alerts_open`, `audit_status`) and the
   cycles' time to improvement (the stored figure; the old membership scan beside it).
   p95 of each; ratio big / small (target <= 1.2).
3. Batch ingest (500-event batches, 4 in flight) into an empty database and into the big
   one, each behind its own gunicorn, alternating in rounds: events/s at 10M / at 0
   (target >= 0.9).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench import metrics
from bench.common import (
    Gunicorn,
    TrafficFactory,
    app_env,
    bench_database_url,
    bench_redis_url,
    create_token,
    emit,
    ensure_database,
    log,
    machine,
    migrate,
    percentile,
    pg_connect,
    python_run,
    raise_on_sigterm,
    redis_clear,
    rounded,
    run_load,
    service_urls,
    stopwatch,
    with_path,
)
from bench.ingest import BATCH_EVENTS, MIX

SMALL, BIG = 10_000, 10_000_000
TARGET_READS = 1.2
TARGET_INGEST = 0.9
ROUNDS = 6
CALLS = 15  # per read, round and database
INGEST_ROUNDS = 6
INGEST_BATCHES = 40
END = datetime.fromisoformat(metrics.END).replace(tzinfo=UTC) + timedelta(days=1)
CANARY, CONTROL = "bench-canary", "bench-control"
CANARY_PER_ARM = 2000

# After bench/metrics.py's fill (interactions, feedback, candidates on i.id % 50 = 0).
_EXTRAS = [
    "UPDATE curation_candidate SET policy_id = (SELECT min(id) FROM curation_curationpolicy)",
    # Reviewed: one candidate in ten; decisions of two filters under its policy.
    """
    INSERT INTO curation_filterdecision (candidate_id, policy_id, filter, passed, score, reason,
        details, scorer, scorer_version, created_at)
    SELECT c.id, c.policy_id, f.name, (c.interaction_id / 500 + f.k) %% 4 <> 0,
           (c.interaction_id %% 97) / 97.0, '', '{}'::jsonb, '', '', c.created_at
    FROM curation_candidate c
    CROSS JOIN (VALUES ('length', 0), ('quality', 1)) f(name, k)
    WHERE c.interaction_id %% 500 = 0
    """,
    """
    INSERT INTO curation_sampledraw (candidate_id, policy_id, stratum, inclusion_probability,
        audit_filter, drawn_at)
    SELECT c.id, c.policy_id, '', (ARRAY[1.0, 0.05, 0.02])[1 + (c.interaction_id / 500) %% 3],
           '', c.created_at
    FROM curation_candidate c WHERE c.interaction_id %% 500 = 0
    """,
    """
    INSERT INTO review_reviewitem (candidate_id, stratum, inclusion_probability, priority,
        priority_details, audit, reviews_required, status, reviews_done, kind, task_type,
        source_id, skip_count, escalated_reason, created_at)
    SELECT c.id, '', s.inclusion_probability, 0, '{}'::jsonb, false, 1, 'done', 1, c.kind,
           c.task_type, i.source_id, 0, '', c.created_at
    FROM curation_candidate c JOIN curation_sampledraw s ON s.candidate_id = c.id
    JOIN curation_interaction i ON i.id = c.interaction_id
    """,
    """
    INSERT INTO review_reviewoutcome (item_id, result, chosen, reason, note, decided_at)
    SELECT ri.id, CASE WHEN ri.id %% 3 = 0 THEN 'rejected' ELSE 'approved' END,
           CASE WHEN ri.id %% 3 = 0 THEN NULL ELSE 'answer' END, '', '',
           ri.created_at + interval '1 hour'
    FROM review_reviewitem ri
    """,
    """
    INSERT INTO training_goldpair (model, task_type, kind, prompt, chosen, content_sha256,
        lineage_key, reviewer_ids, reviews, occurred_at, ingested_at, approved_at,
        correction_reason, created_at, candidate_id, interaction_id, outcome_id, source_id)
    SELECT i.model, i.task_type, 'sft', i.messages, o.chosen, md5(i.event_id), md5(i.event_id),
           '{}', '[]'::jsonb, i.occurred_at, i.received_at, o.decided_at, '', o.decided_at,
           c.id, i.id, o.id, i.source_id
    FROM review_reviewoutcome o JOIN review_reviewitem ri ON ri.id = o.item_id
    JOIN curation_candidate c ON c.id = ri.candidate_id
    JOIN curation_interaction i ON i.id = c.interaction_id
    WHERE o.result = 'approved'
    """,
    # The canary: the same traffic per arm in both databases, in the window's last day.
    """
    INSERT INTO curation_interaction (source_id, event_id, occurred_at, received_at, model,
        task_type, messages, response, usage, latency_ms, user_hash, session_id, segment,
        metadata, pii, curation_state, curation_error)
    SELECT (SELECT min(id) FROM curation_source), 'cy-' || g, t.at, t.at,
           CASE WHEN g %% 2 = 0 THEN %(canary)s ELSE %(control)s END, 'task-0',
           '[{"role": "user", "content": "q"}]'::jsonb, 'answer', '{}'::jsonb, 400,
           'key-' || (g %% 997), '', '', '{}'::jsonb, '{}'::jsonb, 'done', ''
    FROM generate_series(1, %(n)s) g
    CROSS JOIN LATERAL (SELECT %(end)s::timestamptz - (g * interval '40 seconds') AS at) t
    """,
    """
    INSERT INTO curation_feedback (source_id, event_id, interaction_event_id, interaction_id,
        kind, rating, comment, final_text, occurred_at, received_at, user_hash, metadata, pii)
    SELECT i.source_id, 'cf-' || i.event_id, i.event_id, i.id,
           (ARRAY['thumbs_up', 'thumbs_down', 'regenerated'])[1 + i.id %% 3], NULL, '', NULL,
           i.received_at, i.received_at, '', '{}'::jsonb, '{}'::jsonb
    FROM curation_interaction i WHERE i.event_id LIKE 'cy-%%' AND i.id %% 5 = 0
    """,
]


def _execute_all(url: str, statements: list[str], params: dict) -> None:
    with pg_connect(url, autocommit=True) as conn:
        for statement in statements:
            conn.execute(statement, params)


def _probe(url: str, *args: str, timeout: float = 3 * 3600) -> dict:
    """This file's `--probe` mode in a child process, with Django set up on `url`."""
    env = app_env(database_url=url, redis_url=bench_redis_url(base_url=service_urls()[1]))
    out = python_run(str(Path(__file__).resolve()), "--probe", *args, env=env, timeout=timeout)
    return json.loads(out.strip().splitlines()[-1])


def prepare(*, url: str, rows: int) -> dict:
    """The history (bench/metrics.py's fill), then the reviewed items, gold, dataset
    versions, models and canary traffic (reused when the database already has them).
    The database's triggers are off meanwhile: bench rows need no audit events."""
    env = app_env(database_url=url, redis_url=bench_redis_url(base_url=service_urls()[1]))
    ensure_database(url=url)
    migrate(env=env)
    name = urlparse(url).path.lstrip("/")
    with pg_connect(url, autocommit=True) as conn:
        conn.execute(f'ALTER DATABASE "{name}" SET session_replication_role = replica')
    try:
        built = metrics.fill(url=url, env=env, rows=rows)
        with pg_connect(url) as conn:
            canary = conn.execute(
                "SELECT count(*) FROM curation_interaction WHERE event_id LIKE 'cy-%'"
            ).fetchone()[0]
            models = conn.execute("SELECT count(*) FROM training_modelversion").fetchone()[0]
        with stopwatch() as extras:
            if not built["reused"] or canary != CANARY_PER_ARM * 2:
                log(f"{name}: reviewed items, gold, canary traffic")
                params = {"canary": CANARY, "control": CONTROL, "n": 2 * CANARY_PER_ARM}
                _execute_all(url, _EXTRAS, {**params, "end": END})
                models = 0
            if not models:
                log(f"{name}: dataset versions, models, review's rollup")
                built["setup"] = _probe(url, "--setup")
        built["extras_s"] = rounded(extras["seconds"], 1)
    finally:
        with pg_connect(url, autocommit=True) as conn:
            conn.execute(f'ALTER DATABASE "{name}" RESET session_replication_role')
    with pg_connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE")
        built["interactions"] = conn.execute(
            "SELECT reltuples::bigint FROM pg_class WHERE relname = 'curation_interaction'"
        ).fetchone()[0]
        built["database_mb"] = round(
            conn.execute("SELECT pg_database_size(current_database())").fetchone()[0] / 2**20
        )
    return built


def reads(urls: dict[str, str], *, rounds: int) -> dict:
    """Rounds alternating small and big (the order flipped every round)."""
    times: dict[str, dict[str, list[float]]] = {size: {} for size in urls}
    for round_no in range(rounds):
        order = list(urls) if round_no % 2 == 0 else list(reversed(list(urls)))
        for size in order:
            for read, seconds in _probe(urls[size], "--calls", str(CALLS)).items():
                times[size].setdefault(read, []).extend(seconds)
        log(f"  reads round {round_no + 1}/{rounds}")
    out = {}
    for read in times["small"]:
        small, big = times["small"][read], times["big"][read]
        ratio = percentile(big, 95) / percentile(small, 95)
        out[read] = {
            "p95_ms_small": rounded(percentile(small, 95) * 1000, 2),
            "p95_ms_big": rounded(percentile(big, 95) * 1000, 2),
            "p50_ms_small": rounded(percentile(small, 50) * 1000, 2),
            "p50_ms_big": rounded(percentile(big, 50) * 1000, 2),
            "ratio_big_vs_small": rounded(ratio, 3),
            "target": TARGET_READS,
            "met": ratio <= TARGET_READS,
        }
    return out


def ingest(urls: dict[str, str], *, redis_url: str, rounds: int) -> dict:
    """Batch ingest events/s into the empty and the big database, alternating."""
    factory = TrafficFactory(seed=21)
    envs = {name: app_env(database_url=url, redis_url=redis_url) for name, url in urls.items()}
    tokens = {name: create_token(env=env, source="bench-ingest") for name, env in envs.items()}
    events = dict.fromkeys(urls, 0)
    seconds = dict.fromkeys(urls, 0.0)
    with Gunicorn(env=envs["empty"]) as empty, Gunicorn(env=envs["big"]) as big:
        servers = {"empty": empty, "big": big}
        for round_no in range(rounds + 1):  # round 0 warms the workers up
            order = ["empty", "big"] if round_no % 2 == 0 else ["big", "empty"]
            for name in order:
                headers = {"Authorization": f"Bearer {tokens[name]}"}
                headers["Content-Type"] = "application/json"
                bodies = [
                    json.dumps(factory.batch(**MIX)).encode()
                    for _ in range(INGEST_BATCHES if round_no else 4)
                ]
                result = run_load(
                    base_url=servers[name].base_url,
                    path="/api/v1/batch",
                    bodies=bodies,
                    headers=headers,
                    concurrency=4,
                    max_seconds=120,
                )
                if set(result.statuses) != {200}:
                    raise RuntimeError(f"ingest into {name} answered {result.statuses}")
                if round_no:
                    events[name] += result.requests * BATCH_EVENTS
                    seconds[name] += result.seconds
                redis_clear(url=redis_url)
            log(f"  ingest round {round_no}/{rounds}")
    rate = {name: events[name] / seconds[name] for name in urls}
    ratio = rate["big"] / rate["empty"]
    return {
        "events_per_s_empty": rounded(rate["empty"], 1),
        "events_per_s_big": rounded(rate["big"], 1),
        "ratio_big_vs_empty": rounded(ratio, 3),
        "target": TARGET_INGEST,
        "met": ratio >= TARGET_INGEST,
    }


def drop(urls) -> None:
    from psycopg import sql

    with pg_connect(with_path(next(iter(urls)), "postgres"), autocommit=True) as conn:
        for url in urls:
            name = urlparse(url).path.lstrip("/")
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
            log(f"dropped {name}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--probe", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--setup", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--calls", type=int, default=CALLS, help=argparse.SUPPRESS)
    parser.add_argument("--big", type=int, default=BIG)
    parser.add_argument("--small", type=int, default=SMALL)
    parser.add_argument("--rounds", type=int, default=ROUNDS)
    parser.add_argument("--keep", action="store_true", help="keep the databases")
    args = parser.parse_args()
    if args.probe:
        from bench import reads_probe

        print(json.dumps(reads_probe.setup() if args.setup else reads_probe.timed(args.calls)))
        return
    raise_on_sigterm()
    base_db, base_redis = service_urls()
    redis_url = bench_redis_url(base_url=base_redis)
    urls = {
        size: bench_database_url(base_url=base_db, name=f"flywheel_bench_reads_{size}")
        for size in ("small", "big", "empty")
    }
    rows = {"small": args.small, "big": args.big}
    began = time.perf_counter()
    try:
        built = {size: prepare(url=urls[size], rows=rows[size]) for size in rows}
        log("timing the reads, alternating small and big")
        timed = reads({size: urls[size] for size in rows}, rounds=args.rounds)
        ensure_database(url=urls["empty"])
        migrate(env=app_env(database_url=urls["empty"], redis_url=redis_url))
        log("batch ingest into the empty and the big database")
        batch = ingest(
            {"empty": urls["empty"], "big": urls["big"]}, redis_url=redis_url, rounds=INGEST_ROUNDS
        )
        emit(
            {
                "bench": "reads_scale",
                "machine": machine(),
                "load_average": os.getloadavg(),
                "interactions": rows,
                "built": built,
                "reads": timed,
                "ingest_batch": batch,
                "seconds": rounded(time.perf_counter() - began, 1),
            }
        )
    finally:
        if not args.keep:
            drop(urls.values())


if __name__ == "__main__":
    main()
