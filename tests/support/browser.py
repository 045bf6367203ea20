"""What browser tests share besides fixtures (those are in tests/browser/conftest.py): the
Chromium binary and flags, where screenshots go, and waits for what a person would wait for."""

import shutil
from urllib.parse import quote

from tests.support import ROOT
from tests.support.personas import PASSWORD

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-dev-shm-usage",
]
VIEWPORT = {"width": 1366, "height": 1000}
# Screenshots of what a user sees, for people reviewing a change.
ARTIFACTS = ROOT / "artifacts"

AXE = ROOT / "tests" / "browser" / "vendor" / "axe-4.14.1.min.js"
# WCAG 2.1 A and AA rules, the level public services are held to.
AXE_RUN = """async () => {
  const tags = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"];
  const result = await axe.run(document, {runOnly: {type: "tag", values: tags}});
  return result.violations.map(v => ({id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""
SERIOUS = {"serious", "critical"}


def axe_serious(page) -> list[dict]:
    """axe-core's serious and critical violations on the page as it is now. axe is injected
    as a script tag, which the site's CSP refuses: open the page with bypass_csp=True."""
    page.add_script_tag(path=str(AXE))
    return [v for v in page.evaluate(AXE_RUN) if v["impact"] in SERIOUS]


# Reports every Content-Security-Policy violation to the test, in every page the context opens,
# before any page script runs. Init scripts come from the browser driver: the policy does not
# apply to them.
LISTEN = """
document.addEventListener("securitypolicyviolation", (e) => {
  window.reportViolation(`${e.violatedDirective} ${e.blockedURI} ${e.sourceFile}:${e.lineNumber}`);
});
"""

# A promotion time as people read it, not ISO 8601 (or the dash of a model never promoted).
WHEN = r"\d{4}-\d{2}-\d{2} \d{2}:\d{2} UTC|\u2013"

# The dashboard's charts: canvas id -> y-axis title.
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
READ_CHARTS = """ids => ids.map(id => {
  const chart = Chart.getChart(id);
  if (!chart) return null;
  const canvas = document.getElementById(id);
  const text = (title) => title.display ? [].concat(title.text).join(" ") : null;
  // Where each axis title is drawn: centred on its axis, so it is inside the canvas when
  // half its longest line fits on either side of the centre.
  const outside = Object.values(chart.scales).filter(s => s.options.title.display).filter(s => {
    const ctx = chart.ctx;
    ctx.save();
    ctx.font = Chart.helpers.toFont(s.options.title.font).string;
    const long = Math.max(...[].concat(s.options.title.text).map(t => ctx.measureText(t).width));
    ctx.restore();
    const vertical = s.isHorizontal() === false;
    const centre = vertical ? (s.top + s.bottom) / 2 : (s.left + s.right) / 2;
    const room = vertical ? chart.height : chart.width;
    return centre - long / 2 < 0 || centre + long / 2 > room;
  }).map(s => s.id);
  return {
    id,
    y: text(chart.options.scales.y.title),
    x: text(chart.options.scales.x.title),
    legend: chart.options.plugins.legend.display,
    datasets: chart.data.datasets.length,
    drawn: canvas.width > 0 && canvas.height > 0,
    titles_outside: outside,
    clipped: chart.data.datasets.filter(d => d.clip !== false).length,
    room_above: chart.options.layout.padding.top,
  };
})"""


def log_in(page, base_url: str, username: str, *, password: str = PASSWORD, next_url: str = ""):
    """Log in from the keyboard alone, as a person would: the username field has autofocus."""
    page.goto(f"{base_url}/login/" + (f"?next={quote(next_url)}" if next_url else ""))
    wait_for_focus(page, "input[name=username]")
    page.keyboard.type(username)
    page.keyboard.press("Tab")
    page.keyboard.type(password)
    page.keyboard.press("Enter")
    page.wait_for_url(lambda url: "/login/" not in url)
    wait_for_settled(page)


# The page has loaded and htmx has nothing in flight, swapping or settling: htmx's requests
# are the only ones this site's pages make after loading.
_SETTLED = (
    "() => document.readyState === 'complete' && !document.querySelector("
    "'.htmx-request, .htmx-swapping, .htmx-settling, .htmx-added')"
)


def wait_for_settled(page) -> None:
    """What Playwright's `networkidle` gave, without its fixed 500 ms of silence per wait (the
    a11y walk took 32.2 s with it, 12.2 s without; the CSP walk 25.8 s and 6.2 s): the load
    event, then no htmx request in flight (a `load` trigger has sent its request by then)
    and nothing swapping or settling."""
    page.wait_for_function(_SETTLED)


def wait_for_focus(page, selector: str) -> None:
    """Chromium applies autofocus when it next renders, which can be after the load event:
    keys pressed before that would go nowhere."""
    page.wait_for_function(
        "s => document.activeElement && document.activeElement.matches(s)", arg=selector
    )


def wait_for_screen(page, title: str) -> None:
    """The next item is in place and HTMX has finished swapping and settling it. On a full
    page load the heading shows while the page still parses, before htmx has wired the
    form (at DOMContentLoaded): a key pressed then would submit the form without htmx."""
    page.locator("#review-screen h1", has_text=title).wait_for()
    wait_for_settled(page)


def start(page) -> None:
    """Press "Start reviewing", which has autofocus."""
    wait_for_focus(page, "form.start button")
    page.keyboard.press("Enter")
