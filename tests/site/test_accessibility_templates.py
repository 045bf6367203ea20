"""Accessibility rules every template keeps, read from the template files: a region that
polls announces its changes politely (aria-live), and flash messages carry a role."""

import re

from tests.support import ROOT

TEMPLATES = sorted(
    p
    for p in ROOT.glob("**/templates/**/*.html")
    if ".venv" not in p.parts and "node_modules" not in p.parts
)
# An opening tag, however many lines its attributes take.
TAG = re.compile(r"<[a-z][a-z0-9]*\b[^>]*>", re.S)


def test_templates_are_found():
    assert len(TEMPLATES) > 20


def test_every_polling_region_is_a_live_region():
    offenders = [
        f"{path.relative_to(ROOT)}: {tag[:80]}"
        for path in TEMPLATES
        for tag in TAG.findall(path.read_text(encoding="utf-8"))
        if re.search(r'hx-trigger="[^"]*\bevery\b', tag) and "aria-live=" not in tag
    ]
    assert offenders == []


def test_flash_messages_have_a_role():
    base = (ROOT / "templates" / "base.html").read_text(encoding="utf-8")
    assert '<ul class="messages" role="status" aria-live="polite">' in base


def test_no_template_comment_spans_lines():
    """Django's {# #} comment is one line only: one spanning lines is printed on the page
    (base.html's printed its htmx note at the top of every page)."""
    offenders = [
        f"{path.relative_to(ROOT)}:{n}"
        for path in TEMPLATES
        for n, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1)
        if "{#" in line and "#}" not in line.split("{#", 1)[1]
    ]
    assert offenders == []
