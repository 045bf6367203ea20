"""The dashboard's filter agreement read from review's daily rollup: the same figures as
the calibration scan over the reviewed items, kept through re-curation (which changes the
verdicts the figure reads), and equal to a rebuild however often a re-curation runs."""

import random

import pytest

from curation import pipeline
from review import calibration, selectors
from review.rollups import REVIEW_TABLE, review_metrics_rebuild
from tests.support.curation import no_toxicity, rollup_sums

pytestmark = pytest.mark.django_db


def scan() -> dict[str, tuple]:
    """The calibration page's agreement per filter: the read the rollup replaces."""
    out = {}
    for name, observations in selectors.calibration_observations().items():
        estimate = calibration.agreement(observations)
        out[name] = (estimate.value, estimate.low, estimate.high, estimate.n)
    return out


def from_rollup() -> dict[str, tuple]:
    return {
        row["filter"]: (row["agreement"], row["low"], row["high"], row["n"])
        for row in selectors.filter_agreement()
    }


def assert_same(got: dict, expected: dict) -> None:
    assert set(got) == set(expected)
    for name, figures in expected.items():
        assert got[name] == pytest.approx(figures), name


def test_the_rollup_read_equals_the_calibration_scan(reviewed):
    expected = scan()
    assert set(expected) == {"quality"} and expected["quality"][3] == 24

    assert_same(from_rollup(), expected)


def test_counted_agreement_equals_the_estimate_over_the_items():
    rng = random.Random(3)
    observations = [
        calibration.Observation(
            weight=1 / p, passed=rng.random() < 0.7, approved=rng.random() < 0.6
        )
        for p in (rng.choice([1.0, 0.5, 0.05, 0.02]) for _ in range(300))
    ]
    counts: dict[tuple[bool, float], int] = {}
    for o in observations:
        key = (o.passed == o.approved, 1 / o.weight)
        counts[key] = counts.get(key, 0) + 1

    counted = calibration.agreement_counted(counts)
    direct = calibration.agreement(observations)

    assert (counted.value, counted.low, counted.high) == pytest.approx(
        (direct.value, direct.low, direct.high)
    )
    assert counted.n == direct.n == 300
    assert calibration.agreement_counted({}).value is None


def test_a_recuration_run_twice_keeps_the_rollup_equal_to_a_rebuild_and_the_scan(reviewed):
    policy = no_toxicity(quality_min=0.4, sample_rate=1.0, audit_rate=1.0)
    ids = [item.candidate_id for item in reviewed]
    # The fixture queues its items with raw writes: start from the counts they stand for.
    review_metrics_rebuild()

    for _ in range(2):
        pipeline.candidates_recurate(policy=policy, candidate_ids=ids)
        kept = rollup_sums(REVIEW_TABLE)
        # The verdicts changed: every enabled filter has a figure, where only quality had.
        assert len(from_rollup()) > 1
        assert_same(from_rollup(), scan())
        review_metrics_rebuild()
        assert rollup_sums(REVIEW_TABLE) == kept
