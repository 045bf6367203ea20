"""The calibration estimators, as pure functions against hand-computed figures
(no database): Horvitz-Thompson weighting, Wilson intervals, score bins and
the suggested threshold."""

import math

import pytest

from review import calibration
from review.calibration import Observation as O

# Three items from the main sample (pi = 0.5, 0.5, 0.25: weights 2, 2, 4) and
# three from the audit sample at 2% (weight 50 each).
EXAMPLE = [
    O(weight=2, passed=True, approved=True),
    O(weight=2, passed=True, approved=False),
    O(weight=4, passed=True, approved=True),
    O(weight=50, passed=False, approved=True),
    O(weight=50, passed=False, approved=False),
    O(weight=50, passed=False, approved=False),
]


def test_weights_are_the_inverse_inclusion_probabilities():
    assert calibration.weight_of(0.02) == pytest.approx(50)
    assert calibration.weight_of(1.0) == 1.0
    for bad in (0, -0.1, 1.5):
        with pytest.raises(ValueError):
            calibration.weight_of(bad)


def test_precision_is_the_weighted_share_of_approved_among_passed():
    # (2 + 4) / (2 + 2 + 4) = 0.75; unweighted it would be 2 / 3.
    estimate = calibration.precision(EXAMPLE)
    assert estimate.value == pytest.approx(0.75)
    assert estimate.n == 3


def test_recall_weighs_the_audit_sample_back_to_all_rejections():
    # Approved: 2 + 4 passed, 50 rejected: 6 / 56. Unweighted it would be 2 / 3:
    # the audit item stands for 50 approved answers the filter dropped.
    estimate = calibration.recall(EXAMPLE)
    assert estimate.value == pytest.approx(6 / 56)
    assert estimate.n == 3


def test_agreement_counts_both_kinds_of_match():
    # Matches: 2 (pass, approve), 4 (pass, approve), 50 + 50 (fail, reject) of 158.
    estimate = calibration.agreement(EXAMPLE)
    assert estimate.value == pytest.approx(106 / 158)
    assert estimate.n == 6


def test_totals_are_sums_of_weights():
    assert calibration.ht_total(EXAMPLE, lambda o: o.passed) == 8
    assert calibration.ht_total(EXAMPLE, lambda o: True) == 158
    assert calibration.ht_total(EXAMPLE, lambda o: o.approved and not o.passed) == 50


def test_effective_size_is_kish():
    assert calibration.effective_size([1, 1, 1, 1]) == pytest.approx(4)
    # (2 + 2 + 4)^2 / (4 + 4 + 16) = 64 / 24
    assert calibration.effective_size([2, 2, 4]) == pytest.approx(64 / 24)


def test_wilson_interval_matches_the_textbook_values():
    # 5 of 10 at 95%: the published Wilson interval is (0.2366, 0.7634).
    low, high = calibration.wilson_interval(0.5, 10)
    assert (round(low, 4), round(high, 4)) == (0.2366, 0.7634)
    # 0 of 20 still has an upper bound above 0 (Wald would give 0 to 0).
    low, high = calibration.wilson_interval(0.0, 20)
    assert low == pytest.approx(0.0, abs=1e-12) and round(high, 4) == 0.1611
    assert calibration.wilson_interval(0.5, 0) == (None, None)


def test_the_interval_is_the_linearised_variance_of_the_ratio_under_the_design():
    # Precision: R = 6 / 8; w (y - R) / 8 = 0.0625, -0.1875, 0.125 for pi = .5, .5, .25;
    # V = .5 * 0.0625^2 + .5 * 0.1875^2 + .75 * 0.125^2 = 0.03125, half-width 1.96 * 0.1768.
    estimate = calibration.precision(EXAMPLE)
    assert estimate.low == pytest.approx(0.75 - 1.959964 * 0.03125**0.5, abs=1e-5)
    assert estimate.high == 1.0  # clipped


def test_no_reviewed_item_gives_no_figure():
    assert calibration.precision([]) == calibration.Estimate(None, None, None, 0)
    assert calibration.recall([O(weight=1, passed=True, approved=False)]).value is None


def test_score_bins_weight_the_approval_rate():
    observations = [
        O(weight=1, passed=True, approved=True, score=0.0),
        O(weight=3, passed=True, approved=False, score=0.05),
        O(weight=2, passed=False, approved=False, score=1.0),
        O(weight=2, passed=False, approved=True, score=None),  # no score: not binned
    ]
    bins = calibration.score_bins(observations, bins=10)
    assert [(round(b["low"], 2), round(b["high"], 2)) for b in bins] == [(0.0, 0.1), (0.9, 1.0)]
    assert bins[0]["approval"].value == pytest.approx(0.25)  # 1 / (1 + 3)
    assert bins[0]["approval"].n == 2
    assert bins[1]["approval"].value == 0.0
    assert calibration.score_bins([]) == []


# 10 approved answers with low toxicity that pass (main sample, weight 2),
# 5 approved answers at 0.3 that the threshold 0.1 rejects (audit, weight 50),
# 10 rejected answers at 0.8 (audit, weight 50). Total weight 770.
TOXICITY = (
    [O(weight=2, passed=True, approved=True, score=0.05)] * 10
    + [O(weight=50, passed=False, approved=True, score=0.3)] * 5
    + [O(weight=50, passed=False, approved=False, score=0.8)] * 10
)


def test_the_suggested_threshold_lets_through_what_humans_approve():
    rule = calibration.THRESHOLD_RULES["toxicity"]
    suggestion = calibration.threshold_suggest(TOXICITY, rule=rule, current=0.1)
    assert suggestion["field"] == "toxicity_threshold"
    assert suggestion["suggested"]["threshold"] == 0.3
    # Pass rate 20 / 770 -> 270 / 770; approved but filtered 250 -> 0.
    assert suggestion["current"]["pass_rate"] == pytest.approx(20 / 770)
    assert suggestion["suggested"]["pass_rate"] == pytest.approx(270 / 770)
    assert suggestion["pass_rate_change"] == pytest.approx(250 / 770)
    assert suggestion["current"]["approved_filtered"] == pytest.approx(250)
    assert suggestion["approved_filtered_change"] == pytest.approx(-250)
    assert suggestion["suggested"]["f1"] == pytest.approx(1.0)
    assert suggestion["n"] == 25


def test_no_suggestion_when_the_current_threshold_is_best_or_data_is_thin():
    rule = calibration.THRESHOLD_RULES["toxicity"]
    assert calibration.threshold_suggest(TOXICITY, rule=rule, current=0.3) is None
    assert calibration.threshold_suggest(TOXICITY[:19], rule=rule, current=0.1) is None


def test_integer_thresholds_stay_integers():
    rule = calibration.THRESHOLD_RULES["length"]
    observations = [O(weight=1, passed=True, approved=True, score=30.0)] * 10 + [
        O(weight=10, passed=False, approved=True, score=14.0)
    ] * 10
    suggestion = calibration.threshold_suggest(observations, rule=rule, current=20)
    assert suggestion["suggested"]["threshold"] == 14.0
    assert math.isclose(suggestion["suggested"]["pass_rate"], 1.0)
