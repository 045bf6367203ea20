"""The gate's paired test as pure functions (no database, no model): where it passes and
fails around its bounds, refusing small eval sets, and the same verdict every time."""

import pytest

from training.registry import paired
from training.registry.paired import paired_gate


def scores(wins: int, losses: int, ties_hit: int = 0, ties_miss: int = 0):
    """Per-pair hits of (candidate, baseline): `wins` pairs only the candidate gets right,
    `losses` only the baseline, and ties both or neither get right."""
    candidate = [1] * wins + [0] * losses + [1] * ties_hit + [0] * ties_miss
    baseline = [0] * wins + [1] * losses + [1] * ties_hit + [0] * ties_miss
    return candidate, baseline


def test_a_clear_improvement_on_enough_pairs_passes_with_its_interval():
    candidate, baseline = scores(wins=30, losses=5, ties_hit=15, ties_miss=10)

    result = paired_gate(candidate=candidate, baseline=baseline, margin=0.02, min_pairs=50)

    assert result.passed
    assert result.n == 60
    assert result.delta == pytest.approx(25 / 60)
    lo, hi = result.delta_ci
    assert 0.02 < lo < result.delta < hi
    assert result.method == paired.TANGO
    assert "Tango 1998" in result.test
    assert result.detail.startswith("passes: score 0.7500 vs 0.3333")


def test_a_tie_never_passes_even_with_a_zero_margin():
    candidate, baseline = scores(wins=0, losses=0, ties_hit=40, ties_miss=20)

    result = paired_gate(candidate=candidate, baseline=baseline, margin=0.0, min_pairs=50)

    assert (result.delta, result.passed) == (0.0, False)
    assert result.delta_ci[0] < 0 < result.delta_ci[1]


def test_a_positive_difference_whose_interval_reaches_below_zero_fails():
    # +3 net wins of 60: the point estimate is up, the evidence is not.
    candidate, baseline = scores(wins=10, losses=7, ties_hit=23, ties_miss=20)

    result = paired_gate(candidate=candidate, baseline=baseline, margin=0.0, min_pairs=50)

    assert result.delta > 0
    assert result.delta_ci[0] < 0
    assert not result.passed
    assert result.detail.startswith("fails:")


def test_the_margin_is_compared_with_the_lower_bound_not_the_difference():
    candidate, baseline = scores(wins=30, losses=5, ties_hit=15, ties_miss=10)
    lo, _ = paired_gate(candidate=candidate, baseline=baseline, margin=0.0, min_pairs=50).delta_ci

    at_bound = paired_gate(candidate=candidate, baseline=baseline, margin=lo, min_pairs=50)
    above = paired_gate(candidate=candidate, baseline=baseline, margin=lo + 0.001, min_pairs=50)
    below_difference = paired_gate(
        candidate=candidate, baseline=baseline, margin=(lo + 25 / 60) / 2, min_pairs=50
    )

    assert not at_bound.passed  # strictly above the margin, never equal
    assert paired_gate(
        candidate=candidate, baseline=baseline, margin=lo - 0.001, min_pairs=50
    ).passed
    assert not above.passed
    assert not below_difference.passed  # the difference clears it, the lower bound does not


def test_a_constant_improvement_fails_at_its_exact_size_and_passes_below_it():
    # reward_margin style: the baseline is a constant, the candidate's margin the same everywhere
    result = paired_gate(candidate=[0.3] * 50, baseline=[0.0] * 50, margin=0.3, min_pairs=50)
    below = paired_gate(candidate=[0.3] * 50, baseline=[0.0] * 50, margin=0.29, min_pairs=50)

    assert result.method == paired.STUDENT
    assert result.delta_ci == pytest.approx((0.3, 0.3))
    assert not result.passed
    assert below.passed


@pytest.mark.parametrize(("n", "passed"), [(49, False), (50, True)])
def test_too_small_eval_sets_are_refused_at_the_minimum(n, passed):
    result = paired_gate(candidate=[1] * n, baseline=[0] * n, margin=0.02, min_pairs=50)

    assert result.passed is passed
    if not passed:
        assert result.delta_ci is None
        assert result.detail == paired.REFUSED_TOO_FEW.format(n=49, min_pairs=50)
        assert "FLYWHEEL_GATE_MIN_EVAL_PAIRS" in result.detail


def test_the_verdict_and_interval_are_the_same_every_time():
    candidate, baseline = scores(wins=14, losses=6, ties_hit=20, ties_miss=20)

    first = paired_gate(candidate=candidate, baseline=baseline, margin=0.0, min_pairs=50)
    second = paired_gate(candidate=candidate, baseline=baseline, margin=0.0, min_pairs=50)

    assert first == second


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"candidate": [1, 0], "baseline": [1]}, "same pairs"),
        ({"candidate": [1], "baseline": [0], "margin": -0.1}, "zero or more"),
        ({"candidate": [1], "baseline": [0], "min_pairs": 0}, "at least 1"),
    ],
)
def test_bad_arguments_are_refused(kwargs, message):
    arguments = {"margin": 0.0, "min_pairs": 1, **kwargs}
    with pytest.raises(ValueError, match=message):
        paired_gate(**arguments)
