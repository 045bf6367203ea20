"""Curation's daily rollup: the facts of interactions, their feedback, curation lag and
candidates, kept by the generic upsert in `flywheel_site.rollups` (its docstring explains
the scheme)."""

from collections import Counter
from collections.abc import Iterable
from contextlib import contextmanager
from datetime import UTC, date, datetime

from flywheel_site.rollups import enabled as rollups_enabled
from flywheel_site.rollups import (
    rollup_add_counts,
    rollup_delta,
    rollup_rebuild,
    upsert_sql,
    utc_day,
)

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
# yet; only themselves and the feedback linked to them. Counted twice over: in SQL by the
# one-interaction statement (`interactions_rollup_add_sql`), which sees its new rows only
# in what its CTEs return, and in Python from the rows in hand by a batch
# (`interactions_rollup_add_rows`), which spares PostgreSQL reading back every row it
# just wrote. The rollup tests hold both to the rebuild (`_CURATION_FACTS`).
# Over two relations: {i} (id, source_id, task_type, model, occurred_at) and {f}
# (interaction_id, kind, occurred_at), returned by the statement that writes them.
_NEW_FACTS_OF = f"""
SELECT {utc_day("i.occurred_at")} AS day, {_DIMS}, 'interactions' AS metric, '' AS key
FROM {{i}} i
UNION ALL
SELECT {utc_day("i.occurred_at")}, {_DIMS}, 'with_feedback', ''
FROM {{i}} i WHERE i.id IN (SELECT interaction_id FROM {{f}} f)
UNION ALL
SELECT {utc_day("f.occurred_at")}, {_DIMS}, 'feedback', f.kind
FROM {{f}} f JOIN {{i}} i ON i.id = f.interaction_id
"""  # noqa: S608 (constants and column names only)


def _day(moment: datetime) -> date:
    # What utc_day() gives in PostgreSQL: the UTC calendar day of an aware datetime.
    return moment.astimezone(UTC).date()


def interactions_rollup_add_rows(
    *,
    source_id: int,
    interactions: Iterable[tuple[int, str, str, datetime]],
    feedback: Iterable[tuple[int | None, str, datetime]],
) -> None:
    """The facts of interactions just inserted, counted from the rows written:
    `interactions` as (id, task_type, model, occurred_at); `feedback` as
    (interaction_id, kind, occurred_at), holding every feedback row linked to them (in
    this transaction: nothing else can see them yet). Feedback linked elsewhere, or not
    linked, is not theirs and is skipped."""
    counts: Counter = Counter()
    new: dict[int, tuple[date, str, str]] = {}
    for pk, task_type, model, occurred_at in interactions:
        new[pk] = (_day(occurred_at), task_type, model)
        counts[(new[pk][0], source_id, task_type, model, "interactions", "")] += 1
    with_feedback = set()
    for interaction_id, kind, occurred_at in feedback:
        dims = new.get(interaction_id)
        if dims is None:
            continue
        with_feedback.add(interaction_id)
        counts[(_day(occurred_at), source_id, dims[1], dims[2], "feedback", kind)] += 1
    for pk in with_feedback:
        day, task_type, model = new[pk]
        counts[(day, source_id, task_type, model, "with_feedback", "")] += 1
    rollup_add_counts(table=CURATION_TABLE, counts=counts)


def interactions_rollup_add_sql(*, interactions: str, feedback: str) -> str | None:
    """The facts of interactions just inserted, as a statement to run as a data-modifying
    CTE of the statement that inserts them: `interactions` and `feedback` name its
    CTEs returning the new rows and the feedback linked to them (columns as in
    `_NEW_FACTS_OF`). A statement does not see its own CTEs' writes in the tables, so
    the facts come from what they return. None when rollups are off."""
    if not rollups_enabled():
        return None
    return upsert_sql(table=CURATION_TABLE, facts=_NEW_FACTS_OF.format(i=interactions, f=feedback))


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
