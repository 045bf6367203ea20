"""The reviewer queue. Curation samples candidates into it; annotators lease
items one at a time, review them, and an outcome is stored once per item.

Leases: an item is held by at most one person at a time (the lease columns live
on the item row, so holding it is one row's state, changed under a row lock). An
item that needs N reviews is therefore reviewed by N people in turn, not in
parallel; the queue is long, so annotators work in parallel across items.
Who may insert a review, and how many, is enforced by the database: a trigger
counts each review into ``reviews_done`` (checked <= ``reviews_required``) and
refuses reviews of items that are not queued or not leased to the reviewer.
"""

import pghistory
import pgtrigger
from django.conf import settings
from django.db import models
from django.db.models import Q

from flywheel_site.models import MetricDayBase


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ReviewItem(models.Model):
    class Status(models.TextChoices):
        QUEUED = "queued"
        DONE = "done"
        ADJUDICATION = "adjudication"

    # One item per candidate: nothing enters the queue twice.
    candidate = models.OneToOneField(
        "curation.Candidate", on_delete=models.PROTECT, related_name="review_item"
    )
    stratum = models.CharField(max_length=310)
    # Probability this candidate had of being sampled, so statistics over
    # reviewed items can be weighted back to the whole population.
    inclusion_probability = models.FloatField()
    priority = models.FloatField(default=0.0)
    priority_details = models.JSONField(default=dict, blank=True)
    # An audit item: a candidate the filters rejected, reviewed blind to
    # calibrate them. Never shown as such to the reviewer.
    audit = models.BooleanField(default=False, db_default=False)
    reviews_required = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    lease_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    # When the current holder took the item: a review's started_at, so time per
    # item is measured from the claim, across lease renewals.
    lease_started_at = models.DateTimeField(null=True, blank=True)
    # Reviews submitted so far; the review insert trigger keeps it, the check
    # constraint caps it at reviews_required.
    reviews_done = models.PositiveSmallIntegerField(default=0)
    # Copied from the candidate by the insert trigger below, so the queue
    # picker's filters read the item row and its indexes, never a join.
    kind = models.CharField(max_length=12, blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")
    source = models.ForeignKey(
        "curation.Source", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Distinct annotators who skipped the item; at FLYWHEEL_REVIEW_SKIPS_TO_CURATOR
    # it goes to a curator (status adjudication, escalated_at set).
    skip_count = models.PositiveIntegerField(default=0)
    escalated_at = models.DateTimeField(null=True, blank=True)
    # Why it went to a curator when skips did not send it: the screen could not be shown.
    escalated_reason = models.CharField(max_length=200, blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(inclusion_probability__gt=0) & Q(inclusion_probability__lte=1),
                name="reviewitem_probability_valid",
            ),
            models.CheckConstraint(
                condition=Q(status__in=["queued", "done", "adjudication"]),
                name="reviewitem_valid_status",
            ),
            models.CheckConstraint(
                condition=Q(reviews_required__gte=1), name="reviewitem_reviews_min"
            ),
            models.CheckConstraint(
                condition=Q(reviews_done__lte=models.F("reviews_required")),
                name="reviewitem_reviews_within_required",
            ),
            models.CheckConstraint(
                condition=(
                    Q(lease_holder__isnull=True)
                    & Q(lease_expires_at__isnull=True)
                    & Q(lease_started_at__isnull=True)
                )
                | (
                    Q(lease_holder__isnull=False)
                    & Q(lease_expires_at__isnull=False)
                    & Q(lease_started_at__isnull=False)
                ),
                name="reviewitem_lease_complete",
            ),
            # One item per person at a time: nobody hoards the top of the queue.
            models.UniqueConstraint(
                fields=["lease_holder"],
                condition=Q(lease_holder__isnull=False),
                name="reviewitem_one_lease_per_user",
            ),
        ]
        indexes = [
            # The claim query: queued items by priority.
            models.Index(
                fields=["-priority", "id"],
                condition=Q(status="queued"),
                name="reviewitem_queue_idx",
            ),
            models.Index(
                fields=["-priority", "id"],
                condition=Q(status="adjudication"),
                name="reviewitem_adjudication_idx",
            ),
            # The queue picker's claims: one partial index per column a queue
            # filters on, each still in serving order.
            models.Index(
                fields=["kind", "-priority", "id"],
                condition=Q(status="queued"),
                name="reviewitem_queue_kind_idx",
            ),
            models.Index(
                fields=["task_type", "-priority", "id"],
                condition=Q(status="queued"),
                name="reviewitem_queue_task_idx",
            ),
            models.Index(
                fields=["source", "-priority", "id"],
                condition=Q(status="queued"),
                name="reviewitem_queue_source_idx",
            ),
            # The most skipped items, for curators: only skipped rows are indexed.
            models.Index(
                fields=["-skip_count", "id"],
                condition=Q(skip_count__gt=0),
                name="reviewitem_skipped_idx",
            ),
            # Queue depth over time: items added per day in a window.
            models.Index(fields=["created_at"], name="reviewitem_created_idx"),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="reviewitem_copy_candidate",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func="""
                SELECT c.kind, c.task_type, i.source_id
                  INTO NEW.kind, NEW.task_type, NEW.source_id
                  FROM curation_candidate c
                  JOIN curation_interaction i ON i.id = c.interaction_id
                 WHERE c.id = NEW.candidate_id;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"review item #{self.pk}"


class Decision(models.TextChoices):
    APPROVE = "approve", "approve"
    REJECT = "reject", "reject"
    # Approve with the reviewer's own edit of the chosen text (for needs_answer
    # items: the answer the reviewer wrote).
    APPROVE_EDIT = "approve_edit", "approve with edit"


APPROVALS = (Decision.APPROVE, Decision.APPROVE_EDIT)

# The short list on the screen; anything else comes from the free-text field.
REJECT_REASONS = (
    "Not an improvement on the model's answer",
    "Wrong or misleading",
    "Unsafe or toxic",
    "Contains personal data",
    "Off-topic, spam or not a real request",
    "Duplicate of another item",
)


def model_output_of(candidate) -> str:
    """The model's answer: the rejected side of a pair, else the response.
    Both the outcome written by services and the screen shown by presenters
    read it, so it lives beside the models they share."""
    if candidate.rejected is not None:
        return candidate.rejected
    return candidate.interaction.response


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Review(models.Model):
    """One annotator's independent review of one item."""

    item = models.ForeignKey(ReviewItem, on_delete=models.PROTECT, related_name="reviews")
    reviewer = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="reviews"
    )
    decision = models.CharField(max_length=12, choices=Decision.choices)
    accuracy = models.PositiveSmallIntegerField(null=True, blank=True)
    helpfulness = models.PositiveSmallIntegerField(null=True, blank=True)
    safety = models.PositiveSmallIntegerField(null=True, blank=True)
    final_text = models.TextField(null=True, blank=True)
    reject_reason = models.CharField(max_length=200, blank=True, default="")
    note = models.TextField(blank=True, default="")
    started_at = models.DateTimeField(null=True, blank=True)
    submitted_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            # No annotator reviews the same item twice.
            models.UniqueConstraint(fields=["item", "reviewer"], name="review_once_per_reviewer"),
            models.CheckConstraint(
                condition=Q(decision__in=["approve", "reject", "approve_edit"]),
                name="review_valid_decision",
            ),
            models.CheckConstraint(
                condition=~Q(decision="approve_edit")
                | (Q(final_text__isnull=False) & ~Q(final_text="")),
                name="review_edit_has_text",
            ),
            models.CheckConstraint(
                condition=(Q(accuracy__isnull=True) | Q(accuracy__gte=1, accuracy__lte=5))
                & (Q(helpfulness__isnull=True) | Q(helpfulness__gte=1, helpfulness__lte=5))
                & (Q(safety__isnull=True) | Q(safety__gte=1, safety__lte=5)),
                name="review_rubric_range",
            ),
        ]
        indexes = [
            models.Index(fields=["reviewer", "-submitted_at"], name="review_by_reviewer"),
            # Statistics read reviews by day over a window.
            models.Index(fields=["submitted_at"], name="review_by_day"),
        ]
        triggers = [
            # The database, not the browser or the view, decides whether a review
            # may exist: the item must be queued and leased to the reviewer, and
            # the counter's check constraint refuses review N+1.
            pgtrigger.Trigger(
                name="review_counts_toward_required",
                when=pgtrigger.Before,
                operation=pgtrigger.Insert,
                func="""
                UPDATE review_reviewitem SET reviews_done = reviews_done + 1
                 WHERE id = NEW.item_id AND status = 'queued'
                   AND lease_holder_id = NEW.reviewer_id;
                IF NOT FOUND THEN
                    RAISE EXCEPTION 'review item % is not open to reviewer %',
                        NEW.item_id, NEW.reviewer_id USING ERRCODE = 'check_violation';
                END IF;
                RETURN NEW;
                """,
            ),
            # A submitted review is a record: never overwritten or removed.
            pgtrigger.Protect(
                name="review_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"{self.decision} on item #{self.item_id}"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class ReviewOutcome(models.Model):
    """The final word on an item, stored once: an approved pair with its final
    chosen text, or a rejection. The training app turns approved outcomes into
    gold pairs."""

    class Result(models.TextChoices):
        APPROVED = "approved"
        REJECTED = "rejected"

    item = models.OneToOneField(ReviewItem, on_delete=models.PROTECT, related_name="outcome")
    result = models.CharField(max_length=8, choices=Result.choices)
    # The chosen text that becomes gold: the user's edit, the reviewer's edit,
    # or the reviewer-written answer for a needs_answer item.
    chosen = models.TextField(null=True, blank=True)
    rejected = models.TextField(null=True, blank=True)
    adjudicated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # Why a rejection: the reviewers' reasons, or the adjudicator's.
    reason = models.CharField(max_length=200, blank=True, default="")
    note = models.TextField(blank=True, default="")
    decided_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(result__in=["approved", "rejected"]), name="outcome_valid_result"
            ),
            models.CheckConstraint(
                condition=~Q(result="approved") | (Q(chosen__isnull=False) & ~Q(chosen="")),
                name="outcome_approved_has_chosen",
            ),
        ]
        indexes = [
            models.Index(fields=["result", "decided_at"], name="outcome_by_result"),
            models.Index(fields=["decided_at"], name="outcome_by_day"),
        ]
        triggers = [
            # The outcome, adjudicated or not, is final.
            pgtrigger.Protect(name="outcome_final", operation=pgtrigger.Update | pgtrigger.Delete),
        ]

    def __str__(self) -> str:
        return f"{self.result} item #{self.item_id}"


class ReviewSkip(models.Model):
    """An annotator passed on an item; it is not offered to them again."""

    item = models.ForeignKey(ReviewItem, on_delete=models.CASCADE, related_name="skips")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["item", "user"], name="reviewskip_once"),
        ]
        indexes = [
            # Skips per annotator over a window (statistics).
            models.Index(fields=["created_at"], name="reviewskip_by_day"),
        ]

    def __str__(self) -> str:
        return f"skip of item #{self.item_id}"


class QueueChoice(models.Model):
    """The queue an annotator picked on their home page, kept until they
    change it; ``served`` is their place in the "all" queue's mix."""

    user = models.OneToOneField(
        settings.AUTH_USER_MODEL, primary_key=True, on_delete=models.CASCADE, related_name="+"
    )
    kind = models.CharField(max_length=20, default="all")
    task_type = models.CharField(max_length=100, blank=True, default="")
    source = models.ForeignKey(
        "curation.Source", null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    served = models.PositiveIntegerField(default=0)
    updated_at = models.DateTimeField(auto_now=True)

    def __str__(self) -> str:
        return f"queue of user #{self.user_id}"


@pghistory.track(pghistory.InsertEvent())
class Guideline(models.Model):
    """Review guidelines in Markdown. A row is one version: editing adds the
    next one, so every past version can be read as it was."""

    version = models.PositiveIntegerField(unique=True)
    body = models.TextField()
    note = models.CharField(max_length=200, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        triggers = [
            pgtrigger.Protect(
                name="guideline_read_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"guidelines v{self.version}"


class ReviewMetricDay(MetricDayBase):
    """Review's daily rollup (`review.rollups`)."""
