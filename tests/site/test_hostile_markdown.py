"""Text of the end user's choosing is rendered in linear, bounded time, shows exactly what
was written, and never fetches anything (issue 18, rows 1, 2 and 6)."""

import time
from html import escape

import pytest

from flywheel_site.text_render import render_markdown

SIZES = (1_000, 10_000, 100_000)
PATTERNS = {
    "brackets": lambda n: "[" * n,
    "images": lambda n: "![" * (n // 2),
    "list markers": lambda n: "* " * (n // 2),
    "nested quotes": lambda n: "> " * (n // 2),
    "quote lines": lambda n: "".join(">" * (i % 200) + " x\n" for i in range(n // 100)),
    "emphasis": lambda n: "*a" * (n // 2),
    "link openers": lambda n: "[a](" * (n // 4),
    "angle brackets": lambda n: "<" * n,
}


def _best_of(text: str, runs: int = 5) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        render_markdown(text)
        best = min(best, time.perf_counter() - start)
    return best


@pytest.mark.parametrize("name", PATTERNS)
def test_rendering_hostile_text_grows_linearly_and_never_raises(name):
    timings = {n: _best_of(PATTERNS[name](n)) for n in SIZES}
    # A loose ratio, not a timing: quadratic growth would give about 100. Below a millisecond
    # the clock's noise is larger than the work, hence the floor.
    assert timings[100_000] / max(timings[10_000], 0.001) <= 15, timings
    assert timings[10_000] < 0.5, timings  # 10x the 50 ms measured in bench/RESULTS.md


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
