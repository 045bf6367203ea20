"""How stored text and internal keys are shown to people. Every app's pages use it
(review, training and curation templates alike), so it lives in the lowest layer."""

from __future__ import annotations

import html
import logging
import re
from datetime import UTC, datetime
from urllib.parse import urlsplit

import nh3
from django.conf import settings
from django.utils.safestring import SafeString, mark_safe
from markdown_it import MarkdownIt

logger = logging.getLogger(__name__)

STRATUM_SEPARATOR = "|"
UNSET = "-"
# Internal keys a person reads better spelled out; anything not listed is shown with its
# underscores as spaces.
_LABELS = {
    "sft": "SFT",
    "dpo": "DPO",
    "approve_edit": "approve with edit",
    "needs_answer": "needs an answer",
    "rolled_back": "rolled back",
    "pii": "PII",
    "jsonl": "JSONL",
}
# markdown-it's inline parser is linear but pays about 15 µs for each "[" (it looks for the
# label's end) and a few µs for each emphasis or "<": text of the end user's choosing, so
# past these counts the text is shown as written instead of rendered.
_BRACKETS = "["
_MARKUP = "[]!*_<`~&\\"
_MARKUP_CHAR = re.compile("[" + re.escape(_MARKUP) + "]")
_DESTINATION_END = re.compile(r"[\s)]")


def _label_scan(text: str, budget: int) -> int:
    """What markdown-it reads looking for the end of every "[" and every link destination, in
    markup characters (stopping once past `budget`). It parses what follows a "[" up to its "]"
    (or the end), so ten "[" before 2,000 "*" cost as much as 20,000 "*" would; and it reads a
    destination ("](" ...) up to a space or ")", a plain character costing about a thirtieth
    of a markup one. Linear: one pass over the markup, one bounded search per destination."""
    scanned = after = 0
    for char in reversed(_MARKUP_CHAR.findall(text)):
        if char == "]":
            after = 0
        else:
            scanned += after if char == "[" else 0
            after += 1
    destination = text.find("](")
    while destination != -1 and scanned <= budget:
        end = _DESTINATION_END.search(text, destination + 2)
        scanned += ((end.start() if end else len(text)) - destination) // 30
        destination = text.find("](", destination + 2)
    return scanned


def _image_render(self, tokens, idx, options, env) -> str:
    """An image from an allowed host is shown; any other is shown as the Markdown that asked
    for it, so opening an answer never makes the reviewer's browser send a request."""
    token = tokens[idx]
    src = token.attrGet("src") or ""
    parts = urlsplit(src)
    if parts.scheme == "https" and parts.hostname in settings.FLYWHEEL_MARKDOWN_IMAGE_HOSTS:
        return self.image(tokens, idx, options, env)
    alt = self.renderInlineAsText(token.children or [], options, env)
    return html.escape(f"![{alt}]({src})")


def _parser() -> MarkdownIt:
    # html=False: raw HTML in an answer is shown as text, so an unclosed <style>, <script>
    # or comment cannot hide what follows it from the reviewer.
    md = MarkdownIt(
        "commonmark",
        {"html": False, "maxNesting": settings.FLYWHEEL_MARKDOWN_MAX_NESTING},
    ).enable(["table", "strikethrough"])
    md.add_render_rule("image", _image_render)
    return md


def _as_written(text: str, reason: str) -> SafeString:
    escaped = html.escape(text)
    return mark_safe(  # noqa: S308 - escaped above
        f'<p class="muted">Shown as written ({reason}).</p><pre class="md-plain">{escaped}</pre>'
    )


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML in time linear in the text, then cleaned by nh3's allow-list.
    Guidelines (written by curators) and answers (written by a model or its users) are shown
    to everyone, so no script, style or event handler survives whatever the Markdown holds.
    Never raises: a text that cannot be rendered is shown escaped, as written."""
    text = text or ""
    # Each line is a block for the block parser (about 50 µs for a list item or a table row
    # on an idle core), so lines are bounded as well as characters.
    lines = text.count("\n") + text.count("\r")
    if (
        len(text) > settings.FLYWHEEL_MARKDOWN_MAX_CHARS
        or lines > settings.FLYWHEEL_MARKDOWN_MAX_LINES
    ):
        return _as_written(text, "too long to render")
    if (
        sum(text.count(c) for c in _BRACKETS) > settings.FLYWHEEL_MARKDOWN_MAX_BRACKETS
        or sum(text.count(c) for c in _MARKUP) > settings.FLYWHEEL_MARKDOWN_MAX_MARKUP
        or _label_scan(text, settings.FLYWHEEL_MARKDOWN_MAX_LABEL_SCAN)
        > settings.FLYWHEEL_MARKDOWN_MAX_LABEL_SCAN
    ):
        return _as_written(text, "too much markup to render")
    try:
        parser = _parser()
        tokens = parser.parse(text)
        # markdown-it drops what lies deeper than its nesting limit: show it as written.
        if any(token.level >= settings.FLYWHEEL_MARKDOWN_MAX_NESTING - 1 for token in tokens):
            return _as_written(text, "nested too deep to render")
        rendered = parser.renderer.render(tokens, parser.options, {})
        return mark_safe(nh3.clean(rendered, link_rel="noopener noreferrer"))  # noqa: S308
    except Exception:
        # Only the length: the text may hold what the end user typed.
        logger.exception("Markdown rendering failed on a text of %d characters", len(text))
        return _as_written(text, "could not be rendered")


def stratum_label(stratum: str) -> str:
    """`support|acme-chat-2025-09` as `support · acme-chat-2025-09`; an unset part says so."""
    task_type, _, model = (stratum or "").partition(STRATUM_SEPARATOR)
    task_type = "any task" if task_type in ("", UNSET) else task_type
    model = "any model" if model in ("", UNSET) else model
    return f"{task_type} · {model}"


def key_label(value) -> str:
    """A stored key (a method, a decision, a filter name) as words."""
    text = str(value or "")
    return _LABELS.get(text.lower(), text.replace("_", " "))


def iso_when(value) -> str:
    """An ISO 8601 timestamp (as the API and json carry it) as `2026-03-02 14:05 UTC`."""
    if not value:
        return "\u2013"  # an en dash, as the other empty figures
    try:
        moment = datetime.fromisoformat(str(value))
    except ValueError:
        return str(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%d %H:%M UTC")
