"""The main pages in a real Chromium under the Content-Security-Policy: none of them (nor
htmx, review.js or Swagger UI) trips a violation, and the review screen still works."""

import os

import django_rq
import pytest
from django.contrib.auth.models import Group, User

from tests import test_review_browser
from tests.review_helpers import make_items
from tests.test_review_browser import CHROMIUM, FLAGS

# The run (loss chart) and model of the training pages, on a frozen version (its bars).
from tests.test_training_views_runs import model, run, version  # noqa: F401

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright import sync_api

PASSWORD = "correct-horse-battery-csp"

pytestmark = test_review_browser.pytestmark

# Reports every violation to the test, in every page the context opens, before any page
# script runs. Init scripts come from the browser driver, so the policy does not apply.
LISTEN = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""


@pytest.fixture
def site(request):
    """A superuser (who sees every page) and something on each page: review items, a queued
    job, a frozen dataset version with its composition bars, a run with its loss chart, a
    model."""
    user = User.objects.create_superuser("root", password=PASSWORD)
    user.groups.add(Group.objects.get_or_create(name="admin")[0])
    make_items(2)
    # Queue 0 of the dashboard: queues are listed by name.
    django_rq.get_queue("curation", commit_mode="auto").enqueue("builtins.print", "queued")
    return {"run": request.getfixturevalue("run"), "model": request.getfixturevalue("model")}


def test_the_main_pages_load_with_no_policy_violation(live_server, site):
    violations: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        context = browser.new_context(viewport={"width": 1366, "height": 1000})
        context.expose_function("reportViolation", lambda text: violations.append(text))
        context.add_init_script(LISTEN)
        page = context.new_page()
        page.set_default_timeout(15_000)
        page.on(
            "console",
            lambda message: (
                "Content Security Policy" in message.text
                and violations.append(f"console: {message.text}")
            ),
        )
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "root")
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state("networkidle")

        visited = {}
        for url in [
            "/",
            "/review/",
            "/review/stats/",
            "/review/mine/",
            "/review/guidelines/",
            "/curation/runs/",
            "/curation/candidates/",
            "/curation/policy/",
            "/datasets/",
            "/datasets/support/",
            "/datasets/support/v1/",
            "/training/runs/",
            f"/training/runs/{site['run'].pk}/",
            "/training/models/",
            f"/training/models/{site['model'].pk}/",
            "/api/v1/docs",
            "/admin/",
            "/admin/curation/interaction/",
            "/django-rq/",
            "/django-rq/queues/0/",
        ]:
            response = page.goto(f"{live_server.url}{url}")
            page.wait_for_load_state("networkidle")
            visited[url] = response.status
        # The RQ job list's own inline script ran: its select-all box selects the job.
        page.locator("#action-toggle").check()
        rq_row_selected = page.locator("tr input.action-select").first.is_checked()
        # Swagger UI rendered from local files: the operations are listed.
        page.goto(f"{live_server.url}/api/v1/docs")
        page.locator(".opblock").first.wait_for()

        # htmx and review.js at work: start reviewing, the item screen swaps in.
        page.goto(f"{live_server.url}/review/")
        page.locator("form.start button").click()
        page.locator("#review-screen h1").first.wait_for()
        # Keys pressed while htmx still swaps and settles the screen are lost (issue 12 asks
        # the app to queue them); this test is about the policy, so it waits as a person would.
        page.wait_for_function(
            "() => !document.querySelector('.htmx-request, .htmx-swapping, .htmx-settling, "
            ".htmx-added')"
        )
        page.keyboard.press("?")
        keys_help_visible = page.locator("#keys-help").is_visible()
        htmx_config = page.evaluate("[htmx.config.includeIndicatorStyles, htmx.config.allowEval]")
        page.wait_for_load_state("networkidle")

        # The composition bars have their lengths although no style attribute sets them.
        page.goto(f"{live_server.url}/datasets/support/v1/")
        bar_width = page.locator(".bars svg.bar rect.train").first.bounding_box()["width"]
        browser.close()

    assert {url: status for url, status in visited.items() if status != 200} == {}
    assert keys_help_visible
    assert htmx_config == [False, False]
    assert rq_row_selected
    assert bar_width > 0
    assert violations == []
