"""Review's rollup counts an item's entry into the queue once, whatever path queued it.
A re-curation is itself a delta over its candidates' items (their filter agreement reads
the verdicts) and it samples newly passing candidates, whose items the intake queues with
a delta of its own: the two deltas overlapped and counted the new item's "queued" fact
twice. The draw is certain here (sample rate 1), so no id or sequence value matters."""

import pytest
from django.db import connection

from curation import pipeline
from curation.models import Candidate
from review.models import ReviewItem
from review.rollups import REVIEW_TABLE, review_metrics_rebuild, review_rollup_delta
from tests.support.curation import no_toxicity, with_feedback

pytestmark = pytest.mark.django_db


def review_rollup() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT metric, key, sum(n) FROM {REVIEW_TABLE} "  # noqa: S608
            "GROUP BY 1, 2 HAVING sum(n) <> 0"
        )
        return {(metric, key): n for metric, key, n in cursor.fetchall()}


def failed_candidate() -> Candidate:
    """A candidate the first policy fails (too few words) and never samples."""
    no_toxicity(min_words=200, sample_rate=1.0, sft_rate=1.0, audit_rate=0.0)
    interaction = with_feedback("q1", "thumbs_up")
    pipeline.interactions_curate(interaction_ids=[interaction.pk])
    candidate = Candidate.objects.get()
    assert candidate.status == Candidate.Status.FAILED
    assert not ReviewItem.objects.exists()
    return candidate


def test_a_recuration_that_queues_a_candidate_counts_its_item_once():
    candidate = failed_candidate()
    lenient = no_toxicity(min_words=5, sample_rate=1.0, sft_rate=1.0, audit_rate=0.0)

    pipeline.candidates_recurate(policy=lenient, candidate_ids=[candidate.pk])

    item = ReviewItem.objects.get(candidate=candidate)
    kept = review_rollup()
    assert kept == {("queued", item.candidate.kind): 1}
    review_metrics_rebuild()
    assert review_rollup() == kept


def test_nested_deltas_over_the_same_items_count_a_change_once():
    candidate = failed_candidate()
    with review_rollup_delta(candidate_ids=[candidate.pk]):
        with review_rollup_delta(candidate_ids=[candidate.pk]):
            ReviewItem.objects.create(candidate=candidate, inclusion_probability=1.0)
        with review_rollup_delta(item_ids=[ReviewItem.objects.get().pk]):
            pass

    assert review_rollup() == {("queued", candidate.kind): 1}
