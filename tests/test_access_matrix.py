"""Who may open every page of the site, from every side, in one table.

The URL list is not written by hand: it is read from the project's URL
resolver, so a new named URL in curation, review, training or the site's own
pages fails ``test_every_url_is_in_the_table`` until its row is added below.
Left out on purpose, because they have their own access tests: the Django admin
and django-rq (tests/test_admin_access.py, tests/test_review_access.py) and the
token-authenticated API (tests/test_api_ingest.py, tests/test_training_api.py).

Each row gives, per method, what each persona gets: ``LOGIN`` (a redirect to
the login page), or a status code. Personas are tried least privileged first,
so a refused request runs before any that may change state.
"""

from __future__ import annotations

from urllib.parse import quote

import pytest
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver, reverse
from django.utils.timezone import now

from curation import policies
from curation.models import CandidateAction
from flywheel_site.access import FORBIDDEN
from tests.review_helpers import make_items, review
from tests.test_training_runs import frozen_version, registered
from training import webhooks
from training.models import GoldPair, WebhookDelivery, WebhookEndpoint, WebhookEvent

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("export_dir")]

# Route prefixes of the URLs this table leaves to their own tests (see above).
SKIPPED_PREFIXES = ("admin/", "django-rq/", "api/v1/")
LOGIN = "login"
PERSONAS = ("anonymous", "outsider", "annotator", "curator", "admin")


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


# What each persona gets, in PERSONAS order: anonymous, outsider (no role),
# annotator, curator, admin. Roles nest: annotator < curator < admin.
L = LOGIN
ANNOTATOR_PAGE = (L, 403, 200, 200, 200)
CURATOR_PAGE = (L, 403, 403, 200, 200)
ADMIN_PAGE = (L, 403, 403, 403, 200)
# The wrong method on a review view: logged out is sent to log in first, then
# require_GET/require_POST answers before the role is looked at.
WRONG_METHOD = (L, 405, 405, 405, 405)
# Curation and training pages take no method decorator: a POST is a GET.
ANY_METHOD_CURATOR = {"get": CURATOR_PAGE, "post": CURATOR_PAGE}
ANY_METHOD_ADMIN = {"get": ADMIN_PAGE, "post": ADMIN_PAGE}

TABLE: dict[str, dict[str, tuple]] = {
    # The site's own pages. Home is the flywheel dashboard for curators and admins and
    # sends annotators to their queue.
    "home": {"get": (L, 403, 302, 200, 200), "post": (L, 403, 302, 200, 200)},
    "healthz": {"get": (200, 200, 200, 200, 200), "post": (405, 405, 405, 405, 405)},
    "favicon": {"get": (301, 301, 301, 301, 301), "post": (405, 405, 405, 405, 405)},
    # Logged-in users are sent on; a failed log-in shows the form again.
    "login": {"get": (200, 302, 302, 302, 302), "post": (200, 302, 302, 302, 302)},
    "logout": {"get": (405, 405, 405, 405, 405), "post": (200, 200, 200, 200, 200)},
    # Review: annotator pages.
    "review:home": {"get": ANNOTATOR_PAGE, "post": WRONG_METHOD},
    # Claims the next item and redirects to it (or home when none is left).
    "review:next": {"get": WRONG_METHOD, "post": (L, 403, 302, 302, 302)},
    # Saves the queue picker; an empty form names no queue kind: 422.
    "review:queue": {"get": WRONG_METHOD, "post": (L, 403, 422, 422, 422)},
    # The item is not leased to anyone here: an annotator gets the lease-lost
    # screen (409, no content); curators inspect it.
    "review:item": {"get": (L, 403, 409, 200, 200), "post": WRONG_METHOD},
    "review:submit": {"get": WRONG_METHOD, "post": (L, 403, 409, 409, 409)},
    "review:skip": {"get": WRONG_METHOD, "post": (L, 403, 409, 409, 409)},
    # Without HTMX a lost lease is a message and a redirect to the item.
    "review:renew": {"get": WRONG_METHOD, "post": (L, 403, 302, 302, 302)},
    "review:diff": {"get": WRONG_METHOD, "post": (L, 403, 409, 200, 200)},
    "review:mine": {"get": ANNOTATOR_PAGE, "post": WRONG_METHOD},
    # Someone else's review: 404 to an annotator, so they cannot learn it exists.
    "review:review": {"get": (L, 403, 404, 200, 200), "post": WRONG_METHOD},
    "review:guidelines": {"get": ANNOTATOR_PAGE, "post": WRONG_METHOD},
    # Review: curator pages. The item is done, so claiming or settling it is refused.
    "review:claim": {"get": WRONG_METHOD, "post": (L, 403, 403, 409, 409)},
    "review:adjudicate": {"get": WRONG_METHOD, "post": (L, 403, 403, 409, 409)},
    "review:adjudication": {"get": CURATOR_PAGE, "post": WRONG_METHOD},
    "review:adjudication_next": {"get": WRONG_METHOD, "post": (L, 403, 403, 302, 302)},
    "review:stats": {"get": CURATOR_PAGE, "post": WRONG_METHOD},
    # An empty body is refused with the form shown again.
    "review:guidelines_edit": {"get": CURATOR_PAGE, "post": (L, 403, 403, 422, 422)},
    "review:guidelines_preview": {"get": WRONG_METHOD, "post": (L, 403, 403, 200, 200)},
    # Calibration: curators; an empty POST lacks the reason and changes nothing.
    "review:calibration": {"get": CURATOR_PAGE, "post": WRONG_METHOD},
    "review:calibration_apply": {"get": WRONG_METHOD, "post": (L, 403, 403, 422, 422)},
    # Curation: curator pages.
    "curation:runs": ANY_METHOD_CURATOR,
    "curation:candidates": ANY_METHOD_CURATOR,
    "curation:candidate": ANY_METHOD_CURATOR,
    "curation:policy": ANY_METHOD_CURATOR,
    # Without an action (kind) in the query the explorer's bulk page is a 400.
    "curation:candidates_bulk": {"get": (L, 403, 403, 400, 400), "post": (L, 403, 403, 400, 400)},
    # Without a reason the single action is refused with a message on the candidate.
    "curation:candidate_act": {"get": WRONG_METHOD, "post": (L, 403, 403, 302, 302)},
    "curation:action": ANY_METHOD_CURATOR,
    "review:item_by_candidate": {"get": (L, 403, 403, 302, 302), "post": WRONG_METHOD},
    "curation:policy_version": ANY_METHOD_CURATOR,
    # Retrying failed curation sends the curator back to the runs page.
    "curation:interactions_retry": {"get": WRONG_METHOD, "post": (L, 403, 403, 302, 302)},
    "curation:interaction_retry": {"get": WRONG_METHOD, "post": (L, 403, 403, 302, 302)},
    # Training: admin pages; actions redirect (with a message when refused).
    "training:datasets": ANY_METHOD_ADMIN,
    "training:quarantines": ANY_METHOD_ADMIN,
    "training:dataset": ANY_METHOD_ADMIN,
    "training:freeze": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "training:version": ANY_METHOD_ADMIN,
    "training:diff": ANY_METHOD_ADMIN,
    # Consequential actions need a reason: an empty body changes nothing (422).
    "training:quarantine": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 422)},
    "training:download": ANY_METHOD_ADMIN,
    "training:pair": ANY_METHOD_ADMIN,
    # GET asks for confirmation; POST without a reason is refused.
    "training:pair_quarantine": {"get": ADMIN_PAGE, "post": (L, 403, 403, 403, 422)},
    "training:pair_correct": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 422)},
    # Erasure: admins; an empty user id is refused (400) and erases nothing.
    "audit:erase": {"get": ADMIN_PAGE, "post": (L, 403, 403, 403, 400)},
    "training_runs:runs": ANY_METHOD_ADMIN,
    "training_runs:start": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "training_runs:run": ANY_METHOD_ADMIN,
    "training_runs:models": ANY_METHOD_ADMIN,
    "training_runs:model": ANY_METHOD_ADMIN,
    "training_runs:experiment_stop": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "training_runs:experiment_extend": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "training_runs:experiment_decide": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "training_runs:alert_rollback": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    # Webhooks: admin pages; an empty form is refused (400), actions redirect.
    "webhooks:endpoints": ANY_METHOD_ADMIN,
    "webhooks:create": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 400)},
    "webhooks:endpoint": ANY_METHOD_ADMIN,
    "webhooks:edit": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 400)},
    "webhooks:enable": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 400)},
    "webhooks:test": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "webhooks:deliveries": ANY_METHOD_ADMIN,
    "webhooks:delivery": ANY_METHOD_ADMIN,
    "webhooks:resend": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 302)},
    "training_runs:promote": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 422)},
    "training_runs:reject": {"get": WRONG_METHOD, "post": (L, 403, 403, 403, 422)},
}

# Which fixture row a URL's ``pk`` names; review items unless said here.
PK_OF = {
    "review:review": "review",
    "curation:candidate": "candidate",
    "curation:candidate_act": "candidate",
    "curation:action": "action",
    "curation:interaction_retry": "interaction",
    "training_runs:run": "run",
    "training_runs:model": "model",
    "training_runs:promote": "model",
    "training_runs:reject": "model",
    "training_runs:experiment_stop": "experiment",
    "training_runs:experiment_extend": "experiment",
    "training_runs:experiment_decide": "experiment",
    "training_runs:alert_rollback": "alert",
    "webhooks:endpoint": "endpoint",
    "webhooks:edit": "endpoint",
    "webhooks:enable": "endpoint",
    "webhooks:test": "endpoint",
    "webhooks:delivery": "delivery",
    "webhooks:resend": "delivery",
    "training:pair": "pair",
    "training:pair_quarantine": "pair",
    "training:pair_correct": "pair",
}


@pytest.fixture
def objects(annotator2, admin):
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
    from training.registry import model_version_canary_start

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


def client_for(persona: str, request) -> Client:
    client = Client()
    if persona != "anonymous":
        client.force_login(request.getfixturevalue(persona))
    return client


def outcome(response) -> str | int:
    if response.status_code == 302 and response["Location"].startswith("/login/"):
        return LOGIN
    return response.status_code


def test_every_url_is_in_the_table():
    missing = sorted(set(URLS) - set(TABLE))
    stale = sorted(set(TABLE) - set(URLS))
    assert not missing, (
        f"URLs with no row in TABLE (tests/test_access_matrix.py): {', '.join(missing)}. "
        "Add what anonymous, outsider, annotator, curator and admin get from each."
    )
    assert not stale, f"TABLE rows for URLs that no longer exist: {', '.join(stale)}"


def test_the_walk_reaches_every_app_and_leaves_out_only_what_it_says():
    namespaces = {name.split(":")[0] for name in URLS if ":" in name}
    assert {"review", "curation", "training", "training_runs"} <= namespaces
    routes = [str(p.pattern) for p in get_resolver().url_patterns]
    assert set(SKIPPED_PREFIXES) <= set(routes)  # the skipped parts exist and are whole


@pytest.mark.parametrize("name", list(URLS))
def test_each_persona_gets_what_the_table_says(name, objects, request):
    assert name in TABLE, f"{name} is not in TABLE: see test_every_url_is_in_the_table"
    path = path_of(name, objects)
    wrong = []
    for method, expected in TABLE[name].items():
        for persona, want in zip(PERSONAS, expected, strict=True):
            response = getattr(client_for(persona, request), method)(path)
            got = outcome(response)
            if got != want:
                wrong.append(f"{method.upper()} {path} as {persona}: {got}, table says {want}")
            elif got == LOGIN:
                # Sent to log in and brought back here afterwards.
                assert response["Location"] == f"/login/?next={quote(path)}", response["Location"]
            elif got == 403:
                assert FORBIDDEN in response.content.decode(), (method, path, persona)
    assert not wrong, "\n".join(wrong)
