"""Sampling into the reviewer queue: deterministic, stratified, at the rate."""

import math
from types import SimpleNamespace

import pytest

from curation import policies, sampling
from curation.models import Candidate
from review.models import ReviewItem
from tests.support.curation import make_candidates

pytestmark = pytest.mark.django_db


def make_passed(n: int, *, task_type="support", model="m1", kind="preference") -> list[Candidate]:
    return make_candidates(n, task_type=task_type, model=model, kind=kind)


def test_sampling_rate_is_the_policy_rate_with_a_floor_for_small_strata():
    assert sampling.sampling_rate(base_rate=0.075, stratum_size=10_000, min_per_stratum=20) == 0.075
    assert sampling.sampling_rate(base_rate=0.075, stratum_size=100, min_per_stratum=20) == 0.2
    assert sampling.sampling_rate(base_rate=0.075, stratum_size=5, min_per_stratum=20) == 1.0
    assert sampling.sampling_rate(base_rate=0.0, stratum_size=5, min_per_stratum=20) == 0.0


@pytest.mark.slow
def test_the_sampled_rate_over_10000_candidates_is_within_the_99_percent_interval():
    policy = policies.policy_create(changes={"sample_rate": 0.075, "min_per_stratum": 0})
    candidates = make_passed(10_000)
    sampled = sampling.candidates_sample(candidates=candidates, policy=policy)
    n, p = 10_000, 0.075
    half_width = 2.576 * math.sqrt(p * (1 - p) / n)
    assert p - half_width <= sampled / n <= p + half_width, sampled
    assert set(ReviewItem.objects.values_list("inclusion_probability", flat=True)) == {0.075}


def test_sampling_is_deterministic_and_nothing_enters_the_queue_twice():
    policy = policies.policy_create(changes={"min_per_stratum": 0})
    candidates = make_passed(2_000)
    first = sampling.candidates_sample(candidates=candidates, policy=policy)
    chosen = set(ReviewItem.objects.values_list("candidate_id", flat=True))
    assert first == len(chosen) > 0
    again = sampling.candidates_sample(candidates=candidates, policy=policy)
    assert again == 0
    assert set(ReviewItem.objects.values_list("candidate_id", flat=True)) == chosen
    # The decision is recorded once; cleared, the keyed hash draws the same set.
    ReviewItem.objects.all().delete()
    Candidate.objects.update(
        sampled_at=None, sample_stratum="", inclusion_probability=None, priority=None
    )
    assert sampling.candidates_sample(candidates=candidates, policy=policy) == first
    assert set(ReviewItem.objects.values_list("candidate_id", flat=True)) == chosen


def test_the_decision_is_recorded_on_the_candidate_and_the_queue_pulls_it():
    policy = policies.policy_create(changes={"min_per_stratum": 0, "reviews_required": 2})
    candidates = make_passed(500)
    # Evaluation records the policy on each candidate before sampling.
    Candidate.objects.filter(pk__in=[c.pk for c in candidates]).update(policy=policy)
    candidates = list(Candidate.objects.filter(pk__in=[c.pk for c in candidates]))
    sampled = sampling.candidates_sample(candidates=candidates, policy=policy)
    marked = Candidate.objects.filter(sampled_at__isnull=False)
    assert marked.count() == sampled > 0
    for item in ReviewItem.objects.select_related("candidate"):
        c = item.candidate
        assert c.sampled_at is not None
        assert (item.stratum, item.inclusion_probability, item.priority) == (
            c.sample_stratum,
            c.inclusion_probability,
            c.priority,
        )
        assert item.priority_details == c.priority_details
        assert item.reviews_required == 2
    assert ReviewItem.objects.count() == sampled


@pytest.mark.slow
def test_a_rare_stratum_is_not_starved_by_a_common_one():
    policy = policies.policy_create(changes={"sample_rate": 0.05, "min_per_stratum": 20})
    common = make_passed(3_000, task_type="support")
    rare = make_passed(30, task_type="sql")
    sampling.candidates_sample(candidates=common + rare, policy=policy)
    rare_items = ReviewItem.objects.filter(stratum="sql|m1")
    common_items = ReviewItem.objects.filter(stratum="support|m1")
    # 30 rare candidates at 20/30 = 0.667 vs 5% of them (1.5 expected).
    assert rare_items.count() >= 10
    assert {round(p, 3) for p in rare_items.values_list("inclusion_probability", flat=True)} == {
        round(20 / 30, 3)
    }
    assert 0.03 < common_items.count() / 3_000 < 0.07
    assert rare_items.first().priority > common_items.order_by("priority").first().priority


def test_needs_answer_candidates_go_to_the_queue_at_their_own_rate():
    policy = policies.policy_create(changes={"needs_answer_rate": 1.0, "sample_rate": 0.0})
    sampling.candidates_sample(candidates=make_passed(50, kind="needs_answer"), policy=policy)
    sampling.candidates_sample(candidates=make_passed(50, task_type="x"), policy=policy)
    assert ReviewItem.objects.count() == 50
    assert not ReviewItem.objects.exclude(candidate__kind="needs_answer").exists()


@pytest.mark.parametrize(
    ("scores", "share", "new_model", "expected"),
    [
        ({"char_similarity": 0.95}, 1.0, False, 0.5),  # right at the band's top
        ({"char_similarity": 0.5}, 1.0, False, 0.0),
        ({"char_similarity": 0.5}, 0.0, True, 0.5),
        ({"toxicity": 0.09}, 0.5, False, 0.5 * 0.9 + 0.15),
    ],
)
def test_review_priority_follows_the_documented_formula(scores, share, new_model, expected):
    policy = policies.policy_current()
    defaults = {"char_similarity": None, "word_similarity": None, "toxicity": None, "quality": None}
    candidate = SimpleNamespace(**{**defaults, **scores})
    priority, details = sampling.review_priority(
        candidate=candidate, policy=policy, stratum_share=share, new_model=new_model
    )
    assert priority == pytest.approx(expected, abs=1e-6)
    assert details["new_model"] is new_model
