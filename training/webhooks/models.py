"""Signed webhooks: endpoints, the outbox of events, and one delivery per (event, endpoint)
with every attempt recorded.

An event row and its deliveries are written in the transaction of the change they announce
(training.webhooks.services.event_emit), so an event exists if and only if the change committed. The
delivery row, not the RQ job, is the source of truth: a job only carries its id, and the
sweeper hands due or abandoned deliveries to the queue again.

Invariants held by the database:
- one delivery per (event, endpoint);
- events and attempts are append-only records (no code path updates them);
- a delivery is `sending` only with a claim deadline.

Referenced by string: training.models imports this module at its end.
"""

import uuid

import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

__all__ = ["WebhookAttempt", "WebhookDelivery", "WebhookEndpoint", "WebhookEvent"]

URL_MAX = 2000
DESCRIPTION_MAX = 200
# What an attempt keeps of a receiver's answer, and of an error: enough to debug, bounded.
EXCERPT_MAX = 1000


class WebhookEndpoint(models.Model):
    url = models.URLField(max_length=URL_MAX)
    description = models.CharField(max_length=DESCRIPTION_MAX, blank=True, default="")
    # whsec_ + base64 of 24 random bytes, the Standard Webhooks form. Admins may view it on
    # the endpoint's page: the receiver needs it and admins can already do anything here.
    secret = models.CharField(max_length=100)
    event_types = ArrayField(models.CharField(max_length=50))
    enabled = models.BooleanField(default=True)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["pk"]
        constraints = [
            models.CheckConstraint(
                condition=Q(secret__startswith="whsec_"),  # noqa: S106 (a prefix, not a secret)
                name="webhook_secret_whsec",
            ),
            models.CheckConstraint(
                condition=Q(url__startswith="http://") | Q(url__startswith="https://"),
                name="webhook_url_http",
            ),
        ]

    def __str__(self) -> str:
        return self.url


class WebhookEvent(models.Model):
    # Sent as webhook-id: the same on every attempt, so a receiver can drop duplicates.
    uid = models.UUIDField(default=uuid.uuid4, unique=True, editable=False)
    type = models.CharField(max_length=50)
    timestamp = models.DateTimeField()
    data = models.JSONField()

    class Meta:
        ordering = ["-pk"]
        triggers = [
            pgtrigger.Protect(
                name="webhook_event_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"{self.type} #{self.pk}"

    @property
    def message_id(self) -> str:
        return f"msg_{self.uid.hex}"


class WebhookDelivery(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending"  # waiting for its next attempt (next_attempt_at)
        SENDING = "sending"  # claimed by a worker until claimed_until
        DELIVERED = "delivered"
        FAILED = "failed"  # gave up after FLYWHEEL_WEBHOOK_MAX_ATTEMPTS

    event = models.ForeignKey(WebhookEvent, on_delete=models.PROTECT, related_name="deliveries")
    endpoint = models.ForeignKey(
        WebhookEndpoint, on_delete=models.PROTECT, related_name="deliveries"
    )
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    # Attempts since the delivery was created or sent again: the backoff and the limit
    # count these. Every attempt ever made stays in WebhookAttempt.
    attempts = models.PositiveIntegerField(default=0)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    claimed_until = models.DateTimeField(null=True, blank=True)
    delivered_at = models.DateTimeField(null=True, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-pk"]
        constraints = [
            models.UniqueConstraint(fields=["event", "endpoint"], name="webhook_delivery_once"),
            models.CheckConstraint(
                condition=~Q(status="sending") | Q(claimed_until__isnull=False),
                name="webhook_sending_claimed",
            ),
        ]
        indexes = [
            models.Index(
                fields=["next_attempt_at"],
                condition=Q(status__in=["pending", "sending"]),
                name="webhook_delivery_due",
            ),
        ]

    def __str__(self) -> str:
        return f"delivery #{self.pk} of {self.event} to {self.endpoint}"


class WebhookAttempt(models.Model):
    delivery = models.ForeignKey(
        WebhookDelivery, on_delete=models.PROTECT, related_name="attempt_rows"
    )
    number = models.PositiveIntegerField()
    started_at = models.DateTimeField()
    latency_ms = models.PositiveIntegerField(default=0)
    status_code = models.PositiveIntegerField(null=True, blank=True)
    response_excerpt = models.CharField(max_length=EXCERPT_MAX, blank=True, default="")
    error = models.CharField(max_length=EXCERPT_MAX, blank=True, default="")
    ok = models.BooleanField(default=False)

    class Meta:
        ordering = ["-pk"]
        triggers = [
            pgtrigger.Protect(
                name="webhook_attempt_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            )
        ]

    def __str__(self) -> str:
        return f"attempt {self.number} of {self.delivery_id}"
