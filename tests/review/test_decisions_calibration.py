"""Calibration's intervals on a simulated re-curation, judged by the project's own estimators
(review.calibration.precision, recall, agreement).

A finite population of candidates in two design strata, each with a score and a human
verdict whose approval rate rises with the score. The first policy passes scores >= 0.4; the
re-curation loosens the filter to 0.25 or tightens it to 0.6. Every candidate keeps its own
two keyed uniforms (main sample, audit), as curation.sampling draws them, so a policy's
design is: passed and u_main < the stratum's rate, or failed and u_audit < the audit rate.
Reviewers judge every item either policy drew. The estimate for the latest policy uses the
items of its own draw, its verdicts and its probabilities (what SampleDraw records); the
truth is the population's precision, recall and agreement under that policy.

Claim: the 95% intervals cover the truth in at least 93% of seeded runs. The old pairing
(the latest verdicts with the first draw's probability, over every reviewed item) is
reported beside it and falls short.
"""

import numpy as np
import pytest

from review import calibration
from review.calibration import Observation

N = 20_000
RUNS = 400
MAIN_RATE = {0: 0.03, 1: 0.08}
AUDIT_RATE = 0.02
FIRST_THRESHOLD = 0.4


def _population(rng):
    stratum = (rng.random(N) < 0.3).astype(int)
    score = rng.random(N)
    approved = rng.random(N) < 0.15 + 0.7 * score + 0.05 * stratum
    return stratum, score, approved, rng.random(N), rng.random(N)


def _design(stratum, score, u_main, u_audit, threshold):
    passed = score >= threshold
    rate = np.where(stratum == 1, MAIN_RATE[1], MAIN_RATE[0])
    drawn = np.where(passed, u_main < rate, u_audit < AUDIT_RATE)
    probability = np.where(passed, rate, AUDIT_RATE)
    return passed, drawn, probability


def _observations(indices, passed, approved, probability):
    return [
        Observation(
            weight=1 / probability[i],
            passed=bool(passed[i]),
            approved=bool(approved[i]),
        )
        for i in indices
    ]


def _coverage(second_threshold, seed):
    rng = np.random.default_rng(seed)
    hits = {"precision": [], "recall": [], "agreement": []}
    old_hits = {"precision": [], "recall": [], "agreement": []}
    for _ in range(RUNS):
        stratum, score, approved, u_main, u_audit = _population(rng)
        _, drawn_1, probability_1 = _design(stratum, score, u_main, u_audit, FIRST_THRESHOLD)
        passed, drawn_2, probability_2 = _design(stratum, score, u_main, u_audit, second_threshold)
        truth = {
            "precision": approved[passed].mean(),
            "recall": passed[approved].mean(),
            "agreement": (passed == approved).mean(),
        }
        new = _observations(np.flatnonzero(drawn_2), passed, approved, probability_2)
        reviewed = np.flatnonzero(drawn_1 | drawn_2)
        first_probability = np.where(drawn_1, probability_1, probability_2)
        old = _observations(reviewed, passed, approved, first_probability)
        for name in hits:
            estimate = getattr(calibration, name)(new)
            hits[name].append(estimate.low <= truth[name] <= estimate.high)
            estimate = getattr(calibration, name)(old)
            old_hits[name].append(estimate.low <= truth[name] <= estimate.high)
    return (
        {k: float(np.mean(v)) for k, v in hits.items()},
        {k: float(np.mean(v)) for k, v in old_hits.items()},
    )


@pytest.mark.slow
@pytest.mark.parametrize(("second_threshold", "seed"), [(0.25, 1), (0.6, 2)])
def test_intervals_cover_the_truth_after_a_re_curation(second_threshold, seed):
    coverage, old = _coverage(second_threshold, seed)
    print(f"\n[calibration] threshold 0.4 -> {second_threshold}: coverage {coverage}; old {old}")

    assert min(coverage.values()) >= 0.93, coverage
    assert min(old.values()) < 0.93, old
