"""Feedback that came before its interaction (an orphan) is linked once the interaction
exists, and a curated interaction that gains feedback goes back to curation."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import NamedTuple

from django.db import connection, transaction

from curation.rollups import interactions_rollup_delta
from flywheel_site.rollups import enabled as rollups_enabled

# New feedback on an interaction that was already curated makes it pending again.
_REOPEN = """
UPDATE curation_interaction SET curation_state = 'pending', curation_claimed_at = NULL
WHERE id = ANY(%(ids)s::bigint[]) AND curation_state = 'done'
RETURNING id
"""


# Feedback that came before its interaction, or raced it (the two committed by
# concurrent requests), is linked once the interaction exists. One statement for the
# sweeper, which links every orphan it can (`feedback_orphans_link_all`), and for the
# one-interaction insert (`curation.ingest_sql`), which also reads the linked feedback's kind
# and time for its rollup facts.
# {interactions}: the table, or the CTE returning the rows that the same statement
# inserts (which it would not see in the table; `curation.ingest_sql`).
LINK_ORPHANS = """
UPDATE curation_feedback f SET interaction_id = i.id
FROM {interactions} i
WHERE f.interaction_id IS NULL
  AND i.source_id = f.source_id AND i.event_id = f.interaction_event_id
  {scope}
RETURNING f.interaction_id, f.kind, f.occurred_at
"""

# The orphans of given interactions: one probe of feedback_unlinked_event_idx per
# interaction, whatever the planner's statistics say. They lag (autovacuum analyzes at most
# once a minute): after a burst of orphans, a planner that took their count for zero read
# *all* of a source's unlinked feedback to link a batch's, 87 ms a batch at 20,000 orphans.
# So the statement leaves it no other way: the source is compared as `+ 0`, which no index
# serves (else it scanned a source's rows through feedback_unique_event), OFFSET 0 keeps the
# lateral subquery from being flattened into a join, and the rows are linked by primary key
# afterwards (as one UPDATE, the join back to the updated table was misplanned too).
_ORPHANS_OF = """
SELECT o.id, n.interaction_id FROM ({targets}) n
CROSS JOIN LATERAL (
    SELECT o.id FROM curation_feedback o
    WHERE o.interaction_id IS NULL
      AND o.interaction_event_id = n.event_id AND o.source_id + 0 = n.source_id
    OFFSET 0
) o
"""
_BY_INTERACTION = """
SELECT id AS interaction_id, source_id, event_id FROM curation_interaction
WHERE id = ANY(%(ids)s::bigint[])
"""
_CREATED = """
SELECT u.interaction_id, %(source)s::bigint AS source_id, u.event_id
FROM unnest(%(ids)s::bigint[], %(event_ids)s::text[]) AS u(interaction_id, event_id)
"""
# Unlinked again, re-checked after the row's lock: a row a concurrent transaction linked
# since it was found is left alone, not linked and counted twice. Spelled with coalesce
# (ids start at 1): `IS NULL` would let the planner read the whole unlinked-feedback index.
_LINK_FOUND = """
UPDATE curation_feedback f SET interaction_id = v.interaction_id
FROM unnest(%(feedback)s::bigint[], %(interactions)s::bigint[]) AS v(id, interaction_id)
WHERE f.id = v.id AND coalesce(f.interaction_id, 0) = 0
RETURNING f.interaction_id, f.kind, f.occurred_at
"""


class LinkedFeedback(NamedTuple):
    interaction_id: int
    kind: str
    occurred_at: datetime


def feedback_link_orphans(
    *,
    interaction_ids: Sequence[int] | None = None,
    source_id: int | None = None,
    created: Mapping[str, int] | None = None,
) -> list[LinkedFeedback]:
    """Link unlinked feedback whose interaction exists: of the interactions
    `interaction_ids`, or of the interactions `created` ({event_id: id}) of `source_id`
    (ingest, in the transaction that stored them), or every such feedback (the sweeper).
    Returns each feedback row linked (ingest counts them in the rollup)."""
    if interaction_ids is None and created is None:
        with connection.cursor() as cursor:
            cursor.execute(LINK_ORPHANS.format(interactions="curation_interaction", scope=""))
            return [LinkedFeedback(*row) for row in cursor.fetchall()]
    if interaction_ids is not None:
        sql, params = _ORPHANS_OF.format(targets=_BY_INTERACTION), {"ids": list(interaction_ids)}
    else:
        sql = _ORPHANS_OF.format(targets=_CREATED)
        params = {"source": source_id, "ids": list(created.values()), "event_ids": list(created)}
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        found = sorted(cursor.fetchall())  # in id order: two linkers lock rows in one order
        if not found:
            return []
        cursor.execute(
            _LINK_FOUND,
            {"feedback": [f for f, _ in found], "interactions": [i for _, i in found]},
        )
        return [LinkedFeedback(*row) for row in cursor.fetchall()]


_ORPHAN_TARGETS = """
SELECT DISTINCT i.id FROM curation_feedback f
JOIN curation_interaction i ON i.source_id = f.source_id AND i.event_id = f.interaction_event_id
WHERE f.interaction_id IS NULL
"""


def feedback_orphans_link_all() -> list[int]:
    """Link every unlinked feedback whose interaction exists and send those
    interactions back to curation (the sweeper). Returns their ids."""
    with transaction.atomic():
        targets = []
        if rollups_enabled():
            with connection.cursor() as cursor:
                cursor.execute(_ORPHAN_TARGETS)
                targets = [row[0] for row in cursor.fetchall()]
        with interactions_rollup_delta(interaction_ids=targets):
            touched = sorted({row.interaction_id for row in feedback_link_orphans()})
            interactions_reopen(interaction_ids=touched)
    return touched


def interactions_reopen(*, interaction_ids: Iterable[int]) -> None:
    """Send curated interactions that gained feedback back to curation."""
    ids = sorted(interaction_ids)
    if ids:
        with connection.cursor() as cursor:
            cursor.execute(_REOPEN, {"ids": ids})
