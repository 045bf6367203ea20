"""The calibration page in a real Chromium under the Content-Security-Policy:
each score chart is drawn by Chart.js with its axis titles, and a screenshot is
saved under artifacts/."""

import os
from pathlib import Path

import pytest

from tests import test_review_browser
from tests.test_calibration_views import reviewed  # noqa: F401 (a fixture)
from tests.test_review_browser import CHROMIUM, FLAGS, PASSWORD, person

os.environ.setdefault("DJANGO_ALLOW_ASYNC_UNSAFE", "true")

from playwright import sync_api

pytestmark = test_review_browser.pytestmark
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"


@pytest.mark.usefixtures("reviewed")
def test_the_calibration_chart_renders_with_its_axes(live_server):
    person("celia", "curator")
    errors: list[str] = []
    with sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=FLAGS)
        page = browser.new_page(viewport={"width": 1366, "height": 1000})
        page.set_default_timeout(15_000)
        # Script errors and policy violations; not the favicon's 404.
        page.on("console", lambda m: "Content Security Policy" in m.text and errors.append(m.text))
        page.on("pageerror", lambda e: errors.append(str(e)))
        page.goto(f"{live_server.url}/login/")
        page.fill("input[name=username]", "celia")
        page.fill("input[name=password]", PASSWORD)
        page.press("input[name=password]", "Enter")
        page.wait_for_load_state("networkidle")
        page.goto(f"{live_server.url}/review/calibration/")
        page.wait_for_function(
            "() => window.Chart && Chart.getChart('calibration-chart-quality') !== undefined"
        )
        titles = page.evaluate(
            """() => {
              const chart = Chart.getChart('calibration-chart-quality');
              return [chart.options.scales.x.title.text, chart.options.scales.y.title.text,
                      chart.data.datasets[0].label, chart.data.labels.length];
            }"""
        )
        assert titles[0] == "quality score (bin)"
        assert titles[1] == "approved by reviewers (%)"
        assert titles[2] == "Human approval rate (%)"
        assert titles[3] >= 2
        assert page.locator("#calibration-chart-quality").bounding_box()["height"] > 100
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "calibration.png"), full_page=True)
        browser.close()
    assert not errors, errors
