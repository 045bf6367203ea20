"""Queue intake: candidates curation sampled become review items. Wired as curation's
sampled hook in flywheel_site.apps."""

from curation.models import Candidate
from review.models import ReviewItem
from review.rollups import review_rollup_delta


def items_create_for_sampled(*, candidate_ids) -> None:
    """Queue the candidates curation sampled (a pull: curation records the
    decision on the candidate and knows nothing of this queue). Idempotent:
    the one-to-one constraint keeps a candidate from entering twice. It runs in
    every curation chunk, so it counts nothing (curation counts what it sampled)."""
    sampled = (
        Candidate.objects.filter(pk__in=candidate_ids, sampled_at__isnull=False)
        .select_related("policy")
        .only(
            "pk",
            "sample_stratum",
            "inclusion_probability",
            "priority",
            "priority_details",
            "audit_filter",
            "policy__reviews_required",
        )
    )
    with review_rollup_delta(candidate_ids=candidate_ids):
        _items_create(sampled)


def _items_create(sampled) -> None:
    ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                candidate=c,
                stratum=c.sample_stratum,
                inclusion_probability=c.inclusion_probability,
                priority=c.priority,
                priority_details=c.priority_details,
                audit=bool(c.audit_filter),
                reviews_required=c.policy.reviews_required if c.policy else 1,
            )
            for c in sampled
        ],
        ignore_conflicts=True,
    )
