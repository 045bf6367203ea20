"""Text of the end user's choosing is rendered in linear, bounded time, shows exactly what
was written, and never fetches anything (issue 18, rows 1, 2 and 6)."""

import sys
import time
from html import escape

import pytest

from flywheel_site.text_render import render_markdown
from tests.support.hostile_text import AT_THE_BUDGETS, PATTERNS

SIZES = (1_000, 10_000, 100_000)
# Ordinary Markdown, for what hostile text is compared with.
PROSE = "Refunds take **5 days**; see [the policy](https://shop.example/refunds) or `REF-1`.\n\n"


def _cpu_seconds(text: str, runs: int = 3) -> float:
    """Best CPU time of this process rendering `text`: other processes' load on the shared
    cores slows the wall clock, much less this."""
    best = float("inf")
    for _ in range(runs):
        start = time.process_time()
        render_markdown(text)
        best = min(best, time.process_time() - start)
    return best


def _python_calls(text: str) -> int:
    """Python function calls made rendering `text`: markdown-it-py is pure Python, so this
    counts its work exactly, the same on any machine under any load."""
    calls = 0

    def count(frame, event, arg):
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        render_markdown(text)
    finally:
        sys.setprofile(None)
    return calls


@pytest.mark.parametrize("name", PATTERNS)
def test_rendering_hostile_text_grows_linearly_and_never_raises(name):
    timings = {n: _cpu_seconds(PATTERNS[name](n)) for n in SIZES}
    # A loose ratio: quadratic growth would give about 100. Below a millisecond the clock's
    # noise is larger than the work, hence the floor.
    assert timings[100_000] / max(timings[10_000], 0.001) <= 15, timings
    assert timings[10_000] < 0.5, timings  # 10x the 50 ms bench/markdown.py holds it to


@pytest.mark.parametrize(
    "name",
    [
        '"[" * N',
        '"![" * N',
        '"*a" * N/2',
        '"- a\\n" * N/4 (list items)',
        '"x|y\\n" * N/4 (table rows)',
    ],
)
def test_the_parser_itself_is_linear_whatever_the_budgets(settings, name):
    """Without the budgets that show costly text as written, the work still grows linearly
    (about x10 for ten times the text, where work growing with the square would give x100)."""
    settings.FLYWHEEL_MARKDOWN_MAX_LINES = settings.FLYWHEEL_MARKDOWN_MAX_LABEL_SCAN = 10**9
    settings.FLYWHEEL_MARKDOWN_MAX_BRACKETS = settings.FLYWHEEL_MARKDOWN_MAX_MARKUP = 10**9
    small, large = (_python_calls(PATTERNS[name](n)) for n in (100, 1_000))
    assert 5 <= large / small <= 15, (small, large)


@pytest.mark.parametrize("name", AT_THE_BUDGETS)
def test_no_hostile_text_costs_much_more_than_ordinary_markdown(name):
    text = AT_THE_BUDGETS[name].ljust(10_000, "q")
    html = render_markdown(text)
    assert "Shown as written" not in html  # rendered: these are the costliest the budgets let by
    assert _python_calls(text) <= 5 * _python_calls((PROSE * 200)[:10_000])


def test_a_list_nested_600_deep_renders_instead_of_raising():
    html = render_markdown("* " * 600 + "deep")
    assert "nested too deep" in html and "deep" in html.split("</pre>")[0][-10:]


@pytest.mark.parametrize(
    "opening", ["<style>", "<script>", "<!--", "<textarea>", "<title>", "<xmp>", "<noscript>"]
)
def test_raw_html_is_shown_as_text_and_hides_nothing_after_it(opening):
    html = render_markdown(f"Before {opening} after the tag, the rest of the answer")
    assert "the rest of the answer" in html
    assert escape(opening) in html
    assert opening not in html


def test_images_are_shown_as_their_markdown_and_not_fetched():
    html = render_markdown("See ![r](/review/stats/?x=1) and ![x](https://evil.example/p.png)")
    assert "<img" not in html
    assert "![r](/review/stats/?x=1)" in html


def test_images_from_an_allowed_host_are_shown(settings):
    settings.FLYWHEEL_MARKDOWN_IMAGE_HOSTS = ["img.example.org"]
    html = render_markdown(
        "![chart](https://img.example.org/c.png) ![x](http://img.example.org/c.png)"
    )
    assert '<img src="https://img.example.org/c.png" alt="chart"' in html
    assert html.count("<img") == 1


def test_markdown_still_renders_tables_and_code():
    html = render_markdown("| a | b |\n|---|---|\n| 1 | 2 |\n\n```py\nx = [1]\n```\n\n~~old~~")
    assert "<table>" in html and "<td>1</td>" in html
    assert "x = [1]" in html and "<s>old</s>" in html


def test_text_past_the_markup_budget_is_shown_as_written():
    text = "Please summarise this: " + "[" * 300
    html = render_markdown(text)
    assert "Shown as written" in html and "[" * 300 in html


def test_a_failing_renderer_falls_back_to_escaped_text_and_logs(monkeypatch, caplog):
    from flywheel_site import text_render as text_module

    def broken():
        raise RecursionError("too deep")

    monkeypatch.setattr(text_module, "_parser", broken)
    html = render_markdown("**x** <b>")
    assert "could not be rendered" in html and "**x** &lt;b&gt;" in html
    assert "Markdown rendering failed on a text of 9 characters" in caplog.text


@pytest.mark.parametrize(
    "text",
    ["- a\n" * 501, "[" * 3 + "*a" * 2_000, "[a](" * 50 + "q" * 9_800],
    ids=["lines", "brackets before emphasis", "open link destinations"],
)
def test_text_past_the_line_or_lookahead_budget_is_shown_as_written(text):
    html = render_markdown(text)
    assert "Shown as written" in html and escape(text[-50:]) in html


def test_an_answer_with_a_hundred_links_still_renders():
    html = render_markdown("See [item](https://shop.example/i) and **more**. " * 100)
    assert html.count('<a href="https://shop.example/i"') == 100
