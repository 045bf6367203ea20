"""A Prometheus scrape of GET /metrics at 10,000 and at many more interactions.

Run: `scripts/bench.sh scrape`, or `.venv/bin/python bench/scrape.py` with DATABASE_URL
and REDIS_URL set (`eval "$(scripts/services.sh env)"`). `--big N` sets the large history
(default 1,000,000; `--big 10000000` for the figure of bench/metrics.py). Prints one JSON
object on stdout; progress on stderr. Figures and the command: bench/RESULTS.md.

1. The same two databases as bench/metrics.py (`flywheel_bench_metrics_small` and
   `_big`, filled by its `fill`: 90 days of history, rollups rebuilt), so a machine that
   ran that bench reuses them; a review queue of 200 items is added to each.
2. Each is served by its own gunicorn (3 sync workers, multiprocess mode as `make run`),
   scraped from an allowed address. Rounds alternate small and big; p50/p95 of each and
   the ratio big / small (target <= 1.2).
3. The proof that the cost does not depend on the interactions: the reads PostgreSQL
   counted on the interaction, feedback and candidate tables (pg_stat_user_tables,
   sequential and index scans) while the scrapes ran. A backend reports its counts once
   idle for 10 s, so they are read after such a pause before and after the scrapes (the
   servers' start-up check, /healthz, reads the candidates). Target: none.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    Gunicorn,
    app_env,
    emit,
    ensure_database,
    log,
    machine,
    migrate,
    percentile,
    pg_connect,
    raise_on_sigterm,
    rounded,
)
from bench.metrics import fill, get, history_databases, history_sizes

BIG = 1_000_000
ROUNDS = 40
TARGET_RATIO = 1.2
QUEUED = 200
# PostgreSQL backends report their table counts after 10 s idle (PGSTAT_IDLE_INTERVAL).
STATS_PAUSE_S = 12
BIG_TABLES = ("curation_interaction", "curation_feedback", "curation_candidate")

# Review items need a candidate each: the queue is made from the first candidates, as
# review intake would (idempotent: one item per candidate).
_QUEUE = f"""
INSERT INTO review_reviewitem (candidate_id, stratum, inclusion_probability, priority,
    priority_details, reviews_required, status, reviews_done, kind, task_type, source_id,
    skip_count, escalated_reason, created_at)
SELECT c.id, c.task_type || '|' || c.model, 1, 0.5, '{{}}'::jsonb, 1, 'queued', 0, c.kind,
    c.task_type, i.source_id, 0, '', c.created_at
FROM curation_candidate c JOIN curation_interaction i ON i.id = c.interaction_id
ORDER BY c.id LIMIT {QUEUED}
ON CONFLICT (candidate_id) DO NOTHING
"""


def _reads(url: str) -> dict[str, int]:
    with pg_connect(url) as conn:
        rows = conn.execute(
            "SELECT relname, seq_scan + coalesce(idx_scan, 0) FROM pg_stat_user_tables "
            "WHERE relname = ANY(%s)",
            [list(BIG_TABLES)],
        ).fetchall()
    return dict(rows)


def _rollup_rows(url: str) -> int:
    with pg_connect(url) as conn:
        return conn.execute("SELECT count(*) FROM curation_curationmetricday").fetchone()[0]


def scrape_latencies(servers: dict[str, Gunicorn]) -> dict:
    times: dict[str, list[float]] = {size: [] for size in servers}
    sizes = {size: 0 for size in servers}
    for round_no in range(ROUNDS + 2):
        order = list(servers) if round_no % 2 == 0 else list(reversed(list(servers)))
        for size in order:
            status, seconds, length = get(servers[size].base_url, "/metrics", {})
            if status != 200:
                raise RuntimeError(f"/metrics on {size} answered {status}")
            if round_no >= 2:  # the first rounds warm the workers
                times[size].append(seconds)
                sizes[size] = length
    small, big = (percentile(times[s], 95) for s in ("small", "big"))
    return {
        "p95_ms_small": rounded(small * 1000, 1),
        "p95_ms_big": rounded(big * 1000, 1),
        "p50_ms_small": rounded(percentile(times["small"], 50) * 1000, 1),
        "p50_ms_big": rounded(percentile(times["big"], 50) * 1000, 1),
        "bytes": sizes,
        "ratio_big_vs_small": rounded(big / small, 3),
        "target": TARGET_RATIO,
        "met": big / small <= TARGET_RATIO,
    }


def main() -> None:
    rows = history_sizes(__doc__, big=BIG)
    raise_on_sigterm()
    urls, redis_url = history_databases()
    envs, built = {}, {}
    with tempfile.TemporaryDirectory() as small_dir, tempfile.TemporaryDirectory() as big_dir:
        dirs = {"small": small_dir, "big": big_dir}
        for size, url in urls.items():
            envs[size] = app_env(
                database_url=url,
                redis_url=redis_url,
                FLYWHEEL_METRICS_ALLOW_CIDRS="127.0.0.1/32",
                PROMETHEUS_MULTIPROC_DIR=dirs[size],
            )
            ensure_database(url=url)
            migrate(env=envs[size])
            built[size] = fill(url=url, env=envs[size], rows=rows[size])
            with pg_connect(url, autocommit=True) as conn:
                conn.execute(_QUEUE)
            built[size]["curation_rollup_rows"] = _rollup_rows(url)
        log(f"scraping /metrics, {ROUNDS} rounds alternating small and big")
        with Gunicorn(env=envs["small"]) as small, Gunicorn(env=envs["big"]) as big:
            time.sleep(STATS_PAUSE_S)
            before = {size: _reads(url) for size, url in urls.items()}
            scrape = scrape_latencies({"small": small, "big": big})
            time.sleep(STATS_PAUSE_S)
            after = {size: _reads(url) for size, url in urls.items()}
    reads = {
        size: {table: after[size][table] - before[size][table] for table in BIG_TABLES}
        for size in urls
    }
    emit(
        {
            "bench": "scrape",
            "machine": machine(),
            "interactions": rows,
            "built": built,
            "scrape": scrape,
            "big_table_reads_during_scrapes": reads,
            "big_table_reads_met": not any(n for r in reads.values() for n in r.values()),
        }
    )


if __name__ == "__main__":
    main()
