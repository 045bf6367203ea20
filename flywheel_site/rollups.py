"""Daily rollups kept incrementally, in the transaction of the write.

Every rollup count is defined by one "facts" query per app: for a set of rows (the
scope), the facts they contribute as (day, source, task type, model, metric, key,
n). A write that changes rows subtracts the facts of the touched rows before it
and adds them after it (`rollup_delta`), both as one INSERT ... ON CONFLICT DO UPDATE
SET n = n + excluded.n computed inside PostgreSQL. The rebuild (`rollup_rebuild`)
runs the same query over every row: the incremental counts equal a rebuild by
construction, whatever the write did (re-curation, reopen, a second review).

Rows only ever inserted (a new interaction) need no "before": `rollup_add`, or
`rollup_add_counts` when the caller holds the rows and counts their facts itself.

Deltas on one table may nest (a re-curation, itself a delta over its candidates'
items, samples a candidate and queues its item with a delta of its own). Two deltas
over the same rows would each count the inner write, so a scoped delta leaves out the
rows of the deltas around it: the outermost counts them, once (`rollup_delta`'s scope).

Each app keeps its own rollup table (a `MetricDayBase`, flywheel_site/models.py) and its
own facts query; this module is the upsert they share.
"""

import re
from collections.abc import Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import date

import orjson
from django.conf import settings
from django.db import connection


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


def enabled() -> bool:
    return settings.FLYWHEEL_METRICS_ROLLUPS


def upsert_sql(*, table: str, facts: str, sign: str = "") -> str:
    """The statement that adds (or, with sign "-", subtracts) the facts to the rollup:
    also usable as a data-modifying CTE, when the facts are those of rows the same
    statement writes (`curation.ingest_sql`'s one-interaction insert)."""
    return _UPSERT.format(
        table=table, facts=facts, sign=sign, shard=f"pg_backend_pid() %% {SHARDS}", where=""
    )


def _apply(*, table: str, facts: str, params: dict, sign: str, prune: bool = False) -> None:
    """Upsert the facts; with `prune`, delete the rows this brought to zero (a count
    that went away leaves no row behind for every later read to skip)."""
    sql = upsert_sql(table=table, facts=facts, sign=sign)
    with connection.cursor() as cursor:
        cursor.execute(sql + (" RETURNING r.id, r.n" if prune else ""), params)
        zero = [pk for pk, n in cursor.fetchall() if n == 0] if prune else []
        if zero:
            # This transaction holds these rows' locks since its upsert: none changed since.
            cursor.execute(f"DELETE FROM {table} WHERE id = ANY(%s) AND n = 0", [zero])  # noqa: S608


def rollup_add(*, table: str, facts: str, params: dict) -> None:
    """Add the facts of rows the caller just inserted (they had none before)."""
    if enabled():
        _apply(table=table, facts=facts, params=params, sign="")


# The same upsert over facts counted in Python, passed as one JSON array: the rows are
# not read back, and one string parameter costs psycopg far less to quote than an array
# per column.
_UPSERT_COUNTS = f"""
INSERT INTO {{table}} AS r (day, source_id, task_type, model, metric, key, shard, n)
SELECT day, source_id, task_type, model, metric, key, pg_backend_pid() %% {SHARDS}, n
FROM jsonb_to_recordset(%(counts)s::jsonb) AS f(
    day date, source_id bigint, task_type text, model text, metric text, key text, n bigint)
ORDER BY day, source_id, task_type, model, metric, key
ON CONFLICT (day, source_id, task_type, model, metric, key, shard)
DO UPDATE SET n = r.n + excluded.n
"""  # noqa: S608 (a constant)

FactKey = tuple[date, int, str, str, str, str]  # day, source_id, task_type, model, metric, key


def rollup_add_counts(*, table: str, counts: Mapping[FactKey, int]) -> None:
    """`rollup_add` for facts the caller counted from rows it holds: the count of each
    (day, source, task type, model, metric, key), every key once."""
    if not (enabled() and counts):
        return
    facts = [
        {
            "day": day,
            "source_id": source_id,
            "task_type": task_type,
            "model": model,
            "metric": metric,
            "key": key,
            "n": n,
        }
        for (day, source_id, task_type, model, metric, key), n in counts.items()
    ]
    with connection.cursor() as cursor:
        cursor.execute(_UPSERT_COUNTS.format(table=table), {"counts": orjson.dumps(facts).decode()})


# The scoped deltas open in this context: (table, scope, params), outermost first.
_open: ContextVar[tuple] = ContextVar("rollup_deltas_open", default=())
_PARAM = re.compile(r"%\((\w+)\)s")


def _tagged(scope: str, params: dict, tag: str) -> tuple[str, dict]:
    """The scope with its parameters renamed apart (`ids` -> `ids_<tag>`)."""
    sql = _PARAM.sub(lambda m: f"%({m.group(1)}_{tag})s", scope)
    return sql, {f"{name}_{tag}": value for name, value in params.items()}


def _scope_nested(table: str, scope: str, params: dict) -> tuple[str, dict]:
    """`scope` less the rows of the scoped deltas open around it on `table`."""
    sql, merged = f"({scope})", dict(params)
    for depth, (other, outer, outer_params) in enumerate(_open.get()):
        if other == table:
            outer_sql, tagged = _tagged(outer, outer_params, f"outer{depth}")
            sql += f" AND NOT ({outer_sql})"
            merged.update(tagged)
    return sql, merged


@contextmanager
def rollup_delta(*, table: str, facts: str, params: dict, scope: str | None = None):
    """Around a write: subtract the facts of the scoped rows, let the write run,
    add their facts again. Call inside the write's transaction.

    With `scope`, `facts` is a template whose `{scope}` selects the rows, by columns
    that never change (their ids): a delta opened inside another scoped delta on the
    same table then leaves out the rows the outer one counts, instead of counting
    what changed in them twice."""
    own = params
    if scope is not None:
        scope_sql, params = _scope_nested(table, scope, params)
        facts = facts.format(scope=scope_sql)
    on = enabled()
    if on:
        _apply(table=table, facts=facts, params=params, sign="-", prune=True)
    token = _open.set((*_open.get(), (table, scope, own))) if scope is not None else None
    try:
        yield
    finally:
        if token is not None:
            _open.reset(token)
    if on:
        _apply(table=table, facts=facts, params=params, sign="", prune=True)


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
