"""The review queue's rules, through the services and straight at the database:
leases, N reviews per item, one review per person, outcomes, adjudication."""

from datetime import timedelta

import pytest
import time_machine
from django.db import IntegrityError, transaction
from django.utils import timezone

from review import errors, guidelines, services
from review.models import Guideline, Review, ReviewItem, ReviewOutcome, ReviewSkip
from tests.support.review import RUBRIC, make_items, refresh, review

pytestmark = pytest.mark.django_db


def submit(item, user, decision="approve", **fields):
    values = {**RUBRIC, **fields}
    return services.review_submit(item=item, reviewer=user, decision=decision, **values)


# --- claiming -----------------------------------------------------------------


def test_claim_takes_the_highest_priority_item_and_leases_it(annotator):
    low, high = make_items(1, priority=0.2)[0], make_items(1, priority=0.9)[0]
    claimed = services.item_claim_next(user=annotator)
    assert claimed.pk == high.pk
    assert claimed.lease_holder_id == annotator.pk
    assert claimed.lease_expires_at - claimed.lease_started_at == timedelta(minutes=10)
    assert refresh(low).lease_holder_id is None


def test_the_lease_length_comes_from_the_setting(annotator, settings):
    settings.FLYWHEEL_REVIEW_LEASE_MINUTES = 3
    make_items(1)
    claimed = services.item_claim_next(user=annotator)
    assert claimed.lease_expires_at - claimed.lease_started_at == timedelta(minutes=3)


def test_two_annotators_get_different_items(annotator, annotator2):
    make_items(2)
    first = services.item_claim_next(user=annotator)
    second = services.item_claim_next(user=annotator2)
    assert first.pk != second.pk


def test_claiming_again_resumes_the_held_item_instead_of_taking_another(annotator):
    make_items(2)
    first = services.item_claim_next(user=annotator)
    again = services.item_claim_next(user=annotator)
    assert again.pk == first.pk
    assert ReviewItem.objects.filter(lease_holder=annotator).count() == 1


def test_an_empty_queue_gives_none(annotator):
    assert services.item_claim_next(user=annotator) is None


def test_the_database_allows_one_lease_per_person(annotator):
    a, b = make_items(2)
    now = timezone.now()
    ReviewItem.objects.filter(pk=a.pk).update(
        lease_holder=annotator, lease_expires_at=now, lease_started_at=now
    )
    with pytest.raises(IntegrityError), transaction.atomic():
        ReviewItem.objects.filter(pk=b.pk).update(
            lease_holder=annotator, lease_expires_at=now, lease_started_at=now
        )


def test_an_expired_lease_returns_the_item_to_the_queue(annotator, annotator2):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    assert services.item_claim_next(user=annotator2) is None
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        taken = services.item_claim_next(user=annotator2)
    assert taken.pk == item.pk
    assert taken.lease_holder_id == annotator2.pk


def test_a_live_lease_is_not_taken_just_before_it_expires(annotator, annotator2):
    make_items(1)
    services.item_claim_next(user=annotator)
    with time_machine.travel(timezone.now() + timedelta(minutes=9, seconds=50), tick=False):
        assert services.item_claim_next(user=annotator2) is None


def test_renewing_extends_the_lease_from_now(annotator, annotator2):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    later = timezone.now() + timedelta(minutes=8)
    with time_machine.travel(later, tick=False):
        renewed = services.lease_renew(item=item, user=annotator)
    assert renewed.lease_expires_at == later + timedelta(minutes=10)
    with time_machine.travel(later + timedelta(minutes=9), tick=False):
        assert services.item_claim_next(user=annotator2) is None
        submit(item, annotator)
    assert refresh(item).status == "done"


def test_renewing_a_lease_someone_else_took_is_refused(annotator, annotator2):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        services.item_claim_next(user=annotator2)
        with pytest.raises(errors.LeaseLost) as refused:
            services.lease_renew(item=item, user=annotator)
    assert refused.value.message == services.LEASE_LOST
    assert refresh(item).lease_holder_id == annotator2.pk


# --- submitting ---------------------------------------------------------------


def test_a_submit_after_the_lease_expired_is_refused_and_writes_nothing(annotator):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    later = timezone.now() + timedelta(minutes=10, seconds=1)
    with time_machine.travel(later, tick=False), pytest.raises(errors.LeaseLost) as refused:
        submit(item, annotator)
    assert refused.value.status == 409
    assert refused.value.message == services.LEASE_LOST
    assert Review.objects.count() == 0
    assert refresh(item).reviews_done == 0


def test_a_submit_against_a_stolen_lease_keeps_the_new_holders_work(annotator, annotator2):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    with time_machine.travel(timezone.now() + timedelta(minutes=11), tick=False):
        services.item_claim_next(user=annotator2)
        with pytest.raises(errors.LeaseLost):
            submit(item, annotator, decision="reject", reject_reason="Wrong or misleading")
        submit(item, annotator2)
    outcome = ReviewOutcome.objects.get(item=item)
    assert outcome.result == "approved"
    assert list(Review.objects.values_list("reviewer_id", flat=True)) == [annotator2.pk]


def test_a_submit_without_any_lease_is_refused(annotator):
    (item,) = make_items(1)
    with pytest.raises(errors.LeaseLost):
        submit(item, annotator)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"decision": "maybe"}, services.UNKNOWN_DECISION),
        ({"decision": "approve", "accuracy": None}, services.RUBRIC_REQUIRED),
        ({"decision": "approve", "safety": 6}, services.RUBRIC_REQUIRED),
        ({"decision": "reject", "reject_reason": "  "}, services.REJECT_REASON_REQUIRED),
        ({"decision": "approve_edit", "final_text": ""}, services.EDIT_TEXT_REQUIRED),
        ({"decision": "approve", "note": "x" * 5001}, services.TEXT_TOO_LONG.format(limit=5000)),
    ],
)
def test_an_incomplete_review_is_refused_with_a_message(annotator, fields, message):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    fields = {**RUBRIC, **fields}
    decision = fields.pop("decision")
    with pytest.raises(errors.InvalidReview) as refused:
        services.review_submit(item=item, reviewer=annotator, decision=decision, **fields)
    assert refused.value.message == message
    assert refused.value.status == 422
    assert refresh(item).lease_holder_id == annotator.pk  # still theirs to fix


def test_a_reject_needs_no_scores_and_keeps_those_given(annotator):
    make_items(2)
    for accuracy in (None, 2):
        item = services.item_claim_next(user=annotator)
        services.review_submit(item=item, reviewer=annotator, decision="reject",
                               reject_reason="Off-topic", accuracy=accuracy, helpfulness=None,
                               safety=None)  # fmt: skip
    scores = Review.objects.order_by("submitted_at", "pk").values_list("accuracy", "helpfulness")
    assert list(scores) == [(None, None), (2, None)]


def test_a_needs_answer_item_is_approved_only_with_a_written_answer(annotator):
    (item,) = make_items(1, kind="needs_answer")
    services.item_claim_next(user=annotator)
    with pytest.raises(errors.InvalidReview) as refused:
        submit(item, annotator, decision="approve")
    assert refused.value.message == services.NEEDS_ANSWER_TEXT_REQUIRED
    submit(item, annotator, decision="approve_edit", final_text="Open Settings > Security.")
    outcome = ReviewOutcome.objects.get(item=item)
    assert outcome.chosen == "Open Settings > Security."
    assert outcome.rejected == item.candidate.interaction.response


def test_an_edit_that_changes_nothing_counts_as_an_approval(annotator):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    review_row = submit(
        item, annotator, decision="approve_edit", final_text=item.candidate.chosen + "\n"
    )
    assert review_row.decision == "approve"
    assert review_row.final_text is None


# --- outcomes -----------------------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "decision", "fields", "expected"),
    [
        ("preference", "approve", {}, ("approved", "chosen", "rejected")),
        ("preference", "approve_edit", {"final_text": "Mine."}, ("approved", "Mine.", "rejected")),
        ("preference", "reject", {"reject_reason": "Unsafe"}, ("rejected", None, "rejected")),
        ("sft", "approve", {}, ("approved", "chosen", "response")),
        ("needs_answer", "reject", {"reject_reason": "Spam"}, ("rejected", None, "response")),
    ],
)
def test_one_review_settles_an_item_with_the_documented_texts(
    annotator, kind, decision, fields, expected
):
    (item,) = make_items(1, kind=kind)
    review(item, annotator, decision, **fields)
    candidate = item.candidate
    texts = {
        "chosen": candidate.chosen,
        "rejected": candidate.rejected,
        "response": candidate.interaction.response,
        None: None,
    }
    result, chosen, rejected = expected
    outcome = ReviewOutcome.objects.get(item=item)
    assert outcome.result == result
    assert outcome.chosen == texts.get(chosen, chosen)
    assert outcome.rejected == texts[rejected]
    assert outcome.adjudicated_by is None
    settled = refresh(item)
    assert settled.status == "done"
    assert settled.lease_holder_id is None
    assert settled.reviews_done == 1


def test_a_rejection_keeps_the_reason_on_the_outcome(annotator):
    (item,) = make_items(1)
    review(item, annotator, "reject", reject_reason="Contains personal data")
    assert ReviewOutcome.objects.get(item=item).reason == "Contains personal data"


def test_an_item_needing_two_reviews_waits_for_the_second(annotator, annotator2):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator)
    waiting = refresh(item)
    assert (waiting.status, waiting.reviews_done, waiting.lease_holder_id) == ("queued", 1, None)
    assert not ReviewOutcome.objects.exists()
    assert services.item_claim_next(user=annotator) is None  # never the same person twice
    review(item, annotator2)
    assert refresh(item).status == "done"
    assert ReviewOutcome.objects.get(item=item).result == "approved"


@pytest.mark.parametrize(
    ("first", "second"),
    [
        (("approve", {}), ("reject", {})),
        (("approve", {}), ("approve_edit", {"final_text": "Better."})),
        (("approve_edit", {"final_text": "One."}), ("approve_edit", {"final_text": "Two."})),
    ],
)
def test_disagreeing_reviews_send_the_item_to_adjudication(annotator, annotator2, first, second):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator, first[0], **first[1])
    review(item, annotator2, second[0], **second[1])
    assert refresh(item).status == "adjudication"
    assert not ReviewOutcome.objects.exists()


def test_two_identical_edits_agree(annotator, annotator2):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator, "approve_edit", final_text="Same text.")
    review(item, annotator2, "approve_edit", final_text="Same text.")
    assert ReviewOutcome.objects.get(item=item).chosen == "Same text."


# --- the database's own rules -------------------------------------------------


def lease(item, user):
    now = timezone.now()
    ReviewItem.objects.filter(pk=item.pk).update(
        lease_holder=user, lease_expires_at=now + timedelta(minutes=5), lease_started_at=now
    )


def test_the_database_refuses_a_review_beyond_the_required_number(annotator, annotator2):
    (item,) = make_items(1)
    lease(item, annotator)
    Review.objects.create(item=item, reviewer=annotator, decision="approve")
    ReviewItem.objects.filter(pk=item.pk).update(
        lease_holder=None, lease_expires_at=None, lease_started_at=None
    )
    lease(item, annotator2)
    refused = pytest.raises(IntegrityError, match="reviewitem_reviews_within_required")
    with refused, transaction.atomic():
        Review.objects.create(item=item, reviewer=annotator2, decision="approve")
    assert Review.objects.filter(item=item).count() == 1


def test_the_database_refuses_a_second_review_by_the_same_person(annotator):
    (item,) = make_items(1, reviews_required=3)
    lease(item, annotator)
    Review.objects.create(item=item, reviewer=annotator, decision="approve")
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(item=item, reviewer=annotator, decision="reject")
    assert refresh(item).reviews_done == 1


def test_the_database_refuses_a_review_from_someone_without_the_lease(annotator, annotator2):
    (item,) = make_items(1)
    lease(item, annotator)
    with pytest.raises(IntegrityError, match="not open to reviewer"), transaction.atomic():
        Review.objects.create(item=item, reviewer=annotator2, decision="approve")


def test_the_database_refuses_reviews_of_settled_items(annotator, annotator2):
    (item,) = make_items(1, reviews_required=2)
    ReviewItem.objects.filter(pk=item.pk).update(status="done")
    lease(item, annotator)
    with pytest.raises(IntegrityError), transaction.atomic():
        Review.objects.create(item=item, reviewer=annotator, decision="approve")


def test_reviews_and_outcomes_cannot_be_overwritten(annotator):
    (item,) = make_items(1)
    review(item, annotator)
    with pytest.raises(Exception, match="review_append_only"), transaction.atomic():
        Review.objects.update(decision="reject")
    with pytest.raises(Exception, match="outcome_final"), transaction.atomic():
        ReviewOutcome.objects.update(result="rejected", chosen=None)
    assert ReviewOutcome.objects.get().result == "approved"


# --- skip ---------------------------------------------------------------------


def test_a_skipped_item_goes_to_someone_else_and_not_back_to_the_skipper(annotator, annotator2):
    first, second = make_items(2)
    services.item_claim_next(user=annotator)
    services.item_skip(item=first, user=annotator)
    assert refresh(first).lease_holder_id is None
    assert ReviewSkip.objects.filter(item=first, user=annotator).exists()
    assert services.item_claim_next(user=annotator).pk == second.pk
    assert services.item_claim_next(user=annotator2).pk == first.pk


# --- adjudication -------------------------------------------------------------


def disagree(annotator, annotator2, **item_kwargs):
    (item,) = make_items(1, reviews_required=2, **item_kwargs)
    review(item, annotator, "approve")
    review(item, annotator2, "reject", reject_reason="Wrong or misleading")
    return refresh(item)


def test_a_curator_adjudicates_and_the_outcome_is_final(annotator, annotator2, curator):
    item = disagree(annotator, annotator2)
    claimed = services.item_claim_next(user=curator, mode="adjudication")
    assert claimed.pk == item.pk
    outcome = services.outcome_adjudicate(
        item=item, curator=curator, decision="approve_edit", final_text="Curated."
    )
    assert (outcome.result, outcome.chosen, outcome.adjudicated_by_id) == (
        "approved",
        "Curated.",
        curator.pk,
    )
    assert refresh(item).status == "done"
    with pytest.raises(errors.LeaseLost) as refused:
        services.outcome_adjudicate(
            item=item, curator=curator, decision="reject", reject_reason="x"
        )
    assert refused.value.message == services.NOT_ADJUDICATION
    assert ReviewOutcome.objects.get(item=item).chosen == "Curated."


def test_adjudication_needs_the_lease(annotator, annotator2, curator, admin):
    item = disagree(annotator, annotator2)
    services.item_claim_next(user=curator, mode="adjudication")
    with pytest.raises(errors.LeaseLost):
        services.outcome_adjudicate(item=item, curator=admin, decision="approve")
    assert services.item_claim_next(user=admin, mode="adjudication") is None


def test_a_curator_can_take_a_named_item_for_adjudication(annotator, annotator2, curator):
    item = disagree(annotator, annotator2)
    claimed = services.item_claim(item=item, user=curator)
    assert claimed.lease_holder_id == curator.pk
    (queued,) = make_items(1)
    with pytest.raises(errors.LeaseLost) as refused:
        services.item_claim(item=queued, user=curator)
    assert refused.value.message == services.NOT_ADJUDICATION


def test_adjudicating_with_a_plain_approval_uses_the_users_text(annotator, annotator2, curator):
    item = disagree(annotator, annotator2)
    services.item_claim_next(user=curator, mode="adjudication")
    outcome = services.outcome_adjudicate(item=item, curator=curator, decision="approve")
    assert outcome.chosen == item.candidate.chosen
    assert outcome.rejected == item.candidate.rejected


def test_items_in_adjudication_are_not_offered_for_review(annotator, annotator2, curator):
    disagree(annotator, annotator2)
    assert services.item_claim_next(user=curator) is None


# --- history ------------------------------------------------------------------


def test_reviews_outcomes_and_leases_are_in_history_with_the_acting_user(annotator):
    (item,) = make_items(1)
    review(item, annotator)
    review_event = Review.pgh_event_model.objects.get(pgh_label="insert")
    outcome_event = ReviewOutcome.pgh_event_model.objects.get(pgh_label="insert")
    lease_events = ReviewItem.pgh_event_model.objects.filter(pgh_obj=item, pgh_label="update")
    holders = [e.lease_holder_id for e in lease_events.order_by("pgh_id")]
    assert review_event.pgh_context.metadata["user"] == annotator.pk
    assert outcome_event.pgh_context.metadata["user"] == annotator.pk
    assert annotator.pk in holders and holders[-1] is None
    assert all(e.pgh_context.metadata["user"] == annotator.pk for e in lease_events)


# --- guidelines ---------------------------------------------------------------


def test_guideline_edits_add_versions_with_their_author(curator):
    before = Guideline.objects.order_by("-version").first()
    saved = guidelines.guideline_update(body="# Be kind\n", user=curator, note="tone")
    assert saved.version == before.version + 1
    assert Guideline.objects.get(version=before.version).body == before.body
    event = Guideline.pgh_event_model.objects.get(pgh_obj=saved)
    assert event.pgh_context.metadata["user"] == curator.pk
    with pytest.raises(errors.InvalidReview) as refused:
        guidelines.guideline_update(body="  ", user=curator)
    assert refused.value.message == guidelines.GUIDELINE_EMPTY
