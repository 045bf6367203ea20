"""The calibration page in a real Chromium under the Content-Security-Policy:
each score chart is drawn by Chart.js with its axis titles, and a screenshot is
saved under artifacts/."""

import pytest

from tests.support.browser import ARTIFACTS


@pytest.mark.usefixtures("reviewed")
def test_the_calibration_chart_renders_with_its_axes(
    browser_page, live_server, curator, csp_violations
):
    errors: list[str] = []
    page = browser_page(curator)
    # Script errors (policy violations are collected by browser_page).
    page.on("pageerror", lambda e: errors.append(str(e)))
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
    assert titles[2] == "Approved-outcome rate (%)"
    assert titles[3] >= 2
    assert page.locator("#calibration-chart-quality").bounding_box()["height"] > 100
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "calibration.png"), full_page=True)
    assert not errors and not csp_violations, (errors, csp_violations)
