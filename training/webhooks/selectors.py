"""Reads for the webhook pages: endpoints, and the delivery log with each delivery's last
attempt, newest first, by keyset (`before` a delivery id)."""

from __future__ import annotations

from django.db.models import OuterRef, Subquery

from training.webhooks.models import WebhookAttempt, WebhookDelivery, WebhookEndpoint

PAGE_SIZE = 50


def endpoints_list() -> list[WebhookEndpoint]:
    return list(WebhookEndpoint.objects.select_related("created_by").order_by("pk"))


def endpoint_get(*, pk: int | None) -> WebhookEndpoint | None:
    if pk is None:
        return None
    return WebhookEndpoint.objects.filter(pk=pk).first()


def deliveries_page(
    *, endpoint: WebhookEndpoint | None = None, before: int | None = None
) -> list[WebhookDelivery]:
    last = WebhookAttempt.objects.filter(delivery=OuterRef("pk")).order_by("-pk")
    rows = WebhookDelivery.objects.select_related("event", "endpoint").annotate(
        last_status_code=Subquery(last.values("status_code")[:1]),
        last_latency_ms=Subquery(last.values("latency_ms")[:1]),
        last_excerpt=Subquery(last.values("response_excerpt")[:1]),
        last_error=Subquery(last.values("error")[:1]),
        last_started_at=Subquery(last.values("started_at")[:1]),
    )
    if endpoint is not None:
        rows = rows.filter(endpoint=endpoint)
    if before is not None:
        rows = rows.filter(pk__lt=before)
    return list(rows.order_by("-pk")[:PAGE_SIZE])


def delivery_get(*, pk: int) -> WebhookDelivery | None:
    return WebhookDelivery.objects.select_related("event", "endpoint").filter(pk=pk).first()


def delivery_attempts(*, delivery: WebhookDelivery) -> list[WebhookAttempt]:
    return list(delivery.attempt_rows.order_by("-pk")[:100])
