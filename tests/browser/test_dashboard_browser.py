"""The flywheel dashboard in a real Chromium: an admin logs in, lands on it, and every
chart is drawn on its canvas with titled axes and a legend. Saves artifacts/dashboard.png."""

import os

import pytest

from tests.metrics_helpers import D20, flywheel_loop
from tests.test_review_browser import ARTIFACTS, PASSWORD, browser, person  # noqa: F401

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        os.environ.get("FLYWHEEL_SKIP_BROWSER") == "1", reason="FLYWHEEL_SKIP_BROWSER=1"
    ),
]

CHARTS = {
    "chart-collection": "events per day",
    "chart-candidates": "candidates per day",
    "chart-filters": "candidates failed per day, by filter",
    "chart-lag": "curation lag (seconds, bucket upper bound)",
    "chart-reviews": "reviews per day, by annotator",
    "chart-queue": "items per day",
    "chart-alpha": "Krippendorff's \u03b1",
    "chart-gold": "count per day",
    "chart-cycles": "gate metric delta",
}

_READ_CHARTS = """ids => ids.map(id => {
  const chart = Chart.getChart(id);
  if (!chart) return null;
  const canvas = document.getElementById(id);
  return {
    id,
    y: chart.options.scales.y.title.display ? chart.options.scales.y.title.text : null,
    x: chart.options.scales.x.title.display ? chart.options.scales.x.title.text : null,
    legend: chart.options.plugins.legend.display,
    datasets: chart.data.datasets.length,
    drawn: canvas.width > 0 && canvas.height > 0,
  };
})"""


def test_an_admin_sees_the_charts_drawn_with_titled_axes(browser, live_server, api, annotator):  # noqa: F811
    admin = person("ada", "admin")
    flywheel_loop(api, annotator, admin)
    context = browser.new_context(viewport={"width": 1366, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(15_000)
    page.goto(f"{live_server.url}/login/?next=/%3Fdays%3D7%26end%3D{D20}")
    page.fill("input[name=username]", "ada")
    page.fill("input[name=password]", PASSWORD)
    page.press("input[name=password]", "Enter")
    page.wait_for_url(f"{live_server.url}/?days=7&end={D20}")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-cycles')")
    charts = page.evaluate(_READ_CHARTS, list(CHARTS))
    for chart in charts:
        assert chart is not None
        assert chart["y"] == CHARTS[chart["id"]], chart
        assert chart["x"], chart
        assert chart["legend"] and chart["datasets"] >= 1 and chart["drawn"], chart
    assert page.locator("#verdict").inner_text() in ("healthy", "stalling", "regressing")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
    context.close()
