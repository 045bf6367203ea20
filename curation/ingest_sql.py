"""The SQL of ingest's write path: a batch copied straight into its tables (ids drawn from
the sequences first), or, when that meets an event stored already, staged with COPY and
inserted with one statement per table; a single row inserted from VALUES.
`curation.services` decides what to write and reads the outcome."""

import functools
import operator
import re

from psycopg import postgres
from psycopg.adapt import Dumper
from psycopg.pq import Format

from curation.ingest_rows import FeedbackRow, InteractionRow
from curation.orphans import LINK_ORPHANS
from curation.rollups import interactions_rollup_add_sql

# Rows reach PostgreSQL through COPY into a temporary staging table, then one
# INSERT ... SELECT per table. Measured on 500-event batches: the former
# INSERT ... SELECT FROM unnest(%s::text[], ...) spent about 30 ms of Python per
# batch quoting 1 MB of array literals (Django binds parameters on the client)
# and the server parsed them again; COPY is encoded by psycopg's C code. A single
# row skips the staging table (see _one_row). The staging tables live in the session, are
# created on first use (a connection pooler may hand us a fresh session at any
# transaction, hence IF NOT EXISTS every time) and are emptied at every commit.
_STAGE_INTERACTIONS = """
CREATE TEMP TABLE IF NOT EXISTS _ingest_interaction (
    event_id text, occurred_at timestamptz, model text, task_type text, messages jsonb,
    response text, usage jsonb, latency_ms integer, user_hash text, session_id text, segment text,
    metadata jsonb, pii jsonb
) ON COMMIT DELETE ROWS
"""

_STAGE_FEEDBACK = """
CREATE TEMP TABLE IF NOT EXISTS _ingest_feedback (
    event_id text, interaction_event_id text, kind text, rating smallint, comment text,
    final_text text, occurred_at timestamptz, user_hash text, metadata jsonb, pii jsonb
) ON COMMIT DELETE ROWS
"""

_INSERT_INTERACTIONS = """
INSERT INTO curation_interaction (
    source_id, event_id, occurred_at, received_at, model, task_type, messages, response,
    usage, latency_ms, user_hash, session_id, segment, metadata, pii, curation_state)
SELECT %(source)s, u.event_id, u.occurred_at, %(now)s, u.model, u.task_type, u.messages,
       u.response, u.usage, u.latency_ms, u.user_hash, u.session_id, u.segment, u.metadata,
       u.pii, 'pending'
FROM _ingest_interaction u
-- A fixed order of inserts: two batches holding the same events in another order
-- would otherwise be able to deadlock on the unique index. Code-point order (C), the
-- order in which rows_copy writes, so the two paths lock in one order too.
ORDER BY u.event_id COLLATE "C"
ON CONFLICT (source_id, event_id) DO NOTHING
RETURNING id, event_id
"""

_INSERT_FEEDBACK = """
INSERT INTO curation_feedback (
    source_id, event_id, interaction_event_id, interaction_id, kind, rating, comment,
    final_text, occurred_at, received_at, user_hash, metadata, pii)
SELECT %(source)s, u.event_id, u.interaction_event_id, i.id, u.kind, u.rating, u.comment,
       u.final_text, u.occurred_at, %(now)s, u.user_hash, u.metadata, u.pii
FROM _ingest_feedback u
LEFT JOIN curation_interaction i
  ON i.source_id = %(source)s AND i.event_id = u.interaction_event_id
ORDER BY u.event_id COLLATE "C"
ON CONFLICT (source_id, event_id) DO NOTHING
RETURNING id, event_id, interaction_id
"""

_INTERACTION_FIELDS = tuple(InteractionRow.__dataclass_fields__)
_FEEDBACK_FIELDS = tuple(FeedbackRow.__dataclass_fields__)


def _stage_columns(stage: str) -> list[tuple[str, str]]:
    """(name, type) of each column of a staging table's DDL, in order."""
    return [tuple(c.split()) for c in re.search(r"\((.*)\)", stage, re.S).group(1).split(",")]


def _one_row(insert: str, *, stage: str, table: str) -> str:
    """`insert` reading one row from a VALUES list shaped as the staging table: a single
    event (the one-event API routes) skips the CREATE, DELETE and COPY round trips, which
    were most of its database time."""
    columns = _stage_columns(stage)
    values = ", ".join(f"%({name})s::{kind}" for name, kind in columns)
    names = ", ".join(name for name, _ in columns)
    return insert.replace(f"FROM {table} u", f"FROM (VALUES ({values})) AS u({names})")


def _write(stage: str, table: str, names: tuple[str, ...], insert: str) -> tuple:
    """(staging table DDL, its name, its columns, the batch INSERT, the one-row INSERT)"""
    return stage, table, names, insert, _one_row(insert, stage=stage, table=table)


INTERACTION_WRITE = _write(
    _STAGE_INTERACTIONS, "_ingest_interaction", _INTERACTION_FIELDS, _INSERT_INTERACTIONS
)
FEEDBACK_WRITE = _write(_STAGE_FEEDBACK, "_ingest_feedback", _FEEDBACK_FIELDS, _INSERT_FEEDBACK)


# One interaction (the single-event route every model call hits) is written by one
# statement: the insert, the link of feedback that came before it and the rollup, as
# data-modifying CTEs. Run outside a transaction block it is its own transaction, so
# the event costs one round trip instead of five (BEGIN, three statements, COMMIT).
# The link and the rollup read what the insert returns: a statement does not see its
# own CTEs' writes in the tables.
_ONE_INTERACTION_RETURNS = "RETURNING id, event_id, source_id, task_type, model, occurred_at"


@functools.cache
def _one_interaction(rollup: str | None) -> str:
    returning = "RETURNING id, event_id\n"
    if not _INSERT_INTERACTIONS.endswith(returning):
        raise AssertionError("the one-interaction statement extends the insert's RETURNING")
    insert = _one_row(
        _INSERT_INTERACTIONS.removesuffix(returning) + _ONE_INTERACTION_RETURNS,
        stage=_STAGE_INTERACTIONS,
        table="_ingest_interaction",
    )
    parts = [
        f"new_rows AS ({insert})",
        f"linked AS ({LINK_ORPHANS.format(interactions='new_rows', scope='')})",
    ]
    if rollup:
        parts.append(f"rolled AS ({rollup})")
    # PostgreSQL runs every data-modifying CTE once, read or not.
    return "WITH " + ",\n".join(parts) + "\nSELECT id FROM new_rows"


def interaction_insert_one(cursor, row: InteractionRow, params: dict) -> int | None:
    """Insert one interaction with its linked feedback and rollup facts, in one
    statement (see `_one_interaction`): its id, or None when the event was stored
    already."""
    rollup = interactions_rollup_add_sql(interactions="new_rows", feedback="linked")
    cursor.execute(_one_interaction(rollup), {**params, **vars(row)})
    found = cursor.fetchone()
    return None if found is None else found[0]


def rows_insert(cursor, rows: list, write: tuple, params: dict) -> None:
    create, table, names, insert, insert_one = write
    if len(rows) == 1:
        cursor.execute(insert_one, {**params, **vars(rows[0])})
        return
    _stage(cursor, create=create, table=table, names=names, rows=rows)
    cursor.execute(insert, params)


def _stage(cursor, *, create: str, table: str, names: tuple[str, ...], rows: list) -> None:
    """COPY `rows` into the staging `table` (columns `names`, in that order)."""
    cursor.execute(create)
    # Empty in production (emptied at commit); not so when an outer transaction
    # (a test, a caller's atomic block) already staged rows.
    cursor.execute(f"DELETE FROM {table}")  # noqa: S608 (table is a constant)
    values = operator.attrgetter(*names)
    # Django's wrapper has no copy(); its psycopg cursor does, in the same transaction.
    with cursor.cursor.copy(f"COPY {table} ({', '.join(names)}) FROM STDIN") as copy:
        for row in rows:
            copy.write_row(values(row))


# The direct path: a batch of new events (the usual case) is copied straight into
# curation_interaction and curation_feedback, with ids drawn from their sequences first
# (the rows' ids are the batch's answer, and COPY returns none). No staging table, no
# INSERT ... SELECT: PostgreSQL parses and writes every row once, which halved its time
# per batch. An event stored already makes COPY fail on the unique index; the caller
# then rolls back to a savepoint and takes the staging path, whose ON CONFLICT sorts
# duplicates out. Replays pay for both; first deliveries, nearly all traffic, for one.
# The sequence is looked up once, in a scalar subquery (an InitPlan): passed straight to
# nextval, pg_get_serial_sequence ran once per id, a catalog lookup each time, and made
# drawing 525 ids cost about 2.4 ms of PostgreSQL instead of 0.3.
_DRAW_IDS = """
SELECT ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('curation_interaction', 'id')
                              ::regclass))
             FROM generate_series(1, %(interactions)s)),
       ARRAY(SELECT nextval((SELECT pg_get_serial_sequence('curation_feedback', 'id')
                              ::regclass))
             FROM generate_series(1, %(feedback)s))
"""
# In COPY's binary format: PostgreSQL reads each value with the column type's receive
# function (a timestamp is eight bytes, a text is its bytes) instead of parsing text, and
# psycopg writes strings without escaping them. Measured on the bench's batches: about
# 1.5 ms less PostgreSQL and 1.4 ms less Python per 475 rows (bench/RESULTS.md, "fourth
# round"). The types are the staging tables' (one list of columns and types per kind).
_COPY_INTERACTIONS = (
    "COPY curation_interaction (id, source_id, received_at, curation_state, "
    f"{', '.join(_INTERACTION_FIELDS)}) FROM STDIN (FORMAT BINARY)"
)
_COPY_FEEDBACK = (
    "COPY curation_feedback (id, source_id, received_at, interaction_id, "
    f"{', '.join(_FEEDBACK_FIELDS)}) FROM STDIN (FORMAT BINARY)"
)


def _stage_types(stage: str, names: tuple[str, ...]) -> list[str]:
    columns = dict(_stage_columns(stage))
    if tuple(columns) != names:
        raise AssertionError("a staging table's columns are its row's fields, in order")
    return list(columns.values())


_COPY_INTERACTION_TYPES = [
    "bigint", "bigint", "timestamptz", "text",
    *_stage_types(_STAGE_INTERACTIONS, _INTERACTION_FIELDS),
]  # fmt: skip
_COPY_FEEDBACK_TYPES = [
    "bigint", "bigint", "timestamptz", "bigint",
    *_stage_types(_STAGE_FEEDBACK, _FEEDBACK_FIELDS),
]  # fmt: skip


class _JsonTextBinaryDumper(Dumper):
    """A jsonb value in binary form from JSON text: a version byte (1), then the text, which
    is what PostgreSQL's jsonb_recv reads. The rows hold their JSON dumped already
    (`ingest_rows`); psycopg's own jsonb dumper would dump each string again, as a JSON
    string. Registered on the copying cursor only, for the types `set_types` names."""

    format = Format.BINARY
    oid = postgres.types["jsonb"].oid

    def dump(self, obj: str) -> bytes:
        # UTF-8 is the connection's encoding: Django sets client_encoding to UTF8 on every
        # PostgreSQL connection, and jsonb_recv reads the text in the client's encoding.
        return b"\x01" + obj.encode()


def rows_copy(
    cursor,
    *,
    source_id: int,
    now,
    interactions: list[InteractionRow],
    feedback: list[FeedbackRow],
    stored: dict[str, int],
) -> tuple[dict[str, int], dict[str, tuple[int, int | None]]]:
    """COPY new rows into their tables. `stored` maps the event ids of interactions
    stored earlier to their ids (what feedback links to besides this batch). Returns
    {event_id: id} of the interactions and {event_id: (id, interaction id or None)} of
    the feedback. Raises IntegrityError if an event id is stored already."""
    # Code-point order: two batches sharing events lock them in the same order.
    interactions = sorted(interactions, key=operator.attrgetter("event_id"))
    feedback = sorted(feedback, key=operator.attrgetter("event_id"))
    cursor.execute(_DRAW_IDS, {"interactions": len(interactions), "feedback": len(feedback)})
    interaction_ids, feedback_ids = cursor.fetchone()
    created = dict(zip((row.event_id for row in interactions), interaction_ids, strict=True))
    targets = {**stored, **created}
    linked = {}
    # Django's cursor wrapper has no copy(); its psycopg cursor does, in the same
    # transaction, but raises psycopg's errors: wrapped, they are Django's again.
    copier = cursor.cursor
    copier.adapters.register_dumper(None, _JsonTextBinaryDumper)
    with cursor.db.wrap_database_errors:
        if interactions:
            values = operator.attrgetter(*_INTERACTION_FIELDS)
            with copier.copy(_COPY_INTERACTIONS) as copy:
                copy.set_types(_COPY_INTERACTION_TYPES)
                for pk, row in zip(interaction_ids, interactions, strict=True):
                    copy.write_row((pk, source_id, now, "pending", *values(row)))
        if feedback:
            values = operator.attrgetter(*_FEEDBACK_FIELDS)
            with copier.copy(_COPY_FEEDBACK) as copy:
                copy.set_types(_COPY_FEEDBACK_TYPES)
                for pk, row in zip(feedback_ids, feedback, strict=True):
                    target = targets.get(row.interaction_event_id)
                    linked[row.event_id] = (pk, target)
                    copy.write_row((pk, source_id, now, target, *values(row)))
    return created, linked
