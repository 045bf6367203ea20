"""Every page a role may open is reachable from the navigation that role sees (issue 12
§5): for each persona, each argument-free page the access table grants it (200) is linked
from the top bar, or from the one page named in REACHED_FROM."""

import re

import pytest
from django.test import Client
from django.urls import reverse

from tests.test_access_matrix import PERSONAS, TABLE, URLS

pytestmark = pytest.mark.django_db

# Pages that are not destinations in their own right, and where they are reached from.
REACHED_FROM = {
    "healthz": None,  # for load balancers
    "favicon": None,  # for browsers
    "review:guidelines_edit": "review:guidelines",
    "webhooks:deliveries": "webhooks:endpoints",
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
