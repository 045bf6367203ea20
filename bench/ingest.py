"""Ingest throughput against the app served by gunicorn, as `make run` serves it.

Run: `make bench`, or `.venv/bin/python bench/ingest.py` with DATABASE_URL and
REDIS_URL set (`eval "$(scripts/services.sh env)"`). Prints one JSON object on
stdout; progress goes to stderr. Figures and how to read them: bench/RESULTS.md.

What it measures, in one run, with two databases on the same server:
`flywheel_bench` (empty) and `flywheel_bench_1m` (1,000,000 interactions), each
served by its own gunicorn (3 gthread workers, like `make run`):
1. Batch ingest: POST /api/v1/batch with 500 realistic events (about 2 KB per
   interaction; 425 interactions, 50 feedback, 25 edits per batch), workers + 1 in
   flight, into both databases. Measured in rounds: half of a psycopg COPY of the
   same rows (same columns and types, jsonb included; one COPY and commit per
   batch; psycopg's default text format, while ingest's direct path copies in
   binary) into scratch tables made `LIKE ... INCLUDING ALL`, the batches into
   one database, the same batches into the other (the order alternates), the
   other half of the COPY. Interleaving makes the two ratios fair although other
   processes on the machine come and go. Ingest/COPY is reported by totals and as
   the median over rounds of each round's ratio (`ingest_vs_copy_paired_median`,
   the figure the target reads: the VM's speed drifts within minutes).
2. Single-event ingest: POST /api/v1/interactions, 8 requests in flight.
The 1M table is filled server-side (INSERT ... SELECT of the COPY rows with fresh
random event ids), vacuumed, analysed and checkpointed before the servers start.
Both databases' ingest tables are emptied at the start and at the end.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    BENCH_DB,
    CpuMeter,
    Gunicorn,
    LoadResult,
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
    postgres_pids,
    raise_on_sigterm,
    redis_clear,
    rounded,
    run_load,
    service_urls,
    stopwatch,
)

MIX = {"interactions": 425, "feedback": 50, "edits": 25}
BATCH_EVENTS = sum(MIX.values())
# Rows a batch writes: an edit is an interaction plus its `edited` feedback.
BATCH_ROWS = MIX["interactions"] + MIX["feedback"] + 2 * MIX["edits"]
SINGLE_CONCURRENCY = 8
FILL_ROWS = 1_000_000
SOURCE = "bench"

# Issue 21: batch ingest at half of COPY's rows/s or better (0.25 before).
TARGET_VS_COPY = 0.5
TARGET_FULL_VS_EMPTY = 0.8

INGEST_FAILED = "ingest answered {statuses} (expected only {expected}); first body: {body}"
NOT_ALL_CREATED = "a batch stored {created} of {expected} events"

_INTERACTION_COLUMNS = (
    "source_id, event_id, occurred_at, received_at, model, task_type, messages, response, "
    "usage, latency_ms, user_hash, session_id, segment, metadata, pii, curation_state"
)
_FEEDBACK_COLUMNS = (
    "source_id, event_id, interaction_event_id, kind, rating, comment, final_text, "
    "occurred_at, received_at, user_hash, metadata, pii"
)


def _dumps(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _user_hash(user_id: str | None) -> str:
    return hashlib.sha256(user_id.encode()).hexdigest() if user_id else ""


def copy_rows(batch: dict, *, source_id: int, now: datetime) -> tuple[list, list]:
    """The rows ingest writes for `batch`, as COPY tuples (interaction, feedback).
    Built before timing: the baseline is what PostgreSQL absorbs, not Python."""
    interactions, feedback = [], []
    for item in batch["interactions"]:
        interactions.append(
            (
                source_id,
                item["event_id"],
                item["occurred_at"],
                now,
                item["model"],
                item["task_type"],
                _dumps(item["messages"]),
                item["response"],
                _dumps(item["usage"]),
                item["latency_ms"],
                _user_hash(item.get("user_id")),
                item["session_id"],
                item["segment"],
                _dumps(item["metadata"]),
                "{}",
                "pending",
            )
        )
    for item in batch["feedback"]:
        value = item.get("value")
        feedback.append(
            (
                source_id,
                item["event_id"],
                item["interaction_event_id"],
                item["kind"],
                value if isinstance(value, int) else None,
                value if isinstance(value, str) else "",
                item.get("final_text"),
                item["occurred_at"],
                now,
                _user_hash(item.get("user_id")),
                "{}",
                "{}",
            )
        )
    for item in batch["edits"]:
        interactions.append(
            (
                source_id,
                item["event_id"],
                item["occurred_at"],
                now,
                item["model"],
                item["task_type"],
                _dumps([{"role": "user", "content": item["prompt"]}]),
                item["original_llm_output"],
                "{}",
                None,
                _user_hash(item.get("user_id")),
                "",
                "",
                _dumps(item["metadata"]),
                "{}",
                "pending",
            )
        )
        feedback.append(
            (
                source_id,
                item["event_id"],
                item["event_id"],
                "edited",
                None,
                "",
                item["final_user_edit"],
                item["occurred_at"],
                now,
                _user_hash(item.get("user_id")),
                "{}",
                "{}",
            )
        )
    return interactions, feedback


class Database:
    """The bench database, seen from the benchmark (not from the app)."""

    def __init__(self, url: str):
        self.url = url
        self.conn = pg_connect(url, autocommit=True)

    def execute(self, sql: str, params=None):
        return self.conn.execute(sql, params)

    def scalar(self, sql: str, params=None):
        return self.conn.execute(sql, params).fetchone()[0]

    def empty_ingest_tables(self) -> None:
        # CASCADE: curation tables that point at interactions hold only bench rows here.
        self.execute("TRUNCATE curation_interaction, curation_feedback RESTART IDENTITY CASCADE")

    def create_scratch(self) -> None:
        self.drop_scratch()
        self.execute(
            "CREATE TABLE bench_copy_interaction (LIKE curation_interaction INCLUDING ALL)"
        )
        self.execute("CREATE TABLE bench_copy_feedback (LIKE curation_feedback INCLUDING ALL)")

    def drop_scratch(self) -> None:
        self.execute("DROP TABLE IF EXISTS bench_copy_interaction, bench_copy_feedback")

    def copy_batches(self, batches: list[tuple[list, list]]) -> tuple[int, float]:
        """COPY each batch's rows in its own transaction, as ingest commits a
        batch. Returns (rows, seconds)."""
        rows = 0
        start = time.perf_counter()
        for interactions, feedback in batches:
            with self.conn.transaction(), self.conn.cursor() as cursor:
                with cursor.copy(
                    f"COPY bench_copy_interaction ({_INTERACTION_COLUMNS}) FROM STDIN"
                ) as copy:
                    for row in interactions:
                        copy.write_row(row)
                with cursor.copy(
                    f"COPY bench_copy_feedback ({_FEEDBACK_COLUMNS}) FROM STDIN"
                ) as copy:
                    for row in feedback:
                        copy.write_row(row)
            rows += len(interactions) + len(feedback)
        return rows, time.perf_counter() - start

    def fill_interactions(self, *, rows: int, source_id: int) -> float:
        """Grow curation_interaction to `rows` rows of realistic content: the
        COPY baseline's rows, repeated with fresh random event ids, older dates
        and already curated. Server-side INSERT ... SELECT: nothing crosses the
        socket and no JSON is parsed again, so 2 GB load in about a minute."""
        have = self.scalar("SELECT count(*) FROM curation_interaction")
        missing = rows - have
        if missing <= 0:
            return 0.0
        start = time.perf_counter()
        self.execute(
            "CREATE TEMP TABLE fill_template AS"
            " SELECT row_number() OVER (ORDER BY id) - 1 AS n, * FROM bench_copy_interaction"
        )
        templates = self.scalar("SELECT count(*) FROM fill_template")
        self.execute(
            f"""
            INSERT INTO curation_interaction ({_INTERACTION_COLUMNS})
            SELECT %(source)s, md5('fill-' || g)::uuid::text,
                   t.occurred_at - make_interval(secs => g),
                   t.received_at - make_interval(secs => g),
                   t.model, t.task_type, t.messages, t.response, t.usage, t.latency_ms,
                   t.user_hash, t.session_id, t.segment, t.metadata, t.pii, 'done'
            FROM generate_series(1, %(missing)s) g
            JOIN fill_template t ON t.n = g %% %(templates)s
            """,
            {"source": source_id, "missing": missing, "templates": templates},
        )
        self.execute("DROP TABLE fill_template")
        return time.perf_counter() - start

    def close(self) -> None:
        self.conn.close()


def _check_statuses(result: LoadResult, expected: int) -> None:
    bad = {status: n for status, n in result.statuses.items() if status != expected}
    if bad:
        body = result.bodies[0][:500] if result.bodies else b""
        raise RuntimeError(INGEST_FAILED.format(statuses=bad, expected=expected, body=body))


def _check_created(result: LoadResult) -> None:
    _check_statuses(result, 200)
    for body in result.bodies:
        created = json.loads(body)["created"]
        if created != BATCH_EVENTS:
            raise RuntimeError(NOT_ALL_CREATED.format(created=created, expected=BATCH_EVENTS))


@dataclass
class Tally:
    """Sums over the rounds of one measurement."""

    requests: int = 0
    seconds: float = 0.0
    latencies: list[float] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    stopped_by_deadline: bool = False

    def add(self, result: LoadResult, cpu: dict[str, float]) -> None:
        self.requests += result.requests
        self.seconds += result.seconds
        self.latencies += result.latencies
        self.stopped_by_deadline |= result.stopped_by_deadline
        for key, value in cpu.items():
            if key != "machine_busy_fraction":
                self.cpu[key] = rounded(self.cpu.get(key, 0.0) + value, 2)


class Target:
    """One app server and its database."""

    def __init__(self, *, name: str, db_url: str, redis_url: str, workers: int):
        self.name = name
        self.db_url = db_url
        self.env = app_env(database_url=db_url, redis_url=redis_url)
        ensure_database(url=db_url)
        log(f"migrating {urlparse(db_url).path.lstrip('/')}")
        migrate(env=self.env)
        self.token = create_token(env=self.env, source=SOURCE)
        self.db = Database(db_url)
        self.source_id = self.db.scalar("SELECT id FROM curation_source WHERE name = %s", [SOURCE])
        self.db.empty_ingest_tables()
        self.server = Gunicorn(env=self.env, workers=workers)
        self.tally = Tally()

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}

    def start(self) -> None:
        self.server.start()
        log(f"{self.name}: gunicorn ({self.server.workers} workers) on {self.server.base_url}")
        self.cpu_groups = {
            "server": self.server.pids,
            "postgres": postgres_pids(url=self.db_url),
        }

    def post_batches(
        self, bodies: list[bytes], *, max_seconds: float, record: bool = True
    ) -> LoadResult:
        meter = CpuMeter(self.cpu_groups).start()
        result = run_load(
            base_url=self.server.base_url,
            path="/api/v1/batch",
            bodies=bodies,
            headers=self.headers,
            # One more than the workers, so none waits for the client.
            concurrency=self.server.workers + 1,
            max_seconds=max_seconds,
            keep_bodies=True,
        )
        cpu = meter.stop()
        _check_created(result)
        if record:
            self.tally.add(result, cpu)
        return result

    def close(self) -> None:
        self.server.stop()
        try:
            self.db.empty_ingest_tables()
            self.db.drop_scratch()
        finally:
            self.db.close()


def batch_summary(tally: Tally) -> dict:
    events = tally.requests * BATCH_EVENTS
    return {
        "batches": tally.requests,
        "events": events,
        "seconds": rounded(tally.seconds),
        "events_per_s": round(events / tally.seconds),
        "rows_per_s": round(tally.requests * BATCH_ROWS / tally.seconds),
        "request_p50_ms": rounded(percentile(tally.latencies, 50) * 1000, 1),
        "request_p99_ms": rounded(percentile(tally.latencies, 99) * 1000, 1),
        "server_cpu_ms_per_event": rounded(tally.cpu["server_cpu_s"] * 1000 / events, 3),
        "postgres_cpu_ms_per_event": rounded(tally.cpu["postgres_cpu_s"] * 1000 / events, 3),
        "stopped_by_time_limit": tally.stopped_by_deadline,
        "cpu": tally.cpu,
    }


def single_phase(*, target: Target, bodies: list[bytes], max_seconds: float) -> dict:
    log(f"single: {len(bodies)} POST /api/v1/interactions, {SINGLE_CONCURRENCY} in flight")
    meter = CpuMeter(target.cpu_groups).start()
    result = run_load(
        base_url=target.server.base_url,
        path="/api/v1/interactions",
        bodies=bodies,
        headers=target.headers,
        concurrency=SINGLE_CONCURRENCY,
        max_seconds=max_seconds,
    )
    cpu = meter.stop()
    _check_statuses(result, 201)
    out = {
        "requests": result.requests,
        "concurrency": SINGLE_CONCURRENCY,
        "seconds": rounded(result.seconds),
        "requests_per_s": round(result.requests / result.seconds),
        "p50_ms": rounded(percentile(result.latencies, 50) * 1000, 2),
        "p99_ms": rounded(percentile(result.latencies, 99) * 1000, 2),
        "stopped_by_time_limit": result.stopped_by_deadline,
        "cpu": cpu,
    }
    log(f"single: {out['requests_per_s']} req/s, p50 {out['p50_ms']} ms, p99 {out['p99_ms']} ms")
    return out


def fill(target: Target, *, rows: int, template: list[tuple[list, list]]) -> dict:
    """Fill the target's interaction table to `rows`, VACUUM ANALYZE it, then
    CHECKPOINT so the bulk load's dirty pages are not still being written out
    while ingest is measured (that is an effect of the bulk load, not of size)."""
    db = target.db
    db.create_scratch()
    db.copy_batches(template)
    log(f"{target.name}: filling curation_interaction to {rows:,} rows")
    fill_s = db.fill_interactions(rows=rows, source_id=target.source_id)
    db.drop_scratch()
    log(f"{target.name}: filled in {fill_s:.0f} s; VACUUM ANALYZE, CHECKPOINT")
    with stopwatch() as vacuum:
        db.execute("VACUUM ANALYZE curation_interaction")
    with stopwatch() as checkpoint:
        try:
            db.execute("CHECKPOINT")
        except Exception as error:  # a server where we may not: measure anyway
            log(f"CHECKPOINT refused ({error}); measuring without it")
    return {
        "rows": db.scalar("SELECT count(*) FROM curation_interaction"),
        "table_mb": round(
            db.scalar("SELECT pg_total_relation_size('curation_interaction')") / 2**20
        ),
        "unique_index_mb": round(
            db.scalar("SELECT pg_relation_size('interaction_unique_event')") / 2**20
        ),
        "insert_select_s": rounded(fill_s, 1),
        "vacuum_analyze_s": rounded(vacuum["seconds"], 1),
        "checkpoint_s": rounded(checkpoint["seconds"], 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workers", type=int, default=3, help="gunicorn workers (run.sh: 3)")
    parser.add_argument("--rounds", type=int, default=6, help="rounds of batch measurements")
    # 20, not 10: a round's last batches run with fewer in flight than there are workers,
    # leaving cores idle (COPY's single stream has no such tail); the shorter the round, the
    # more that tail weighs (bench/RESULTS.md, "fourth round").
    parser.add_argument("--batches", type=int, default=20, help="batches per round and database")
    parser.add_argument("--single", type=int, default=2000, help="single-event requests")
    parser.add_argument("--fill-rows", type=int, default=FILL_ROWS)
    parser.add_argument("--max-seconds", type=float, default=60, help="time limit per batch load")
    parser.add_argument(
        "--single-seconds", type=float, default=20, help="time limit of the single-event load"
    )
    args = parser.parse_args()
    raise_on_sigterm()
    began = time.perf_counter()

    base_db, base_redis = service_urls()
    redis_url = bench_redis_url(base_url=base_redis)
    targets: list[Target] = []
    try:
        empty = Target(
            name="empty",
            db_url=bench_database_url(base_url=base_db),
            redis_url=redis_url,
            workers=args.workers,
        )
        targets.append(empty)
        full = Target(
            name="1M",
            db_url=bench_database_url(base_url=base_db, name=f"{BENCH_DB}_1m"),
            redis_url=redis_url,
            workers=args.workers,
        )
        targets.append(full)

        log("generating traffic")
        factory = TrafficFactory(seed=0)
        template = [factory.batch(**MIX) for _ in range(6)]
        warmup = [json.dumps(factory.batch(**MIX)).encode() for _ in range(args.workers)]
        batches = [factory.batch(**MIX) for _ in range(args.rounds * args.batches)]
        singles = [json.dumps(factory.interaction()).encode() for _ in range(args.single)]
        now = datetime.now(UTC)
        template_rows = [copy_rows(b, source_id=full.source_id, now=now) for b in template]
        rows = [copy_rows(b, source_id=empty.source_id, now=now) for b in batches]
        bodies = [json.dumps(b).encode() for b in batches]
        interaction_bytes = [len(json.dumps(i)) for b in batches for i in b["interactions"]]
        del template, batches

        filled = fill(full, rows=args.fill_rows, template=template_rows)
        empty.db.create_scratch()
        for target in targets:
            target.start()
            target.post_batches(warmup, max_seconds=args.max_seconds, record=False)

        copy_rows_done, copy_seconds = 0, 0.0
        # Per round: the empty database's batch rows/s over the COPY of that round (its two
        # halves, right before and right after). The VM's speed drifts by 10-20% within
        # minutes (bench/RESULTS.md, "third round"); a ratio of figures taken seconds apart
        # cancels what totals over the run do not. Its median is the figure the target reads.
        paired: list[float] = []
        for round_no in range(args.rounds):
            chunk = slice(round_no * args.batches, (round_no + 1) * args.batches)
            half = round_no * args.batches + args.batches // 2
            # COPY, both databases (alternating which goes first), COPY: load from
            # other processes on the machine hits all three alike.
            done_before, seconds_before = empty.db.copy_batches(rows[chunk.start : half])
            for target in targets if round_no % 2 == 0 else targets[::-1]:
                log(f"round {round_no + 1}/{args.rounds}: {target.name}, {args.batches} batches")
                result = target.post_batches(bodies[chunk], max_seconds=args.max_seconds)
                if target is empty:
                    round_batch = result.requests * BATCH_ROWS / result.seconds
            done, seconds = empty.db.copy_batches(rows[half : chunk.stop])
            copy_rows_done += done_before + done
            copy_seconds += seconds_before + seconds
            paired.append(round_batch / ((done_before + done) / (seconds_before + seconds)))

        batch = batch_summary(empty.tally)
        batch_full = batch_summary(full.tally)
        copy_rows_per_s = copy_rows_done / copy_seconds
        ingest_vs_copy = batch["rows_per_s"] / copy_rows_per_s
        ingest_vs_copy_paired = statistics.median(paired)
        full_vs_empty = batch_full["events_per_s"] / batch["events_per_s"]
        # The same comparison in CPU per event (server + PostgreSQL): hardly moved
        # by other processes on the machine, which do move wall-clock rates.
        cpu_empty = batch["server_cpu_ms_per_event"] + batch["postgres_cpu_ms_per_event"]
        cpu_full = batch_full["server_cpu_ms_per_event"] + batch_full["postgres_cpu_ms_per_event"]
        log(
            f"batch: {batch['events_per_s']} events/s empty, {batch_full['events_per_s']} at 1M; "
            f"COPY {copy_rows_per_s:.0f} rows/s; ingest/COPY {ingest_vs_copy:.3f} "
            f"(paired median {ingest_vs_copy_paired:.3f}), "
            f"1M/empty {full_vs_empty:.3f}"
        )
        single = single_phase(target=empty, bodies=singles, max_seconds=args.single_seconds)
        result = {
            "bench": "ingest",
            "machine": machine(),
            "config": {
                "gunicorn_workers": args.workers,
                "batch_events": BATCH_EVENTS,
                "batch_mix": MIX,
                "batch_rows": BATCH_ROWS,
                "batch_body_bytes_avg": round(sum(map(len, bodies)) / len(bodies)),
                "interaction_json_bytes_avg": round(
                    sum(interaction_bytes) / len(interaction_bytes)
                ),
                "texts_with_pii": "about 1 in 10",
                "batch_concurrency": args.workers + 1,
                "rounds": args.rounds,
                "batches_per_round": args.batches,
                "copy": "psycopg COPY of the same rows into tables made LIKE ... INCLUDING ALL, "
                "one COPY and commit per batch on one connection, half before and half after "
                "each round",
            },
            "batch_ingest": batch,
            "copy_baseline": {
                "rows": copy_rows_done,
                "seconds": rounded(copy_seconds),
                "rows_per_s": round(copy_rows_per_s),
            },
            "ingest_vs_copy": rounded(ingest_vs_copy),
            "ingest_vs_copy_paired_median": rounded(ingest_vs_copy_paired),
            "ingest_vs_copy_paired": [rounded(r) for r in paired],
            "single_event": single,
            "fill": filled,
            "batch_ingest_1m": batch_full,
            "full_vs_empty": rounded(full_vs_empty),
            "full_vs_empty_by_cpu": rounded(cpu_empty / cpu_full),
            "targets_met": {
                f"ingest_vs_copy_paired_median>={TARGET_VS_COPY}": (
                    ingest_vs_copy_paired >= TARGET_VS_COPY
                ),
                f"full_vs_empty>={TARGET_FULL_VS_EMPTY}": full_vs_empty >= TARGET_FULL_VS_EMPTY,
            },
        }
    finally:
        log("stopping gunicorn, emptying the bench tables")
        for target in targets:
            try:
                target.close()
            except Exception as error:  # keep cleaning up the others
                log(f"{target.name}: cleanup failed: {error!r}")
        redis_clear(url=redis_url)
    result["total_seconds"] = round(time.perf_counter() - began)
    emit(result)


if __name__ == "__main__":
    main()
