"""The flywheel dashboard in a real Chromium: an admin logs in, lands on it, and every
chart is drawn on its canvas with titled axes and a legend. Saves artifacts/dashboard.png."""

import re

from tests.support.browser import ARTIFACTS, CHARTS, READ_CHARTS, WHEN
from tests.support.metrics import D20, flywheel_loop


def test_an_admin_sees_the_charts_drawn_with_titled_axes(
    browser_page, live_server, api, annotator, admin
):
    flywheel_loop(api, annotator, admin)
    page = browser_page(admin, next_url=f"/?days=7&end={D20}")
    page.wait_for_url(f"{live_server.url}/?days=7&end={D20}")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-cycles')")
    charts = page.evaluate(READ_CHARTS, list(CHARTS))
    for chart in charts:
        assert chart is not None
        assert chart["y"] == CHARTS[chart["id"]], chart
        assert chart["x"], chart
        assert chart["legend"] and chart["datasets"] >= 1 and chart["drawn"], chart
        # Each axis title is inside its canvas; a point at 100% is drawn whole.
        assert chart["titles_outside"] == [], chart
        assert chart["clipped"] == 0 and chart["room_above"] >= 6, chart
    assert page.locator("#verdict").inner_text() in ("healthy", "stalling", "regressing")
    promoted = page.locator("#table-cycles td:nth-child(9)").all_inner_texts()
    assert promoted and all(re.fullmatch(WHEN, cell) for cell in promoted), promoted
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard.png"), full_page=True)
