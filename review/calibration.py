"""Filters against human outcomes: pure estimators (no database).

Each reviewed item is an observation of one filter: the filter's verdict
(passed or not), its score, the human outcome (approved or not) and the item's
weight, 1 / its inclusion probability. The reviewed items are an unequal
probability sample of the candidates the filter saw: passed candidates come
from the main sample (a few percent, raised for small strata), rejected ones
from the audit sample (2% by default). Unweighted counts would therefore say
more about the sampling rates than about the filter; every figure here is a
Horvitz-Thompson estimate: totals are sums of weights, and rates are ratios of
such sums (the Hajek form, which stays within [0, 1]).

Which candidates a filter "saw": the filters run in order and stop at the
first failure, so a filter has a verdict on the candidates that reached it.
Those are the ones it rejected (its audit sample), the ones a later filter
rejected (their audit samples) and the ones that passed every filter (the main
sample): together every candidate that reached it, each with its probability.
A filter whose audit rate is 0 leaves its rejections out of the later filters'
figures (documented on the page).

Intervals: the Hajek ratio's variance by Taylor linearisation (C.-E. Särndal, B. Swensson,
J. Wretman, "Model Assisted Survey Sampling", Springer 1992, sections 5.6-5.7 on ratios
and domains): each item's linearised value z_i = d_i (y_i - R) / N_d, with d_i the domain
indicator (passed, for precision; approved, for recall; every item, for agreement), and the
variance of the design that drew it. Each candidate is drawn independently by its own keyed
uniform with its stratum's (or its filter's audit) probability pi_i: a Poisson design,
stratified through pi_i, whose Horvitz-Thompson variance estimator is
sum_i (1 - pi_i) (z_i / pi_i)^2 (Särndal et al. 1992, section 3.5 and result 5.7.1). A
with-replacement formula centred within strata understated it (recall covered 84-89%): the
random number of items each stratum receives is part of the variance here. The normal
interval is clipped to [0, 1]. This replaced a Wilson interval over Kish's effective n,
which covered recall 82-84% of the time at nominal 95% because the outcome is tied to the
weight class (tests/review/test_decisions_calibration.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from statistics import NormalDist

CONFIDENCE = 0.95
SCORE_BINS = 10
# Below this many reviewed items a suggested threshold says more about noise
# than about the filter.
MIN_REVIEWED_FOR_SUGGESTION = 20


@dataclass(frozen=True)
class Observation:
    weight: float
    passed: bool
    approved: bool
    score: float | None = None


@dataclass(frozen=True)
class Estimate:
    """A weighted share, its confidence interval and the reviewed items behind it."""

    value: float | None
    low: float | None
    high: float | None
    n: int


@dataclass(frozen=True)
class ThresholdRule:
    """How a filter's score decides: passes when `score >= t` (`higher_passes`)
    or `score <= t`; `field` is the policy field holding t."""

    field: str
    higher_passes: bool
    integer: bool = False

    def passes(self, score: float, threshold: float) -> bool:
        return score >= threshold if self.higher_passes else score <= threshold


# Filters one threshold decides. The edit band has two bounds and dedup_near
# records a score only when it rejects, so neither gets a suggestion.
THRESHOLD_RULES = {
    "length": ThresholdRule(field="min_words", higher_passes=True, integer=True),
    "toxicity": ThresholdRule(field="toxicity_threshold", higher_passes=False),
    "quality": ThresholdRule(field="quality_min", higher_passes=True),
}


def weight_of(inclusion_probability: float) -> float:
    if not 0 < inclusion_probability <= 1:
        raise ValueError(f"inclusion probability must be in (0, 1], got {inclusion_probability}")
    return 1.0 / inclusion_probability


def wilson_interval(share: float, n: float, *, confidence: float = CONFIDENCE) -> tuple:
    """The Wilson score interval for a proportion `share` observed over `n`.

    Why Wilson: reviewed samples per filter are small and the rates sit near 0
    or 1 (a filter rejects few good answers), where the Wald interval
    p +- z*sqrt(p(1-p)/n) collapses to zero width or leaves [0, 1]. Wilson
    keeps near-nominal coverage there and never leaves [0, 1].
    """
    if n <= 0:
        return (None, None)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    denominator = 1 + z * z / n
    centre = (share + z * z / (2 * n)) / denominator
    half = z * math.sqrt(share * (1 - share) / n + z * z / (4 * n * n)) / denominator
    return (max(0.0, centre - half), min(1.0, centre + half))


def effective_size(weights: Sequence[float]) -> float:
    """Kish's effective sample size (sum w)^2 / sum w^2: n for equal weights,
    less when a few heavy items (audit items at 2% weigh 50 each) dominate."""
    total = sum(weights)
    squares = sum(w * w for w in weights)
    return total * total / squares if squares else 0.0


def weighted_share(pairs: Sequence[tuple[float, bool]]) -> Estimate:
    """The Horvitz-Thompson (Hajek) share of `hit` among weighted items, with
    a Wilson interval over Kish's effective sample size: the interval widens
    with the design effect of unequal weights instead of pretending every
    reviewed item counts the same."""
    weights = [w for w, _ in pairs]
    total = sum(weights)
    if not pairs or total <= 0:
        return Estimate(None, None, None, len(pairs))
    share = sum(w for w, hit in pairs if hit) / total
    low, high = wilson_interval(share, effective_size(weights))
    return Estimate(share, low, high, len(pairs))


def linearised_variance(
    observations: Sequence[Observation],
    domain: Callable[[Observation], bool],
    hit: Callable[[Observation], bool],
    ratio: float,
) -> float:
    """The linearisation variance of the Hajek share under the Poisson design (see the
    module docstring): sum over items of (1 - pi_i) (w_i z_i)^2."""
    domain_total = sum(o.weight for o in observations if domain(o))
    variance = 0.0
    for o in observations:
        if domain(o):
            u = o.weight * (float(hit(o)) - ratio) / domain_total
            variance += (1 - 1 / o.weight) * u * u
    return variance


def hajek_share(
    observations: Sequence[Observation],
    domain: Callable[[Observation], bool],
    hit: Callable[[Observation], bool],
) -> Estimate:
    """The Hajek share of `hit` within `domain`, with its linearised 95% interval."""
    inside = [o for o in observations if domain(o)]
    total = sum(o.weight for o in inside)
    if not inside or total <= 0:
        return Estimate(None, None, None, len(inside))
    share = sum(o.weight for o in inside if hit(o)) / total
    half = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2) * math.sqrt(
        linearised_variance(observations, domain, hit, share)
    )
    return Estimate(share, max(0.0, share - half), min(1.0, share + half), len(inside))


def precision(observations: Sequence[Observation]) -> Estimate:
    """P(human approves | filter passes), weighted."""
    return hajek_share(observations, lambda o: o.passed, lambda o: o.approved)


def recall(observations: Sequence[Observation]) -> Estimate:
    """P(filter passes | human approves), weighted: the share of the answers
    humans would approve that the filter lets through."""
    return hajek_share(observations, lambda o: o.approved, lambda o: o.passed)


def agreement(observations: Sequence[Observation]) -> Estimate:
    """P(filter's verdict = human's verdict), weighted."""
    return hajek_share(observations, lambda o: True, lambda o: o.passed == o.approved)


def agreement_counted(counts: Mapping[tuple[bool, float], int]) -> Estimate:
    """`agreement` from counts of reviewed items by (verdict matched the outcome, inclusion
    probability): the same share and interval, in time that grows with the distinct
    probabilities rather than the items (the dashboard reads these counts from a rollup)."""
    n = sum(counts.values())
    total = sum(k * weight_of(p) for (_, p), k in counts.items())
    if not n or total <= 0:
        return Estimate(None, None, None, n)
    share = sum(k * weight_of(p) for (hit, p), k in counts.items() if hit) / total
    variance = sum(
        k * (1 - p) * (weight_of(p) * (float(hit) - share) / total) ** 2
        for (hit, p), k in counts.items()
    )
    half = NormalDist().inv_cdf(0.5 + CONFIDENCE / 2) * math.sqrt(variance)
    return Estimate(share, max(0.0, share - half), min(1.0, share + half), n)


def ht_total(
    observations: Sequence[Observation], predicate: Callable[[Observation], bool]
) -> float:
    """Horvitz-Thompson estimate of how many candidates satisfy `predicate`."""
    return sum(o.weight for o in observations if predicate(o))


def score_bins(observations: Sequence[Observation], *, bins: int = SCORE_BINS) -> list[dict]:
    """The weighted approved-outcome rate in equal-width bins of the score over its
    observed range; bins with no reviewed item are left out."""
    scored = [o for o in observations if o.score is not None and math.isfinite(o.score)]
    if not scored:
        return []
    low = min(o.score for o in scored)
    high = max(o.score for o in scored)
    width = (high - low) / bins if high > low else 1.0
    grouped: dict[int, list[Observation]] = {}
    for o in scored:
        index = min(bins - 1, int((o.score - low) / width)) if high > low else 0
        grouped.setdefault(index, []).append(o)
    return [
        {
            "low": low + index * width,
            "high": low + (index + 1) * width if high > low else high,
            "approval": weighted_share([(o.weight, o.approved) for o in grouped[index]]),
        }
        for index in sorted(grouped)
    ]


def _f1(observations: Sequence[Observation], passes: Callable[[Observation], bool]) -> float:
    both = ht_total(observations, lambda o: passes(o) and o.approved)
    passed = ht_total(observations, passes)
    approved = ht_total(observations, lambda o: o.approved)
    if not both:
        return 0.0
    p, r = both / passed, both / approved
    return 2 * p * r / (p + r)


def threshold_effect(
    observations: Sequence[Observation], *, rule: ThresholdRule, threshold: float
) -> dict:
    """What `threshold` would do on the reviewed population: the estimated
    pass rate and the estimated number of approved answers it filters out."""
    scored = [o for o in observations if o.score is not None]
    total = ht_total(scored, lambda o: True)

    def passes(o: Observation) -> bool:
        return rule.passes(o.score, threshold)

    return {
        "threshold": threshold,
        "pass_rate": ht_total(scored, passes) / total if total else None,
        "approved_filtered": ht_total(scored, lambda o: o.approved and not passes(o)),
        "f1": _f1(scored, passes),
    }


def threshold_suggest(
    observations: Sequence[Observation], *, rule: ThresholdRule, current: float
) -> dict | None:
    """The threshold that maximises the weighted F1 of "filter passes" against
    "human approves" (precision and recall weigh the same: a filter should
    neither let bad answers through nor drop good ones), among the observed
    scores and the current value; ties go to the one nearest the current value.
    Returns the suggestion beside the current threshold's effect, the expected
    change in pass rate and in approved-but-filtered candidates, or None with
    too few reviewed items or nothing better than the current threshold."""
    scored = [o for o in observations if o.score is not None and math.isfinite(o.score)]
    if len(scored) < MIN_REVIEWED_FOR_SUGGESTION or not any(o.approved for o in scored):
        return None
    values = {current, *(o.score for o in scored)}
    if rule.integer:
        values = {float(math.ceil(v)) for v in values}
    now = threshold_effect(scored, rule=rule, threshold=current)
    best = max(
        (threshold_effect(scored, rule=rule, threshold=v) for v in values),
        key=lambda e: (round(e["f1"], 9), -abs(e["threshold"] - current)),
    )
    if best["threshold"] == current or round(best["f1"], 9) <= round(now["f1"], 9):
        return None
    return {
        "field": rule.field,
        "current": now,
        "suggested": best,
        "pass_rate_change": best["pass_rate"] - now["pass_rate"],
        "approved_filtered_change": best["approved_filtered"] - now["approved_filtered"],
        "n": len(scored),
    }


def filter_report(
    observations: Sequence[Observation], *, rule: ThresholdRule | None, current: float | None
) -> dict:
    """Everything the calibration page shows for one filter."""
    return {
        "n": len(observations),
        "precision": precision(observations),
        "recall": recall(observations),
        "agreement": agreement(observations),
        "bins": score_bins(observations),
        "suggestion": threshold_suggest(observations, rule=rule, current=current)
        if rule is not None and current is not None
        else None,
    }
