"""The flywheel dashboard and GET /api/v1/metrics at 10,000 and at 10,000,000
interactions (90 days of history), and what the daily rollups cost batch ingest.

Run: `scripts/bench.sh metrics`, or `.venv/bin/python bench/metrics.py` with DATABASE_URL
and REDIS_URL set (`eval "$(scripts/services.sh env)"`). `--big N` changes the large
history (default 10,000,000). Prints one JSON object on stdout; progress on stderr.
Figures and the command: bench/RESULTS.md.

1. Two databases, `flywheel_bench_metrics_small` and `flywheel_bench_metrics_big`, are
   filled server-side with generate_series (interactions spread over 90 days, two
   sources, three task types, three models, every row curated with a lag; feedback on
   one in five, a candidate on one in fifty, passed or failed), then the rollups are
   built by `manage.py metrics_rebuild` (the rebuild service). A database already
   holding the wanted rows is reused.
2. Each is served by its own gunicorn (3 sync workers, as `make run`). Rounds
   alternate between the two: GET / (the dashboard, 90 days, as a logged-in admin)
   and GET /api/v1/metrics?days=90 (a `metrics` token), one request at a time.
   p95 of each; ratio big / small (target <= 1.2).
3. Batch ingest (500-event batches, 4 in flight) into the small database through two
   servers, one with the rollups kept (the default) and one with
   FLYWHEEL_METRICS_ROLLUPS=false (the bench's switch), alternating in rounds.
   Ratio of events/s with / without (target >= 0.95).
"""

from __future__ import annotations

import argparse
import http.client
import json
import sys
import time
from pathlib import Path
from urllib.parse import urlparse

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

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
    manage,
    migrate,
    percentile,
    pg_connect,
    raise_on_sigterm,
    redis_clear,
    rounded,
    run_load,
    service_urls,
    stopwatch,
)

DAYS = 90
SMALL, BIG = 10_000, 10_000_000
TARGET_RATIO = 1.2
TARGET_INGEST = 0.95
ROUNDS = 30
INGEST_ROUNDS = 6
INGEST_SECONDS = 15
MIX = {"interactions": 425, "feedback": 50, "edits": 25}
BATCH_EVENTS = sum(MIX.values())

# Everything in one statement per table, computed by the server. Days count back from
# a fixed end so a rerun the next day reuses the data; the dashboard is asked for the
# window ending there (end=...), the API for the 90 days ending today (the two windows
# cost the same: the rollup has as many rows per day either way).
END = "2026-11-30"
_FILL = [
    "TRUNCATE curation_curationmetricday, review_reviewmetricday, training_trainingmetricday",
    "TRUNCATE curation_filterdecision, curation_candidate, curation_feedback, "
    "curation_interaction CASCADE",
    "INSERT INTO curation_source (name, created_at) VALUES ('bench-a', now()), "
    "('bench-b', now()) ON CONFLICT (name) DO NOTHING",
    """
    INSERT INTO curation_interaction (
        source_id, event_id, occurred_at, received_at, model, task_type, messages, response,
        usage, latency_ms, user_hash, session_id, segment, metadata, pii, curation_state,
        curation_claimed_at, curation_error)
    SELECT s.id, 'm2-' || g, t.at, t.at + interval '2 minutes', 'model-' || ((g / 180) %% 3),
           'task-' || ((g / 540) %% 3), '[{"role": "user", "content": "q"}]'::jsonb, 'answer',
           '{}'::jsonb, 400, '', '', '', '{}'::jsonb, '{}'::jsonb, 'done',
           t.at + interval '2 minutes' + (g %% 900) * interval '1 second', ''
    FROM generate_series(1, %(rows)s) g
    CROSS JOIN LATERAL (SELECT %(end)s::timestamptz + interval '23 hours'
        - (g %% 90) * interval '1 day' - (g::bigint * 7919 %% 80000) * interval '1 second' AS at) t
    JOIN curation_source s
      ON s.name = CASE WHEN (g / 90) %% 2 = 0 THEN 'bench-a' ELSE 'bench-b' END
    """,
    """
    INSERT INTO curation_feedback (
        source_id, event_id, interaction_event_id, interaction_id, kind, rating, comment,
        final_text, occurred_at, received_at, user_hash, metadata, pii)
    SELECT i.source_id, i.event_id, i.event_id, i.id,
           (ARRAY['thumbs_up', 'thumbs_down', 'copied', 'regenerated'])[1 + i.id % 4],
           NULL, '', NULL, i.occurred_at + interval '1 minute', i.received_at, '',
           '{}'::jsonb, '{}'::jsonb
    FROM curation_interaction i WHERE i.id % 5 = 0
    """,
    """
    INSERT INTO curation_candidate (
        interaction_id, kind, prompt, feedback_ids, feedback_kinds, task_type, model, status,
        status_reason, failed_filter, exact_key, lsh_bands, toxicity_scorer, created_at,
        sample_stratum, priority_details)
    SELECT i.id, 'sft', i.messages, '[]'::jsonb, '[]'::jsonb, i.task_type, i.model,
           CASE WHEN i.id % 3 = 0 THEN 'failed' ELSE 'passed' END, '',
           CASE WHEN i.id % 3 = 0 THEN (ARRAY['length', 'quality'])[1 + i.id % 2] ELSE '' END,
           md5(i.event_id), '{}', '', i.curation_claimed_at, '', '{}'::jsonb
    FROM curation_interaction i WHERE i.id % 50 = 0
    """,
]


def _count(url: str) -> int:
    with pg_connect(url) as conn:
        return conn.execute(
            "SELECT count(*) FROM curation_interaction WHERE event_id LIKE 'm2-%'"
        ).fetchone()[0]


def fill(*, url: str, env: dict, rows: int) -> dict:
    """The history and its rollups (reused when the database already has `rows`)."""
    if _count(url) == rows:
        log(f"{urlparse(url).path[1:]}: {rows:,} interactions already there")
        return {"reused": True}
    log(f"{urlparse(url).path[1:]}: generating {rows:,} interactions over {DAYS} days")
    with stopwatch() as fill_time, pg_connect(url, autocommit=True) as conn:
        for statement in _FILL:
            # Only the interactions' statement takes parameters (its % are doubled).
            params = {"rows": rows, "end": END} if "%(" in statement else None
            conn.execute(statement, params)
        conn.execute("VACUUM ANALYZE curation_interaction")
        conn.execute("VACUUM ANALYZE curation_feedback")
        conn.execute("VACUUM ANALYZE curation_candidate")
    log(f"  filled in {fill_time['seconds']:.0f} s; building the rollups (metrics_rebuild)")
    with stopwatch() as rebuild_time:
        manage("metrics_rebuild", env=env, timeout=3 * 3600)
    with pg_connect(url, autocommit=True) as conn:
        conn.execute("VACUUM ANALYZE curation_curationmetricday")
        rollup_rows = conn.execute("SELECT count(*) FROM curation_curationmetricday").fetchone()[0]
    log(f"  rollups rebuilt in {rebuild_time['seconds']:.0f} s ({rollup_rows:,} rows)")
    return {
        "reused": False,
        "fill_s": rounded(fill_time["seconds"], 1),
        "rebuild_s": rounded(rebuild_time["seconds"], 1),
        "curation_rollup_rows": rollup_rows,
    }


_SESSION = """
from django.contrib.auth import get_user_model
from django.contrib.sessions.backends.db import SessionStore
from django.contrib.auth import SESSION_KEY, BACKEND_SESSION_KEY, HASH_SESSION_KEY
User = get_user_model()
user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
    "bench-admin", "", None)
session = SessionStore()
session[SESSION_KEY] = str(user.pk)
session[BACKEND_SESSION_KEY] = "django.contrib.auth.backends.ModelBackend"
session[HASH_SESSION_KEY] = user.get_session_auth_hash()
session.create()
print(session.session_key)
"""


def admin_session(env: dict) -> str:
    return manage("shell", "-c", _SESSION, env=env).strip().splitlines()[-1]


def get(base_url: str, path: str, headers: dict) -> tuple[int, float, int]:
    parsed = urlparse(base_url)
    conn = http.client.HTTPConnection(parsed.hostname, parsed.port, timeout=120)
    start = time.perf_counter()
    conn.request("GET", path, headers=headers)
    response = conn.getresponse()
    body = response.read()
    elapsed = time.perf_counter() - start
    conn.close()
    return response.status, elapsed, len(body)


def read_latencies(servers: dict, auth: dict) -> dict:
    """Rounds alternating small/big (order flipped every round) for both pages."""
    pages = {
        "dashboard": f"/?days={DAYS}&end={END}",
        "api": f"/api/v1/metrics?days={DAYS}",
    }
    times = {(page, size): [] for page in pages for size in servers}
    for round_no in range(ROUNDS + 2):
        order = list(servers) if round_no % 2 == 0 else list(reversed(list(servers)))
        for size in order:
            for page, path in pages.items():
                status, seconds, _ = get(servers[size].base_url, path, auth[size][page])
                if status != 200:
                    raise RuntimeError(f"{page} on {size} answered {status}")
                if round_no >= 2:  # the first rounds warm the workers' caches
                    times[(page, size)].append(seconds)
    out = {}
    for page in pages:
        small = percentile(times[(page, "small")], 95)
        big = percentile(times[(page, "big")], 95)
        out[page] = {
            "p95_ms_small": rounded(small * 1000, 1),
            "p95_ms_big": rounded(big * 1000, 1),
            "p50_ms_small": rounded(percentile(times[(page, "small")], 50) * 1000, 1),
            "p50_ms_big": rounded(percentile(times[(page, "big")], 50) * 1000, 1),
            "ratio_big_vs_small": rounded(big / small, 3),
            "target": TARGET_RATIO,
            "met": big / small <= TARGET_RATIO,
        }
    return out


def ingest_cost(*, url: str, redis_url: str) -> dict:
    """Batch ingest events/s with the rollups kept vs with them off, alternating."""
    factory = TrafficFactory(seed=11)
    envs = {
        "with": app_env(database_url=url, redis_url=redis_url),
        "without": app_env(database_url=url, redis_url=redis_url, FLYWHEEL_METRICS_ROLLUPS="false"),
    }
    token = create_token(env=envs["with"], source="bench-ingest")
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/json"}
    events = {"with": 0, "without": 0}
    seconds = {"with": 0.0, "without": 0.0}
    with Gunicorn(env=envs["with"]) as with_server, Gunicorn(env=envs["without"]) as bare:
        servers = {"with": with_server, "without": bare}
        for round_no in range(INGEST_ROUNDS):
            order = ["with", "without"] if round_no % 2 == 0 else ["without", "with"]
            for name in order:
                bodies = [
                    json.dumps(factory.batch(**MIX)).encode() for _ in range(INGEST_SECONDS * 8)
                ]
                result = run_load(
                    base_url=servers[name].base_url,
                    path="/api/v1/batch",
                    bodies=bodies,
                    headers=headers,
                    concurrency=4,
                    max_seconds=INGEST_SECONDS,
                )
                if set(result.statuses) != {200}:
                    raise RuntimeError(f"ingest answered {result.statuses}")
                events[name] += result.requests * BATCH_EVENTS
                seconds[name] += result.seconds
                log(f"  ingest round {round_no} {name}: {result.requests} batches")
                redis_clear(url=redis_url)
    rate = {name: events[name] / seconds[name] for name in events}
    ratio = rate["with"] / rate["without"]
    return {
        "events_per_s_with_rollups": rounded(rate["with"], 1),
        "events_per_s_without_rollups": rounded(rate["without"], 1),
        "ratio_with_vs_without": rounded(ratio, 3),
        "target": TARGET_INGEST,
        "met": ratio >= TARGET_INGEST,
    }


def history_databases() -> tuple[dict[str, str], str]:
    """The small and big history databases (bench/scrape.py reuses them) and bench Redis."""
    base_db, base_redis = service_urls()
    urls = {
        "small": bench_database_url(base_url=base_db, name="flywheel_bench_metrics_small"),
        "big": bench_database_url(base_url=base_db, name="flywheel_bench_metrics_big"),
    }
    return urls, bench_redis_url(base_url=base_redis)


def history_sizes(doc: str, *, big: int) -> dict[str, int]:
    """The two history sizes from the command line (--small, --big)."""
    parser = argparse.ArgumentParser(description=doc.split("\n")[0])
    parser.add_argument("--big", type=int, default=big)
    parser.add_argument("--small", type=int, default=SMALL)
    args = parser.parse_args()
    return {"small": args.small, "big": args.big}


def main() -> None:
    rows = history_sizes(__doc__, big=BIG)
    raise_on_sigterm()
    urls, redis_url = history_databases()
    envs, built = {}, {}
    for size, url in urls.items():
        envs[size] = app_env(database_url=url, redis_url=redis_url)
        ensure_database(url=url)
        migrate(env=envs[size])
        built[size] = fill(url=url, env=envs[size], rows=rows[size])
    auth = {}
    for size in urls:
        token = create_token(env=envs[size], source="bench-a", scopes="metrics")
        cookie = admin_session(envs[size])
        auth[size] = {
            "dashboard": {"Cookie": f"sessionid={cookie}"},
            "api": {"Authorization": f"Bearer {token}"},
        }
    log("reading the dashboard and the API, alternating small and big")
    with Gunicorn(env=envs["small"]) as small, Gunicorn(env=envs["big"]) as big:
        reads = read_latencies({"small": small, "big": big}, auth)
    log("batch ingest with and without the rollups")
    ingest = ingest_cost(url=urls["small"], redis_url=redis_url)
    emit(
        {
            "bench": "metrics",
            "machine": machine(),
            "interactions": rows,
            "days": DAYS,
            "rounds": ROUNDS,
            "built": built,
            "dashboard": reads["dashboard"],
            "api_metrics_90d": reads["api"],
            "ingest_rollups": ingest,
        }
    )


if __name__ == "__main__":
    main()
