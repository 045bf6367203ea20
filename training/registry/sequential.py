"""Statistics of a canary experiment, as pure functions (no database, no settings).

The sequential test is the mixture sequential probability ratio test (mSPRT) with a normal
mixing distribution, for the difference of two proportions, and the always-valid
confidence interval (confidence sequence) it implies:

    R. Johari, L. Pekelis, D. Walsh, "Peeking at A/B Tests: Why it matters, and what to do
    about it", KDD 2017; and R. Johari, P. Koomen, L. Pekelis, D. Walsh, "Always Valid
    Inference: Continuous Monitoring of A/B Tests", Operations Research 70(3), 2022
    (arXiv:1512.04922).

With theta = p_canary - p_control, its estimate d and the estimate's variance V, the mSPRT
statistic for H0: theta = theta0 with mixture N(theta0, tau^2) is

    Lambda = sqrt(V / (V + tau^2)) * exp(tau^2 (d - theta0)^2 / (2 V (V + tau^2)))

and H0 is rejected at level alpha once Lambda >= 1/alpha. Inverting it gives the interval
d +- sqrt(V (V + tau^2) / tau^2 * (2 log(1/alpha) + log((V + tau^2) / V))), which covers
theta at every sample size at once with probability >= 1 - alpha: the page may be looked at,
and the decision taken, after every new interaction without inflating the error rate (a
fixed-sample z-test checked continuously would roll back a good model far more often than
alpha). The variance is the plug-in binomial one, so validity is asymptotic; a burn-in of a
few dozen interactions per arm keeps the first looks honest.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from statistics import NormalDist

METHOD = "mSPRT, normal mixture (Johari, Pekelis, Walsh 2017: Always Valid Inference)"


def _check(successes: int, n: int) -> None:
    if n < 0 or successes < 0 or successes > n:
        raise ValueError(f"need 0 <= successes <= n, got {successes}/{n}")


def wilson_interval(successes: int, n: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (fixed sample; for display beside each rate)."""
    _check(successes, n)
    if n == 0:
        return (0.0, 1.0)
    z = NormalDist().inv_cdf(0.5 + confidence / 2)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def mean_interval(
    total: float, total_sq: float, n: int, *, confidence: float = 0.95
) -> tuple[float, float] | None:
    """Normal interval of a mean from its sums (ratings); None below two values."""
    if n < 2:
        return None
    mean = total / n
    var = max(0.0, (total_sq - n * mean * mean) / (n - 1))
    half = NormalDist().inv_cdf(0.5 + confidence / 2) * math.sqrt(var / n)
    return (mean - half, mean + half)


def _variance(successes: int, n: int) -> float:
    # Shrunk by half a success and half a failure: a rate of exactly 0 or 1 in a small
    # sample would otherwise claim zero variance and an interval of zero width.
    p = (successes + 0.5) / (n + 1)
    return p * (1 - p) / n


def confidence_sequence(estimate, variance, *, alpha: float, tau: float, null=0.0):
    """(low, high, log Lambda at `null`) of the mSPRT above for an estimate with a given
    variance; works elementwise on numpy arrays (the simulations look at every look at once)."""
    import numpy as np

    v, t2 = np.asarray(variance, dtype=float), tau * tau
    half = np.sqrt(v * (v + t2) / t2 * (2 * math.log(1 / alpha) + np.log((v + t2) / v)))
    shift = np.asarray(estimate, dtype=float) - null
    log_stat = 0.5 * np.log(v / (v + t2)) + t2 * shift * shift / (2 * v * (v + t2))
    return estimate - half, estimate + half, log_stat


@dataclass(frozen=True)
class Comparison:
    """canary minus control, on a rate where higher is worse."""

    n_control: int
    n_canary: int
    rate_control: float
    rate_canary: float
    difference: float
    low: float
    high: float
    # log Lambda for H0: difference = 0 (>= log(1/alpha) rejects).
    log_statistic: float
    alpha: float
    tau: float
    method: str = METHOD

    def as_dict(self) -> dict:
        return asdict(self)


def always_valid_difference(
    *,
    control: tuple[int, int],
    canary: tuple[int, int],
    alpha: float,
    tau: float,
) -> Comparison:
    """The mSPRT confidence sequence for p_canary - p_control at level alpha.

    `control` and `canary` are (events, n). Both arms need at least one observation.
    """
    (x0, n0), (x1, n1) = control, canary
    _check(x0, n0)
    _check(x1, n1)
    if n0 == 0 or n1 == 0:
        raise ValueError("each arm needs at least one observation")
    if not 0 < alpha < 1 or tau <= 0:
        raise ValueError("need 0 < alpha < 1 and tau > 0")
    p0, p1 = x0 / n0, x1 / n1
    d = p1 - p0
    v = _variance(x0, n0) + _variance(x1, n1)
    low, high, log_stat = confidence_sequence(d, v, alpha=alpha, tau=tau)
    return Comparison(
        n_control=n0,
        n_canary=n1,
        rate_control=p0,
        rate_canary=p1,
        difference=d,
        low=float(low),
        high=float(high),
        log_statistic=float(log_stat),
        alpha=alpha,
        tau=tau,
    )


class Verdict:
    CONTINUE = "continue"
    COMPLETE = "complete"
    ROLL_BACK = "roll_back"


def decide(comparison: Comparison, *, min_sample: int, margin: float, burn_in: int) -> str:
    """roll_back as soon as the canary is worse with confidence 1 - alpha (the interval lies
    above 0) once both arms passed the burn-in; complete once both arms have min_sample and
    the canary is not worse beyond `margin` (the interval lies below margin); else continue."""
    n = min(comparison.n_control, comparison.n_canary)
    if n >= burn_in and comparison.low > 0:
        return Verdict.ROLL_BACK
    if n >= min_sample and comparison.high < margin:
        return Verdict.COMPLETE
    return Verdict.CONTINUE
