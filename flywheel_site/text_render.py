"""How stored text and internal keys are shown to people. Every app's pages use it
(review, training and curation templates alike), so it lives in the lowest layer."""

from __future__ import annotations

import markdown
import nh3
from django.utils.safestring import SafeString, mark_safe

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


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML, then cleaned by nh3's allow-list. Guidelines (written by
    curators) and answers (written by a model or its users) are shown to everyone, so no
    script, style or event handler survives whatever the Markdown contains."""
    html = markdown.markdown(text or "", extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html, link_rel="noopener noreferrer"))  # noqa: S308


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
