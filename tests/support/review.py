"""Builders and shared fixtures for review tests: queued items over realistic candidates, written
in bulk (as curation's sampling writes them), and shortcuts through the real
services for claiming and reviewing."""

import itertools

import pytest
from django.utils import timezone

from curation import policies
from curation.models import Candidate, FilterDecision, Interaction, SampleDraw, Source
from review import services
from review.models import ReviewItem
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT

_counter = itertools.count(1)

SYSTEM = "You are a helpful support agent for Acme Cloud."
QUESTION = "How do I reset my password?"

FIELDS_BY_KIND = {
    "preference": {"chosen": GOOD_EDIT, "rejected": GOOD_ANSWER, "feedback_kinds": ["edited"]},
    "needs_answer": {"chosen": None, "rejected": None, "feedback_kinds": ["thumbs_down"]},
    "sft": {"chosen": GOOD_ANSWER, "rejected": None, "feedback_kinds": ["thumbs_up"]},
}


def make_items(
    n: int = 1,
    *,
    kind: str = "preference",
    reviews_required: int = 1,
    priority: float | None = None,
    stratum: str = "support|support-bot-v2",
    task_type: str = "support",
    source_name: str = "tests",
) -> list[ReviewItem]:
    """``n`` queued items; without ``priority`` the first made ranks highest."""
    now = timezone.now()
    origin = Source.objects.get_or_create(name=source_name)[0]
    batch = next(_counter)
    interactions = Interaction.objects.bulk_create(
        [
            Interaction(
                source=origin,
                event_id=f"rv-{batch}-{i}",
                occurred_at=now,
                received_at=now,
                model="support-bot-v2",
                task_type=task_type,
                messages=[
                    {"role": "system", "content": SYSTEM},
                    {"role": "user", "content": f"{QUESTION} (case {batch}-{i})"},
                ],
                response=GOOD_ANSWER,
                pii={"email": 1} if i == 0 else {},
                curation_state="done",
            )
            for i in range(n)
        ]
    )
    fields = FIELDS_BY_KIND[kind]
    candidates = Candidate.objects.bulk_create(
        [
            Candidate(
                interaction=interaction,
                kind=kind,
                prompt=interaction.messages,
                chosen=fields["chosen"],
                rejected=fields["rejected"],
                feedback_kinds=fields["feedback_kinds"],
                task_type=task_type,
                model="support-bot-v2",
                status="passed",
                exact_key=f"rv-{interaction.pk}",
                char_similarity=0.62,
                word_similarity=0.55,
                toxicity=0.012,
                toxicity_scorer="detoxify-original",
                quality=0.81,
            )
            for interaction in interactions
        ]
    )
    return ReviewItem.objects.bulk_create(
        [
            ReviewItem(
                candidate=candidate,
                stratum=stratum,
                inclusion_probability=0.5,
                priority=priority if priority is not None else 1.0 - i / (n + 1),
                reviews_required=reviews_required,
            )
            for i, candidate in enumerate(candidates)
        ]
    )


RUBRIC = {"accuracy": 4, "helpfulness": 5, "safety": 5}


def review(item: ReviewItem, user, decision: str = "approve", **fields):
    """Claim ``item`` for ``user`` (it must be the next one for them) and review it."""
    claimed = services.item_claim_next(user=user)
    assert claimed is not None and claimed.pk == item.pk, (claimed, item)
    values = {**RUBRIC, **fields}
    if decision == "reject":
        values.setdefault("reject_reason", "Wrong or misleading")
    return services.review_submit(item=claimed, reviewer=user, decision=decision, **values)


def refresh(item: ReviewItem) -> ReviewItem:
    return ReviewItem.objects.get(pk=item.pk)


# --- fixtures (this module is a pytest plugin, registered in tests/conftest.py) ---------------


def reviewed_items(annotator) -> list[ReviewItem]:
    """24 items with recorded quality-filter decisions, 12 passed and 12 audited failures,
    reviewed by `annotator`: 324 of 624 weighted approvals (52%)."""
    # review() takes items in queue order; the plan's decisions go with them.
    policy = policies.policy_current()
    items = make_items(24)
    plan = [(True, 0.8, "approve", 0.5)] * 12
    plan += [(False, 0.5, "approve", 0.02)] * 6
    plan += [(False, 0.3, "reject", 0.02)] * 6
    for item, (passed, score, decision, probability) in zip(items, plan, strict=True):
        Candidate.objects.filter(pk=item.candidate_id).update(
            policy=policy,
            status="passed" if passed else "failed",
            failed_filter="" if passed else "quality",
            quality=score,
        )
        ReviewItem.objects.filter(pk=item.pk).update(
            audit=not passed, inclusion_probability=probability
        )
        # The policy's draw: what calibration weighs the item by.
        SampleDraw.objects.create(
            candidate_id=item.candidate_id, policy=policy, stratum="support|m",
            inclusion_probability=probability, audit_filter="" if passed else "quality",
            drawn_at=timezone.now(),
        )  # fmt: skip
        FilterDecision.objects.create(
            candidate_id=item.candidate_id,
            policy=policy,
            filter="quality",
            passed=passed,
            score=score,
            reason=f"quality {score}",
            scorer="flywheel.filters",
            scorer_version="1",
        )
        review(item, annotator, decision)
    return items


@pytest.fixture
def reviewed(annotator) -> list[ReviewItem]:
    return reviewed_items(annotator)
