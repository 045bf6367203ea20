"""Daily rollups kept incrementally, in the transaction of the write.

Every rollup count is defined by one "facts" query per app: for a set of rows (the
scope), the facts they contribute as (day, source, task type, model, metric, key,
n). A write that changes rows subtracts the facts of the touched rows before it
and adds them after it (`rollup_delta`), both as one INSERT ... ON CONFLICT DO UPDATE
SET n = n + excluded.n computed inside PostgreSQL. The rebuild (`rollup_rebuild`)
runs the same query over every row: the incremental counts equal a rebuild by
construction, whatever the write did (re-curation, reopen, a second review).

Rows only ever inserted (a new interaction) need no "before": `rollup_add`.
"""

import functools
import random
import time
from contextlib import contextmanager
from datetime import date

from django.conf import settings
from django.db import OperationalError, connection

# Curation lag (ingest to curated) is kept as a fixed histogram, not as stored
# percentiles: bucket counts add up across days, sources and shards, so any
# window and filter has an exact histogram, and p50/p95 are read from it to the
# precision of a bucket (each bound about 2-3x the previous). Upper bounds in s.
LAG_BUCKETS_S = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600, 86400, 259200, 604800)
LAG_OVER = "inf"


def lag_bucket_sql(seconds_sql: str) -> str:
    """SQL for the bucket label (the upper bound, as text) of a lag in seconds."""
    cases = " ".join(f"WHEN {seconds_sql} <= {bound} THEN '{bound}'" for bound in LAG_BUCKETS_S)
    return f"CASE {cases} ELSE '{LAG_OVER}' END"


def utc_day(column: str) -> str:
    return f"(({column}) AT TIME ZONE 'UTC')::date"


_UPSERT = """
INSERT INTO {table} AS r (day, source_id, task_type, model, metric, key, shard, n)
SELECT day, source_id, task_type, model, metric, key, {shard}, {sign} count(*)
FROM ({facts}) f
{where}
GROUP BY day, source_id, task_type, model, metric, key
-- One order for every writer: two transactions never lock the same rows crosswise.
ORDER BY day, source_id, task_type, model, metric, key
ON CONFLICT (day, source_id, task_type, model, metric, key, shard)
DO UPDATE SET n = r.n + excluded.n
"""

# Writers spread over this many rows per key (see MetricDayBase.shard).
SHARDS = 8


# PostgreSQL's code for "deadlock detected": it aborts one of the transactions.
DEADLOCK = "40P01"
DEADLOCK_ATTEMPTS = 5


def retry_on_deadlock(service):
    """Run a write service again, whole, when PostgreSQL aborted it as one side of a
    deadlock. Each write adjusts the rollups twice (subtract, then add), so two concurrent
    writes can meet on the same rollup rows in opposite orders; PostgreSQL then aborts
    one, and its documented remedy is to retry the transaction. Only an outermost call
    retries: inside someone else's transaction the error goes up to its owner."""

    @functools.wraps(service)
    def run(*args, **kwargs):
        for attempt in range(1, DEADLOCK_ATTEMPTS + 1):
            try:
                return service(*args, **kwargs)
            except OperationalError as error:
                deadlock = getattr(error.__cause__, "sqlstate", None) == DEADLOCK
                if not deadlock or connection.in_atomic_block or attempt == DEADLOCK_ATTEMPTS:
                    raise
                time.sleep(random.uniform(0.005, 0.02) * attempt)
        raise AssertionError("unreachable")

    return run


def enabled() -> bool:
    return settings.FLYWHEEL_METRICS_ROLLUPS


def _apply(*, table: str, facts: str, params: dict, sign: str) -> None:
    sql = _UPSERT.format(
        table=table, facts=facts, sign=sign, shard=f"pg_backend_pid() %% {SHARDS}", where=""
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)


def rollup_add(*, table: str, facts: str, params: dict) -> None:
    """Add the facts of rows the caller just inserted (they had none before)."""
    if enabled():
        _apply(table=table, facts=facts, params=params, sign="")


@contextmanager
def rollup_delta(*, table: str, facts: str, params: dict):
    """Around a write: subtract the facts of the scoped rows, let the write run,
    add their facts again. Call inside the write's transaction."""
    on = enabled()
    if on:
        _apply(table=table, facts=facts, params=params, sign="-")
    yield
    if on:
        _apply(table=table, facts=facts, params=params, sign="")


def rollup_rebuild(*, table: str, facts: str, params: dict, since: date | None) -> int:
    """Recompute `table` from the raw rows (days from `since` on, or all).
    Returns the number of rollup rows written."""
    where = "WHERE day >= %(since)s" if since else ""
    with connection.cursor() as cursor:
        if since:
            cursor.execute(f"DELETE FROM {table} WHERE day >= %s", [since])  # noqa: S608
        else:
            cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (table is a constant)
        cursor.execute(
            _UPSERT.format(table=table, facts=facts, sign="", shard="0", where=where),
            {**params, "since": since},
        )
        return cursor.rowcount


# --- curation's own rollup ----------------------------------------------------

CURATION_TABLE = "curation_curationmetricday"
_DIMS = "i.source_id, i.task_type, i.model"

# Every fact of the interactions in {scope}: the interaction on the day it
# occurred; whether it carries feedback; each linked feedback on its day, by kind
# (unlinked feedback counts once linked: until then it has no task type or
# model); its curation lag on the day it was curated; each candidate on the day
# it was made, by kind, and by its current status (failed: by the filter).
_CURATION_FACTS = f"""
SELECT {utc_day("i.occurred_at")} AS day, {_DIMS}, 'interactions' AS metric, '' AS key
FROM curation_interaction i WHERE {{scope}}
UNION ALL
SELECT {utc_day("i.occurred_at")}, {_DIMS}, 'with_feedback', ''
FROM curation_interaction i
WHERE {{scope}} AND EXISTS (SELECT 1 FROM curation_feedback f WHERE f.interaction_id = i.id)
UNION ALL
SELECT {utc_day("f.occurred_at")}, {_DIMS}, 'feedback', f.kind
FROM curation_interaction i JOIN curation_feedback f ON f.interaction_id = i.id
WHERE {{scope}}
UNION ALL
SELECT {utc_day("i.curation_claimed_at")}, {_DIMS}, 'lag',
       {lag_bucket_sql("extract(epoch FROM i.curation_claimed_at - i.received_at)")}
FROM curation_interaction i
WHERE {{scope}} AND i.curation_state = 'done' AND i.curation_claimed_at IS NOT NULL
UNION ALL
SELECT {utc_day("c.created_at")}, {_DIMS}, 'candidates', c.kind
FROM curation_interaction i JOIN curation_candidate c ON c.interaction_id = i.id
WHERE {{scope}}
UNION ALL
SELECT {utc_day("c.created_at")}, {_DIMS}, c.status,
       CASE WHEN c.status = 'failed' THEN c.failed_filter ELSE '' END
FROM curation_interaction i JOIN curation_candidate c ON c.interaction_id = i.id
WHERE {{scope}} AND c.status IN ('passed', 'failed', 'held')
"""  # noqa: S608 (constants and column names only)
_BY_IDS = "i.id = ANY(%(ids)s::bigint[])"


def _curation_facts(scope: str) -> str:
    return _CURATION_FACTS.format(scope=scope)


# The facts of interactions ingest just inserted: pending, so no lag and no candidate
# yet; only themselves and the feedback linked to them. The ingest hot path runs this
# on every batch, so the interactions are read once and their feedback once (the
# full query above reads them once per fact). The rollup test holds it to the rebuild.
_NEW_INTERACTION_FACTS = f"""
WITH i AS MATERIALIZED (
    SELECT id, source_id, task_type, model, occurred_at FROM curation_interaction
    WHERE id = ANY(%(ids)s::bigint[])
), f AS MATERIALIZED (
    SELECT f.interaction_id, f.kind, f.occurred_at FROM curation_feedback f
    WHERE f.interaction_id = ANY(%(ids)s::bigint[])
)
SELECT {utc_day("i.occurred_at")} AS day, {_DIMS}, 'interactions' AS metric, '' AS key
FROM i
UNION ALL
SELECT {utc_day("i.occurred_at")}, {_DIMS}, 'with_feedback', ''
FROM i WHERE i.id IN (SELECT interaction_id FROM f)
UNION ALL
SELECT {utc_day("f.occurred_at")}, {_DIMS}, 'feedback', f.kind
FROM f JOIN i ON i.id = f.interaction_id
"""  # noqa: S608 (constants and column names only)


def interactions_rollup_add(*, interaction_ids) -> None:
    """The facts of interactions just inserted by ingest (with any feedback linked)."""
    if interaction_ids:
        rollup_add(
            table=CURATION_TABLE,
            facts=_NEW_INTERACTION_FACTS,
            params={"ids": sorted(interaction_ids)},
        )


@contextmanager
def interactions_rollup_delta(*, interaction_ids):
    """Around a write that changes these interactions, their feedback or their
    candidates: keeps the curation rollup exact."""
    ids = sorted(set(interaction_ids))
    if not ids:
        yield
        return
    with rollup_delta(table=CURATION_TABLE, facts=_curation_facts(_BY_IDS), params={"ids": ids}):
        yield


def curation_metrics_rebuild(*, since: date | None = None) -> int:
    """Recompute curation's rollup from the raw tables (from `since` on)."""
    return rollup_rebuild(
        table=CURATION_TABLE, facts=_curation_facts("TRUE"), params={}, since=since
    )
