"""Review's daily rollup (see `flywheel_site.rollups`): what entered the queue, the
reviews each annotator submitted, the outcomes. Facts of review items, scoped by
item or by candidate, with the source, task type and model of the interaction."""

from contextlib import contextmanager
from datetime import date

from flywheel_site.rollups import rollup_delta, rollup_rebuild, utc_day

REVIEW_TABLE = "review_reviewmetricday"
_JOIN = """
FROM review_reviewitem ri
JOIN curation_candidate c ON c.id = ri.candidate_id
JOIN curation_interaction i ON i.id = c.interaction_id
"""
_DIMS = "i.source_id, i.task_type, i.model"

# Queued: the item on the day it entered the queue, by candidate kind. Reviews: on
# the day submitted, by reviewer id. Outcomes: approved/rejected on the day decided,
# keyed "adjudicated" when a curator decided. Adjudication: items sent to a curator
# (reviews disagreed), on the day the item was queued. Agree: the inputs of
# Krippendorff's alpha on the decision, mergeable across days: each ordered pair of
# two reviews of one item, keyed "decision a|decision b|reviews on the item", on the
# day of the item's last review (`review.rollups.nominal_alpha` reads them). Filter
# agree: the dashboard's filter agreement, on the day decided, per filter decision under
# the candidate's latest policy (the reviewed items `review.selectors.calibration_observations`
# reads), keyed "filter|1 if its verdict matched the outcome else 0|inclusion probability of
# that policy's draw" (the weight), so the weighted share and its interval read days, not items.
_REVIEW_FACTS = f"""
SELECT {utc_day("ri.created_at")} AS day, {_DIMS}, 'queued' AS metric, c.kind AS key
{_JOIN} WHERE {{scope}}
UNION ALL
SELECT {utc_day("r.submitted_at")}, {_DIMS}, 'reviews', r.reviewer_id::text
{_JOIN} JOIN review_review r ON r.item_id = ri.id WHERE {{scope}}
UNION ALL
SELECT {utc_day("o.decided_at")}, {_DIMS}, o.result,
       CASE WHEN o.adjudicated_by_id IS NULL THEN '' ELSE 'adjudicated' END
{_JOIN} JOIN review_reviewoutcome o ON o.item_id = ri.id WHERE {{scope}}
UNION ALL
SELECT {utc_day("ri.created_at")}, {_DIMS}, 'adjudication', ''
{_JOIN} LEFT JOIN review_reviewoutcome o ON o.item_id = ri.id
WHERE {{scope}} AND (ri.status = 'adjudication' OR o.adjudicated_by_id IS NOT NULL)
UNION ALL
SELECT {utc_day("m.at")}, {_DIMS}, 'agree', a.decision || '|' || b.decision || '|' || m.n
{_JOIN}
JOIN LATERAL (SELECT count(*) AS n, max(r.submitted_at) AS at FROM review_review r
              WHERE r.item_id = ri.id) m ON m.n >= 2
JOIN review_review a ON a.item_id = ri.id
JOIN review_review b ON b.item_id = ri.id AND b.id <> a.id
WHERE {{scope}}
UNION ALL
SELECT {utc_day("o.decided_at")}, {_DIMS}, 'filter_agree',
       d.filter || '|' || (d.passed = (o.result = 'approved'))::int || '|'
       || s.inclusion_probability::text
{_JOIN} JOIN review_reviewoutcome o ON o.item_id = ri.id
JOIN curation_filterdecision d ON d.candidate_id = c.id AND d.policy_id = c.policy_id
JOIN curation_sampledraw s ON s.candidate_id = c.id AND s.policy_id = c.policy_id
WHERE {{scope}} AND c.kind <> 'needs_answer'
  AND NOT d.details @> jsonb_build_object('skipped', true)
"""  # noqa: S608 (constants and column names only)


@contextmanager
def review_rollup_delta(*, item_ids=(), candidate_ids=()):
    """Around a write that changes these items (or the items of these candidates)."""
    if item_ids:
        scope, ids = "ri.id = ANY(%(ids)s::bigint[])", sorted(set(item_ids))
    elif candidate_ids:
        scope, ids = "ri.candidate_id = ANY(%(ids)s::bigint[])", sorted(set(candidate_ids))
    else:
        yield
        return
    # Scoped: the intake's delta inside a re-curation's (which samples, so queues)
    # leaves the outer one's items to it; both counted them twice.
    with rollup_delta(table=REVIEW_TABLE, facts=_REVIEW_FACTS, scope=scope, params={"ids": ids}):
        yield


def review_metrics_rebuild(*, since: date | None = None) -> int:
    """Recompute review's rollup from the raw tables (from `since` on)."""
    return rollup_rebuild(
        table=REVIEW_TABLE, facts=_REVIEW_FACTS.format(scope="TRUE"), params={}, since=since
    )


def nominal_alpha(pairs: dict[str, int]) -> float | None:
    """Krippendorff's alpha (nominal) from the rollup's `agree` counts: the coincidence
    matrix is the ordered pairs within each item weighted 1/(m - 1) for an item with m
    reviews. None without variation or without pairs (alpha is then 0/0)."""
    coincidence: dict[tuple[str, str], float] = {}
    for key, n in pairs.items():
        a, b, m = key.rsplit("|", 2)
        coincidence[(a, b)] = coincidence.get((a, b), 0.0) + n / (int(m) - 1)
    totals: dict[str, float] = {}
    for (a, _), weight in coincidence.items():
        totals[a] = totals.get(a, 0.0) + weight
    n_all = sum(totals.values())
    if n_all <= 1:
        return None
    observed = sum(w for (a, b), w in coincidence.items() if a != b)
    expected = sum(totals[a] * totals[b] for a in totals for b in totals if a != b) / (n_all - 1)
    if expected == 0:
        return None
    return 1 - observed / expected
