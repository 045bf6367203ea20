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
  equal-arms claim on the same traffic. Measured (400 runs, correlation 0.33): equal arms
  rolled back 0.123 (500 users, share 0.5) and 0.095 (1,000 users, share 0.1); worse by the
  margin completed 0.138 and 0.145. Per key on the same draws: 0.003 and 0.0; 0.003 and 0.035.
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
         per_interaction=False):  # fmt: skip
    """One experiment: the first verdict over all looks (0 continue, 1 complete, 2 roll back)."""
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
        low=out["low"],
        ni_high=out["ni_high"],
        min_sample=MIN_SAMPLE,
        burn_in=BURN_IN,
    )
    verdict = np.where(ok, verdict, 0)
    decided = np.flatnonzero(verdict)
    return int(verdict[decided[0]]) if decided.size else 0


def _rates(seed, runs=RUNS, **kwargs):
    rng = np.random.default_rng(seed)
    verdicts = np.array([_run(rng, **kwargs) for _ in range(runs)])
    return float((verdicts == ROLL_BACK).mean()), float((verdicts == COMPLETE).mean())


SHAPES = [
    # (users, share, intra-user correlation)
    (500, 0.5, 0.33),
    (1000, 0.1, 0.33),
    (200, 0.5, 0.09),
    (5000, 0.1, 0.05),
]


@pytest.mark.parametrize(("users", "share", "correlation"), SHAPES)
def test_equal_arms_are_rolled_back_at_most_alpha_of_the_time(users, share, correlation):
    rolled_back, _ = _rates(
        users, users=users, share=share, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=CONTROL_RATE, margin=0.02, margin_kind=ABSOLUTE,
    )  # fmt: skip

    assert rolled_back <= ALPHA + MC, rolled_back


@pytest.mark.parametrize(
    ("users", "share", "correlation", "margin", "kind", "canary_rate"),
    [
        (2000, 0.5, 0.33, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
        (3000, 0.1, 0.09, 0.02, ABSOLUTE, CONTROL_RATE + 0.02),
        (2000, 0.5, 0.05, 0.2, RELATIVE, CONTROL_RATE * 1.2),
    ],
)
def test_a_canary_worse_by_the_margin_is_completed_at_most_five_percent(
    users, share, correlation, margin, kind, canary_rate
):
    _, completed = _rates(
        users + 1, users=users, share=share, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=canary_rate, margin=margin, margin_kind=kind,
    )  # fmt: skip

    assert completed <= 0.05 + MC, completed


@pytest.mark.parametrize(("users", "share", "correlation"), [(1000, 0.5, 0.33), (3000, 0.1, 0.09)])
def test_a_better_canary_is_rolled_back_at_most_alpha_and_often_completed(
    users, share, correlation
):
    rolled_back, completed = _rates(
        users + 2, users=users, share=share, correlation=correlation, control_rate=CONTROL_RATE,
        canary_rate=0.09, margin=0.02, margin_kind=ABSOLUTE,
    )  # fmt: skip

    assert rolled_back <= ALPHA + MC, rolled_back
    assert completed > 4 * rolled_back  # the test still decides, and mostly the right way


def test_the_old_per_interaction_analysis_fails_the_same_test():
    rolled_back, _ = _rates(
        3, users=500, share=0.5, correlation=0.33, control_rate=CONTROL_RATE,
        canary_rate=CONTROL_RATE, margin=0.02, margin_kind=ABSOLUTE, per_interaction=True,
    )  # fmt: skip

    # Measured: 0.1225 (400 runs, seed 3); the per-key analysis of the same draws: 0.0025.
    assert rolled_back > ALPHA + MC, rolled_back
