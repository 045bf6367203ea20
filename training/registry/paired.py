"""The gate's statistics: a one-sided test of candidate against current model on the same
eval pairs. Pure (lists of numbers in, a dataclass out); no Django, no torch.

H0: the candidate's advantage is at most the margin; the gate passes only when the one-sided
lower confidence bound of the advantage is strictly greater than the margin (and above 0),
on at least `min_pairs` pairs. The method follows the shape of the per-pair scores:

- both models scored 0/1 on each pair (`normalised_accuracy`): the score test for the
  difference of paired proportions with a non-inferiority/superiority margin, variance at
  the restricted maximum-likelihood estimate under H0 (T. Tango, "Equivalence test and
  confidence interval for the difference in proportions for the paired-sample design",
  Statistics in Medicine 17, 1998), with a continuity correction of one half;
- the candidate scored 0/1 against a fixed chance level (`implicit_reward_accuracy`, measured
  relative to the reference model): the exact one-sided Clopper-Pearson bound of a binomial
  proportion (Clopper & Pearson 1934), so the error rate holds at every n;
- real-valued scores (`reward_margin`): the one-sided Student t bound of the mean difference.

The percentile bootstrap this replaced passed 5-6.5% of candidates whose true advantage
equalled the margin at 50 pairs (nominal 2.5%), and passed "4 wins, 0 losses of 50" at
margin 0.02; `tests/training/registry/test_decisions_gate.py` shows both fixed.

Several candidates gated on the same eval pairs are several looks at one sample: the gate
spends its error across attempts (`attempt_alpha`), alpha_k = alpha * 6 / (pi^2 k^2), a
series whose sum is alpha, in the spirit of alpha-spending (Lan & DeMets 1983): however
many candidates are tried, the chance that any one passes wrongly stays at most alpha.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

ALPHA = 0.025  # one-sided
TANGO = "tango"
EXACT = "clopper_pearson"
STUDENT = "student_t"
METHOD_NAMES = {
    TANGO: "one-sided score test for paired proportions (Tango 1998)",
    EXACT: "one-sided exact binomial bound (Clopper-Pearson 1934)",
    STUDENT: "one-sided Student t bound of the mean paired difference",
}
# Kept for records written before the named methods.
TEST_NAME = METHOD_NAMES[TANGO]

ERR_LENGTHS = "candidate and baseline must score the same pairs: {a} vs {b} scores"
ERR_NEGATIVE_MARGIN = "The gate margin must be zero or more, got {margin}."
ERR_MIN_PAIRS = "min_pairs must be at least 1, got {min_pairs}."
ERR_ALPHA = "alpha must be in (0, 0.5), got {alpha}."
ERR_ATTEMPT = "attempt must be at least 1, got {attempt}."
REFUSED_TOO_FEW = (
    "fails: {n} eval pairs scored, fewer than the {min_pairs} the gate needs "
    "(FLYWHEEL_GATE_MIN_EVAL_PAIRS)"
)


def attempt_alpha(*, alpha: float, attempt: int) -> float:
    """The one-sided error the `attempt`-th candidate on the same eval pairs may spend."""
    if attempt < 1:
        raise ValueError(ERR_ATTEMPT.format(attempt=attempt))
    return alpha * 6 / (math.pi**2 * attempt**2)


@dataclass(frozen=True)
class PairedResult:
    passed: bool
    n: int
    candidate: float
    baseline: float
    delta: float
    # The lower bound at 1 - alpha and the upper bound at 1 - alpha, one-sided each.
    delta_ci: tuple[float, float] | None
    margin: float
    min_pairs: int
    metric: str = "score"
    method: str = TANGO
    alpha: float = ALPHA

    @property
    def test(self) -> str:
        return f"{METHOD_NAMES[self.method]}, one-sided alpha {self.alpha:.4g}"

    @property
    def detail(self) -> str:
        if self.delta_ci is None:
            return REFUSED_TOO_FEW.format(n=self.n, min_pairs=self.min_pairs)
        lo, hi = self.delta_ci
        verdict = "passes" if self.passed else "fails"
        return (
            f"{verdict}: {self.metric} {self.candidate:.4f} vs {self.baseline:.4f}, "
            f"difference {self.delta:+.4f} on {self.n} pairs, "
            f"{1 - 2 * self.alpha:.4g} interval [{lo:+.4f}, {hi:+.4f}] ({self.test}); "
            f"the lower bound must be above 0 and strictly above {self.margin:.4f}"
        )


def _mean(values: Sequence[float]) -> float:
    # fsum: a constant score must not creep above itself by rounding and clear its own margin.
    return math.fsum(values) / len(values) if values else 0.0


def tango_z(*, wins: int, losses: int, n: int, delta: float) -> float:
    """Tango's score statistic for H0: p(win) - p(loss) = delta; large values reject toward
    a larger difference. Works on numpy arrays of counts as well as on ints."""
    import numpy as np

    wins, losses, n = np.asarray(wins, float), np.asarray(losses, float), np.asarray(n, float)
    # Restricted MLE of p(loss) under H0, the root of 2n q^2 - B q - C = 0.
    b = wins * (1 - delta) + losses * (1 - 3 * delta) - 2 * delta * (n - wins - losses)
    c = losses * delta * (1 - delta)
    q = (b + np.sqrt(np.maximum(b * b + 8 * n * c, 0.0))) / (4 * n)
    variance = n * (2 * q + delta - delta * delta)
    # Yates-style continuity correction of one half toward 0: without it the test passed
    # up to 3.3% at nominal 2.5% when discordant pairs are rare
    # (tests/training/registry/test_decisions_gate.py).
    raw = wins - losses - n * delta
    numerator = np.sign(raw) * np.maximum(np.abs(raw) - 0.5, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 1e-15, numerator / np.sqrt(np.maximum(variance, 1e-300)), 0.0)
    z = np.where((variance <= 1e-15) & (numerator > 0), np.inf, z)
    z = np.where((variance <= 1e-15) & (numerator < 0), -np.inf, z)
    return z if z.ndim else float(z)


def _tango_bounds(wins: int, losses: int, n: int, alpha: float) -> tuple[float, float]:
    from scipy.stats import norm

    critical = float(norm.ppf(1 - alpha))
    estimate = (wins - losses) / n

    def root(lo: float, hi: float, side: float) -> float:
        # z(delta) falls as delta rises: bisect where z = side * critical.
        for _ in range(80):
            mid = (lo + hi) / 2
            if tango_z(wins=wins, losses=losses, n=n, delta=mid) > side * critical:
                lo = mid
            else:
                hi = mid
        return (lo + hi) / 2

    return root(-1.0, estimate, 1.0), root(estimate, 1.0, -1.0)


def _exact_bounds(hits: int, n: int, alpha: float) -> tuple[float, float]:
    from scipy.stats import beta

    lo = 0.0 if hits == 0 else float(beta.ppf(alpha, hits, n - hits + 1))
    hi = 1.0 if hits == n else float(beta.ppf(1 - alpha, hits + 1, n - hits))
    return lo, hi


def _student_bounds(differences: Sequence[float], alpha: float) -> tuple[float, float]:
    import numpy as np
    from scipy.stats import t

    data = np.asarray(differences, dtype=float)
    mean = _mean(differences)
    if len(data) < 2:
        return -math.inf, math.inf
    half = float(t.ppf(1 - alpha, len(data) - 1)) * float(data.std(ddof=1)) / math.sqrt(len(data))
    return mean - half, mean + half


def _is_binary(values: Sequence[float]) -> bool:
    return all(v in (0, 1) for v in values)


def method_for(candidate: Sequence[float], baseline: Sequence[float]) -> str:
    """The method the shape of the scores calls for (see the module docstring)."""
    if _is_binary(candidate) and _is_binary(baseline):
        return TANGO
    if _is_binary(candidate) and len(set(baseline)) <= 1:
        return EXACT
    return STUDENT


def paired_gate(
    *,
    candidate: Sequence[float],
    baseline: Sequence[float],
    margin: float,
    min_pairs: int,
    metric: str = "score",
    alpha: float = ALPHA,
) -> PairedResult:
    """The verdict on per-pair scores of both models, index i being the same pair."""
    if len(candidate) != len(baseline):
        raise ValueError(ERR_LENGTHS.format(a=len(candidate), b=len(baseline)))
    if margin < 0:
        raise ValueError(ERR_NEGATIVE_MARGIN.format(margin=margin))
    if min_pairs < 1:
        raise ValueError(ERR_MIN_PAIRS.format(min_pairs=min_pairs))
    if not 0 < alpha < 0.5:
        raise ValueError(ERR_ALPHA.format(alpha=alpha))
    n = len(candidate)
    differences = [float(c) - float(b) for c, b in zip(candidate, baseline, strict=True)]
    method = method_for(candidate, baseline)
    common = {
        "n": n,
        "candidate": _mean(candidate),
        "baseline": _mean(baseline),
        "delta": _mean(differences),
        "margin": margin,
        "min_pairs": min_pairs,
        "metric": metric,
        "method": method,
        "alpha": alpha,
    }
    if n < min_pairs or n == 0:
        return PairedResult(passed=False, delta_ci=None, **common)
    if method == TANGO:
        wins = sum(1 for d in differences if d > 0)
        losses = sum(1 for d in differences if d < 0)
        lo, hi = _tango_bounds(wins, losses, n, alpha)
    elif method == EXACT:
        level = float(baseline[0]) if baseline else 0.0
        lo, hi = _exact_bounds(sum(1 for c in candidate if c == 1), n, alpha)
        lo, hi = lo - level, hi - level
    else:
        lo, hi = _student_bounds(differences, alpha)
    passed = lo > 0 and lo > margin
    return PairedResult(passed=passed, delta_ci=(lo, hi), **common)
