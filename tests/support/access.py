"""The site's named URLs and one real row per model they name: what the access matrix walks,
and what the hostile-input walk over every page reuses."""

from __future__ import annotations

from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now

from curation import policies
from curation.models import CandidateAction
from tests.support.review import make_items, review
from tests.support.training import frozen_version, registered
from training.models import GoldPair, WebhookDelivery, WebhookEndpoint, WebhookEvent
from training.webhooks import services as webhooks

# Route prefixes of the URLs the access table leaves to their own tests.
SKIPPED_PREFIXES = ("admin/", "django-rq/", "api/v1/")


def named_urls(patterns=None, namespace: str = "", prefix: str = "", kwargs=()) -> dict:
    """Every named URL below the root resolver: its full name to its route and
    the names of the keyword arguments its converters take."""
    found = {}
    for entry in get_resolver().url_patterns if patterns is None else patterns:
        route = prefix + str(entry.pattern)
        if route.startswith(SKIPPED_PREFIXES):
            continue
        names = (*kwargs, *getattr(entry.pattern, "converters", {}))
        if isinstance(entry, URLResolver):
            inner = f"{namespace}{entry.namespace}:" if entry.namespace else namespace
            found.update(named_urls(entry.url_patterns, inner, route, names))
        elif isinstance(entry, URLPattern) and entry.name:
            found[namespace + entry.name] = (route, names)
    return found


URLS = named_urls()

PK_OF = {
    "review:review": "review",
    "curation:candidate": "candidate",
    "curation:candidate_act": "candidate",
    "curation:action": "action",
    "curation:interaction_retry": "interaction",
    "runs:run": "run",
    "runs:model": "model",
    "runs:promote": "model",
    "runs:reject": "model",
    "registry:experiment_stop": "experiment",
    "registry:experiment_extend": "experiment",
    "registry:experiment_decide": "experiment",
    "registry:alert_rollback": "alert",
    "webhooks:endpoint": "endpoint",
    "webhooks:enable": "endpoint",
    "webhooks:test": "endpoint",
    "webhooks:delivery": "delivery",
    "webhooks:resend": "delivery",
    "datasets:pair": "pair",
    "datasets:pair_quarantine": "pair",
    "datasets:pair_correct": "pair",
}


def objects_make(annotator2, admin) -> dict:
    """One real row per model a URL names, for its keyword arguments."""
    (item, *_) = make_items(3)
    done = review(item, annotator2)
    version = frozen_version(admin)
    model = registered(version)
    endpoint, delivery = webhook_rows()
    return {
        "endpoint": endpoint,
        "delivery": delivery,
        "item": item,
        "review": done,
        "candidate": item.candidate,
        "interaction": item.candidate.interaction,
        "policy": policies.policy_current(),
        "version": version,
        "run": model.run,
        "model": model,
        **canary_rows(version, model),
        "action": CandidateAction.objects.create(
            kind=CandidateAction.Kind.REJECT, user=admin, reason="matrix", max_id=0
        ),
        "pair": GoldPair.objects.order_by("pk").first(),
    }


def canary_rows(version, model) -> dict:
    """A running experiment on the model and an open monitor alert on another."""
    from training.models import MonitorAlert
    from training.registry.services import model_version_canary_start

    experiment = model_version_canary_start(model=model, user=None, reason="matrix")
    current = registered(version, serving_name="current", status="promoted")
    return {"experiment": experiment, "alert": MonitorAlert.objects.create(
        model=current, metric="bad_outcome", evidence={})}  # fmt: skip


def webhook_rows():
    """An endpoint (written directly: the SSRF guard would resolve its host) and a
    delivery of an event to it."""
    endpoint = WebhookEndpoint.objects.create(
        url="https://hooks.example.com/in",
        secret=webhooks.secret_generate(),
        event_types=[webhooks.MODEL_GATED],
    )
    event = WebhookEvent.objects.create(type=webhooks.MODEL_GATED, timestamp=now(), data={})
    return endpoint, WebhookDelivery.objects.create(event=event, endpoint=endpoint)


def path_of(name: str, objects: dict) -> str:
    """The URL with its arguments taken from the fixture rows, by keyword name."""
    _, names = URLS[name]
    values = {
        "pk": lambda: objects[PK_OF.get(name, "item")].pk,
        "candidate_pk": lambda: objects["candidate"].pk,
        "version": lambda: objects["policy"].version,
        "name": lambda: objects["version"].dataset.name,
        "number": lambda: objects["version"].number,
        "file": lambda: "manifest.json",
    }
    return reverse(name, kwargs={kwarg: values[kwarg]() for kwarg in names})
