"""Inter-annotator agreement for items that got more than one review.

Plain data in, plain numbers out: the caller picks the reviews (one queue, one period) and
passes them here. Agreement figures are ``None`` where the statistic is undefined rather
than a made-up 0 or 1, so the screen can say "not enough overlap" instead of a number.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Hashable, Iterable, Mapping, Sequence
from itertools import combinations
from numbers import Real
from typing import Any, Literal

import krippendorff
import numpy as np

Level = Literal["nominal", "ordinal", "interval"]

LEVELS: tuple[Level, ...] = ("nominal", "ordinal", "interval")

# Decisions are categories; rubric scores are 1-5 ratings whose order matters but whose
# steps need not be equal (a 2 -> 3 is not known to be the same gap as 4 -> 5).
FIELD_LEVELS: dict[str, Level] = {
    "decision": "nominal",
    "accuracy": "ordinal",
    "helpfulness": "ordinal",
    "safety": "ordinal",
}

UNKNOWN_LEVEL = "Level of measurement must be one of: nominal, ordinal, interval."
NON_NUMERIC_VALUE = "Ordinal and interval agreement need numeric ratings."
MISSING_ID = "Every review needs an item_id and a reviewer_id."


def cohen_kappa(pairs: Sequence[tuple[Hashable, Hashable]]) -> float | None:
    """Cohen's kappa for two raters on nominal categories; each pair is (rater A, rater B).

    Pairs with a missing rating (None) are skipped: a missing rating is not a category.
    Returns None when no pair is left. When chance agreement is 1 (both raters used one
    and the same category throughout) kappa is 0/0; observed agreement is then 1 as well,
    and we return 1.0: the raters did agree on everything, and None would read as "no data".
    """
    rated = [(x, y) for x, y in pairs if not _missing(x) and not _missing(y)]
    n = len(rated)
    if n == 0:
        return None
    agreed = sum(1 for x, y in rated if x == y)
    a_counts = Counter(x for x, _ in rated)
    b_counts = Counter(y for _, y in rated)
    chance = sum(count * b_counts[category] for category, count in a_counts.items())
    # Integer form of (p_o - p_e) / (1 - p_e), both scaled by n**2: exact, so the
    # degenerate case is found by an integer test, not a float comparison.
    if chance == n * n:
        return 1.0
    return (n * agreed - chance) / (n * n - chance)


def krippendorff_alpha(
    units: Mapping[Hashable, Sequence[Any]], *, level: Level = "nominal"
) -> float | None:
    """Krippendorff's alpha over items (units) rated by any number of reviewers.

    ``units`` maps an item to the ratings it got, whoever gave them; None (or NaN) is a
    missing rating. Items with fewer than two ratings cannot be compared and do not count.
    Returns None when no item has two ratings, or when all compared ratings are the same
    value: alpha is then 0/0 (Krippendorff: data without variation say nothing about
    reliability), even though observed agreement is perfect.
    """
    if level not in LEVELS:
        raise ValueError(UNKNOWN_LEVEL)
    rated = [[v for v in values if not _missing(v)] for values in units.values()]
    rated = [values for values in rated if len(values) >= 2]
    if level != "nominal" and any(_not_a_number(v) for values in rated for v in values):
        raise ValueError(NON_NUMERIC_VALUE)
    domain = list({v for values in rated for v in values})
    if len(domain) < 2:
        return None
    if level != "nominal":
        domain.sort()
    column = {value: k for k, value in enumerate(domain)}
    # The package's value-counts form of the reliability matrix (units x values): alpha only
    # depends on which values each unit got, not on who gave them, so reviewers need no
    # fixed column, and nominal values need not be numbers.
    value_counts = np.zeros((len(rated), len(domain)), dtype=np.int64)
    for row, values in enumerate(rated):
        for value in values:
            value_counts[row, column[value]] += 1
    value_domain = np.arange(len(domain)) if level == "nominal" else np.array(domain, dtype=float)
    return float(
        krippendorff.alpha(
            value_counts=value_counts, value_domain=value_domain, level_of_measurement=level
        )
    )


def agreement_summary(reviews: Iterable[Any]) -> dict[str, dict[str, Any]]:
    """Agreement on the decision and on each rubric score, over items with 2+ ratings.

    Each review is a mapping or an object with item_id, reviewer_id, decision, accuracy,
    helpfulness and safety. If a reviewer appears twice on an item, the later review wins
    (pass reviews oldest first). Per field:

    - ``alpha``: Krippendorff's alpha at the field's level (``FIELD_LEVELS``).
    - ``kappa``: Cohen's kappa, only when the same two reviewers rated every compared item.
      Kappa models each rater's own habits (their marginal distribution); when pairs of
      different people share the work there is no "rater A", and the value would change
      with the arbitrary choice of who is A on each item. Alpha covers that design.
      Kappa is unweighted, so a 4 against a 5 counts as plain disagreement; the ordinal
      alpha is the figure that gives credit for near misses on scores.
    - ``n_items``: items with at least two ratings; ``n_pairs``: pairs of ratings on the
      same item; ``observed_agreement``: share of those pairs that are identical.
    """
    by_item = _latest_by_item(reviews)
    summary: dict[str, dict[str, Any]] = {}
    for field, level in FIELD_LEVELS.items():
        units: dict[Hashable, dict[Hashable, Any]] = {}
        for item_id, by_reviewer in by_item.items():
            rated = {r: v for r, v in by_reviewer.items() if not _missing(v.get(field))}
            if len(rated) >= 2:
                units[item_id] = {r: v[field] for r, v in rated.items()}
        pairs = [pair for ratings in units.values() for pair in combinations(ratings.values(), 2)]
        summary[field] = {
            "level": level,
            "alpha": krippendorff_alpha(
                {item: list(ratings.values()) for item, ratings in units.items()}, level=level
            ),
            "kappa": _fixed_pair_kappa(units),
            "n_items": len(units),
            "n_pairs": len(pairs),
            "observed_agreement": _share_equal(pairs),
        }
    return summary


def per_annotator_agreement(reviews: Iterable[Any]) -> dict[Hashable, dict[str, Any]]:
    """How often each reviewer's decision matches the other reviewers' on shared items.

    ``n`` counts comparisons: one per other reviewer of the same item, so an item with three
    reviewers gives each of them two. ``agreement_with_others`` is the share of those that
    match; ``kappa_vs_others`` is Cohen's kappa with this reviewer as rater A and whoever
    else reviewed the item as rater B, which corrects for a reviewer who simply approves
    almost everything. Reviewers with no shared item are listed with n = 0 and None.
    """
    by_item = _latest_by_item(reviews)
    comparisons: dict[Hashable, list[tuple[Hashable, Hashable]]] = {}
    for by_reviewer in by_item.values():
        for reviewer_id in by_reviewer:
            comparisons.setdefault(reviewer_id, [])
        decided = {
            r: v["decision"] for r, v in by_reviewer.items() if not _missing(v.get("decision"))
        }
        for (first, first_decision), (second, second_decision) in combinations(decided.items(), 2):
            comparisons[first].append((first_decision, second_decision))
            comparisons[second].append((second_decision, first_decision))
    return {
        reviewer_id: {
            "n": len(pairs),
            "agreement_with_others": _share_equal(pairs),
            "kappa_vs_others": cohen_kappa(pairs),
        }
        for reviewer_id, pairs in comparisons.items()
    }


def _latest_by_item(reviews: Iterable[Any]) -> dict[Hashable, dict[Hashable, dict[str, Any]]]:
    by_item: dict[Hashable, dict[Hashable, dict[str, Any]]] = defaultdict(dict)
    for review in reviews:
        item_id = _get(review, "item_id")
        reviewer_id = _get(review, "reviewer_id")
        if item_id is None or reviewer_id is None:
            raise ValueError(MISSING_ID)
        by_item[item_id][reviewer_id] = {field: _get(review, field) for field in FIELD_LEVELS}
    return by_item


def _get(review: Any, name: str) -> Any:
    if isinstance(review, Mapping):
        return review.get(name)
    return getattr(review, name, None)


def _fixed_pair_kappa(units: Mapping[Hashable, Mapping[Hashable, Any]]) -> float | None:
    reviewers = {r for ratings in units.values() for r in ratings}
    if len(reviewers) != 2 or any(len(ratings) != 2 for ratings in units.values()):
        return None
    first, second = reviewers
    return cohen_kappa([(ratings[first], ratings[second]) for ratings in units.values()])


def _share_equal(pairs: Sequence[tuple[Any, Any]]) -> float | None:
    if not pairs:
        return None
    return sum(1 for x, y in pairs if x == y) / len(pairs)


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _not_a_number(value: Any) -> bool:
    return isinstance(value, bool) or not isinstance(value, Real)
