"""The canary's statistics at the unit of randomisation, the route key. Pure (numbers in,
numbers out; numpy arrays accepted everywhere, so a simulation judges thousands of looks
with the very functions the background check calls).

A key is assigned to an arm once, and its interactions are correlated (one user finds the
model bad on all of them, another on none). Treating interactions as independent understates
the variance by the design effect 1 + (m - 1) rho: with 0.33 intra-user correlation the old
per-interaction test rolled back equal arms 22% of the time at alpha 0.05. Here each arm's
rate is the ratio of sums over its keys, sum(events) / sum(interactions), and its variance
is the delta-method variance of that ratio (A. Deng, J. Lu, J. Litz, "Trustworthy analysis of
online A/B tests: pitfalls, challenges and solutions", WSDM 2017; A. Deng, U. Knoblich, J. Lu,
"Applying the Delta Method in Metric Analytics", KDD 2018):

    V(r) = sum_i (y_i - r n_i)^2 * K / ((K - 1) * (sum_i n_i)^2)

over the K keys of the arm, floored at the binomial variance (a handful of keys can
understate it, never overstate the independent case by much). The estimate and its variance
go into the same always-valid mSPRT as before (training.registry.sequential.confidence_sequence;
Johari, Pekelis, Walsh 2017), which needs independent units: the keys are.

Intention to treat: an interaction counts for the arm its key was assigned to, whichever
model answered it; the caller counts and shows the rest as non-compliance.

Non-inferiority margin: absolute (canary - control < m) or relative to the control's rate
(canary - (1 + m) control < 0, variance V1 + (1 + m)^2 V0).

Sample-ratio mismatch: Pearson's chi-square goodness of fit of the keys seen in each arm
against the configured share, one degree of freedom (R. Fabijan, J. Gupchup, S. Gupta,
J. Omhover, W. Qin, L. Vermeer, P. Dmitriev, "Diagnosing Sample Ratio Mismatch in Online
Controlled Experiments", KDD 2019). A p-value below the threshold (0.001 by default: the
check runs at every look, so it must be strict) pauses automatic decisions.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from training.registry.sequential import confidence_sequence

METHOD = (
    "per-key ratio with delta-method variance (Deng, Knoblich & Lu 2018) inside the mSPRT "
    "(Johari, Pekelis & Walsh 2017); intention to treat by route key"
)
SRM_METHOD = "chi-square goodness of fit of keys per arm, 1 df (Fabijan et al. 2019)"
ABSOLUTE = "absolute"
RELATIVE = "relative"

CONTINUE, COMPLETE, ROLL_BACK = 0, 1, 2
VERDICTS = {CONTINUE: "continue", COMPLETE: "complete", ROLL_BACK: "roll_back"}


@dataclass(frozen=True)
class ArmSums:
    """Sufficient statistics of one arm over its keys: y events and n interactions per key."""

    keys: int
    n: int
    events: int
    n_sq: float
    events_sq: float
    events_n: float

    @classmethod
    def from_keys(cls, per_key: list[tuple[int, int]]) -> ArmSums:
        """From (events, interactions) per key."""
        return cls(
            keys=len(per_key),
            n=sum(n for _, n in per_key),
            events=sum(y for y, _ in per_key),
            n_sq=float(sum(n * n for _, n in per_key)),
            events_sq=float(sum(y * y for y, _ in per_key)),
            events_n=float(sum(y * n for y, n in per_key)),
        )


def ratio_variance(*, keys, n, events, n_sq, events_sq, events_n):
    """(rate, delta-method variance of the rate); elementwise on arrays. An arm with no
    interactions has rate 0 and infinite variance."""
    keys, n = np.asarray(keys, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, events / np.maximum(n, 1), 0.0)
        residual = np.maximum(events_sq - 2 * rate * events_n + rate * rate * n_sq, 0.0)
        clustered = np.where(
            keys > 1, residual * keys / (np.maximum(keys - 1, 1) * np.maximum(n, 1) ** 2), np.inf
        )
        # The old shrunk binomial variance, as a floor: a rate of 0 or 1 over few keys would
        # otherwise claim no variance at all.
        shrunk = (events + 0.5) / (n + 1)
        binomial = np.where(n > 0, shrunk * (1 - shrunk) / np.maximum(n, 1), np.inf)
    return rate, np.maximum(clustered, binomial)


@dataclass(frozen=True)
class ClusteredComparison:
    """canary minus control on a rate where higher is worse, with the two intervals the
    decisions read: `low`/`high` of the difference (roll back when low > 0) and
    `ni_high`, the upper bound of canary - (1 + relative) control (complete when below the
    absolute margin, 0 for a relative one)."""

    keys_control: int
    keys_canary: int
    n_control: int
    n_canary: int
    rate_control: float
    rate_canary: float
    difference: float
    low: float
    high: float
    log_statistic: float
    ni_estimate: float
    ni_high: float
    margin: float
    margin_kind: str
    alpha: float
    tau: float
    method: str = METHOD

    def as_dict(self) -> dict:
        return asdict(self)


def compare_arrays(control: dict, canary: dict, *, alpha: float, tau: float, margin: float,
                   margin_kind: str) -> dict:  # fmt: skip
    """The comparison elementwise: `control` and `canary` map ArmSums field names to arrays."""
    if margin_kind not in (ABSOLUTE, RELATIVE):
        raise ValueError(f"margin_kind must be absolute or relative, got {margin_kind!r}")
    p0, v0 = ratio_variance(**control)
    p1, v1 = ratio_variance(**canary)
    difference = p1 - p0
    low, high, log_stat = confidence_sequence(difference, v0 + v1, alpha=alpha, tau=tau)
    factor = 1 + margin if margin_kind == RELATIVE else 1.0
    bound = 0.0 if margin_kind == RELATIVE else margin
    ni_estimate = p1 - factor * p0 - bound
    _, ni_high, _ = confidence_sequence(
        ni_estimate, v1 + factor * factor * v0, alpha=alpha, tau=tau
    )
    return {
        "rate_control": p0,
        "rate_canary": p1,
        "difference": difference,
        "low": low,
        "high": high,
        "log_statistic": log_stat,
        # Below 0: the canary is within the margin.
        "ni_estimate": ni_estimate,
        "ni_high": ni_high,
    }


def compare(control: ArmSums, canary: ArmSums, *, alpha: float, tau: float, margin: float,
            margin_kind: str) -> ClusteredComparison:  # fmt: skip
    if control.n == 0 or canary.n == 0:
        raise ValueError("each arm needs at least one interaction")
    if not 0 < alpha < 1 or tau <= 0:
        raise ValueError("need 0 < alpha < 1 and tau > 0")
    out = compare_arrays(asdict(control), asdict(canary), alpha=alpha, tau=tau, margin=margin,
                         margin_kind=margin_kind)  # fmt: skip
    return ClusteredComparison(
        keys_control=control.keys,
        keys_canary=canary.keys,
        n_control=control.n,
        n_canary=canary.n,
        margin=margin,
        margin_kind=margin_kind,
        alpha=alpha,
        tau=tau,
        **{k: float(v) for k, v in out.items()},
    )


def decide_arrays(*, keys_control, keys_canary, n_control, n_canary, low, ni_high,
                  min_sample: int, burn_in: int):  # fmt: skip
    """CONTINUE, COMPLETE or ROLL_BACK elementwise. Roll back once both arms have `burn_in`
    keys and the difference's interval lies above 0; complete once both arms have
    `min_sample` interactions and the non-inferiority bound lies below 0."""
    keys = np.minimum(keys_control, keys_canary)
    n = np.minimum(n_control, n_canary)
    roll_back = (keys >= burn_in) & (np.asarray(low) > 0)
    complete = (n >= min_sample) & (keys >= burn_in) & (np.asarray(ni_high) < 0)
    return np.where(roll_back, ROLL_BACK, np.where(complete, COMPLETE, CONTINUE))


def decide(comparison: ClusteredComparison, *, min_sample: int, burn_in: int) -> str:
    code = decide_arrays(
        keys_control=comparison.keys_control,
        keys_canary=comparison.keys_canary,
        n_control=comparison.n_control,
        n_canary=comparison.n_canary,
        low=comparison.low,
        ni_high=comparison.ni_high,
        min_sample=min_sample,
        burn_in=burn_in,
    )
    return VERDICTS[int(code)]


def srm_p_value(*, keys_control, keys_canary, share: float):
    """Pearson chi-square p-value of the keys' split against `share`; elementwise."""
    from scipy.stats import chi2

    k0, k1 = np.asarray(keys_control, dtype=float), np.asarray(keys_canary, dtype=float)
    total = k0 + k1
    with np.errstate(divide="ignore", invalid="ignore"):
        e1, e0 = total * share, total * (1 - share)
        stat = np.where(total > 0, (k1 - e1) ** 2 / e1 + (k0 - e0) ** 2 / e0, 0.0)
    p = chi2.sf(stat, 1)
    return p if np.ndim(p) else float(p)


@dataclass(frozen=True)
class SampleRatio:
    keys_control: int
    keys_canary: int
    share: float
    observed_share: float | None
    p_value: float
    threshold: float
    mismatch: bool
    method: str = SRM_METHOD

    def as_dict(self) -> dict:
        return asdict(self)

    @property
    def reason(self) -> str:
        return (
            f"sample-ratio mismatch: {self.keys_canary} canary keys and {self.keys_control} "
            f"control keys, {self.observed_share:.4f} observed against the configured share "
            f"{self.share:.4f} (chi-square p = {self.p_value:.2g} < {self.threshold}): the split "
            "is not the randomised one, so automatic decisions are paused"
        )


def sample_ratio(*, keys_control: int, keys_canary: int, share: float,
                 threshold: float) -> SampleRatio:  # fmt: skip
    total = keys_control + keys_canary
    p = srm_p_value(keys_control=keys_control, keys_canary=keys_canary, share=share)
    return SampleRatio(
        keys_control=keys_control,
        keys_canary=keys_canary,
        share=share,
        observed_share=keys_canary / total if total else None,
        p_value=float(p),
        threshold=threshold,
        mismatch=bool(total and p < threshold),
    )


def beta_parameters(*, mean: float, correlation: float) -> tuple[float, float]:
    """Beta(a, b) with this mean and intra-key correlation 1 / (a + b + 1): the per-user
    rates the simulations draw (a user's outcomes are Bernoulli at their own rate)."""
    if not 0 < correlation < 1 or not 0 < mean < 1:
        raise ValueError("need 0 < mean < 1 and 0 < correlation < 1")
    total = 1 / correlation - 1
    return mean * total, (1 - mean) * total
