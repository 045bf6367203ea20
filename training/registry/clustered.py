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

The roll-back (and the holdback monitor's alert) tests H0: no difference, so its lower bound
(`h0_low`) takes each arm's spread around the pooled rate of both arms when that is larger
than the spread around its own: a score-type variance, as in the pooled two-proportion test.
Around its own rate, an arm of few keys that happened to do well also looks precise; the
monitor, whose holdback is 2% of the keys, alerted on equal models in 6.5-12% of simulated
holdbacks at alpha 0.05, and 0.5-4.25% with the pooled spread.

Intention to treat: an interaction counts for the arm its key was assigned to, whichever
model answered it; the caller counts and shows the rest as non-compliance.

Non-inferiority margin: absolute (canary - control < m) or relative to the control's rate
(canary - (1 + m) control < 0, variance V1 + (1 + m)^2 V0).

Sample-ratio mismatch: the keys seen in each arm against the configured share, by the
anytime-valid sequential test for multinomial counts (M. Lindon, A. Malek, "Anytime-Valid
Inference For Multinomial Count Data", NeurIPS 2022): a Dirichlet (here Beta) mixture of the
split, centred on the share with concentration 100, over the likelihood of the share itself.
The pause is for good and the check runs at every look, so what must hold is the chance of
ever pausing a correct split: by Ville's inequality the mixture's Bayes factor reaches
1 / threshold with probability at most `threshold` however many looks are taken. Pearson's
chi-square at every look (Fabijan et al., KDD 2019, the check this replaces) keeps its
threshold per look only: at 0.001 it paused a correct split in 0.35-1.7% of simulated
experiments (tests/training/registry/test_decisions_srm_simulation.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from training.registry.sequential import confidence_sequence

METHOD = (
    "per-key ratio with delta-method variance (Deng, Knoblich & Lu 2018) inside the mSPRT "
    "(Johari, Pekelis & Walsh 2017); intention to treat by route key"
)
SRM_METHOD = "sequential Beta-binomial mixture of keys per arm, anytime-valid (Lindon & Malek 2022)"
# The mixture's concentration around the configured share: the default of the authors'
# implementation (savvi), tuned to the small mismatches a dropped share of keys makes.
SRM_CONCENTRATION = 100.0
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


def ratio_variance(*, keys, n, events, n_sq, events_sq, events_n, around=None):
    """(rate, delta-method variance of the rate); elementwise on arrays. An arm with no
    interactions has rate 0 and infinite variance. `around`: the spread around that rate
    instead of the arm's own (the pooled rate of both arms, what H0 says they share)."""
    keys, n = np.asarray(keys, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        rate = np.where(n > 0, events / np.maximum(n, 1), 0.0)
        centre = rate if around is None else around
        residual = np.maximum(events_sq - 2 * centre * events_n + centre * centre * n_sq, 0.0)
        clustered = np.where(
            keys > 1, residual * keys / (np.maximum(keys - 1, 1) * np.maximum(n, 1) ** 2), np.inf
        )
        # The old shrunk binomial variance, as a floor: a rate of 0 or 1 over few keys would
        # otherwise claim no variance at all.
        shrunk = (events + 0.5) / (n + 1) if around is None else around
        binomial = np.where(n > 0, shrunk * (1 - shrunk) / np.maximum(n, 1), np.inf)
    return rate, np.maximum(clustered, binomial)


@dataclass(frozen=True)
class ClusteredComparison:
    """canary minus control on a rate where higher is worse: `low`/`high`, the interval of
    the difference; `h0_low`, its lower bound with each arm's variance at the pooled rate when
    that is larger (roll back when above 0); `ni_high`, the upper bound of canary - (1 +
    relative) control (complete when below the absolute margin, 0 for a relative one)."""

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
    h0_low: float
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
    # The roll-back tests H0: no difference, so each arm's spread is also taken around the
    # rate both share under it; a small arm whose few keys did well must not look precise.
    pooled = (control["events"] + canary["events"]) / np.maximum(control["n"] + canary["n"], 1)
    _, w0 = ratio_variance(**control, around=pooled)
    _, w1 = ratio_variance(**canary, around=pooled)
    h0_low, _, _ = confidence_sequence(
        difference, np.maximum(v0, w0) + np.maximum(v1, w1), alpha=alpha, tau=tau
    )
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
        "h0_low": h0_low,
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


def decide_arrays(*, keys_control, keys_canary, n_control, n_canary, h0_low, ni_high,
                   min_sample: int, burn_in: int):  # fmt: skip
    """CONTINUE, COMPLETE or ROLL_BACK elementwise. Roll back once both arms have `burn_in`
    keys and the difference's bound under H0 (`h0_low`) lies above 0; complete once both
    arms have `min_sample` interactions and the non-inferiority bound lies below 0."""
    keys = np.minimum(keys_control, keys_canary)
    n = np.minimum(n_control, n_canary)
    roll_back = (keys >= burn_in) & (np.asarray(h0_low) > 0)
    complete = (n >= min_sample) & (keys >= burn_in) & (np.asarray(ni_high) < 0)
    return np.where(roll_back, ROLL_BACK, np.where(complete, COMPLETE, CONTINUE))


def decide(comparison: ClusteredComparison, *, min_sample: int, burn_in: int) -> str:
    code = decide_arrays(
        keys_control=comparison.keys_control,
        keys_canary=comparison.keys_canary,
        n_control=comparison.n_control,
        n_canary=comparison.n_canary,
        h0_low=comparison.h0_low,
        ni_high=comparison.ni_high,
        min_sample=min_sample,
        burn_in=burn_in,
    )
    return VERDICTS[int(code)]


def srm_p_value(*, keys_control, keys_canary, share: float):
    """The sequential test's p-value of the keys' split against `share` at this look,
    1 / Bayes factor capped at 1; elementwise. Below `threshold` at any look happens with
    probability at most `threshold` over the whole experiment when the split is right."""
    from scipy.special import betaln

    k0, k1 = np.asarray(keys_control, dtype=float), np.asarray(keys_canary, dtype=float)
    a1, a0 = SRM_CONCENTRATION * share, SRM_CONCENTRATION * (1 - share)
    log_bayes = (
        betaln(a1 + k1, a0 + k0) - betaln(a1, a0) - k1 * np.log(share) - k0 * np.log1p(-share)
    )
    p = np.exp(-np.maximum(log_bayes, 0.0))
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
            f"{self.share:.4f} (sequential p = {self.p_value:.2g} < {self.threshold}): the split "
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
