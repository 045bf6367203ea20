"""Accessibility basics on the main pages, checked by axe-core (vendored, injected by
Playwright into a real Chromium): no serious or critical violation on any of them. Each
page's screenshot is saved under artifacts/pages/ for people to look at."""

import json
import os
import re
from pathlib import Path

import pytest

from tests import test_review_browser
from tests.test_csp_browser import PASSWORD, site  # noqa: F401
from tests.test_review_browser import ARTIFACTS, CHROMIUM, FLAGS

# The run (loss chart) and model of the training pages, on a frozen version (its bars).
from tests.test_training_views_runs import model, run, version  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright import sync_api

pytestmark = test_review_browser.pytestmark

AXE = Path(__file__).resolve().parent / "vendor" / "axe-4.14.1.min.js"
# WCAG 2.1 A and AA rules, the level public services are held to.
AXE_RUN = """async () => {
  const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""
SERIOUS = {"serious", "critical"}


def main_pages(objects: dict) -> list[str]:
    """Every page a person works on, for each role (the superuser sees them all)."""
    return [
        "/",
        "/review/",
        "/review/stats/",
        "/review/mine/",
        "/review/guidelines/",
        "/review/adjudication/",
        "/curation/runs/",
        "/curation/candidates/",
        "/curation/policy/",
        "/datasets/",
        "/datasets/support/",
        "/datasets/support/v1/",
        "/training/runs/",
        f"/training/runs/{objects['run'].pk}/",
        "/training/models/",
        f"/training/models/{objects['model'].pk}/",
    ]


def _slug(url: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", url.lower()).strip("-") or "home"


def test_the_main_pages_have_no_serious_accessibility_violation(live_server, site):  # noqa: F811
    found: dict[str, list[dict]] = {}
    statuses: dict[str, int] = {}
    (ARTIFACTS / "pages").mkdir(parents=True, exist_ok=True)
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        # axe is injected as a script tag, which the site's CSP rightly refuses; the CSP
        # has its own browser test (test_csp_browser.py).
        context = browser.new_context(viewport={"width": 1366, "height": 1000}, bypass_csp=True)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state("networkidle")
        for url in main_pages(site):
            response = page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("networkidle")
            statuses[url] = response.status
            page.add_script_tag(path=str(AXE))
            violations = page.evaluate(AXE_RUN)
            serious = [v for v in violations if v["impact"] in SERIOUS]
            if serious:
                found[url] = serious
            page.screenshot(path=str(ARTIFACTS / "pages" / f"{_slug(url)}.png"), full_page=True)
        browser.close()

    assert {url: s for url, s in statuses.items() if s != 200} == {}
    assert found == {}, json.dumps(found, indent=1)


@pytest.mark.django_db
def test_axe_is_the_pinned_vendored_build():
    head = AXE.read_text(encoding="utf-8")[:300]
    assert "axe v4.14.1" in head
