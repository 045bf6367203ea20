"""The canary's statistics (training.registry.sequential), with no database: the intervals, the
decision rule, and the error rates of the sequential test by simulation."""

import math

import numpy as np
import pytest

from training.registry import sequential
from training.registry.sequential import Verdict, always_valid_difference, decide, wilson_interval

ALPHA = 0.05
TAU = 0.05


def test_wilson_interval_matches_the_textbook_value():
    low, high = wilson_interval(10, 100, confidence=0.95)
    assert (round(low, 4), round(high, 4)) == (0.0552, 0.1744)
    assert wilson_interval(0, 0) == (0.0, 1.0)
    with pytest.raises(ValueError, match="successes"):
        wilson_interval(5, 3)


def test_mean_interval_needs_two_values_and_centres_on_the_mean():
    assert sequential.mean_interval(4.0, 16.0, 1) is None
    low, high = sequential.mean_interval(3 + 5, 9 + 25, 2)
    assert low < 4 < high
    assert math.isclose((low + high) / 2, 4.0)


def test_the_always_valid_interval_is_wider_than_a_fixed_sample_one_and_shrinks_with_n():
    small = always_valid_difference(control=(20, 200), canary=(30, 200), alpha=ALPHA, tau=TAU)
    big = always_valid_difference(control=(200, 2000), canary=(300, 2000), alpha=ALPHA, tau=TAU)
    assert small.low < small.difference < small.high
    assert (big.high - big.low) < (small.high - small.low)
    z_half = 1.96 * math.sqrt(0.1 * 0.9 / 200 + 0.15 * 0.85 / 200)
    assert (small.high - small.low) / 2 > z_half
    # The statistic crosses 1/alpha exactly when the interval leaves 0.
    assert (big.log_statistic >= math.log(1 / ALPHA)) == (big.low > 0)
    assert big.as_dict()["method"].startswith("mSPRT")


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="each arm"):
        always_valid_difference(control=(0, 0), canary=(1, 2), alpha=ALPHA, tau=TAU)
    with pytest.raises(ValueError, match="alpha"):
        always_valid_difference(control=(1, 2), canary=(1, 2), alpha=1.5, tau=TAU)


def test_a_clearly_worse_canary_is_rolled_back_and_an_equal_one_completes():
    worse = always_valid_difference(control=(50, 500), canary=(150, 500), alpha=ALPHA, tau=TAU)
    assert decide(worse, min_sample=1000, margin=0.02, burn_in=30) == Verdict.ROLL_BACK
    equal = always_valid_difference(control=(500, 5000), canary=(500, 5000), alpha=ALPHA, tau=TAU)
    assert decide(equal, min_sample=1000, margin=0.05, burn_in=30) == Verdict.COMPLETE
    # Not before the minimum sample, nor inside the burn-in.
    assert decide(equal, min_sample=10_000, margin=0.05, burn_in=30) == Verdict.CONTINUE
    assert decide(worse, min_sample=1000, margin=0.02, burn_in=1000) == Verdict.CONTINUE


def _simulate(*, rng, p_control, p_canary, looks, batch, burn_in, min_sample, margin):
    """One experiment looked at after every batch per arm; the first decision stands."""
    x0 = rng.binomial(batch, p_control, size=looks).cumsum()
    x1 = rng.binomial(batch, p_canary, size=looks).cumsum()
    for look in range(looks):
        n = batch * (look + 1)
        comparison = always_valid_difference(
            control=(int(x0[look]), n), canary=(int(x1[look]), n), alpha=ALPHA, tau=TAU
        )
        verdict = decide(comparison, min_sample=min_sample, margin=margin, burn_in=burn_in)
        if verdict != Verdict.CONTINUE:
            return verdict
    return Verdict.CONTINUE


@pytest.mark.slow
@pytest.mark.parametrize("p", [0.05, 0.2])
def test_equal_arms_are_rolled_back_at_most_alpha_of_the_time_under_continuous_looks(p):
    """1000 seeded experiments, each looked at 100 times (every 20 interactions per arm, up
    to 2000): the false rollback rate stays under alpha. A fixed-sample z-test looked at as
    often would be far above it (checked below on the same data)."""
    rng = np.random.default_rng(20261130)
    runs, looks, batch = 1000, 100, 20
    rollbacks = 0
    naive = 0
    for _ in range(runs):
        verdict = _simulate(
            rng=rng, p_control=p, p_canary=p, looks=looks, batch=batch, burn_in=30,
            min_sample=10**9, margin=0.0,
        )  # fmt: skip
        rollbacks += verdict == Verdict.ROLL_BACK
    # The same many looks with a plain z-test: the peeking problem the mSPRT solves.
    for _ in range(200):
        x0 = rng.binomial(batch, p, size=looks).cumsum()
        x1 = rng.binomial(batch, p, size=looks).cumsum()
        n = batch * np.arange(1, looks + 1)
        p0, p1 = x0 / n, x1 / n
        se = np.sqrt(np.maximum(p0 * (1 - p0) + p1 * (1 - p1), 1e-12) / n)
        naive += bool(np.any((p1 - p0) / se > 1.96))
    rate = rollbacks / runs
    print(f"\n[mSPRT] p={p}: false rollback rate {rate:.3f} (alpha {ALPHA}); "
          f"naive z-test peeking {naive / 200:.3f}")  # fmt: skip
    assert rate <= ALPHA
    assert naive / 200 > rate


def test_a_worse_canary_is_caught_in_most_simulated_experiments():
    rng = np.random.default_rng(7)
    caught = sum(
        _simulate(
            rng=rng, p_control=0.1, p_canary=0.2, looks=50, batch=20, burn_in=30,
            min_sample=10**9, margin=0.0,
        ) == Verdict.ROLL_BACK
        for _ in range(200)
    )  # fmt: skip
    assert caught / 200 >= 0.9


def test_equal_arms_complete_most_of_the_time_with_a_realistic_margin():
    rng = np.random.default_rng(11)
    verdicts = [
        _simulate(
            rng=rng, p_control=0.1, p_canary=0.1, looks=100, batch=50, burn_in=30,
            min_sample=500, margin=0.05,
        )
        for _ in range(200)
    ]  # fmt: skip
    assert verdicts.count(Verdict.COMPLETE) / 200 >= 0.9
    assert verdicts.count(Verdict.ROLL_BACK) / 200 <= ALPHA
