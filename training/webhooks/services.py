"""Signed webhooks (Standard Webhooks): the event types, `event_emit`, endpoints, and
delivery with retries.

- `event_emit(type=..., data=...)` writes the event and one delivery per enabled endpoint
  subscribed to the type in the caller's transaction, and queues the deliveries once it
  commits. The event exists only if the change it announces committed; a slow or dead
  receiver never delays the caller.
- `delivery_attempt` (the RQ job's body) claims a due delivery with a conditional UPDATE,
  POSTs it signed by the `standardwebhooks` package, records the attempt, and either marks
  it delivered or schedules the next attempt with exponential backoff, up to
  FLYWHEEL_WEBHOOK_MAX_ATTEMPTS. At-least-once: `deliveries_sweep` (periodic) queues due
  deliveries again and takes back claims of workers that died, so a killed worker or a
  Redis outage loses nothing. A receiver must therefore drop repeats by webhook-id.
- Receivers are checked by training.webhooks.delivery (the SSRF guard) when registered and
  again on every attempt.
"""

from __future__ import annotations

import base64
import functools
import json
import secrets
from datetime import datetime, timedelta

import pgtrigger
import redis
from django.conf import settings
from django.core.serializers.json import DjangoJSONEncoder
from django.db import transaction
from django.db.models import F, Q, TextField
from django.db.models.functions import Cast
from django.urls import reverse
from django.utils import timezone
from standardwebhooks import Webhook

from flywheel_site import redis as fw_redis
from training.errors import TrainingError
from training.webhooks import delivery as webhook_http
from training.webhooks.models import (
    DESCRIPTION_MAX,
    EXCERPT_MAX,
    URL_MAX,
    WebhookAttempt,
    WebhookDelivery,
    WebhookEndpoint,
    WebhookEvent,
)

# --- event types: the one list ---------------------------------------------------------------

MODEL_GATED = "model.gated"
EXPERIMENT_STARTED = "experiment.started"
EXPERIMENT_COMPLETED = "experiment.completed"
EXPERIMENT_ROLLED_BACK = "experiment.rolled_back"
EXPERIMENT_PAUSED = "experiment.paused"
MONITOR_ALERT = "monitor.alert"
DATASET_VERSION_FROZEN = "dataset.version_frozen"
TRAINING_RUN_FINISHED = "training.run_finished"
QUARANTINE_APPLIED = "quarantine.applied"
AUDIT_CHAIN_BROKEN = "audit.chain_broken"
EVENT_TYPES = {
    MODEL_GATED: "a trained model was registered with the gate's verdict",
    EXPERIMENT_STARTED: "a canary experiment started",
    EXPERIMENT_COMPLETED: "a canary experiment completed: the candidate is current",
    EXPERIMENT_ROLLED_BACK: "a canary experiment was rolled back",
    EXPERIMENT_PAUSED: "a canary experiment's automatic decisions paused (sample-ratio mismatch)",
    MONITOR_ALERT: "the current model's primary metric dropped below its baseline",
    DATASET_VERSION_FROZEN: "a dataset version was frozen",
    TRAINING_RUN_FINISHED: "a training run succeeded or failed",
    QUARANTINE_APPLIED: "data was quarantined and models trained on it rolled back",
    AUDIT_CHAIN_BROKEN: "verify_audit found a broken link in the audit or dataset manifest chain",
}
# Sent by an endpoint's "send test event" button to that endpoint alone; not subscribable.
TEST = "webhook.test"

QUEUE = "webhooks"
JOB = "training.webhooks.jobs.webhook_deliver"
SECRET_BYTES = 24
SECRET_MIN_BYTES, SECRET_MAX_BYTES = 16, 64
# Lost-worker grace beyond the request timeouts (connect + read) before a claim is taken back.
CLAIM_GRACE_S = 30
SWEEP_LIMIT = 1000

ERR_EVENT_TYPE = "Unknown event type {type!r}; known: {known}."
ERR_NO_TYPES = "Choose at least one event type."
ERR_URL_LENGTH = f"A webhook URL has at most {URL_MAX} characters."
ERR_DESCRIPTION = f"A description has at most {DESCRIPTION_MAX} characters."
ERR_SECRET = (
    f"A secret is whsec_ followed by the base64 of {SECRET_MIN_BYTES} to {SECRET_MAX_BYTES} "
    "bytes; leave it empty to generate one."
)
ERR_DISABLED = "{endpoint} is disabled: enable it to send a test event."
ERR_RESEND_BUSY = "Delivery #{pk} is still on its way ({status}); wait for its result."
ERR_ABANDONED = "abandoned: the worker stopped before recording a result"


def link(name: str, *args) -> str:
    """An absolute link to a page, from FLYWHEEL_PUBLIC_BASE_URL."""
    return settings.FLYWHEEL_PUBLIC_BASE_URL + reverse(name, args=args)


def _json(data: dict) -> dict:
    # Dates, decimals and UUIDs as a receiver reads them; the stored payload is what is sent.
    return json.loads(json.dumps(data, cls=DjangoJSONEncoder))


def event_emit(*, type: str, data: dict) -> None:
    """Record an event of `type` with `data` (ids and absolute links) and a delivery for
    each enabled endpoint subscribed to it, in the current transaction; deliveries are
    queued after commit. Raises ValueError for an unknown type (a programming error)."""
    if type not in EVENT_TYPES:
        raise ValueError(ERR_EVENT_TYPE.format(type=type, known=", ".join(EVENT_TYPES)))
    endpoints = WebhookEndpoint.objects.filter(enabled=True, event_types__contains=[type])
    _event_create(type=type, data=data, endpoints=list(endpoints))


def _event_create(*, type: str, data: dict, endpoints: list[WebhookEndpoint]) -> WebhookEvent:
    now = timezone.now()
    with transaction.atomic():
        event = WebhookEvent.objects.create(type=type, timestamp=now, data=_json(data))
        deliveries = WebhookDelivery.objects.bulk_create(
            WebhookDelivery(event=event, endpoint=endpoint, next_attempt_at=now)
            for endpoint in endpoints
        )
        for delivery in deliveries:
            transaction.on_commit(functools.partial(delivery_enqueue, delivery_id=delivery.pk))
    return event


def payload_bytes(event: WebhookEvent) -> bytes:
    body = {"type": event.type, "timestamp": event.timestamp.isoformat(), "data": event.data}
    return json.dumps(body, separators=(",", ":"), sort_keys=True).encode()


# --- endpoints ----------------------------------------------------------------------------------


def secret_generate() -> str:
    return "whsec_" + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def _secret_valid(secret: str) -> bool:
    if not secret.startswith("whsec_"):
        return False
    try:
        raw = base64.b64decode(secret[len("whsec_") :], validate=True)
    except ValueError:
        return False
    return SECRET_MIN_BYTES <= len(raw) <= SECRET_MAX_BYTES


def _clean(*, url: str, event_types: list[str], description: str) -> tuple[str, list[str], str]:
    url, description = (url or "").strip(), (description or "").strip()
    if len(url) > URL_MAX:
        raise TrainingError(ERR_URL_LENGTH)
    if len(description) > DESCRIPTION_MAX:
        raise TrainingError(ERR_DESCRIPTION)
    unknown = sorted(set(event_types) - set(EVENT_TYPES))
    if unknown:
        raise TrainingError(
            ERR_EVENT_TYPE.format(type=", ".join(unknown), known=", ".join(EVENT_TYPES))
        )
    if not event_types:
        raise TrainingError(ERR_NO_TYPES)
    try:
        webhook_http.url_check(url)
    except webhook_http.Refused as error:
        raise TrainingError(str(error)) from None
    return url, sorted(set(event_types)), description


def webhook_endpoint_create(
    *, url: str, event_types: list[str], description: str = "", secret: str = "", user=None
) -> WebhookEndpoint:
    """Register a receiver. The URL must pass the SSRF guard now (and will on every send);
    the secret is generated unless one in the whsec_ form is given."""
    url, event_types, description = _clean(
        url=url, event_types=event_types, description=description
    )
    secret = (secret or "").strip() or secret_generate()
    if not _secret_valid(secret):
        raise TrainingError(ERR_SECRET)
    return WebhookEndpoint.objects.create(
        url=url,
        event_types=event_types,
        description=description,
        secret=secret,
        created_by=user,
    )


def webhook_endpoint_update(
    *, endpoint: WebhookEndpoint, url: str, event_types: list[str], description: str = ""
) -> WebhookEndpoint:
    url, event_types, description = _clean(
        url=url, event_types=event_types, description=description
    )
    endpoint.url, endpoint.event_types, endpoint.description = url, event_types, description
    endpoint.save(update_fields=["url", "event_types", "description", "updated_at"])
    return endpoint


def webhook_endpoint_enable(*, endpoint: WebhookEndpoint, enabled: bool) -> WebhookEndpoint:
    """Enable or disable. A disabled endpoint gets no new events; deliveries already
    recorded for it wait and go out once it is enabled again."""
    endpoint.enabled = enabled
    endpoint.save(update_fields=["enabled", "updated_at"])
    if enabled:
        due = WebhookDelivery.objects.filter(
            endpoint=endpoint, status=WebhookDelivery.Status.PENDING
        ).values_list("pk", flat=True)
        for pk in due[:SWEEP_LIMIT]:
            transaction.on_commit(functools.partial(delivery_enqueue, delivery_id=pk))
    return endpoint


def webhook_test_send(*, endpoint: WebhookEndpoint, user=None) -> WebhookEvent:
    """A `webhook.test` event delivered to this endpoint only."""
    if not endpoint.enabled:
        raise TrainingError(ERR_DISABLED.format(endpoint=endpoint))
    data = {
        "endpoint": endpoint.pk,
        "requested_by": user.get_username() if user else None,
        "links": {"endpoint": link("webhooks:endpoint", endpoint.pk)},
    }
    return _event_create(type=TEST, data=data, endpoints=[endpoint])


def delivery_resend(*, delivery: WebhookDelivery) -> WebhookDelivery:
    """Send a delivered or failed delivery again, with a fresh count of attempts. The
    webhook-id stays the event's, so a receiver that saw it can tell it is a repeat."""
    updated = WebhookDelivery.objects.filter(
        pk=delivery.pk,
        status__in=[WebhookDelivery.Status.DELIVERED, WebhookDelivery.Status.FAILED],
    ).update(
        status=WebhookDelivery.Status.PENDING,
        attempts=0,
        next_attempt_at=timezone.now(),
        delivered_at=None,
    )
    if updated != 1:
        delivery.refresh_from_db()
        raise TrainingError(ERR_RESEND_BUSY.format(pk=delivery.pk, status=delivery.status))
    transaction.on_commit(functools.partial(delivery_enqueue, delivery_id=delivery.pk))
    delivery.refresh_from_db()
    return delivery


def webhook_payloads_redact(*, needles: list[str], reason: str) -> int:
    """An erasure's reach into the delivery log: every recorded event whose payload
    mentions one of `needles` (an erased user's id or its hash, as a JSON string) gets the
    payload {"redacted": reason}, and every attempt of it, or whose receiver's response
    mentions a needle, loses its response excerpt and error. Events and attempts are
    append-only but for this. Returns the number of events redacted."""
    needles = [n for n in needles if n]
    if not needles:
        return 0
    as_text = WebhookEvent.objects.annotate(text=Cast("data", TextField()))
    mentions = Q()
    for needle in needles:
        mentions |= Q(text__contains=json.dumps(needle, ensure_ascii=False))
    echoed = Q()
    for needle in needles:
        echoed |= Q(response_excerpt__contains=needle) | Q(error__contains=needle)
    ignored = (
        "training.WebhookEvent:webhook_event_append_only",
        "training.WebhookAttempt:webhook_attempt_append_only",
    )
    with transaction.atomic(), pgtrigger.ignore(*ignored):
        events = list(as_text.filter(mentions).values_list("pk", flat=True))
        WebhookEvent.objects.filter(pk__in=events).update(data={"redacted": reason})
        WebhookAttempt.objects.filter(Q(delivery__event_id__in=events) | echoed).update(
            response_excerpt="", error=""
        )
    return len(events)


# --- delivery -----------------------------------------------------------------------------------


def _job_id(delivery_id: int, attempts: int) -> str:
    return f"webhook-{delivery_id}-{attempts}"


def delivery_enqueue(*, delivery_id: int, attempts: int = 0) -> bool:
    """Hand a delivery to the webhooks queue. False if Redis is down: the row stays due and
    the sweeper queues it later."""
    return fw_redis.enqueue(
        QUEUE,
        JOB,
        delivery_id,
        job_id=_job_id(delivery_id, attempts),
        job_timeout=_claim_seconds(),
        result_ttl=300,
        failure_ttl=300,
    )


def _claim_seconds() -> int:
    return int(2 * settings.FLYWHEEL_WEBHOOK_TIMEOUT_S) + CLAIM_GRACE_S


def backoff_seconds(attempts: int) -> float:
    """The wait after the `attempts`-th failed attempt: base * 2**(attempts-1), capped."""
    base = settings.FLYWHEEL_WEBHOOK_BACKOFF_BASE_S
    return min(base * 2 ** (attempts - 1), settings.FLYWHEEL_WEBHOOK_BACKOFF_MAX_S)


def headers_for(*, event: WebhookEvent, secret: str, body: bytes, at: datetime) -> dict:
    """The three Standard Webhooks headers; the timestamp is the attempt's, as the
    specification asks, so a receiver's freshness window holds for retries."""
    signature = Webhook(secret).sign(msg_id=event.message_id, timestamp=at, data=body.decode())
    return {
        "webhook-id": event.message_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
    }


def delivery_claim(*, delivery_id: int) -> WebhookDelivery | None:
    """pending and due -> sending, with a deadline; None when another worker has it, it is
    not due, finished, or its endpoint is disabled. The row count decides."""
    now = timezone.now()
    claimed = WebhookDelivery.objects.filter(
        pk=delivery_id,
        status=WebhookDelivery.Status.PENDING,
        next_attempt_at__lte=now,
        endpoint__enabled=True,
    ).update(
        status=WebhookDelivery.Status.SENDING,
        claimed_until=now + timedelta(seconds=_claim_seconds()),
        attempts=F("attempts") + 1,
    )
    if claimed != 1:
        return None
    return WebhookDelivery.objects.select_related("event", "endpoint").get(pk=delivery_id)


def delivery_attempt(*, delivery_id: int) -> str:
    """One attempt: claim, POST (outside any transaction), record. Returns what happened."""
    delivery = delivery_claim(delivery_id=delivery_id)
    if delivery is None:
        return "skipped"
    event, endpoint = delivery.event, delivery.endpoint
    started = timezone.now()
    body = payload_bytes(event)
    result = webhook_http.post(
        url=endpoint.url,
        body=body,
        headers=headers_for(event=event, secret=endpoint.secret, body=body, at=started),
        excerpt_max=EXCERPT_MAX,
    )
    return _record(delivery=delivery, started=started, result=result)


def _record(*, delivery: WebhookDelivery, started: datetime, result) -> str:
    now = timezone.now()
    if result.ok:
        status, changes = WebhookDelivery.Status.DELIVERED, {"delivered_at": now}
    elif delivery.attempts >= settings.FLYWHEEL_WEBHOOK_MAX_ATTEMPTS:
        status, changes = WebhookDelivery.Status.FAILED, {}
    else:
        wait = timedelta(seconds=backoff_seconds(delivery.attempts))
        status, changes = WebhookDelivery.Status.PENDING, {"next_attempt_at": now + wait}
    with transaction.atomic():
        # Only while still ours: once a sweeper took the claim back (this worker was too
        # slow), or a second sweeper got here first, the row and its log are theirs.
        ours = WebhookDelivery.objects.filter(
            pk=delivery.pk, status=WebhookDelivery.Status.SENDING, attempts=delivery.attempts
        ).update(status=status, claimed_until=None, **changes)
        if not ours:
            return "lost claim"
        WebhookAttempt.objects.create(
            delivery=delivery,
            number=delivery.attempts,
            started_at=started,
            latency_ms=result.latency_ms,
            status_code=result.status_code,
            response_excerpt=result.excerpt,
            error=result.error,
            ok=result.ok,
        )
    return status


def deliveries_sweep(*, now: datetime | None = None) -> dict:
    """Periodic: take back claims whose worker died (recorded as a failed attempt, retried
    like one), then queue every due delivery whose job is not waiting in Redis."""
    now = now or timezone.now()
    reclaimed = 0
    for delivery in WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.SENDING, claimed_until__lt=now
    ).select_related("event", "endpoint")[:SWEEP_LIMIT]:
        lost = webhook_http.Result(False, None, "", ERR_ABANDONED, 0)
        if _record(delivery=delivery, started=delivery.claimed_until, result=lost) != "lost claim":
            reclaimed += 1
    due = WebhookDelivery.objects.filter(
        status=WebhookDelivery.Status.PENDING, next_attempt_at__lte=now, endpoint__enabled=True
    ).order_by("next_attempt_at")
    queued = 0
    for pk, attempts in due.values_list("pk", "attempts")[:SWEEP_LIMIT]:
        if not _job_waiting(_job_id(pk, attempts)) and delivery_enqueue(
            delivery_id=pk, attempts=attempts
        ):
            queued += 1
    return {"reclaimed": reclaimed, "queued": queued}


def _job_waiting(job_id: str) -> bool:
    """A job with this id is queued or running; a finished, failed or vanished one is not."""
    from rq.exceptions import NoSuchJobError
    from rq.job import Job, JobStatus

    try:
        job = Job.fetch(job_id, connection=fw_redis.client())
        return job.get_status() in (JobStatus.QUEUED, JobStatus.STARTED, JobStatus.SCHEDULED)
    except NoSuchJobError:
        return False
    except redis.RedisError:
        return True  # cannot tell; enqueueing would fail anyway
