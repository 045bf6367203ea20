"""The gate's statistics: a paired test of candidate against current model on the same eval
pairs. Pure (lists of numbers in, a dataclass out); no Django, no torch.

The test is a paired bootstrap of the per-pair difference: for each eval pair the candidate's
score minus the current model's score on that same pair (a win is 1, a miss 0; for
`reward_margin` the margin itself), resampled with replacement a fixed number of times under a
fixed seed, so one set of scores always gives one verdict. Pairing removes the variance the
two models share (easy and hard pairs), which an unpaired comparison of two accuracies would
leave in; the percentile interval needs no normality assumption and copes with the {-1, 0, 1}
differences of accuracies. scipy.stats.bootstrap does the resampling.

The gate passes only when the lower bound of the interval clears the margin (and is above
zero, so a tie never passes), on at least `min_pairs` pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

CONFIDENCE = 0.95
RESAMPLES = 2000
SEED = 0
TEST_NAME = (
    f"paired bootstrap of the per-pair difference ({CONFIDENCE:.0%} percentile interval, "
    f"{RESAMPLES} resamples, seed {SEED})"
)
# Room for float noise in `lower bound >= margin`.
TOLERANCE = 1e-9

ERR_LENGTHS = "candidate and baseline must score the same pairs: {a} vs {b} scores"
ERR_NEGATIVE_MARGIN = "The gate margin must be zero or more, got {margin}."
ERR_MIN_PAIRS = "min_pairs must be at least 1, got {min_pairs}."
REFUSED_TOO_FEW = (
    "fails: {n} eval pairs scored, fewer than the {min_pairs} the gate needs "
    "(FLYWHEEL_GATE_MIN_EVAL_PAIRS)"
)


@dataclass(frozen=True)
class PairedResult:
    passed: bool
    n: int
    candidate: float
    baseline: float
    delta: float
    delta_ci: tuple[float, float] | None
    margin: float
    min_pairs: int
    metric: str = "score"
    test: str = TEST_NAME

    @property
    def detail(self) -> str:
        if self.delta_ci is None:
            return REFUSED_TOO_FEW.format(n=self.n, min_pairs=self.min_pairs)
        lo, hi = self.delta_ci
        verdict = "passes" if self.passed else "fails"
        return (
            f"{verdict}: {self.metric} {self.candidate:.4f} vs current {self.baseline:.4f}, "
            f"difference {self.delta:+.4f} on {self.n} pairs, "
            f"{CONFIDENCE:.0%} interval [{lo:+.4f}, {hi:+.4f}]; "
            f"the lower bound must be above 0 and at least {self.margin:.4f}"
        )


def _mean(values: Sequence[float]) -> float:
    return sum(values) / len(values) if values else 0.0


def bootstrap_interval(differences: Sequence[float]) -> tuple[float, float]:
    """The percentile interval of the mean of `differences`, deterministic."""
    import numpy as np
    from scipy.stats import bootstrap

    data = np.asarray(differences, dtype=float)
    if np.all(data == data[0]):
        # Every resample has the same mean; scipy would warn about degenerate data.
        return float(data[0]), float(data[0])
    result = bootstrap(
        (data,),
        np.mean,
        n_resamples=RESAMPLES,
        confidence_level=CONFIDENCE,
        method="percentile",
        rng=np.random.default_rng(SEED),
    )
    interval = result.confidence_interval
    return float(interval.low), float(interval.high)


def paired_gate(
    *,
    candidate: Sequence[float],
    baseline: Sequence[float],
    margin: float,
    min_pairs: int,
    metric: str = "score",
) -> PairedResult:
    """The verdict on per-pair scores of both models, index i being the same pair."""
    if len(candidate) != len(baseline):
        raise ValueError(ERR_LENGTHS.format(a=len(candidate), b=len(baseline)))
    if margin < 0:
        raise ValueError(ERR_NEGATIVE_MARGIN.format(margin=margin))
    if min_pairs < 1:
        raise ValueError(ERR_MIN_PAIRS.format(min_pairs=min_pairs))
    n = len(candidate)
    differences = [float(c) - float(b) for c, b in zip(candidate, baseline, strict=True)]
    common = {
        "n": n,
        "candidate": _mean(candidate),
        "baseline": _mean(baseline),
        "delta": _mean(differences),
        "margin": margin,
        "min_pairs": min_pairs,
        "metric": metric,
    }
    if n < min_pairs:
        return PairedResult(passed=False, delta_ci=None, **common)
    lo, hi = bootstrap_interval(differences)
    passed = lo > 0 and lo >= margin - TOLERANCE
    return PairedResult(passed=passed, delta_ci=(lo, hi), **common)
