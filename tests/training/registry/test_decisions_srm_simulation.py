"""The sample-ratio check's false-pause rate over a whole experiment, by simulation of the
project's own check (training.registry.clustered.srm_p_value, the p-value
`sample_ratio` compares with FLYWHEEL_CANARY_SRM_P).

A pause is for good and the check runs at every look, so the rate that matters is the
chance that a correct split is ever paused. Keys arrive one by one, each on the canary
with probability `share` (what the route's keyed hash gives), and the check looks after
every 10-20 new keys: denser than the trigger job's look every 5 minutes at any traffic
worth a canary. 200 to 5,000 keys, shares 0.1 and 0.5, 2,000 seeded experiments per cell:
the Monte Carlo standard error is about 0.0007 at a rate of 0.001 and 0.005 at 0.05; the
bounds allow three of them.

Measured (2,000 experiments a cell, threshold 0.001): the sequential test paused a correct
split in 0 (200 and 1,000 keys) to 0.1% (5,000 keys) of them; Pearson's chi-square looked at
as often (the check it replaced) in 0.35-1.7%, up to 17 times its stated 0.001. At a
threshold of 0.05 (5,000 keys): sequential 2.5% and 2.3%, chi-square 44%.
"""

import math

import numpy as np
import pytest
from scipy.special import erfc
from scipy.stats import betabinom, binom

from training.registry import clustered

RUNS = 2000
CELLS = [(users, share) for users in (200, 1000, 5000) for share in (0.1, 0.5)]


def _mc(rate: float) -> float:
    return 3 * math.sqrt(rate * (1 - rate) / RUNS)


def _looks(seed, *, users, share, drop=0.0):
    """Keys per arm at each look of RUNS experiments: (control, canary), each (RUNS, looks).
    The keys between two looks split binomially, the same in law as drawing each key's arm.
    `drop`: the share of the canary's keys that never reach Flywheel."""
    rng = np.random.default_rng(seed)
    gaps = rng.integers(10, 21, size=users // 10 + 1)
    gaps = gaps[np.cumsum(gaps) <= users]
    canary = rng.binomial(np.broadcast_to(gaps, (RUNS, gaps.size)), share)
    kept = rng.binomial(canary, 1 - drop)
    return np.cumsum(gaps - canary, axis=1), np.cumsum(kept, axis=1)


def _paused(k0, k1, *, share, threshold) -> float:
    """Share of experiments the product's check pauses at some look."""
    p = clustered.srm_p_value(keys_control=k0, keys_canary=k1, share=share)
    return float((p < threshold).any(axis=1).mean())


def _chi_square_paused(k0, k1, *, share, threshold) -> float:
    total = k0 + k1
    e1, e0 = total * share, total * (1 - share)
    stat = (k1 - e1) ** 2 / e1 + (k0 - e0) ** 2 / e0
    # The chi-square survival function at one degree of freedom, written as erfc: scipy's
    # chi2.sf takes seconds over the 660,000 looks of a 5,000-key cell.
    return float((erfc(np.sqrt(stat / 2)) < threshold).any(axis=1).mean())


@pytest.mark.parametrize(("users", "share"), CELLS)
def test_a_correct_split_is_paused_at_most_the_threshold_over_all_looks(users, share):
    threshold = 0.001
    k0, k1 = _looks(users, users=users, share=share)

    paused = _paused(k0, k1, share=share, threshold=threshold)
    chi_square = _chi_square_paused(k0, k1, share=share, threshold=threshold)

    assert paused <= threshold + _mc(threshold), paused
    # The per-look chi-square it replaced, on the same keys and looks, fails the same claim
    # (200 keys, 14 looks: 1.35% at share 0.1, 0.35% at 0.5; more looks, more).
    assert chi_square > (threshold + _mc(threshold) if users >= 1000 else paused), chi_square


@pytest.mark.parametrize("share", [0.1, 0.5])
def test_the_bound_holds_at_a_threshold_loose_enough_to_measure(share):
    # At 0.001 the sequential test pauses too rarely for a rate to be read; at 0.05 it can.
    k0, k1 = _looks(7, users=5000, share=share)

    paused = _paused(k0, k1, share=share, threshold=0.05)

    # Measured: 0.0245 (share 0.1), 0.0225 (0.5); the chi-square looked at as often: 0.44.
    assert paused <= 0.05 + _mc(0.05), paused
    assert _chi_square_paused(k0, k1, share=share, threshold=0.05) > 0.2


@pytest.mark.parametrize(("users", "share", "drop"), [(1000, 0.5, 0.3), (5000, 0.1, 0.3)])
def test_a_share_of_the_canarys_keys_dropped_is_caught_in_most_experiments(users, share, drop):
    k0, k1 = _looks(users + 1, users=users, share=share, drop=drop)

    caught = _paused(k0, k1, share=share, threshold=0.001)

    # Measured: 0.858 (1,000 keys, share 0.5) and 0.996 (5,000 keys, share 0.1).
    assert caught > 0.8, caught


def test_the_p_value_is_the_inverse_of_the_beta_binomial_bayes_factor():
    # The mixture's marginal likelihood over the share's: the Bayes factor of Lindon & Malek
    # for two categories, from scipy's own distributions.
    for k0, k1, share in [(400, 200, 0.5), (120, 24, 0.5), (900, 100, 0.1), (950, 50, 0.1)]:
        a1, a0 = clustered.SRM_CONCENTRATION * share, clustered.SRM_CONCENTRATION * (1 - share)
        bayes = betabinom.pmf(k1, k0 + k1, a1, a0) / binom.pmf(k1, k0 + k1, share)

        p = clustered.srm_p_value(keys_control=k0, keys_canary=k1, share=share)

        assert p == pytest.approx(min(1.0, 1 / bayes), rel=1e-6)
    assert clustered.sample_ratio(keys_control=400, keys_canary=200, share=0.5,
                                  threshold=0.001).mismatch  # fmt: skip
    assert not clustered.sample_ratio(keys_control=900, keys_canary=100, share=0.1,
                                      threshold=0.001).mismatch  # fmt: skip
