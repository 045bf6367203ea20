"""The reviewer queue. Curation samples candidates into it; the review issue
adds leases, reviews and outcomes on top."""

import pghistory
from django.conf import settings
from django.db import models
from django.db.models import Q


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
    reviews_required = models.PositiveSmallIntegerField(default=1)
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.QUEUED)
    lease_holder = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    lease_expires_at = models.DateTimeField(null=True, blank=True)
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
        ]
        indexes = [
            # The claim query: queued items by priority.
            models.Index(
                fields=["-priority", "id"],
                condition=Q(status="queued"),
                name="reviewitem_queue_idx",
            ),
        ]

    def __str__(self) -> str:
        return f"review item #{self.pk}"


class Decision(models.TextChoices):
    APPROVE = "approve"
    REJECT = "reject"
    # Approve with the reviewer's own edit of the chosen text (for needs_answer
    # items: the answer the reviewer wrote).
    APPROVE_EDIT = "approve_edit"


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
        indexes = [models.Index(fields=["reviewer", "-submitted_at"], name="review_by_reviewer")]

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
        indexes = [models.Index(fields=["result", "decided_at"], name="outcome_by_result")]

    def __str__(self) -> str:
        return f"{self.result} item #{self.item_id}"
