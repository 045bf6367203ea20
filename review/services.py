"""Review writes: claim, renew, skip, submit, adjudicate, and guideline edits.

The rules the database can hold, it holds (see ``review.models``): one lease per
item and per person, no review without the lease, at most N reviews per item,
one review per person per item, outcomes and reviews never overwritten. These
functions take the row locks in a fixed order (the item row first), check the
lease against the clock, and turn what went wrong into a sentence an annotator
understands. Every write runs inside ``pghistory.context`` with the acting user,
so history rows name them even outside a web request.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

import pghistory
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from curation.models import CandidateKind, Source
from flywheel_site.deadlock import retry_on_deadlock
from flywheel_site.textcheck import has_control_characters
from review import queues
from review.errors import InvalidReview, LeaseLost
from review.models import (
    APPROVALS,
    Decision,
    QueueChoice,
    Review,
    ReviewItem,
    ReviewOutcome,
    ReviewSkip,
    model_output_of,
)
from review.rollups import review_rollup_delta

LEASE_LOST = (
    "This item is not leased to you any more: your lease expired or another reviewer "
    "holds it now. Nothing was saved. Take the next item to carry on."
)
ITEM_CLOSED = "This item is no longer open for review: it is done or waiting for adjudication."
NOT_ADJUDICATION = "This item is not waiting for adjudication (it may already be settled)."
ALREADY_REVIEWED = "You have already reviewed this item; each person reviews an item once."
UNKNOWN_DECISION = "Choose approve, reject or approve with edit."
RUBRIC_REQUIRED = (
    "Rate accuracy, helpfulness and safety from 1 to 5 before approving (a reject needs no scores)."
)
REJECT_REASON_REQUIRED = "Pick a reason for the rejection, or write one."
EDIT_TEXT_REQUIRED = "Write the final text to approve with an edit."
NEEDS_ANSWER_TEXT_REQUIRED = (
    "This item has no answer from the user: write the answer that should have been "
    "given (approve with edit), or reject it."
)
TEXT_TOO_LONG = "The text is longer than {limit} characters."
UNKNOWN_QUEUE = "Pick a queue from the lists: kind, task type and source."

NOTE_MAX_CHARS = 5_000
REASON_MAX_CHARS = 200
TASK_TYPE_MAX_CHARS = 100

Mode = Literal["review", "adjudication"]
_STATUS_FOR_MODE = {
    "review": ReviewItem.Status.QUEUED,
    "adjudication": ReviewItem.Status.ADJUDICATION,
}


@dataclass(frozen=True)
class Verdict:
    """A decision after validation: what a Review row or an outcome will hold."""

    decision: str
    final_text: str | None
    reject_reason: str
    note: str


def lease_length() -> timedelta:
    return timedelta(minutes=settings.FLYWHEEL_REVIEW_LEASE_MINUTES)


# --- claiming -----------------------------------------------------------------


def item_claim_next(*, user, mode: Mode = "review") -> ReviewItem | None:
    """Lease the next item to ``user``, or None when nothing is left for them.

    The user's current lease in the same mode is resumed (renewed) rather than
    replaced, so reloading or a double click never burns an item; a lease in the
    other mode is released first (one lease per person). The candidate row is
    read with ``FOR UPDATE SKIP LOCKED`` in priority order through the partial
    queue index: concurrent claimers each lock a different row and never wait
    on each other, and the cost does not grow with the queue's length.
    """
    for attempt in range(2):
        try:
            with transaction.atomic(), pghistory.context(user=user.pk):
                return _claim_next(user=user, mode=mode)
        except IntegrityError:
            # The same person claiming twice at once: the one-lease-per-user
            # index refused the second lease. Retry once: it resumes the first.
            if attempt:
                raise
    return None  # pragma: no cover (the loop returns or raises)


def _claim_next(*, user, mode: Mode) -> ReviewItem | None:
    now = timezone.now()
    status = _STATUS_FOR_MODE[mode]
    held = ReviewItem.objects.select_for_update().filter(lease_holder=user).first()
    if held is not None:
        if held.status == status:
            ReviewItem.objects.filter(pk=held.pk).update(lease_expires_at=now + lease_length())
            held.refresh_from_db()
            return held
        _release(held.pk)
    candidates = (
        ReviewItem.objects.filter(status=status)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lte=now))
        .order_by("-priority", "id")
    )
    if mode == "review":
        candidates = candidates.filter(
            ~Exists(Review.objects.filter(item=OuterRef("pk"), reviewer=user)),
            ~Exists(ReviewSkip.objects.filter(item=OuterRef("pk"), user=user)),
        )
        # The user's own row, locked: their place in the mix moves one step
        # per claim, and two claims of theirs at once take turns.
        QueueChoice.objects.get_or_create(user=user)
        choice = QueueChoice.objects.select_for_update().get(user=user)
        picked = _pick_from_queue(candidates, choice)
        if picked is not None:
            QueueChoice.objects.filter(pk=choice.pk).update(served=F("served") + 1)
    else:
        picked = _pick(candidates)
    if picked is None:
        return None
    ReviewItem.objects.filter(pk=picked).update(
        lease_holder=user, lease_expires_at=now + lease_length(), lease_started_at=now
    )
    return ReviewItem.objects.get(pk=picked)


def _pick(candidates: QuerySet) -> int | None:
    return candidates.select_for_update(skip_locked=True).values_list("pk", flat=True).first()


def _pick_from_queue(candidates: QuerySet, choice: QueueChoice) -> int | None:
    """The first free item of the user's queue: its filters, then each kind
    condition in serving order (one indexed query each, usually just one)."""
    if choice.task_type:
        candidates = candidates.filter(task_type=choice.task_type)
    if choice.source_id is not None:
        candidates = candidates.filter(source_id=choice.source_id)
    for condition in queues.serving_order(choice.kind, choice.served):
        picked = _pick(candidates.filter(condition))
        if picked is not None:
            return picked
    return None


def queue_choose(*, user, kind: str, task_type: str = "", source_id: int | None = None):
    """Remember the queue ``user`` picked; their next claims serve from it."""
    if kind != queues.ALL and kind not in queues.BY_NAME:
        raise InvalidReview(UNKNOWN_QUEUE)
    task_type = (task_type or "").strip()
    if len(task_type) > TASK_TYPE_MAX_CHARS or has_control_characters(task_type):
        raise InvalidReview(UNKNOWN_QUEUE)
    if source_id is not None and not Source.objects.filter(pk=source_id).exists():
        raise InvalidReview(UNKNOWN_QUEUE)
    with transaction.atomic(), pghistory.context(user=user.pk):
        choice, _ = QueueChoice.objects.update_or_create(
            user=user,
            defaults={"kind": kind, "task_type": task_type, "source_id": source_id, "served": 0},
        )
    return choice


def item_claim(*, item: ReviewItem, user) -> ReviewItem:
    """Lease one named item waiting for adjudication (a curator picking from the
    list). Refused if someone else holds a live lease on it."""
    now = timezone.now()
    with transaction.atomic(), pghistory.context(user=user.pk):
        locked = _lock(item)
        if locked.status != ReviewItem.Status.ADJUDICATION:
            raise LeaseLost(NOT_ADJUDICATION)
        if _live(locked, now) and locked.lease_holder_id != user.pk:
            raise LeaseLost(LEASE_LOST)
        _release(ReviewItem.objects.filter(lease_holder=user).exclude(pk=locked.pk))
        started = locked.lease_started_at if locked.lease_holder_id == user.pk else now
        ReviewItem.objects.filter(pk=locked.pk).update(
            lease_holder=user, lease_expires_at=now + lease_length(), lease_started_at=started
        )
        locked.refresh_from_db()
        return locked


def lease_renew(*, item: ReviewItem, user) -> ReviewItem:
    """Extend a live lease while the holder is active on the item."""
    with _leased(item, user=user) as locked:
        ReviewItem.objects.filter(pk=locked.pk).update(
            lease_expires_at=timezone.now() + lease_length()
        )
        locked.refresh_from_db()
        return locked


@retry_on_deadlock
def item_skip(*, item: ReviewItem, user) -> bool:
    """Release the item and remember the skip, so it goes to someone else.

    An item skipped by FLYWHEEL_REVIEW_SKIPS_TO_CURATOR distinct people is
    probably unclear or broken rather than unlucky: it leaves the queue for a
    curator's decision (adjudication, marked escalated). Returns whether it did."""
    with _leased(item, user=user) as locked:
        _release(locked.pk)
        if locked.status != ReviewItem.Status.QUEUED:
            return False
        _, created = ReviewSkip.objects.get_or_create(item=locked, user=user)
        if not created:
            return False
        ReviewItem.objects.filter(pk=locked.pk).update(skip_count=F("skip_count") + 1)
        # Escalation moves the item into the adjudication backlog the rollups count.
        with review_rollup_delta(item_ids=[locked.pk]):
            escalated = ReviewItem.objects.filter(
                pk=locked.pk, skip_count__gte=settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR
            ).update(status=ReviewItem.Status.ADJUDICATION, escalated_at=timezone.now())
        return bool(escalated)


@retry_on_deadlock
def item_escalate(*, item: ReviewItem, reason: str) -> bool:
    """Send a queued item to a curator with `reason`, whoever holds it: its screen could not
    be shown, so serving it again would only trap the next annotator. Returns whether it
    moved (an item already out of the queue stays where it is)."""
    with transaction.atomic():
        locked = _lock(item)
        if locked.status != ReviewItem.Status.QUEUED:
            return False
        with review_rollup_delta(item_ids=[locked.pk]):
            _release(
                locked.pk,
                status=ReviewItem.Status.ADJUDICATION,
                escalated_at=timezone.now(),
                escalated_reason=reason[:200],
            )
        return True


# --- reviewing ----------------------------------------------------------------


@retry_on_deadlock
def review_submit(
    *,
    item: ReviewItem,
    reviewer,
    decision: str,
    accuracy: int | None,
    helpfulness: int | None,
    safety: int | None,
    final_text: str | None = None,
    reject_reason: str = "",
    note: str = "",
) -> Review:
    """Store one review under a live lease; settle the item when it has N.

    With N reviews that agree on the decision (and, for edits, on the text) the
    outcome is written and the item is done; otherwise it waits for a curator.
    """
    now = timezone.now()
    with transaction.atomic(), pghistory.context(user=reviewer.pk):
        locked = _lock(item)
        if locked.lease_holder_id == reviewer.pk and locked.status != ReviewItem.Status.QUEUED:
            raise LeaseLost(ITEM_CLOSED)
        _check_lease(locked, user=reviewer, now=now)
        if Review.objects.filter(item=locked, reviewer=reviewer).exists():
            raise InvalidReview(ALREADY_REVIEWED)
        candidate = locked.candidate
        _check_rubric(decision, accuracy, helpfulness, safety)
        verdict = _verdict(
            decision=decision,
            final_text=final_text,
            reject_reason=reject_reason,
            note=note,
            candidate=candidate,
        )
        with review_rollup_delta(item_ids=[locked.pk]):
            return _review_store(
                locked, reviewer=reviewer, verdict=verdict, scores=(accuracy, helpfulness, safety)
            )


def _review_store(locked: ReviewItem, *, reviewer, verdict, scores) -> Review:
    accuracy, helpfulness, safety = scores
    review = Review.objects.create(
        item=locked,
        reviewer=reviewer,
        decision=verdict.decision,
        accuracy=accuracy,
        helpfulness=helpfulness,
        safety=safety,
        final_text=verdict.final_text,
        reject_reason=verdict.reject_reason,
        note=verdict.note,
        started_at=locked.lease_started_at,
    )
    # The insert trigger counted the review; read the counter back rather
    # than trusting a value computed here.
    done = ReviewItem.objects.values_list("reviews_done", flat=True).get(pk=locked.pk)
    _release(locked.pk)
    if done >= locked.reviews_required:
        _settle(locked)
    return review


def agreed_outcome(*, reviews, chosen: str | None, model_output: str) -> dict | None:
    """The outcome N reviews agree on, as ReviewOutcome fields, or None when
    they disagree and a curator must decide.

    Agreement is on the decision itself: approve and approve-with-edit are
    different answers (one says the user's text is fine as it is), and two edits
    agree only if the final texts are the same, since only one can become gold.
    """
    decisions = {r.decision for r in reviews}
    if len(decisions) != 1:
        return None
    decision = decisions.pop()
    if decision == Decision.REJECT:
        reasons = sorted({r.reject_reason for r in reviews if r.reject_reason})
        return {
            "result": ReviewOutcome.Result.REJECTED,
            "chosen": None,
            "rejected": model_output,
            "reason": "; ".join(reasons)[:REASON_MAX_CHARS],
        }
    if decision == Decision.APPROVE_EDIT:
        texts = {r.final_text for r in reviews}
        if len(texts) != 1:
            return None
        chosen = texts.pop()
    return {"result": ReviewOutcome.Result.APPROVED, "chosen": chosen, "rejected": model_output}


def _settle(item: ReviewItem) -> None:
    candidate = item.candidate
    outcome = agreed_outcome(
        reviews=list(item.reviews.all()),
        chosen=candidate.chosen,
        model_output=model_output_of(candidate),
    )
    if outcome is None:
        ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.ADJUDICATION)
        return
    ReviewOutcome.objects.create(item=item, **outcome)
    ReviewItem.objects.filter(pk=item.pk).update(status=ReviewItem.Status.DONE)


# --- adjudication -------------------------------------------------------------


@retry_on_deadlock
def outcome_adjudicate(
    *,
    item: ReviewItem,
    curator,
    decision: str,
    final_text: str | None = None,
    reject_reason: str = "",
    note: str = "",
) -> ReviewOutcome:
    """A curator's final word on an item whose reviews disagreed."""
    now = timezone.now()
    with transaction.atomic(), pghistory.context(user=curator.pk):
        locked = _lock(item)
        if locked.status != ReviewItem.Status.ADJUDICATION:
            raise LeaseLost(NOT_ADJUDICATION)
        _check_lease(locked, user=curator, now=now)
        candidate = locked.candidate
        verdict = _verdict(
            decision=decision,
            final_text=final_text,
            reject_reason=reject_reason,
            note=note,
            candidate=candidate,
        )
        approved = verdict.decision in APPROVALS
        with review_rollup_delta(item_ids=[locked.pk]):
            outcome = ReviewOutcome.objects.create(
                item=locked,
                result=ReviewOutcome.Result.APPROVED if approved else ReviewOutcome.Result.REJECTED,
                chosen=(verdict.final_text or candidate.chosen) if approved else None,
                rejected=model_output_of(candidate),
                reason=verdict.reject_reason,
                note=verdict.note,
                adjudicated_by=curator,
            )
            _release(locked.pk, status=ReviewItem.Status.DONE)
        return outcome


# --- helpers ------------------------------------------------------------------


def _lock(item: ReviewItem) -> ReviewItem:
    return ReviewItem.objects.select_for_update(of=("self",)).get(pk=item.pk)


def _live(item: ReviewItem, now) -> bool:
    return item.lease_holder_id is not None and item.lease_expires_at > now


def _check_lease(item: ReviewItem, *, user, now) -> None:
    # An expired lease is refused even if nobody took the item yet: the rule is
    # simple to state, and the screen renews the lease while its holder works.
    if item.lease_holder_id != user.pk or item.lease_expires_at <= now:
        raise LeaseLost(LEASE_LOST)


@contextmanager
def _leased(item: ReviewItem, *, user) -> Iterator[ReviewItem]:
    """The item's row, locked, inside a transaction, and only if ``user`` holds
    a live lease on it."""
    with transaction.atomic(), pghistory.context(user=user.pk):
        locked = _lock(item)
        _check_lease(locked, user=user, now=timezone.now())
        yield locked


def _release(items: int | QuerySet, **also) -> None:
    """The one place a lease is cleared (all three columns together, as the
    ``reviewitem_lease_complete`` constraint demands), on one item by primary
    key or on a queryset, with any other columns that change at the same time."""
    if isinstance(items, int):
        items = ReviewItem.objects.filter(pk=items)
    items.update(lease_holder=None, lease_expires_at=None, lease_started_at=None, **also)


def _check_rubric(decision: str, *scores: int | None) -> None:
    # The rubric rates the chosen answer. A reject says there is none worth keeping, so its
    # scores are optional (kept when given); an approval must say how good the answer is.
    if decision == Decision.REJECT:
        if any(score is not None and not 1 <= score <= 5 for score in scores):
            raise InvalidReview(RUBRIC_REQUIRED)
        return
    if any(score is None or not 1 <= score <= 5 for score in scores):
        raise InvalidReview(RUBRIC_REQUIRED)


def _verdict(
    *,
    decision: str,
    final_text: str | None,
    reject_reason: str,
    note: str,
    candidate,
) -> Verdict:
    chosen = candidate.chosen
    needs_answer = candidate.kind == CandidateKind.NEEDS_ANSWER
    if decision not in Decision.values:
        raise InvalidReview(UNKNOWN_DECISION)
    note = (note or "").strip()
    if len(note) > NOTE_MAX_CHARS:
        raise InvalidReview(TEXT_TOO_LONG.format(limit=NOTE_MAX_CHARS))
    if decision == Decision.REJECT:
        reason = (reject_reason or "").strip()
        if not reason:
            raise InvalidReview(REJECT_REASON_REQUIRED)
        if len(reason) > REASON_MAX_CHARS:
            raise InvalidReview(TEXT_TOO_LONG.format(limit=REASON_MAX_CHARS))
        return Verdict(decision=decision, final_text=None, reject_reason=reason, note=note)
    if decision == Decision.APPROVE:
        if needs_answer:
            raise InvalidReview(NEEDS_ANSWER_TEXT_REQUIRED)
        return Verdict(decision=decision, final_text=None, reject_reason="", note=note)
    text = (final_text or "").replace("\r\n", "\n").strip()
    if not text:
        raise InvalidReview(NEEDS_ANSWER_TEXT_REQUIRED if needs_answer else EDIT_TEXT_REQUIRED)
    limit = settings.FLYWHEEL_TEXT_MAX_CHARS
    if len(text) > limit:
        raise InvalidReview(TEXT_TOO_LONG.format(limit=limit))
    if chosen is not None and text == chosen.strip():
        # An "edit" that changes nothing is an approval; recording it as an edit
        # would make it disagree with a plain approval of the same text.
        return Verdict(decision=Decision.APPROVE, final_text=None, reject_reason="", note=note)
    return Verdict(decision=decision, final_text=text, reject_reason="", note=note)
