"""What the review pages show: selectors' rows turned into display context.

Rendering (Markdown, diffs) and display labels live here; every database read
goes through ``review.selectors``, and nothing here writes.
"""

from __future__ import annotations

from functools import lru_cache

from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from curation.models import CandidateKind
from flywheel_site.access import CURATOR, has_role
from flywheel_site.text_diff import (
    render_diff_html,
    render_side_by_side_html,
    render_three_way_html,
)
from flywheel_site.text_render import render_markdown
from review import selectors
from review.forms import DecisionForm
from review.models import Decision, Guideline, Review, ReviewItem, model_output_of

NONE = "\u2013"  # an en dash for "no value"
# What the decision filter and the lists call each decision.
DECISION_LABELS = (
    (Decision.APPROVE, "Approved"),
    (Decision.APPROVE_EDIT, "Approved with an edit"),
    (Decision.REJECT, "Rejected"),
)
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


@lru_cache(maxsize=32)
def _guideline_html(pk: int, body: str) -> SafeString:
    return render_markdown(body)


def guideline_html(guideline: Guideline | None) -> SafeString:
    # Versions are read-only rows, so (pk, body) never changes meaning: cache it.
    if guideline is None:
        return mark_safe("")
    return _guideline_html(guideline.pk, guideline.body)


# --- the review screen --------------------------------------------------------


def error_at(*, mode: str, error: str, posted: dict | None) -> str:
    """Where a refusal is said: beside the control to fix (the rubric, the reject or edit
    panel, the buttons), where the reviewer's focus is, not at the top of the page."""
    if not error or not posted:
        return ""
    decision = posted.get("decision") or ""
    rubric_missing = any(not posted.get(name) for name, _ in RUBRIC)
    if mode == "review" and decision != Decision.REJECT and rubric_missing:
        return "rubric"
    return decision if decision in (Decision.REJECT, Decision.APPROVE_EDIT) else "actions"


# Stays whole: one context dict the template reads; the mode decides each key, and it is
# clearer read side by side than spread over helpers.
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
        # Only a curator inspecting sees the filters' verdicts. A reviewer or an
        # adjudicator judges blind: an audit item (one the filters rejected)
        # must look like any other, so no item shows them while being decided.
        "filter_decisions": selectors.filter_decisions(candidate=candidate)
        if mode == "inspect"
        else [],
        "audit": _audit_shown(item=item, candidate=candidate) if mode == "inspect" else None,
        "edit_text": edited_text if edited_text is not None else (candidate.chosen or ""),
        "three_way": _three_way(candidate=candidate, model_output=model_output, edited=edited_text),
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
    form = DecisionForm.shown(item_pk=item.pk, posted=posted, edit_text=context["edit_text"])
    context["form"] = form
    context["rubric"] = [(label, form[name]) for name, label in RUBRIC]
    return context


def _audit_shown(*, item, candidate) -> dict | None:
    """For a curator, afterwards: which filter rejected an audit item, and why."""
    if not item.audit:
        return None
    return {
        "filter": candidate.audit_filter,
        "status": candidate.status,
        "reason": candidate.status_reason,
    }


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
        return {
            "kind": "pair",
            "old": sides["old"],
            "new": sides["new"],
            "old_text": model_output,
            "new_text": candidate.chosen,
        }
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


# --- calibration --------------------------------------------------------------


def percent(estimate) -> str:
    """A weighted share as "87% (80-92%)", or an en dash when nothing was reviewed."""
    if estimate is None or estimate.value is None:
        return NONE
    return f"{estimate.value:.0%} ({estimate.low:.0%}\u2013{estimate.high:.0%})"


# Below this many reviewed items a share's 95% interval is about +-15 points or wider: the
# figure is shown greyed, so seven filters at "85%" on a handful of items do not read as fact.
THIN_N = 30


def is_thin(n) -> bool:
    return (n or 0) < THIN_N


def _bound(value: float, integer: bool) -> str:
    return f"{value:.0f}" if integer else f"{value:.2f}"


def calibration_page(*, since=None) -> dict:
    """The calibration page: per filter, the figures as display strings, the
    approval-by-score bins as a table, and the same bins as chart data."""
    report = selectors.calibration_report(since=since)
    filters = []
    charts = []
    for row in report["filters"]:
        integer = bool(row["rule"] and row["rule"].integer) or row["name"] in ("length", "pii")
        bins = [
            {
                "label": f"{_bound(b['low'], integer)}\u2013{_bound(b['high'], integer)}",
                "approval": percent(b["approval"]),
                "rate": None
                if b["approval"].value is None
                else round(100 * b["approval"].value, 1),
                "n": b["approval"].n,
                "thin": is_thin(b["approval"].n),
            }
            for b in row["bins"]
        ]
        if bins:
            charts.append(
                {
                    "id": f"calibration-chart-{row['name']}",
                    "data_id": f"calibration-chart-{row['name']}-data",
                    "filter": row["name"],
                    "labels": [b["label"] for b in bins],
                    "rates": [b["rate"] for b in bins],
                    "counts": [b["n"] for b in bins],
                }
            )
        filters.append(
            {
                **row,
                "precision_shown": percent(row["precision"]),
                "recall_shown": percent(row["recall"]),
                "agreement_shown": percent(row["agreement"]),
                "precision_thin": is_thin(row["precision"] and row["precision"].n),
                "recall_thin": is_thin(row["recall"] and row["recall"].n),
                "agreement_thin": is_thin(row["n"]),
                # Shares on this page are percentages, the audit rate too.
                "audit_rate_shown": f"{100 * row['audit_rate']:g}%",
                "score_bins": bins,
                "chart_id": f"calibration-chart-{row['name']}" if bins else "",
                "suggestion_shown": _suggestion_shown(row["suggestion"], integer=integer),
            }
        )
    return {
        "policy": report["policy"],
        "filters": filters,
        "charts": charts,
        "reviewed": max((row["n"] for row in report["filters"]), default=0),
        "thin_n": THIN_N,
    }


def _suggestion_shown(suggestion: dict | None, *, integer: bool) -> dict | None:
    if suggestion is None:
        return None
    return {
        "field": suggestion["field"],
        "current": _bound(suggestion["current"]["threshold"], integer),
        "threshold": _bound(suggestion["suggested"]["threshold"], integer),
        "value": suggestion["suggested"]["threshold"],
        "pass_rate_now": f"{suggestion['current']['pass_rate']:.0%}",
        "pass_rate_then": f"{suggestion['suggested']['pass_rate']:.0%}",
        "pass_rate_change": f"{suggestion['pass_rate_change']:+.1%}",
        "approved_filtered_now": f"{suggestion['current']['approved_filtered']:.0f}",
        "approved_filtered_then": f"{suggestion['suggested']['approved_filtered']:.0f}",
        "approved_filtered_change": f"{suggestion['approved_filtered_change']:+.0f}",
        "n": suggestion["n"],
    }


def my_review_rows(reviews: list[Review]) -> list[dict]:
    """``/review/mine/`` rows: each review with what it was about, in a line."""
    return [
        {
            "review": review,
            "snippet": selectors.prompt_snippet(review.item.candidate.prompt),
            "candidate_id": review.item.candidate_id,
            "decision_label": dict(DECISION_LABELS).get(review.decision, review.decision),
        }
        for review in reviews
    ]
