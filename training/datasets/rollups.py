"""Training's daily rollup (see `curation.rollups`): gold pairs on the day they were
approved (corrections apart), dataset versions on the day they were frozen and
quarantined. Versions belong to no source or model: source 0, empty strings."""

from contextlib import contextmanager
from datetime import date

from flywheel_site.rollups import rollup_add, rollup_delta, rollup_rebuild, utc_day

TRAINING_TABLE = "training_trainingmetricday"

_TRAINING_FACTS = f"""
SELECT {utc_day("g.approved_at")} AS day, g.source_id, g.task_type, g.model,
       CASE WHEN g.supersedes_id IS NULL THEN 'gold' ELSE 'gold_corrected' END AS metric,
       g.kind AS key
FROM training_goldpair g WHERE {{gold}}
UNION ALL
SELECT {utc_day("v.frozen_at")}, 0, '', '', 'versions', d.name
FROM training_datasetversion v JOIN training_dataset d ON d.id = v.dataset_id
WHERE {{version}} AND v.frozen_at IS NOT NULL AND v.status <> 'draft'
UNION ALL
SELECT {utc_day("v.quarantined_at")}, 0, '', '', 'quarantined', d.name
FROM training_datasetversion v JOIN training_dataset d ON d.id = v.dataset_id
WHERE {{version}} AND v.quarantined_at IS NOT NULL
"""  # noqa: S608 (constants and column names only)


def _facts(*, gold: str = "FALSE", version: str = "FALSE") -> str:
    return _TRAINING_FACTS.format(gold=gold, version=version)


def gold_rollup_add(*, pair_ids) -> None:
    """The facts of gold pairs just inserted."""
    if pair_ids:
        rollup_add(
            table=TRAINING_TABLE,
            facts=_facts(gold="g.id = ANY(%(ids)s::bigint[])"),
            params={"ids": sorted(pair_ids)},
        )


@contextmanager
def gold_rollup_delta(*, outcome_ids):
    """Around an insert of gold pairs whose ids are not returned (ignore_conflicts)."""
    with rollup_delta(
        table=TRAINING_TABLE,
        facts=_facts(gold="g.outcome_id = ANY(%(ids)s::bigint[])"),
        params={"ids": sorted(set(outcome_ids))},
    ):
        yield


@contextmanager
def version_rollup_delta(*, version_ids):
    with rollup_delta(
        table=TRAINING_TABLE,
        facts=_facts(version="v.id = ANY(%(ids)s::bigint[])"),
        params={"ids": sorted(set(version_ids))},
    ):
        yield


def training_metrics_rebuild(*, since: date | None = None) -> int:
    """Recompute training's rollup from the raw tables (from `since` on)."""
    return rollup_rebuild(
        table=TRAINING_TABLE, facts=_facts(gold="TRUE", version="TRUE"), params={}, since=since
    )


def metrics_rebuild(*, since: date | None = None) -> dict[str, int]:
    """Recompute every app's daily rollup from the raw tables, in one transaction
    (readers see the old counts or the new, never a mix). Returns rows per app."""
    from django.db import transaction

    from curation.rollups import curation_metrics_rebuild
    from review.rollups import review_metrics_rebuild

    with transaction.atomic():
        return {
            "curation": curation_metrics_rebuild(since=since),
            "review": review_metrics_rebuild(since=since),
            "training": training_metrics_rebuild(since=since),
        }
