"""Writes for ingest: interactions, feedback and edits (tokens: curation.tokens; linking
feedback that came first: curation.orphans).

The hot path (batch ingest) prepares rows in Python (`curation.ingest_rows`) and
`curation.ingest_write` writes them: `curation.ingest_sql` copies them straight into their
tables, or, when an event was
stored already, streams them with COPY into a session-local staging table and writes
each table with one INSERT ... SELECT ... ON CONFLICT DO NOTHING statement (a single
row goes straight from VALUES).
Idempotency is held by the unique constraints, never by a read-then-write, so
two clients sending the same batch at once both succeed and store it once.
"""

import logging
from dataclasses import dataclass
from functools import partial

from django.conf import settings
from django.db import DatabaseError, connection, transaction
from django.utils import timezone
from pydantic import ValidationError

from curation.errors import CurationError
from curation.ingest_counts import results_count
from curation.ingest_queue import curation_enqueue
from curation.ingest_rows import (
    FeedbackRow,
    InteractionRow,
    prepare_edit,
    prepare_feedback,
    prepare_interaction,
)
from curation.ingest_write import OUTCOME_FIELDS, WriteOutcome, rows_write
from curation.models import Source
from curation.schemas import EditIn, FeedbackIn, InteractionIn, field_errors

# Re-exported: the token services were written here first and are called by this name.
from curation.tokens import UNKNOWN_SCOPE as UNKNOWN_SCOPE
from curation.tokens import MissingScope as MissingScope
from curation.tokens import api_token_authenticate as api_token_authenticate
from curation.tokens import api_token_create as api_token_create
from curation.tokens import api_token_revoke as api_token_revoke

BATCH_TOO_LARGE = "a batch holds at most {limit} items in all, got {count}"
NOT_STORED = "the item could not be stored; the other items were"

logger = logging.getLogger(__name__)


# --- the API's services -------------------------------------------------------


def interaction_ingest(*, source: Source, item: InteractionIn) -> dict:
    row = prepare_interaction(item, now=timezone.now())
    outcome = rows_write(source=source, interactions=[row], feedback=[])
    if row.event_id in outcome.interactions:
        result = {"status": "created", "id": outcome.interactions[row.event_id]}
    else:
        result = {"status": "duplicate", "id": outcome.existing_interactions[row.event_id]}
    results_count([{"kind": "interaction", **result}])
    return result


def feedback_ingest(*, source: Source, item: FeedbackIn) -> dict:
    row = prepare_feedback(item, now=timezone.now())
    outcome = rows_write(source=source, interactions=[], feedback=[row])
    if row.event_id in outcome.feedback:
        result = {
            "status": "created",
            "id": outcome.feedback[row.event_id],
            "linked": outcome.feedback_links[row.event_id] is not None,
        }
    else:
        result = {"status": "duplicate", "id": outcome.existing_feedback[row.event_id]}
    results_count([{"kind": "feedback", **result}])
    return result


def _edit_result(outcome: WriteOutcome, event_id: str) -> dict:
    interaction_id = outcome.interactions.get(event_id) or outcome.existing_interactions.get(
        event_id
    )
    if event_id in outcome.feedback:
        return {
            "status": "created",
            "id": interaction_id,
            "feedback_id": outcome.feedback[event_id],
        }
    return {
        "status": "duplicate",
        "id": interaction_id,
        "feedback_id": outcome.existing_feedback.get(event_id),
    }


def edit_ingest(*, source: Source, item: EditIn) -> dict:
    interaction, feedback = prepare_edit(item, now=timezone.now())
    outcome = rows_write(source=source, interactions=[interaction], feedback=[feedback])
    result = _edit_result(outcome, interaction.event_id)
    results_count([{"kind": "edit", **result}])
    return result


@dataclass
class _Unit:
    """What one batch item writes: an edit is an interaction and its feedback, kept
    together so that the fallback stores both or neither."""

    key: tuple[str, str]  # ("i" or "f", event_id): what the item's result is read from
    edit: bool
    interactions: list[InteractionRow]
    feedback: list[FeedbackRow]


_PARSERS = {
    "interaction": (InteractionIn, lambda item, now: (prepare_interaction(item, now=now), None)),
    "feedback": (FeedbackIn, lambda item, now: (None, prepare_feedback(item, now=now))),
    "edit": (EditIn, lambda item, now: prepare_edit(item, now=now)),
}
_PREFIXES = {"interaction": "interactions", "feedback": "feedback", "edit": "edits"}


def batch_ingest(
    *, source: Source, interactions: list[dict], feedback: list[dict], edits: list[dict]
) -> dict:
    """Validate each item on its own; store the valid ones in one transaction.
    Returns a result per item, in the order kinds and items were sent.

    An item that fails for any reason is `rejected` and the others are stored.
    Validation makes database errors impossible for what it knows of; should one
    still happen, the batch is written again item by item (interactions first, so
    feedback still links), each in a savepoint, and only the items that fail are
    rejected. The happy path pays for no savepoint."""
    count = len(interactions) + len(feedback) + len(edits)
    limit = settings.FLYWHEEL_INGEST_MAX_BATCH
    if count > limit:
        raise BatchTooLarge(BATCH_TOO_LARGE.format(limit=limit, count=count))
    items = {"interaction": interactions, "feedback": feedback, "edit": edits}
    results, units, pending = _batch_prepare(items, now=timezone.now())
    failed: set[tuple[str, str]] = set()
    try:
        outcome = rows_write(
            source=source,
            interactions=[r for u in units for r in u.interactions],
            feedback=[r for u in units for r in u.feedback],
        )
    except DatabaseError:
        logger.exception("batch write failed; writing its %d items one by one", len(units))
        outcome, failed = _write_one_by_one(source=source, units=units)

    # Each event id is "created" for the first item that carried it only.
    claimed: set[tuple[str, str]] = set()
    for result, kind, key in pending:
        if key in failed:
            _reject(
                result, [{"field": f"{_PREFIXES[kind]}.{result['index']}", "message": NOT_STORED}]
            )
            continue
        created, ids = _item_result(kind, outcome, key[1])
        result.update(ids)
        if result["status"] is None and created and key not in claimed:
            result["status"] = "created"
            claimed.add(key)
        else:
            result["status"] = "duplicate"
    totals = {"created": 0, "duplicate": 0, "rejected": 0}
    for result in results:
        totals[result["status"]] += 1
    results_count(results)
    return {**totals, "results": results}


def _batch_prepare(
    items: dict[str, list[dict]], *, now
) -> tuple[list[dict], list[_Unit], list[tuple[dict, str, tuple[str, str]]]]:
    """Validate and prepare every item. Returns the results (rejected ones
    filled in), the units to write (the first item per event id, in write
    order), and (result, kind, key) for each item resolved after the write."""
    results: list[dict] = []
    units: dict[tuple[str, str], _Unit] = {}
    pending: list[tuple[dict, str, tuple[str, str]]] = []
    for kind, raws in items.items():
        schema, prepare = _PARSERS[kind]
        for index, raw in enumerate(raws):
            prefix = f"{_PREFIXES[kind]}.{index}"
            # Every field of schemas.ItemResult: the route renders these as they are.
            result = {
                "index": index,
                "kind": kind,
                "status": None,
                "id": None,
                "feedback_id": None,
                "errors": [],
            }
            results.append(result)
            try:
                i_row, f_row = prepare(schema.model_validate(raw), now)
            except ValidationError as error:
                _reject(result, field_errors(error.errors(include_url=False), prefix=prefix))
                continue
            except Exception:
                logger.exception("batch item %s could not be prepared", prefix)
                _reject(result, [{"field": prefix, "message": NOT_STORED}])
                continue
            key = ("i", i_row.event_id) if f_row is None else ("f", f_row.event_id)
            if key in units:
                result["status"] = "duplicate"
            else:
                # An edit leaves its interaction to an interaction item of the same id.
                owned = i_row is not None and ("i", i_row.event_id) not in units
                units[key] = _Unit(
                    key=key,
                    edit=kind == "edit",
                    interactions=[i_row] if owned else [],
                    feedback=[f_row] if f_row is not None else [],
                )
            pending.append((result, kind, key))
    return results, list(units.values()), pending


def _item_result(kind: str, outcome: WriteOutcome, event_id: str) -> tuple[bool, dict]:
    """Whether the write created the item's row, and the ids its result reports."""
    if kind == "edit":
        edit = _edit_result(outcome, event_id)
        return edit["status"] == "created", {"id": edit["id"], "feedback_id": edit["feedback_id"]}
    if kind == "interaction":
        created, existing = outcome.interactions, outcome.existing_interactions
    else:
        created, existing = outcome.feedback, outcome.existing_feedback
    return event_id in created, {"id": created.get(event_id) or existing.get(event_id)}


def _reject(result: dict, errors: list[dict[str, str]]) -> None:
    result.update(status="rejected", id=None, errors=errors)


def _write_one_by_one(
    *, source: Source, units: list[_Unit]
) -> tuple[WriteOutcome, set[tuple[str, str]]]:
    """The fallback after a failed batch write: each unit in its own savepoint (or
    transaction), interactions before feedback. Returns the merged outcome and the
    keys of the units that failed."""
    merged = WriteOutcome()
    failed: set[tuple[str, str]] = set()
    failed_interactions: set[str] = set()
    # Units holding an interaction first, so feedback in the same batch links to it.
    for unit in sorted(units, key=lambda u: not u.interactions):
        if unit.edit and unit.key[1] in failed_interactions:
            failed.add(unit.key)  # an edit is stored with its interaction or not at all
            continue
        try:
            outcome = rows_write(
                source=source, interactions=unit.interactions, feedback=unit.feedback
            )
        except DatabaseError:
            logger.exception("batch item %s could not be stored", unit.key[1][:200])
            failed.add(unit.key)
            failed_interactions.update(r.event_id for r in unit.interactions)
            continue
        for name in OUTCOME_FIELDS:
            getattr(merged, name).update(getattr(outcome, name))
    return merged, failed


class BatchTooLarge(CurationError):
    pass


# --- curation entry points ----------------------------------------------------

_RETRY_FAILED = """
UPDATE curation_interaction
SET curation_state = 'pending', curation_claimed_at = NULL, curation_error = '',
    curation_failed_at = NULL
WHERE curation_state = 'failed' AND (%(all)s OR id = ANY(%(ids)s::bigint[]))
RETURNING id
"""


def interaction_curation_retry(*, interaction_ids: list[int] | None) -> list[int]:
    """Send failed interactions back to curation (every failed one when
    `interaction_ids` is None) and enqueue them after commit. Rows not failed
    are left alone. Returns the ids sent back."""
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(
            _RETRY_FAILED, {"all": interaction_ids is None, "ids": list(interaction_ids or [])}
        )
        ids = sorted(row[0] for row in cursor.fetchall())
        if ids:
            transaction.on_commit(partial(curation_enqueue, interaction_ids=ids))
    return ids
