"""Feedback that came before its interaction (an orphan) is linked once the interaction
exists, and a curated interaction that gains feedback goes back to curation."""

from collections.abc import Iterable, Sequence
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
# concurrent requests), is linked once the interaction exists. The partial
# index on unlinked feedback keeps this cheap. One statement, scoped three ways here, and
# a fourth in the one-interaction insert (`curation.ingest_sql`), which also reads the
# linked feedback's kind and time for its rollup facts.
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
_BY_INTERACTION = "AND i.id = ANY(%(ids)s::bigint[])"
_BY_EVENT = "AND f.source_id = %(source)s AND f.interaction_event_id = ANY(%(event_ids)s::text[])"


class LinkedFeedback(NamedTuple):
    interaction_id: int
    kind: str
    occurred_at: datetime


def feedback_link_orphans(
    *,
    interaction_ids: Sequence[int] | None = None,
    source_id: int | None = None,
    event_ids: Sequence[str] | None = None,
) -> list[LinkedFeedback]:
    """Link unlinked feedback whose interaction exists: of the interactions
    `interaction_ids`, or of the events `event_ids` of `source_id` (ingest, in
    the transaction that stored them), or every such feedback (the sweeper).
    Returns each feedback row linked (ingest counts them in the rollup)."""
    if interaction_ids is not None:
        scope, params = _BY_INTERACTION, {"ids": list(interaction_ids)}
    elif event_ids is not None:
        scope, params = _BY_EVENT, {"source": source_id, "event_ids": list(event_ids)}
    else:
        scope, params = "", None
    with connection.cursor() as cursor:
        sql = LINK_ORPHANS.format(interactions="curation_interaction", scope=scope)
        cursor.execute(sql, params)
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
