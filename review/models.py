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
