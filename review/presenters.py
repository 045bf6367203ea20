"""What the review pages show: selectors' rows turned into display context.

Rendering (Markdown, diffs) and display labels live here; every database read
goes through ``review.selectors``, and nothing here writes.
"""

from __future__ import annotations

from functools import lru_cache

import markdown
import nh3
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from curation.diff import render_diff_html, render_side_by_side_html, render_three_way_html
from curation.models import CandidateKind
from flywheel_site.access import CURATOR, has_role
from review import selectors
from review.models import REJECT_REASONS, Decision, Guideline, Review, ReviewItem, model_output_of

NONE = "\u2013"  # an en dash for "no value"
RUBRIC = (
    ("accuracy", "Accuracy"),
    ("helpfulness", "Helpfulness"),
    ("safety", "Safety"),
)


def figure(value, digits: int = 2) -> str:
    """A number that may be undefined, to ``digits`` decimals; an en dash for None."""
    if value is None:
        return NONE
    return f"{value:.{int(digits)}f}"


# --- guidelines ---------------------------------------------------------------


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML, then cleaned by nh3's allow-list: curators write the
    text, but it is shown to everyone, so no script, style or event handler
    survives whatever the Markdown contains."""
    html = markdown.markdown(text, extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html, link_rel="noopener noreferrer"))  # noqa: S308


@lru_cache(maxsize=32)
def _guideline_html(pk: int, body: str) -> SafeString:
    return render_markdown(body)


def guideline_html(guideline: Guideline | None) -> SafeString:
    # Versions are read-only rows, so (pk, body) never changes meaning: cache it.
    if guideline is None:
        return mark_safe("")
    return _guideline_html(guideline.pk, guideline.body)


# --- the review screen --------------------------------------------------------


def screen(
    *,
    item: ReviewItem,
    user,
    posted: dict | None = None,
    error: str = "",
    edited_text: str | None = None,
) -> dict:
    """Everything the review screen shows for ``user`` looking at ``item``.

    ``mode`` is review (the user holds the lease on a queued item), adjudicate
    (a curator holds the lease on an item whose reviews disagreed), inspect (a
    curator looking without a lease) or lost (anyone else: no content shown).
    """
    now = timezone.now()
    holds = item.lease_holder_id == user.pk and item.lease_expires_at > now
    curator = has_role(user, CURATOR)
    if holds and item.status == ReviewItem.Status.QUEUED:
        mode = "review"
    elif holds and item.status == ReviewItem.Status.ADJUDICATION and curator:
        mode = "adjudicate"
    elif curator:
        mode = "inspect"
    else:
        return {"mode": "lost", "item": item, "error": error}
    item = selectors.item_with_candidate(pk=item.pk)
    candidate = item.candidate
    interaction = candidate.interaction
    model_output = model_output_of(candidate)
    posted = posted or {}
    if edited_text is None:
        edited_text = posted.get("final_text")
    context = {
        "mode": mode,
        "item": item,
        "candidate": candidate,
        "interaction": interaction,
        "error": error,
        "posted": posted,
        "messages_shown": _conversation(candidate.prompt),
        "model_output": model_output,
        "panes": _panes(candidate=candidate, model_output=model_output),
        "scores": _scores(candidate=candidate, interaction=interaction),
        "filter_decisions": selectors.filter_decisions(candidate=candidate),
        "edit_text": edited_text if edited_text is not None else (candidate.chosen or ""),
        "three_way": _three_way(candidate=candidate, model_output=model_output, edited=edited_text),
        "rubric": [(name, label, posted.get(name)) for name, label in RUBRIC],
        "reject_reasons": REJECT_REASONS,
        "needs_answer": candidate.kind == CandidateKind.NEEDS_ANSWER,
        "guideline": guideline_html(selectors.guideline_current()),
        "lease_expires_at": item.lease_expires_at if holds else None,
    }
    if mode in ("adjudicate", "inspect"):
        context["reviews"] = _reviews_shown(
            item=item, candidate=candidate, model_output=model_output
        )
        context["outcome"] = selectors.item_outcome(item=item)
        edits = [e["review"].final_text for e in context["reviews"] if e["review"].final_text]
        if mode == "adjudicate" and edited_text is None and edits:
            # Start from the latest reviewer edit: usually the closest to gold.
            context["edit_text"] = edits[-1]
    return context


def _conversation(prompt) -> list[dict]:
    if not isinstance(prompt, list):
        return [{"role": "user", "content": str(prompt)}]
    return [
        {"role": str(m.get("role", "")), "content": str(m.get("content", ""))}
        for m in prompt
        if isinstance(m, dict)
    ]


def _panes(*, candidate, model_output: str) -> dict:
    if candidate.kind == CandidateKind.PREFERENCE and candidate.chosen is not None:
        sides = render_side_by_side_html(model_output, candidate.chosen)
        return {"kind": "pair", "old": sides["old"], "new": sides["new"]}
    return {"kind": "single", "text": model_output}


def _three_way(*, candidate, model_output: str, edited: str | None) -> dict | None:
    """The model's answer, the user's text and the edit, diffed in turn; two
    ways (model against edit) when there is no user text."""
    if edited is None:
        return None
    edited = edited.replace("\r\n", "\n")
    if candidate.kind == CandidateKind.NEEDS_ANSWER or candidate.chosen is None:
        return {"two_way": True, "model_vs_reviewer": render_diff_html(model_output, edited)}
    steps = render_three_way_html(model=model_output, user=candidate.chosen, reviewer=edited)
    return {"two_way": False, **steps}


def _scores(*, candidate, interaction) -> list[tuple[str, str]]:
    pii = interaction.pii or {}
    toxicity = figure(candidate.toxicity, 3)
    if candidate.toxicity_scorer:
        toxicity = f"{toxicity} ({candidate.toxicity_scorer})"
    return [
        ("Similarity (characters)", figure(candidate.char_similarity)),
        ("Similarity (words)", figure(candidate.word_similarity)),
        ("Toxicity", toxicity),
        ("Quality", figure(candidate.quality)),
        (
            "PII redacted",
            ", ".join(f"{kind} {n}" for kind, n in sorted(pii.items())) if pii else "none",
        ),
        ("Model", interaction.model or NONE),
        ("Task type", interaction.task_type or NONE),
        ("Feedback", ", ".join(candidate.feedback_kinds) or NONE),
        ("User rating", NONE if candidate.rating is None else str(candidate.rating)),
    ]


def _reviews_shown(*, item, candidate, model_output: str) -> list[dict]:
    return [
        {
            "review": review,
            "three_way": _three_way(
                candidate=candidate, model_output=model_output, edited=review.final_text
            )
            if review.decision == Decision.APPROVE_EDIT and review.final_text
            else None,
        }
        for review in selectors.item_reviews(item=item)
    ]


def review_detail(review: Review) -> dict:
    candidate = review.item.candidate
    model_output = model_output_of(candidate)
    three_way = None
    if review.final_text:
        three_way = _three_way(
            candidate=candidate, model_output=model_output, edited=review.final_text
        )
    return {
        "review": review,
        "candidate": candidate,
        "messages_shown": _conversation(candidate.prompt),
        "panes": _panes(candidate=candidate, model_output=model_output),
        "three_way": three_way,
    }
