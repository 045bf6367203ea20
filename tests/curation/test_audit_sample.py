"""The audit sample: a share of each filter's rejections reviewed blind, on
real PostgreSQL through the real sampling, queue and review services."""

import math

import pytest
from django.test import Client

from curation import pipeline, policies, sampling
from curation.models import Candidate
from review.models import ReviewItem
from tests.support.curation import GOOD_ANSWER, edited, make_candidates, no_toxicity
from tests.support.review import review
from training.datasets import services as training_services

pytestmark = pytest.mark.django_db


def make_failed(n: int, *, failed_filter: str, kind: str = "preference") -> list[Candidate]:
    return make_candidates(n, kind=kind, failed_filter=failed_filter)


def binomial_interval(n: int, p: float, *, alpha: float = 0.001) -> tuple[int, int]:
    """The central (1 - alpha) range of Binomial(n, p), from its exact pmf."""

    def pmf(k: int) -> float:
        log = math.lgamma(n + 1) - math.lgamma(k + 1) - math.lgamma(n - k + 1)
        return math.exp(log + k * math.log(p) + (n - k) * math.log1p(-p))

    cdf, low, high = 0.0, None, n
    for k in range(n + 1):
        cdf += pmf(k)
        if low is None and cdf > alpha / 2:
            low = k
        if cdf >= 1 - alpha / 2:
            high = k
            break
    return low, high


def audited() -> dict[int, tuple[str, float]]:
    return dict(
        (pk, (name, p))
        for pk, name, p in Candidate.objects.exclude(audit_filter="").values_list(
            "pk", "audit_filter", "inclusion_probability"
        )
    )


@pytest.mark.slow
def test_the_audit_sample_is_deterministic_and_at_its_rate_per_filter():
    policy = policies.policy_create(changes={"audit_rates": {"toxicity": 0.1, "pii": 0.0}})
    assert policy.audit_rate == 0.02  # the default
    quality = make_failed(3000, failed_filter="quality")
    toxicity = make_failed(3000, failed_filter="toxicity")
    everything = quality + toxicity

    sampling.candidates_sample(candidates=everything, policy=policy)
    first = audited()
    for group, rate in ((quality, 0.02), (toxicity, 0.1)):
        drawn = [c.pk for c in group if c.pk in first]
        low, high = binomial_interval(len(group), rate)
        assert low <= len(drawn) <= high, (len(drawn), low, high)
        assert {first[pk][1] for pk in drawn} == {rate}  # the inclusion probability
        # The keyed hash of the id decides, and nothing else.
        assert set(drawn) == {c.pk for c in group if sampling.keyed_uniform("audit", c.pk) < rate}
    items = ReviewItem.objects.filter(candidate__in=first)
    assert items.count() == len(first)
    assert set(items.values_list("audit", flat=True)) == {True}
    assert set(items.values_list("stratum", flat=True)) == {"support|m1"}  # as any item's

    # A second pass draws nothing new; from scratch it draws the same set.
    assert sampling.candidates_sample(candidates=everything, policy=policy) == 0
    items.delete()
    Candidate.objects.update(
        sampled_at=None, inclusion_probability=None, priority=None, audit_filter=""
    )
    sampling.candidates_sample(candidates=everything, policy=policy)
    assert audited() == first


def test_filters_at_rate_zero_and_needs_answer_items_are_not_audited():
    policy = policies.policy_create(changes={"audit_rate": 1.0})
    assert policy.audit_rates == {"pii": 0.0}  # the default keeps PII hits from reviewers
    pii = make_failed(20, failed_filter="pii")
    unanswered = make_failed(20, failed_filter="quality", kind="needs_answer")
    length = make_failed(5, failed_filter="length")
    assert sampling.candidates_sample(candidates=pii + unanswered + length, policy=policy) == 5
    assert set(audited()) == {c.pk for c in length}


@pytest.mark.parametrize(
    "changes",
    [{"audit_rate": 1.5}, {"audit_rates": {"nonsense": 0.1}}, {"audit_rates": {"quality": -1}}],
)
def test_a_bad_audit_rate_makes_no_policy(changes):
    from curation.errors import CurationError

    before = policies.policy_current().version
    with pytest.raises(CurationError):
        policies.policy_create(changes=changes)
    assert policies.policy_current().version == before


def audit_item(annotator=None) -> ReviewItem:
    """A candidate the edit band rejects (a one-character edit), audited at 100%."""
    no_toxicity(audit_rate=1.0, sample_rate=1.0)
    pipeline.interactions_curate(interaction_ids=[edited("au1", final=GOOD_ANSWER + "!").pk])
    candidate = Candidate.objects.get()
    assert candidate.status == "failed" and candidate.failed_filter == "edit_band"
    return ReviewItem.objects.get(candidate=candidate)


def test_the_reviewer_is_not_shown_the_filters_verdict_on_an_audit_item(annotator, curator):
    item = audit_item()
    assert item.audit and item.inclusion_probability == 1.0
    reviewer = Client()
    reviewer.force_login(annotator)
    assert reviewer.post("/review/next/")["Location"] == f"/review/items/{item.pk}/"
    html = reviewer.get(f"/review/items/{item.pk}/").content.decode()
    assert GOOD_ANSWER[:40] in html  # the item is on the screen
    for tell in ("above 0.950", "edit_band", "Filter decisions", "fail"):
        assert tell not in html, tell
    assert "audit" not in html.lower()

    # A curator looking at it afterwards sees which filter rejected it and why.
    inspector = Client()
    inspector.force_login(curator)
    html = inspector.get(f"/review/items/{item.pk}/").content.decode()
    assert 'id="audit-verdict"' in html
    assert "edit_band" in html and "above 0.950" in html
    html = inspector.get(f"/curation/candidates/{item.candidate_id}/").content.decode()
    assert 'id="audit-sample"' in html and "edit_band" in html


def test_an_approved_audit_item_becomes_gold_only_once_its_candidate_passes(annotator):
    item = audit_item()
    review(item, annotator, "approve")
    assert item.outcome.result == "approved"
    assert training_services.gold_pairs_sync() == 0
    # A later policy lets the edit through: now the human and the filters agree.
    policy = no_toxicity(band_high=1.0, quality_min=0.0)
    pipeline.candidates_recurate(policy=policy, candidate_ids=[item.candidate_id])
    candidate = Candidate.objects.get(pk=item.candidate_id)
    assert candidate.status == "passed", candidate.status_reason
    assert training_services.gold_pairs_sync() == 1
