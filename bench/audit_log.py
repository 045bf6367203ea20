"""The global audit log at scale: latency of a page of `/audit/log/` (the selector behind
it, `flywheel_site.audit.log.audit_log_page`) under each filter, at 10,000 and at
1,000,000 audit events, and the streamed CSV export's rows/s.

Run: `scripts/bench.sh audit_log` (or `.venv/bin/python bench/audit_log.py [--big N]` with
DATABASE_URL set). Prints one JSON object on stdout; progress on stderr. Figures:
bench/RESULTS.md ("Audit log").

How: its own database, `flywheel_bench_audit` (created and migrated). The links table is
emptied (TRUNCATE) and filled server-side with generate_series, triggers off
(session_replication_role = replica), so the hashes are placeholders: only the log's reads
are measured, never the chain. 1,000 contexts (a third name one of 50 users, a third one of
20 tokens, a third a job) and one rare user's context on 10 links; links cycle through 15
event tables and the labels insert/update/update/delete, one per second of time. Each case
runs ROUNDS times after one warm-up; p50 and p95 in ms. Target: every case's p95 at 1M
within 3x its p95 at 10k (a page costs index probes, not the table's size).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import (
    app_env,
    bench_database_url,
    bench_redis_url,
    emit,
    ensure_database,
    log,
    machine,
    migrate,
    percentile,
    pg_connect,
    rounded,
    service_urls,
)

BENCH_DB = "flywheel_bench_audit"
ROUNDS = 20
RARE_USER = 99999
TARGET_RATIO = 3.0

FILL = """
SET session_replication_role = replica;
TRUNCATE audit_auditlink;
DELETE FROM pghistory_context;
INSERT INTO pghistory_context (id, created_at, updated_at, metadata)
SELECT ('00000000-0000-0000-0000-' || lpad(to_hex(i), 12, '0'))::uuid, now(), now(),
  CASE i % 3 WHEN 0 THEN jsonb_build_object('user', i % 50 + 1, 'url', '/review/items/1/')
             WHEN 1 THEN jsonb_build_object('token', i % 20 + 1, 'url', '/api/v1/feedback')
             ELSE jsonb_build_object('job', 'job-' || i, 'func', 'curation.jobs.sweep') END
FROM generate_series(1, 1000) i;
INSERT INTO pghistory_context (id, created_at, updated_at, metadata)
VALUES ('00000000-0000-0000-0000-ffffffffffff', now(), now(), '{"user": %(rare)s}');
INSERT INTO audit_auditlink
  (seq, table_name, row_pk, columns, content_hash, prev_hash, hash, created_at,
   label, obj_id, context_id, actor, job)
SELECT g, (%(tables)s::text[])[g %% %(ntables)s + 1], g, '{}', '\\x00', '\\x00', '\\x00',
  now() - make_interval(secs => %(n)s - g),
  (ARRAY['insert', 'update', 'update', 'delete'])[g %% 4 + 1], (g %% 100000)::text,
  c.id, CASE WHEN c.metadata ? 'user' THEN 'user:' || (c.metadata ->> 'user')
             WHEN c.metadata ? 'token' THEN 'token:' || (c.metadata ->> 'token') END,
  c.metadata ->> 'job'
FROM generate_series(1, %(n)s) g
JOIN pghistory_context c ON c.id = CASE WHEN g %% (%(n)s / 10) = 0
  THEN '00000000-0000-0000-0000-ffffffffffff'::uuid
  ELSE ('00000000-0000-0000-0000-' || lpad(to_hex(g %% 1000 + 1), 12, '0'))::uuid END;
SET session_replication_role = DEFAULT;
ANALYZE audit_auditlink;
ANALYZE pghistory_context;
"""


def fill(url: str, n: int, tables: list[str]) -> float:
    started = time.perf_counter()
    params = {"tables": tables, "ntables": len(tables), "n": n}
    with pg_connect(url, autocommit=True) as conn:
        for statement in FILL.replace("%(rare)s", str(RARE_USER)).split(";\n"):
            if "%(" in statement:
                conn.execute(statement, params)
            elif statement.strip():
                conn.execute(statement.replace("%%", "%"))
    return time.perf_counter() - started


def cases(n: int, table: str) -> dict:
    from django.utils import timezone

    from flywheel_site.audit.log import LogFilter

    hour_ago = timezone.now() - timedelta(seconds=n // 2)
    return {
        "newest page": (LogFilter(), None),
        "deep page (middle of the chain)": (LogFilter(), n // 2),
        "object type": (LogFilter(table=table), None),
        "action delete": (LogFilter(action="delete"), None),
        "common user": (LogFilter(actor=("user", 1)), None),
        "rare user (10 events)": (LogFilter(actor=("user", RARE_USER)), None),
        "job": (LogFilter(actor=("job", "job-2")), None),
        "one hour, mid-way back": (
            LogFilter(since=hour_ago - timedelta(hours=1), until=hour_ago),
            None,
        ),
        "type + action + user": (
            LogFilter(table=table, action="update", actor=("user", 1)),
            None,
        ),
    }


def measure(n: int, table: str) -> dict:
    from flywheel_site.audit.log import audit_log_page

    out = {}
    for name, (filters, before) in cases(n, table).items():
        audit_log_page(filters, before=before)
        times = []
        for _ in range(ROUNDS):
            started = time.perf_counter()
            _, rows = audit_log_page(filters, before=before)
            times.append((time.perf_counter() - started) * 1000)
        out[name] = {
            "rows": len(rows),
            "p50_ms": rounded(statistics.median(times), 2),
            "p95_ms": rounded(percentile(times, 95), 2),
        }
        log(f"  {n:>9,} {name}: {out[name]}")
    return out


def export_rate(table: str) -> dict:
    from flywheel_site.audit.log import LogFilter, log_csv

    started = time.perf_counter()
    rows = sum(1 for _ in log_csv(LogFilter(table=table))) - 1
    seconds = time.perf_counter() - started
    return {"rows": rows, "seconds": rounded(seconds, 2), "rows_per_s": round(rows / seconds)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--big", type=int, default=1_000_000)
    parser.add_argument("--small", type=int, default=10_000)
    args = parser.parse_args()
    database_url, redis_url = service_urls()
    url = bench_database_url(base_url=database_url, name=BENCH_DB)
    env = app_env(database_url=url, redis_url=bench_redis_url(base_url=redis_url))
    ensure_database(url=url)
    log("migrating the bench database")
    migrate(env=env)
    os.environ.update(env)
    import django

    django.setup()
    from flywheel_site.audit.log import object_types

    tables = [t for t in object_types() if t != "audit_auditredaction"][:15]
    result = {"machine": machine(), "sizes": {}}
    for n in (args.small, args.big):
        log(f"filling {n:,} links")
        seconds = fill(url, n, tables)
        from django.db import connection

        connection.close()
        result["sizes"][n] = {
            "fill_s": rounded(seconds, 1),
            "cases": measure(n, tables[0]),
            "csv_export": export_rate(tables[0]),
        }
    small, big = (result["sizes"][args.small]["cases"], result["sizes"][args.big]["cases"])
    ratios = {name: rounded(big[name]["p95_ms"] / small[name]["p95_ms"], 2) for name in big}
    result["p95_ratio_big_vs_small"] = ratios
    result["target_ratio"] = TARGET_RATIO
    result["met"] = all(ratio <= TARGET_RATIO for ratio in ratios.values())
    emit(result)


if __name__ == "__main__":
    main()
