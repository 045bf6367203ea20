"""Accessibility basics on the main pages, checked by axe-core (vendored, injected by
Playwright into a real Chromium): no serious or critical violation on any of them. Each
page's screenshot is saved under artifacts/pages/ for people to look at."""

import json
import re

from tests.support.browser import ARTIFACTS, AXE, axe_serious, wait_for_settled


def _slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-") or "home"


def test_the_main_pages_have_no_serious_accessibility_violation(
    browser_page, live_server, superuser, site
):
    found: dict[str, list[dict]] = {}
    statuses: dict[str, int] = {}
    (ARTIFACTS / "pages").mkdir(parents=True, exist_ok=True)
    # axe is injected as a script tag, which the site's CSP rightly refuses; the CSP has its
    # own browser test (test_csp_browser.py).
    page = browser_page(superuser, bypass_csp=True)
    for url in site["pages"]:
        response = page.goto(f"{live_server.url}{url}")
        wait_for_settled(page)
        statuses[url] = response.status
        serious = axe_serious(page)
        if serious:
            found[url] = serious
        page.screenshot(path=str(ARTIFACTS / "pages" / f"{_slug(url)}.png"), full_page=True)

    assert {url: s for url, s in statuses.items() if s != 200} == {}
    assert found == {}, json.dumps(found, indent=1)


def test_axe_is_the_pinned_vendored_build():
    head = AXE.read_text(encoding="utf-8")[:300]
    assert "axe v4.14.1" in head
