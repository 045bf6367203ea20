"""Reads for the webhook pages: endpoints, and the delivery log with each delivery's last
attempt, newest first, by keyset (`before` a delivery id)."""

from __future__ import annotations

from django.db.models import OuterRef, QuerySet, Subquery

from flywheel_site.keyset import PAGE_SIZE, KeysetPage
from training.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def endpoints_list() -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.select_related("created_by").order_by("pk"))


def endpoints() -> QuerySet[WebhookEndpoint]:
    return WebhookEndpoint.objects.all()


def endpoint_get(*, pk: int | None) -> WebhookEndpoint | None:
    """The endpoint a delivery log is narrowed to; none (the whole log) if it is gone."""
    return None if pk is None else endpoints().filter(pk=pk).first()


def deliveries() -> QuerySet[WebhookDelivery]:
    return WebhookDelivery.objects.select_related("event", "endpoint")


def deliveries_page(
    *, endpoint: WebhookEndpoint | None = None, before: int | None = None, size: int = PAGE_SIZE
) -> KeysetPage:
    last = WebhookAttempt.objects.filter(delivery=OuterRef("pk")).order_by("-pk")
    rows = deliveries().annotate(
        last_status_code=Subquery(last.values("status_code")[:1]),
        last_latency_ms=Subquery(last.values("latency_ms")[:1]),
        last_excerpt=Subquery(last.values("response_excerpt")[:1]),
        last_error=Subquery(last.values("error")[:1]),
        last_started_at=Subquery(last.values("started_at")[:1]),
    )
    if endpoint is not None:
        rows = rows.filter(endpoint=endpoint)
    return KeysetPage.of(rows, before=before, size=size)


def delivery_attempts(*, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(delivery.attempt_rows.order_by("-pk")[:100])
