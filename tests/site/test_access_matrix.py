"""Who may open every page of the site, from every side, in one table.

The URL list is not written by hand: it is read from the project's URL
resolver, so a new named URL in curation, review, training or the site's own
pages fails ``test_every_url_is_in_the_table`` until its row is added below.
Left out on purpose, because they have their own access tests: the Django admin
and django-rq (tests/site/test_admin_access.py, tests/review/test_review_access.py) and the
token-authenticated API (tests/curation/test_api_ingest.py,
tests/training/datasets/test_training_api.py).

Each row gives, per method, what each persona gets: ``LOGIN`` (a redirect to
the login page), or a status code. Personas are tried least privileged first,
so a refused request runs before any that may change state.

Every page a role may open is also reachable from the navigation that role sees (issue 12
§5): for each persona, each argument-free page the table grants it (200) is linked from the
top bar, or from the one page named in REACHED_FROM.
"""

from __future__ import annotations

import re
from urllib.parse import quote

import pytest
from django.conf import settings
from django.contrib.auth.models import User
from django.test import Client
from django.urls import get_resolver, reverse

from flywheel_site.access import FORBIDDEN
from tests.support.access import SKIPPED_PREFIXES, URLS, objects_make, path_of
from tests.support.databases import shared_rows
from tests.support.personas import person

pytestmark = pytest.mark.django_db

LOGIN = "login"
PERSONAS = ("anonymous", "outsider", "annotator", "curator", "admin")

# What each persona gets, in PERSONAS order: anonymous, outsider (no role),
# annotator, curator, admin. Roles nest: annotator < curator < admin.
L = LOGIN
ANNOTATOR_PAGE = (L, 403, 200, 200, 200)
CURATOR_PAGE = (L, 403, 403, 200, 200)
ADMIN_PAGE = (L, 403, 403, 403, 200)
# Under @role_required the role is looked at first: only those who may call the view
# learn that it takes another method.
WRONG_METHOD_ANNOTATOR = (L, 403, 405, 405, 405)
WRONG_METHOD_CURATOR = (L, 403, 403, 405, 405)
WRONG_METHOD_ADMIN = (L, 403, 403, 403, 405)
# An action whose refusal re-renders its page at the action's URL: a GET there (Back,
# reload) is sent to that page (flywheel_site.http.require_post).
TO_PAGE_ANNOTATOR = (L, 403, 302, 302, 302)
TO_PAGE_CURATOR = (L, 403, 403, 302, 302)
TO_PAGE_ADMIN = (L, 403, 403, 403, 302)
# Curation and training pages take no method decorator: a POST is a GET.
ANY_METHOD_CURATOR = {"get": CURATOR_PAGE, "post": CURATOR_PAGE}
ANY_METHOD_ADMIN = {"get": ADMIN_PAGE, "post": ADMIN_PAGE}

TABLE: dict[str, dict[str, tuple]] = {
    # The site's own pages. Home is the flywheel dashboard for curators and admins and
    # sends annotators to their queue.
    "home": {"get": (L, 403, 302, 200, 200), "post": (L, 403, 302, 200, 200)},
    "healthz": {"get": (200, 200, 200, 200, 200), "post": (405, 405, 405, 405, 405)},
    "favicon": {"get": (301, 301, 301, 301, 301), "post": (405, 405, 405, 405, 405)},
    # Prometheus: a token or an allowed address, never a session (tests/site/test_prometheus.py).
    "prometheus_metrics": {"get": (401, 401, 401, 401, 401), "post": (405, 405, 405, 405, 405)},
    # Logged-in users are sent on; a failed log-in shows the form again.
    "login": {"get": (200, 302, 302, 302, 302), "post": (200, 302, 302, 302, 302)},
    "logout": {"get": (405, 405, 405, 405, 405), "post": (200, 200, 200, 200, 200)},
    # Asks for the password again (before a change in the Django admin or django-rq); a POST
    # without the right one shows the form again.
    "reauth": {"get": (L, 200, 200, 200, 200), "post": (L, 422, 422, 422, 422)},
    # Review: annotator pages.
    "review:home": {"get": ANNOTATOR_PAGE, "post": WRONG_METHOD_ANNOTATOR},
    # Claims the next item and redirects to it (or home when none is left).
    "review:next": {"get": WRONG_METHOD_ANNOTATOR, "post": (L, 403, 302, 302, 302)},
    # Saves the queue picker; an empty form names no queue kind: 422.
    "review:queue": {"get": TO_PAGE_ANNOTATOR, "post": (L, 403, 422, 422, 422)},
    # The item is not leased to anyone here: an annotator gets the lease-lost
    # screen (409, no content); curators inspect it.
    "review:item": {"get": (L, 403, 409, 200, 200), "post": WRONG_METHOD_ANNOTATOR},
    "review:submit": {"get": TO_PAGE_ANNOTATOR, "post": (L, 403, 409, 409, 409)},
    "review:skip": {"get": TO_PAGE_ANNOTATOR, "post": (L, 403, 409, 409, 409)},
    # Without HTMX a lost lease is a message and a redirect to the item.
    "review:renew": {"get": WRONG_METHOD_ANNOTATOR, "post": (L, 403, 302, 302, 302)},
    "review:diff": {"get": TO_PAGE_ANNOTATOR, "post": (L, 403, 409, 200, 200)},
    "review:mine": {"get": ANNOTATOR_PAGE, "post": WRONG_METHOD_ANNOTATOR},
    # Someone else's review: 404 to an annotator, so they cannot learn it exists.
    "review:review": {"get": (L, 403, 404, 200, 200), "post": WRONG_METHOD_ANNOTATOR},
    "review:guidelines": {"get": ANNOTATOR_PAGE, "post": WRONG_METHOD_ANNOTATOR},
    # Review: curator pages. The item is done, so claiming or settling it is refused.
    "review:claim": {"get": TO_PAGE_CURATOR, "post": (L, 403, 403, 409, 409)},
    "review:adjudicate": {"get": TO_PAGE_CURATOR, "post": (L, 403, 403, 409, 409)},
    "review:adjudication": {"get": CURATOR_PAGE, "post": WRONG_METHOD_CURATOR},
    "review:adjudication_next": {"get": WRONG_METHOD_CURATOR, "post": (L, 403, 403, 302, 302)},
    "review:stats": {"get": CURATOR_PAGE, "post": WRONG_METHOD_CURATOR},
    # An empty body is refused with the form shown again.
    "review:guidelines_edit": {"get": CURATOR_PAGE, "post": (L, 403, 403, 422, 422)},
    "review:guidelines_preview": {"get": TO_PAGE_CURATOR, "post": (L, 403, 403, 200, 200)},
    # Calibration: curators; an empty POST lacks the reason and changes nothing.
    "review:calibration": {"get": CURATOR_PAGE, "post": WRONG_METHOD_CURATOR},
    "review:calibration_apply": {"get": TO_PAGE_CURATOR, "post": (L, 403, 403, 422, 422)},
    # Curation: curator pages.
    "curation:runs": ANY_METHOD_CURATOR,
    "curation:candidates": ANY_METHOD_CURATOR,
    "curation:candidate": ANY_METHOD_CURATOR,
    "curation:policy": ANY_METHOD_CURATOR,
    # Without an action (kind) in the query the explorer's bulk page is a 400.
    "curation:candidates_bulk": {"get": (L, 403, 403, 400, 400), "post": (L, 403, 403, 400, 400)},
    # Without a reason the single action is refused with a message on the candidate.
    "curation:candidate_act": {"get": WRONG_METHOD_CURATOR, "post": (L, 403, 403, 302, 302)},
    "curation:action": ANY_METHOD_CURATOR,
    "review:item_by_candidate": {"get": (L, 403, 403, 302, 302), "post": WRONG_METHOD_CURATOR},
    "curation:policy_version": ANY_METHOD_CURATOR,
    # Retrying failed curation sends the curator back to the runs page.
    "curation:interactions_retry": {"get": WRONG_METHOD_CURATOR, "post": (L, 403, 403, 302, 302)},
    "curation:interaction_retry": {"get": WRONG_METHOD_CURATOR, "post": (L, 403, 403, 302, 302)},
    # Training: admin pages; actions redirect (with a message when refused).
    "datasets:datasets": ANY_METHOD_ADMIN,
    "datasets:quarantines": ANY_METHOD_ADMIN,
    "datasets:dataset": ANY_METHOD_ADMIN,
    "datasets:freeze": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "datasets:version": ANY_METHOD_ADMIN,
    "datasets:diff": ANY_METHOD_ADMIN,
    # Consequential actions need a reason: an empty body changes nothing (422).
    "datasets:quarantine": {"get": TO_PAGE_ADMIN, "post": (L, 403, 403, 403, 422)},
    "datasets:download": ANY_METHOD_ADMIN,
    "datasets:pair": ANY_METHOD_ADMIN,
    # GET asks for confirmation; POST without a reason is refused.
    "datasets:pair_quarantine": {"get": ADMIN_PAGE, "post": (L, 403, 403, 403, 422)},
    "datasets:pair_correct": {"get": TO_PAGE_ADMIN, "post": (L, 403, 403, 403, 422)},
    # Erasure: admins; an empty user id is refused (400) and erases nothing.
    "audit:erase": {"get": ADMIN_PAGE, "post": (L, 403, 403, 403, 400)},
    "audit:log": {"get": ADMIN_PAGE, "post": WRONG_METHOD_ADMIN},
    "audit:log_csv": {"get": ADMIN_PAGE, "post": WRONG_METHOD_ADMIN},
    "audit:log_jsonl": {"get": ADMIN_PAGE, "post": WRONG_METHOD_ADMIN},
    "runs:runs": ANY_METHOD_ADMIN,
    "runs:start": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "runs:run": ANY_METHOD_ADMIN,
    "runs:models": ANY_METHOD_ADMIN,
    "runs:model": ANY_METHOD_ADMIN,
    "registry:experiment_stop": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "registry:experiment_extend": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "registry:experiment_decide": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "registry:alert_rollback": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    # Webhooks: admin pages; an empty form is refused (400), actions redirect.
    # A form posts to its page's own URL, so a refusal re-renders where GET answers too.
    "webhooks:endpoints": {"get": ADMIN_PAGE, "post": (L, 403, 403, 403, 400)},
    "webhooks:endpoint": {"get": ADMIN_PAGE, "post": (L, 403, 403, 403, 400)},
    "webhooks:enable": {"get": TO_PAGE_ADMIN, "post": (L, 403, 403, 403, 400)},
    "webhooks:test": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "webhooks:deliveries": ANY_METHOD_ADMIN,
    "webhooks:delivery": ANY_METHOD_ADMIN,
    "webhooks:resend": {"get": WRONG_METHOD_ADMIN, "post": (L, 403, 403, 403, 302)},
    "runs:promote": {"get": TO_PAGE_ADMIN, "post": (L, 403, 403, 403, 422)},
    "runs:reject": {"get": TO_PAGE_ADMIN, "post": (L, 403, 403, 403, 422)},
}


# The personas of tests/conftest.py, by the same names.
PEOPLE = {
    "outsider": ("oscar", None),
    "annotator": ("annie", "annotator"),
    "curator": ("carla", "curator"),
    "admin": ("ada", "admin"),
}


@pytest.fixture(scope="module")
def shared(django_db_setup, django_db_blocker):
    """The rows the URLs name and a logged-in session per persona, made once for the module
    (each test rolls its own changes back to them). Per test, the 71 URLs each froze a
    version, started a canary and logged in eight times."""
    with shared_rows(django_db_blocker):
        people = {persona: person(name, role) for persona, (name, role) in PEOPLE.items()}
        objects = objects_make(person("arthur", "annotator"), people["admin"])
        sessions = {}
        for persona, user in people.items():
            client = Client()
            client.force_login(user)
            sessions[persona] = client.cookies[settings.SESSION_COOKIE_NAME].value
        yield objects, people, sessions


@pytest.fixture
def objects(shared):
    return shared[0]


def _shared_persona(persona: str):
    @pytest.fixture(name=persona)
    def fixture(shared):
        return shared[1][persona]

    return fixture


# This module's personas are the shared rows (the conftest's would make the users again).
outsider, annotator, curator, admin = (_shared_persona(persona) for persona in PEOPLE)


@pytest.fixture
def annotator2(shared):
    return User.objects.get(username="arthur")


def client_for(persona: str, shared) -> Client:
    """A client in the persona's shared session (a logout in a test is rolled back)."""
    client = Client()
    if persona != "anonymous":
        client.cookies[settings.SESSION_COOKIE_NAME] = shared[2][persona]
    return client


def outcome(response) -> str | int:
    if response.status_code == 302 and response["Location"].startswith("/login/"):
        return LOGIN
    return response.status_code


def test_every_url_is_in_the_table():
    missing = sorted(set(URLS) - set(TABLE))
    stale = sorted(set(TABLE) - set(URLS))
    assert not missing, (
        f"URLs with no row in TABLE (tests/site/test_access_matrix.py): {', '.join(missing)}. "
        "Add what anonymous, outsider, annotator, curator and admin get from each."
    )
    assert not stale, f"TABLE rows for URLs that no longer exist: {', '.join(stale)}"


def test_the_walk_reaches_every_app_and_leaves_out_only_what_it_says():
    namespaces = {name.split(":")[0] for name in URLS if ":" in name}
    assert {"review", "curation", "datasets", "runs", "registry", "webhooks"} <= namespaces
    routes = [str(p.pattern) for p in get_resolver().url_patterns]
    assert set(SKIPPED_PREFIXES) <= set(routes)  # the skipped parts exist and are whole


@pytest.mark.parametrize("name", list(URLS))
def test_each_persona_gets_what_the_table_says(name, objects, shared):
    assert name in TABLE, f"{name} is not in TABLE: see test_every_url_is_in_the_table"
    path = path_of(name, objects)
    wrong = []
    for method, expected in TABLE[name].items():
        for persona, want in zip(PERSONAS, expected, strict=True):
            response = getattr(client_for(persona, shared), method)(path)
            got = outcome(response)
            if got != want:
                wrong.append(f"{method.upper()} {path} as {persona}: {got}, table says {want}")
            elif got == LOGIN:
                # Sent to log in and brought back here afterwards.
                assert response["Location"] == f"/login/?next={quote(path)}", response["Location"]
            elif got == 403:
                assert FORBIDDEN in response.content.decode(), (method, path, persona)
    assert not wrong, "\n".join(wrong)


# --- more principals (issue 18) ------------------------------------------------------------


def test_a_staff_user_without_a_role_gets_what_an_outsider_gets(objects):
    """Django's staff flag is not a Flywheel role: on every page, and in the Django admin and
    django-rq, a staff-only user is an outsider."""
    client = Client()
    staff = User.objects.create_user(username="stella", is_staff=True)
    outsider = PERSONAS.index("outsider")
    wrong = []
    for name in URLS:
        client.force_login(staff)  # again: the walk passes through logout
        path = path_of(name, objects)
        for method, expected in TABLE[name].items():
            got = outcome(getattr(client, method)(path))
            if got != expected[outsider]:
                wrong.append(
                    f"{method.upper()} {path}: {got}, an outsider gets {expected[outsider]}"
                )
    for path in ("/admin/", "/admin/auth/user/", "/django-rq/", "/django-rq/queues/0/"):
        for method in ("get", "post"):
            if (got := outcome(getattr(client, method)(path))) != 403:
                wrong.append(f"{method.upper()} {path}: {got}, not 403")
    assert not wrong, "\n".join(wrong)


# What a metrics token of source "own" gets from each read, and one also granted the
# all_sources scope: a token reads its own source unless the cross-source scope says so.
TOKEN_READS = {
    "/api/v1/metrics": (200, 200),
    "/api/v1/metrics?source=own": (200, 200),
    "/api/v1/metrics?source=other": (403, 200),
    "/metrics": (403, 200),  # Prometheus counts every source
    "/api/v1/route?key=user-1": (403, 403),  # no route scope
    "/api/v1/datasets/support/versions/1": (403, 403),  # no export scope
    "/api/v1/datasets/support/versions/1/manifest.json": (403, 403),  # no export scope
}


@pytest.mark.parametrize("path", list(TOKEN_READS))
def test_own_source_and_cross_source_tokens_get_what_the_table_says(path):
    from curation.models import Source
    from curation.services import api_token_create

    Source.objects.create(name="other")
    _, own = api_token_create(source_name="own", name="m", scopes=["metrics"])
    _, wide = api_token_create(source_name="own", name="w", scopes=["metrics", "all_sources"])
    got = tuple(
        Client().get(path, headers={"Authorization": f"Bearer {raw}"}).status_code
        for raw in (own, wide)
    )
    assert got == TOKEN_READS[path]


# --- navigation: every page a role may open, it can reach -------------------------------------

# Pages that are not destinations in their own right, and where they are reached from.
REACHED_FROM = {
    "healthz": None,  # for load balancers
    "favicon": None,  # for browsers
    "reauth": None,  # asked for by the Django admin and django-rq before a change
    "review:guidelines_edit": "review:guidelines",
    "webhooks:deliveries": "webhooks:endpoints",
    "audit:log_csv": "audit:log",
    "audit:log_jsonl": "audit:log",
}
# Not in the access table (they have their own access tests) but pages people use.
ADMIN_EXTRA = ("admin:index", "django_rq:home")


def hrefs(html: str, *, within: str | None = None) -> set[str]:
    if within:
        match = re.search(rf"<{within}\b.*?</{within}>", html, re.S)
        html = match.group(0) if match else ""
    return set(re.findall(r'href="([^"]+)"', html))


def pages_for(persona: str) -> list[str]:
    index = PERSONAS.index(persona)
    return sorted(
        name
        for name, row in TABLE.items()
        if not URLS[name][1] and row["get"][index] == 200 and name not in REACHED_FROM
    )


@pytest.mark.parametrize("persona", ["annotator", "curator", "admin"])
def test_every_page_of_a_role_is_in_its_navigation(persona, request):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    nav = hrefs(client.get(reverse("review:guidelines")).content.decode(), within="nav")
    wanted = pages_for(persona) + (list(ADMIN_EXTRA) if persona == "admin" else [])
    missing = [name for name in wanted if reverse(name) not in nav]
    assert pages_for(persona), "the access table grants this role no page at all"
    assert missing == [], f"pages {persona}s may open but cannot reach from the navigation"


@pytest.mark.parametrize("persona", ["annotator", "curator", "admin"])
def test_a_role_is_not_shown_links_it_may_not_open(persona, request):
    client = Client()
    client.force_login(request.getfixturevalue(persona))
    nav = hrefs(client.get(reverse("review:guidelines")).content.decode(), within="nav")
    index = PERSONAS.index(persona)
    refused = {
        reverse(name)
        for name, row in TABLE.items()
        if not URLS[name][1] and row["get"][index] == 403
    }
    assert nav & refused == set()


def test_pages_left_out_of_the_navigation_are_linked_from_their_page(admin):
    client = Client()
    client.force_login(admin)
    for name, parent in REACHED_FROM.items():
        if parent:
            assert reverse(name) in hrefs(client.get(reverse(parent)).content.decode()), name
