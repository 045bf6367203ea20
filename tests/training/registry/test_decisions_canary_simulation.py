"""The canary's error rates on traffic shaped like production: users (route keys) with their
own Beta-distributed bad-outcome rate (intra-user correlation 0.05, 0.09, 0.33), a skewed
number of interactions each (geometric, mean 8), 200 to 5,000 users, canary shares 0.1 and
0.5, and a look every 10-20 interactions. Every look is judged by the project's own decision
functions (training.registry.clustered.compare_arrays and decide_arrays, the mSPRT of
training.registry.sequential), vectorised over the looks of a run; the first non-continue verdict is
the decision.

Claims checked (alpha 0.05; Monte Carlo standard error sqrt(a (1 - a) / runs), about 0.011
at 400 runs, and the bounds allow two of them):
- equal arms: rolled back <= alpha;
- canary worse by exactly the margin: completed <= 5%;
- canary better: rolled back <= alpha;
- the old per-interaction analysis (binomial variance over pooled interactions) fails the
  equal-arms and the worse-by-the-margin claims on the same draws at correlation 0.33.
  Measured (400 runs): equal arms rolled back 0.1075 (500 users, share 0.5) and 0.115
  (1,000 users, share 0.1), per key 0 and 0; worse by the margin completed 0.150 (2,000
  users, share 0.5) and 0.1575 (2,000 users, share 0.1), per key 0.0225 and 0.030. At 0.05
  and 0.09, with 8 interactions a user on average, its errors stay under alpha (0.0125-0.045
  rolled back, 0.0325-0.0425 completed): the design effect is too small there to show.
"""

import math

import numpy as np
import pytest

from training.registry import clustered
from training.registry.clustered import ABSOLUTE, COMPLETE, RELATIVE, ROLL_BACK

pytestmark = pytest.mark.slow

ALPHA, TAU, MIN_SAMPLE, BURN_IN = 0.05, 0.05, 500, 30
CONTROL_RATE = 0.10
RUNS = 400
MC = 2 * math.sqrt(ALPHA * (1 - ALPHA) / RUNS)


def _run(rng, *, users, share, correlation, control_rate, canary_rate, margin, margin_kind,
         per_interaction=False, min_sample=MIN_SAMPLE, bound="h0_low"):  # fmt: skip
    """One experiment: the first verdict over all looks (0 continue, 1 complete, 2 roll back).
    `bound`: the lower bound the roll-back reads (`low`: the spread around each arm's own
    rate, as before the H0 spread)."""
    canary = rng.random(users) < share
    a0, b0 = clustered.beta_parameters(mean=control_rate, correlation=correlation)
    a1, b1 = clustered.beta_parameters(mean=canary_rate, correlation=correlation)
    rate = np.where(canary, rng.beta(a1, b1, users), rng.beta(a0, b0, users))
    counts = rng.geometric(1 / 8, users)
    user = rng.permutation(np.repeat(np.arange(users), counts))
    y = (rng.random(user.size) < rate[user]).astype(float)
    # Per interaction: how many interactions and events its user had before it.
    order = np.argsort(user, kind="stable")
    starts = np.concatenate([[0], np.cumsum(counts)[:-1]])
    prior_n = np.empty(user.size)
    prior_n[order] = np.arange(user.size) - np.repeat(starts, counts)
    y_sorted = y[order]
    cum = np.cumsum(y_sorted) - y_sorted
    prior_y = np.empty(user.size)
    prior_y[order] = cum - np.repeat(cum[starts], counts)
    increments = {
        "keys": (prior_n == 0).astype(float),
        "n": np.ones(user.size),
        "events": y,
        "n_sq": 2 * prior_n + 1,
        "events_sq": 2 * prior_y * y + y,
        "events_n": prior_y + y * (prior_n + 1),
    }
    looks = np.cumsum(rng.integers(10, 21, size=user.size // 10 + 1))
    looks = looks[looks <= user.size] - 1
    arm = canary[user]
    sums = {
        side: {k: np.cumsum(np.where(mask, v, 0.0))[looks] for k, v in increments.items()}
        for side, mask in (("control", ~arm), ("canary", arm))
    }
    if per_interaction:
        # The old analysis: every interaction an independent unit.
        for side in sums.values():
            side["keys"], side["n_sq"] = side["n"], side["n"]
            side["events_sq"], side["events_n"] = side["events"], side["events"]
    ok = (sums["control"]["n"] > 0) & (sums["canary"]["n"] > 0)
    out = clustered.compare_arrays(sums["control"], sums["canary"], alpha=ALPHA, tau=TAU,
                                   margin=margin, margin_kind=margin_kind)  # fmt: skip
    verdict = clustered.decide_arrays(
        keys_control=sums["control"]["keys"],
        keys_canary=sums["canary"]["keys"],
        n_control=sums["control"]["n"],
        n_canary=sums["canary"]["n"],
        h0_low=out[bound],
        ni_high=out["ni_high"],
        min_sample=min_sample,
        burn_in=BURN_IN,
    )
    verdict = np.where(ok, verdict, 0)
    decided = np.flatnonzero(verdict)
    return int(verdict[decided[0]]) if decided.size else 0


def _rates(seed, runs=RUNS, **kwargs):
    rng = np.random.default_rng(seed)
    verdicts = np.array([_run(rng, **kwargs) for _ in range(runs)])
    return float((verdicts == ROLL_BACK).mean()), float((verdicts == COMPLETE).mean())


# (users, share, intra-user correlation): every correlation at both shares for each claim,
# users from 200 to 5,000 (test_every_claim_covers_the_demanded_grid checks it).
EQUAL = [
    (500, 0.5, 0.33),
    (1000, 0.1, 0.33),
    (200, 0.5, 0.09),
    (2000, 0.1, 0.09),
    (1000, 0.5, 0.05),
    (5000, 0.1, 0.05),
]
# (users, share, correlation, margin, kind, canary rate): worse by exactly the margin.
WORSE = [
    (2000, 0.5, 0.33, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
    (2000, 0.1, 0.33, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
    (1000, 0.5, 0.09, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
    (3000, 0.1, 0.09, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
    (2000, 0.5, 0.05, 0.2, RELATIVE, CONTROL_RATE * 1.2),
    (2000, 0.1, 0.05, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
]
BETTER = [
    (1000, 0.5, 0.33),
    (2000, 0.1, 0.33),
    (500, 0.5, 0.09),
    (3000, 0.1, 0.09),
    (1000, 0.5, 0.05),
    (2000, 0.1, 0.05),
]


def test_every_claim_covers_the_demanded_grid():
    grid = {(share, correlation) for share in (0.1, 0.5) for correlation in (0.05, 0.09, 0.33)}
    for cells in (EQUAL, WORSE, BETTER):
        assert {(share, correlation) for _, share, correlation, *_ in cells} == grid
    users = {cell[0] for cells in (EQUAL, WORSE, BETTER) for cell in cells}
    assert (min(users), max(users)) == (200, 5000)


@pytest.mark.parametrize(("users", "share", "correlation"), EQUAL)
def test_equal_arms_are_rolled_back_at_most_alpha_of_the_time(users, share, correlation):
    rolled_back, _ = _rates(
        users, users=users, share=share, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=CONTROL_RATE, margin=0.02, margin_kind=ABSOLUTE,
    )  # fmt: skip

    assert rolled_back <= ALPHA + MC, rolled_back


@pytest.mark.parametrize(("users", "share", "correlation", "margin", "kind", "canary_rate"), WORSE)
def test_a_canary_worse_by_the_margin_is_completed_at_most_five_percent(
    users, share, correlation, margin, kind, canary_rate
):
    _, completed = _rates(
        users + 1, users=users, share=share, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=canary_rate, margin=margin, margin_kind=kind,
    )  # fmt: skip

    assert completed <= 0.05 + MC, completed


@pytest.mark.parametrize(("users", "share", "correlation"), BETTER)
def test_a_better_canary_is_rolled_back_at_most_alpha_and_often_completed(
    users, share, correlation
):
    rolled_back, completed = _rates(
        users + 2, users=users, share=share, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=0.09, margin=0.02, margin_kind=ABSOLUTE,
    )  # fmt: skip

    assert rolled_back <= ALPHA + MC, rolled_back
    assert completed > 4 * rolled_back  # the test still decides, and mostly the right way


@pytest.mark.parametrize(
    ("claim", "cell"),
    [("equal", EQUAL[0]), ("equal", EQUAL[1]), ("worse", WORSE[0]), ("worse", WORSE[1])],
)
def test_the_old_per_interaction_analysis_fails_the_same_test(claim, cell):
    # The same seed as the per-key test of the cell: the very same users and looks.
    users, share, correlation, *rest = cell
    margin, kind, canary_rate = rest or (0.02, ABSOLUTE, CONTROL_RATE)
    rolled_back, completed = _rates(
        users + (claim == "worse"), users=users, share=share, correlation=correlation,
        control_rate=CONTROL_RATE, canary_rate=canary_rate, margin=margin, margin_kind=kind,
        per_interaction=True, bound="low",
    )  # fmt: skip

    # Measured (400 runs): equal arms rolled back 0.1075 and 0.115 (per key: 0 and 0);
    # worse by the margin completed 0.150 and 0.1575 (per key: 0.0225 and 0.030).
    if claim == "equal":
        assert rolled_back > ALPHA + MC, rolled_back
    else:
        assert completed > 0.05 + MC, completed


@pytest.mark.parametrize(
    ("correlation", "bound"), [(0.33, "h0_low"), (0.05, "h0_low"), (0.33, "low")]
)
def test_the_holdback_monitor_alerts_on_an_equal_model_at_most_alpha(correlation, bound):
    # After completion 2% of the keys stay on the previous model (the control here) and the
    # monitor alerts when the current model is worse, at every look for as long as the holdback
    # lasts (it never completes). 2,000 users: 40 held-back keys. The spread around each
    # arm's own rate (bound "low") makes the few held-back keys that did well look precise.
    # Measured (400 runs, correlation 0.33 and 0.05): 0.0425 and 0.005 around the pooled rate;
    # 0.1225 and 0.065 around their own.
    rolled_back, _ = _rates(
        2007, users=2000, share=0.98, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=CONTROL_RATE, margin=0.02, margin_kind=ABSOLUTE, min_sample=10**12,
        bound=bound,
    )  # fmt: skip

    if bound == "h0_low":
        assert rolled_back <= ALPHA + MC, rolled_back
    else:
        assert rolled_back > ALPHA + MC, rolled_back
