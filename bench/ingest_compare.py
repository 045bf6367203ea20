"""Ingest served by this checkout against another checkout (the code before a change), side
by side in one run on one database: single-event requests/s at concurrency 8, batch events/s,
and psycopg COPY of batches of the same shape right before and right after each server's
batches. `batch_vs_copy_paired_median` is the median over rounds of each batch run's rows/s
over the mean of the two COPY runs around it (the figure bench/RESULTS.md reports);
`batch_vs_copy` divides totals over the whole run, which the VM's drift in speed moves more.
`batch_cpu_ms_median` is the CPU each batch cost the app's processes and PostgreSQL (median
over rounds), and `batch_cpu_ratio` this checkout's total over the baseline's: a change in
cost shows there even when the VM's speed drifts.

Run: `.venv/bin/python bench/ingest_compare.py --baseline DIR` with DATABASE_URL and
REDIS_URL set, where DIR holds the other code, for example
`mkdir DIR && git archive <commit> | tar -x -C DIR`. Both servers use this checkout's
virtualenv and the same database (the schema must be the same). Rounds alternate which
server goes first, so load from other processes falls on both alike. One JSON object on
stdout; progress on stderr. Figures: bench/RESULTS.md ("Ingest and export factors").
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    CpuMeter,
    Gunicorn,
    TrafficFactory,
    bench_database_url,
    bench_redis_url,
    emit,
    log,
    machine,
    percentile,
    postgres_pids,
    rounded,
    run_load,
    service_urls,
)
from bench.ingest import BATCH_EVENTS, BATCH_ROWS, MIX, SINGLE_CONCURRENCY, Target, copy_rows

BENCH_DB = "flywheel_bench_compare"


def _load(server: Gunicorn, target: Target, path: str, bodies: list[bytes], seconds: float):
    result = run_load(
        base_url=server.base_url,
        path=path,
        bodies=bodies,
        headers=target.headers,
        concurrency=SINGLE_CONCURRENCY if path.endswith("interactions") else server.workers + 1,
        max_seconds=seconds,
    )
    bad = {code: n for code, n in result.statuses.items() if code not in (200, 201)}
    if bad:
        raise RuntimeError(f"{server.root}: unexpected statuses {bad}")
    return result


def _summary(results: list, per_request: int) -> dict:
    requests = sum(r.requests for r in results)
    seconds = sum(r.seconds for r in results)
    latencies = [x for r in results for x in r.latencies]
    return {
        "requests": requests,
        "seconds": rounded(seconds),
        "per_s": round(requests * per_request / seconds),
        "p50_ms": rounded(percentile(latencies, 50) * 1000, 2),
        "p99_ms": rounded(percentile(latencies, 99) * 1000, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--batches", type=int, default=6, help="batches per round and server")
    parser.add_argument(
        "--copy-batches", type=int, default=5, help="batches copied before and after each"
    )
    parser.add_argument("--single-seconds", type=float, default=10)
    parser.add_argument("--workers", type=int, default=3)
    args = parser.parse_args()
    base_db, base_redis = service_urls()
    target = Target(
        name="compare",
        db_url=bench_database_url(base_url=base_db, name=BENCH_DB),
        redis_url=bench_redis_url(base_url=base_redis),
        workers=args.workers,
    )
    servers = {
        "baseline": Gunicorn(env=target.env, workers=args.workers, root=args.baseline),
        "this": Gunicorn(env=target.env, workers=args.workers),
    }
    factory = TrafficFactory(seed=int(time.time()))
    now = datetime.now(UTC)
    single: dict[str, list] = {name: [] for name in servers}
    batch: dict[str, list] = {name: [] for name in servers}
    # Per server and round: its batch rows/s over the COPY rows/s measured right before
    # and right after it. The VM's speed drifts by 10-20% within minutes; a ratio of
    # figures taken a second apart cancels the drift that totals over the run do not.
    paired: dict[str, list[float]] = {name: [] for name in servers}
    # CPU milliseconds per batch (the app's processes, PostgreSQL's), per round: what the
    # machine's speed moves least, so the figure that shows a change in cost best.
    cpu: dict[str, dict[str, list[float]]] = {name: {"app": [], "pg": []} for name in servers}
    copies = [0, 0.0]

    def copy_rate() -> float:
        rows = [
            copy_rows(factory.batch(**MIX), source_id=target.source_id, now=now)
            for _ in range(args.copy_batches)
        ]
        done, seconds = target.db.copy_batches(rows)
        copies[0] += done
        copies[1] += seconds
        return done / seconds

    try:
        target.db.create_scratch()
        for server in servers.values():
            server.start()
            warm = [json.dumps(factory.interaction()).encode() for _ in range(50)]
            _load(server, target, "/api/v1/interactions", warm, 30)
        copy_rate()  # a warm-up: the first COPY into the fresh tables is not counted
        pg_pids = postgres_pids(url=target.db_url)
        copies[:] = [0, 0.0]
        for round_no in range(args.rounds):
            order = list(servers) if round_no % 2 == 0 else list(servers)[::-1]
            for name in order:
                log(f"round {round_no + 1}/{args.rounds}: {name}")
                bodies = [json.dumps(factory.interaction()).encode() for _ in range(20000)]
                single[name].append(
                    _load(
                        servers[name], target, "/api/v1/interactions", bodies, args.single_seconds
                    )
                )
                before = copy_rate()
                bodies = [json.dumps(factory.batch(**MIX)).encode() for _ in range(args.batches)]
                meter = CpuMeter({"app": servers[name].pids, "pg": pg_pids}).start()
                result = _load(servers[name], target, "/api/v1/batch", bodies, 120)
                used = meter.stop()
                for group in ("app", "pg"):
                    cpu[name][group].append(used[f"{group}_cpu_s"] * 1000 / result.requests)
                batch[name].append(result)
                after = copy_rate()
                rows_per_s = result.requests * BATCH_ROWS / result.seconds
                paired[name].append(rows_per_s / ((before + after) / 2))
    finally:
        for server in servers.values():
            server.stop()
        target.close()
    copy_rows_per_s = copies[0] / copies[1]
    out = {
        "bench": "ingest_compare",
        "machine": machine(),
        "copy_rows_per_s": round(copy_rows_per_s),
    }
    for name in servers:
        out[name] = {
            "single": _summary(single[name], 1),
            "batch_events": _summary(batch[name], BATCH_EVENTS),
            "batch_rows_per_s": round(_summary(batch[name], BATCH_ROWS)["per_s"]),
        }
        out[name]["batch_vs_copy"] = rounded(out[name]["batch_rows_per_s"] / copy_rows_per_s)
        out[name]["batch_vs_copy_paired_median"] = rounded(statistics.median(paired[name]))
        out[name]["batch_vs_copy_paired"] = [rounded(r) for r in paired[name]]
        out[name]["batch_cpu_ms_median"] = {
            group: rounded(statistics.median(values), 1) for group, values in cpu[name].items()
        }
    out["batch_cpu_ratio"] = rounded(
        sum(out["this"]["batch_cpu_ms_median"].values())
        / sum(out["baseline"]["batch_cpu_ms_median"].values())
    )
    out["single_ratio"] = rounded(
        out["this"]["single"]["per_s"] / out["baseline"]["single"]["per_s"]
    )
    emit(out)


if __name__ == "__main__":
    main()
