"""The write of prepared ingest rows (`rows_write`): one transaction per batch, curation
enqueued after commit. New events are copied straight into their tables (`curation.ingest_sql`);
a batch that meets an event stored already takes the staging path, whose ON CONFLICT sorts the
duplicates out. Idempotency is held by the unique constraints, never by a read-then-write.
`curation.services` validates, prepares and answers per item."""

from contextlib import nullcontext
from dataclasses import dataclass, field, fields
from functools import partial

from django.db import IntegrityError, connection, transaction
from django.utils import timezone

from curation import ingest_sql
from curation.ingest_queue import curation_hand_over
from curation.ingest_rows import FeedbackRow, InteractionRow
from curation.models import Source
from curation.orphans import LinkedFeedback, feedback_link_orphans, interactions_reopen
from curation.rollups import interactions_rollup_add_rows, interactions_rollup_delta
from flywheel_site.deadlock import retry_on_deadlock
from flywheel_site.rollups import enabled as rollups_enabled


@dataclass
class WriteOutcome:
    interactions: dict[str, int] = field(default_factory=dict)  # created: event_id -> id
    feedback: dict[str, int] = field(default_factory=dict)
    existing_interactions: dict[str, int] = field(default_factory=dict)
    existing_feedback: dict[str, int] = field(default_factory=dict)
    # Created feedback -> the interaction it was linked to (None: not yet, an orphan).
    feedback_links: dict[str, int | None] = field(default_factory=dict)
    to_curate: set[int] = field(default_factory=set)


# Each a dict or a set: outcomes merge field by field with update().
OUTCOME_FIELDS = tuple(f.name for f in fields(WriteOutcome))


def _existing(cursor, table: str, source_id: int, event_ids: list[str]) -> dict[str, int]:
    if not event_ids:
        return {}
    cursor.execute(
        f"SELECT event_id, id FROM {table} WHERE source_id = %s AND event_id = ANY(%s::text[])",  # noqa: S608 (table is a constant)
        [source_id, event_ids],
    )
    return dict(cursor.fetchall())


def rows_write(
    *, source: Source, interactions: list[InteractionRow], feedback: list[FeedbackRow]
) -> WriteOutcome:
    """Write prepared rows in one transaction; curation is enqueued after commit.
    Rows must have distinct event ids per kind (callers mark in-batch repeats)."""
    if len(interactions) == 1 and not feedback:
        return _interaction_write_one(source=source, row=interactions[0])
    outcome = WriteOutcome()
    now = timezone.now()
    with transaction.atomic(), connection.cursor() as cursor:
        # Interactions stored earlier that this feedback links to (and may reopen):
        # their rollup facts change. New interactions are added whole at the end.
        # Feedback on the batch's own interactions (a client that buffers both kinds) needs
        # no lookup: they are new, or the write takes the staging path (see _rows_insert).
        stored = {}
        if feedback and (rollups_enabled() or _copy_direct(interactions, feedback)):
            stored = _existing(
                cursor,
                "curation_interaction",
                source.pk,
                sorted({r.interaction_event_id for r in feedback} - _event_ids(interactions)),
            )
        touched = list(stored.values()) if rollups_enabled() else []
        with interactions_rollup_delta(interaction_ids=touched):
            orphans = _rows_insert(
                cursor,
                source=source,
                now=now,
                outcome=outcome,
                interactions=interactions,
                feedback=feedback,
                stored=stored,
            )
        if rollups_enabled() and outcome.interactions:
            _rollup_add(
                source=source, outcome=outcome, rows=(interactions, feedback), orphans=orphans
            )
        outcome.existing_interactions = _existing(
            cursor,
            "curation_interaction",
            source.pk,
            [r.event_id for r in interactions if r.event_id not in outcome.interactions],
        )
        outcome.existing_feedback = _existing(
            cursor,
            "curation_feedback",
            source.pk,
            [r.event_id for r in feedback if r.event_id not in outcome.feedback],
        )
        if outcome.to_curate:
            transaction.on_commit(partial(curation_hand_over, interaction_ids=outcome.to_curate))
    return outcome


@retry_on_deadlock
def _interaction_write_one(*, source: Source, row: InteractionRow) -> WriteOutcome:
    """One interaction and nothing else: one statement, its own transaction unless the
    caller holds one (`ingest_sql.interaction_insert_one`); then in a savepoint, so that
    its failure leaves the caller's transaction usable, as `rows_write`'s does. Its
    rollup upsert can meet curation's deltas on the same rows: retried whole on a
    deadlock, like the other rollup writers."""
    outcome = WriteOutcome()
    nested = nullcontext() if connection.get_autocommit() else transaction.atomic()
    with nested, connection.cursor() as cursor:
        params = {"source": source.pk, "now": timezone.now()}
        pk = ingest_sql.interaction_insert_one(cursor, row, params)
        if pk is None:
            outcome.existing_interactions = _existing(
                cursor, "curation_interaction", source.pk, [row.event_id]
            )
        else:
            outcome.interactions = {row.event_id: pk}
            outcome.to_curate = {pk}
    if outcome.to_curate:
        transaction.on_commit(partial(curation_hand_over, interaction_ids=outcome.to_curate))
    return outcome


def _event_ids(rows: list) -> set[str]:
    return {row.event_id for row in rows}


def _copy_direct(interactions: list, feedback: list) -> bool:
    # A single event goes from VALUES in one statement: the direct path's extra round
    # trips (ids, savepoint) would cost it more than COPY saves.
    return len(interactions) > 1 or len(feedback) > 1


def _rows_insert(
    cursor,
    *,
    source: Source,
    now,
    outcome: WriteOutcome,
    interactions: list[InteractionRow],
    feedback: list[FeedbackRow],
    stored: dict[str, int],
) -> list[LinkedFeedback]:
    """Returns the feedback stored earlier that the new interactions linked."""
    params = {"source": source.pk, "now": now}
    rows = (interactions, feedback)
    if not (_copy_direct(*rows) and _rows_copy(cursor, outcome, params, rows, stored)):
        # Some events were stored already. Feedback may link to a stored interaction that
        # this batch sends again: its rollup facts change too (the caller's delta counts only
        # the stored interactions the batch does not send).
        resent = []
        if rollups_enabled() and feedback:
            ours = {r.interaction_event_id for r in feedback} & _event_ids(interactions)
            resent = list(
                _existing(cursor, "curation_interaction", source.pk, sorted(ours)).values()
            )
        with interactions_rollup_delta(interaction_ids=resent):
            _rows_upsert(cursor, outcome, params, rows)
    orphans = []
    if outcome.interactions:
        orphans = feedback_link_orphans(source_id=source.pk, created=outcome.interactions)
        outcome.to_curate.update(row.interaction_id for row in orphans)
    interactions_reopen(interaction_ids=outcome.to_curate - set(outcome.interactions.values()))
    return orphans


def _rollup_add(
    *, source: Source, outcome: WriteOutcome, rows: tuple, orphans: list[LinkedFeedback]
) -> None:
    """The facts of the interactions created, from the rows written: each feedback row
    linked to them was created by this write or is an orphan it linked."""
    interactions, feedback = rows
    created, links = outcome.interactions, outcome.feedback_links
    interactions_rollup_add_rows(
        source_id=source.pk,
        interactions=[
            (created[r.event_id], r.task_type, r.model, r.occurred_at)
            for r in interactions
            if r.event_id in created
        ],
        feedback=[
            *((links[r.event_id], r.kind, r.occurred_at) for r in feedback if r.event_id in links),
            *orphans,
        ],
    )


def _rows_copy(cursor, outcome: WriteOutcome, params: dict, rows: tuple, stored: dict) -> bool:
    """The direct path (`ingest_sql.rows_copy`) in a savepoint. False, with nothing
    written, when an event was stored already."""
    interactions, feedback = rows
    try:
        with transaction.atomic():
            created, linked = ingest_sql.rows_copy(
                cursor,
                source_id=params["source"],
                now=params["now"],
                interactions=interactions,
                feedback=feedback,
                stored=stored,
            )
    except IntegrityError:
        return False
    outcome.interactions = created
    outcome.to_curate.update(created.values())
    for event_id, (pk, interaction_id) in linked.items():
        _feedback_created(outcome, event_id, pk, interaction_id)
    return True


def _rows_upsert(cursor, outcome: WriteOutcome, params: dict, rows: tuple) -> None:
    """The staging path: ON CONFLICT DO NOTHING sorts out events stored already."""
    interactions, feedback = rows
    if interactions:
        ingest_sql.rows_insert(cursor, interactions, ingest_sql.INTERACTION_WRITE, params)
        outcome.interactions = {event_id: pk for pk, event_id in cursor.fetchall()}
        outcome.to_curate.update(outcome.interactions.values())
    if feedback:
        ingest_sql.rows_insert(cursor, feedback, ingest_sql.FEEDBACK_WRITE, params)
        for pk, event_id, interaction_id in cursor.fetchall():
            _feedback_created(outcome, event_id, pk, interaction_id)


def _feedback_created(outcome: WriteOutcome, event_id: str, pk: int, interaction_id) -> None:
    outcome.feedback[event_id] = pk
    outcome.feedback_links[event_id] = interaction_id
    if interaction_id is not None:
        outcome.to_curate.add(interaction_id)
