"""Reads for the review pages.

The review screen reads one item by primary key and never counts the queue, so
claim-and-render costs the same at 1,000 or 100,000 queued items. Statistics
read a window of days through the date indexes (reviews by submitted_at, items
by created_at, outcomes by decided_at); the only counts over the open queue go
through its partial indexes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from functools import lru_cache

import markdown
import nh3
from django.db import connection
from django.db.models import Count, Q
from django.db.models.functions import TruncDate
from django.utils import timezone
from django.utils.safestring import SafeString, mark_safe

from curation.models import CandidateKind, FilterDecision
from flywheel_site.access import CURATOR, has_role
from review import agreement
from review.diff import render_diff_html, render_side_by_side_html, render_three_way_html
from review.models import Decision, Guideline, Review, ReviewItem, ReviewOutcome
from review.services import APPROVALS, REJECT_REASONS, model_output_of

PAGE_SIZE = 50
STATS_WINDOWS = (7, 14, 30, 90)
# Agreement is computed in Python over at most this many recent reviews, so the
# statistics page stays bounded however much history there is.
AGREEMENT_MAX_REVIEWS = 20_000
ADJUDICATION_LIST_SIZE = 100
NONE = "\u2013"  # an en dash for "no value"
RUBRIC = (
    ("accuracy", "Accuracy"),
    ("helpfulness", "Helpfulness"),
    ("safety", "Safety"),
)


# --- guidelines ---------------------------------------------------------------


def render_markdown(text: str) -> SafeString:
    """Markdown to HTML, then cleaned by nh3's allow-list: curators write the
    text, but it is shown to everyone, so no script, style or event handler
    survives whatever the Markdown contains."""
    html = markdown.markdown(text, extensions=["extra", "sane_lists"])
    return mark_safe(nh3.clean(html, link_rel="noopener noreferrer"))  # noqa: S308


def guideline_current() -> Guideline | None:
    return Guideline.objects.order_by("-version").first()


@lru_cache(maxsize=32)
def _guideline_html(pk: int, body: str) -> SafeString:
    return render_markdown(body)


def guideline_html(guideline: Guideline | None) -> SafeString:
    # Versions are read-only rows, so (pk, body) never changes meaning: cache it.
    if guideline is None:
        return mark_safe("")
    return _guideline_html(guideline.pk, guideline.body)


def guideline_versions(limit: int = 50) -> list[dict]:
    return list(
        Guideline.objects.order_by("-version").values(
            "version", "note", "created_at", "created_by__username"
        )[:limit]
    )


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
    item = ReviewItem.objects.select_related("candidate__interaction", "lease_holder").get(
        pk=item.pk
    )
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
        "filter_decisions": _filter_decisions(candidate),
        "edit_text": edited_text if edited_text is not None else (candidate.chosen or ""),
        "three_way": _three_way(candidate=candidate, model_output=model_output, edited=edited_text),
        "rubric": [(name, label, posted.get(name)) for name, label in RUBRIC],
        "reject_reasons": REJECT_REASONS,
        "needs_answer": candidate.kind == CandidateKind.NEEDS_ANSWER,
        "guideline": guideline_html(guideline_current()),
        "lease_expires_at": item.lease_expires_at if holds else None,
    }
    if mode in ("adjudicate", "inspect"):
        context["reviews"] = _reviews_shown(
            item=item, chosen=candidate.chosen, model_output=model_output
        )
        context["outcome"] = ReviewOutcome.objects.filter(item=item).first()
        edits = [e["review"].final_text for e in context["reviews"] if e["review"].final_text]
        if mode == "adjudicate" and edited_text is None and edits:
            # Start from the latest reviewer edit: usually the closest to gold.
            context["edit_text"] = edits[-1]
    return context


def three_way_context(*, item: ReviewItem, edited_text: str) -> dict:
    candidate = item.candidate
    return {
        "three_way": _three_way(
            candidate=candidate, model_output=model_output_of(candidate), edited=edited_text
        ),
        "needs_answer": candidate.kind == CandidateKind.NEEDS_ANSWER,
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
        return {"kind": "pair", "old": sides["old"], "new": sides["new"]}
    return {"kind": "single", "text": model_output}


def _three_way(*, candidate, model_output: str, edited: str | None) -> dict | None:
    if edited is None:
        return None
    edited = edited.replace("\r\n", "\n")
    if candidate.kind == CandidateKind.NEEDS_ANSWER or candidate.chosen is None:
        return {"two_way": True, "model_vs_reviewer": render_diff_html(model_output, edited)}
    steps = render_three_way_html(model=model_output, user=candidate.chosen, reviewer=edited)
    return {"two_way": False, **steps}


def _scores(*, candidate, interaction) -> list[tuple[str, str]]:
    def number(value, digits=2):
        return NONE if value is None else f"{value:.{digits}f}"

    pii = interaction.pii or {}
    toxicity = number(candidate.toxicity, 3)
    if candidate.toxicity_scorer:
        toxicity = f"{toxicity} ({candidate.toxicity_scorer})"
    return [
        ("Similarity (characters)", number(candidate.char_similarity)),
        ("Similarity (words)", number(candidate.word_similarity)),
        ("Toxicity", toxicity),
        ("Quality", number(candidate.quality)),
        (
            "PII redacted",
            ", ".join(f"{kind} {n}" for kind, n in sorted(pii.items())) if pii else "none",
        ),
        ("Model", interaction.model or NONE),
        ("Task type", interaction.task_type or NONE),
        ("Feedback", ", ".join(candidate.feedback_kinds) or NONE),
        ("User rating", NONE if candidate.rating is None else str(candidate.rating)),
    ]


def _filter_decisions(candidate) -> list[FilterDecision]:
    if candidate.policy_id is None:
        return []
    return list(
        FilterDecision.objects.filter(candidate=candidate, policy_id=candidate.policy_id)
        .only("filter", "passed", "score", "reason", "scorer")
        .order_by("pk")
    )


def _reviews_shown(*, item, chosen: str | None, model_output: str) -> list[dict]:
    shown = []
    for review in item.reviews.select_related("reviewer").order_by("submitted_at", "pk"):
        entry = {"review": review, "three_way": None}
        if review.decision == Decision.APPROVE_EDIT and review.final_text:
            if chosen is None:
                entry["three_way"] = {
                    "two_way": True,
                    "model_vs_reviewer": render_diff_html(model_output, review.final_text),
                }
            else:
                entry["three_way"] = {
                    "two_way": False,
                    **render_three_way_html(
                        model=model_output, user=chosen, reviewer=review.final_text
                    ),
                }
        shown.append(entry)
    return shown


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


# --- home, lists --------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def home(*, user) -> dict:
    now = timezone.now()
    today = _day_start(now.date())
    mine = Review.objects.filter(reviewer=user).aggregate(
        total=Count("pk"),
        approved=Count("pk", filter=Q(decision__in=APPROVALS)),
        today=Count("pk", filter=Q(submitted_at__gte=today)),
    )
    context = {
        "queued": ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED).count(),
        "in_review": ReviewItem.objects.filter(
            lease_holder__isnull=False, lease_expires_at__gt=now
        ).count(),
        "my_today": mine["today"],
        "my_total": mine["total"],
        "my_approval_rate": _rate(mine["approved"], mine["total"]),
        "held": ReviewItem.objects.filter(lease_holder=user, lease_expires_at__gt=now)
        .values_list("pk", flat=True)
        .first(),
        "curator": has_role(user, CURATOR),
    }
    if context["curator"]:
        context["adjudication_waiting"] = ReviewItem.objects.filter(
            status=ReviewItem.Status.ADJUDICATION
        ).count()
        context["progress"] = annotator_progress(now=now)
    return context


def annotator_progress(*, now: datetime, days: int = 7) -> list[dict]:
    """Per annotator: reviews today and over the last ``days`` days, approval
    rate and median seconds per item over those days."""
    today = _day_start(now.date())
    since = today - timedelta(days=days - 1)
    rows = (
        Review.objects.filter(submitted_at__gte=since)
        .values("reviewer_id", "reviewer__username")
        .annotate(
            n=Count("pk"),
            today=Count("pk", filter=Q(submitted_at__gte=today)),
            approved=Count("pk", filter=Q(decision__in=APPROVALS)),
        )
        .order_by("reviewer__username")
    )
    medians = _median_seconds(since=since)
    return [
        {
            "username": row["reviewer__username"],
            "today": row["today"],
            "week": row["n"],
            "approval_rate": _rate(row["approved"], row["n"]),
            "median_seconds": medians.get(row["reviewer_id"]),
        }
        for row in rows
    ]


def adjudication_list() -> dict:
    items = list(
        ReviewItem.objects.filter(status=ReviewItem.Status.ADJUDICATION)
        .select_related("candidate", "lease_holder")
        .prefetch_related("reviews__reviewer")
        .order_by("-priority", "id")[:ADJUDICATION_LIST_SIZE]
    )
    return {
        "items": items,
        "waiting": ReviewItem.objects.filter(status=ReviewItem.Status.ADJUDICATION).count(),
        "now": timezone.now(),
    }


def my_reviews(*, user, before: int | None = None, size: int = PAGE_SIZE) -> list[Review]:
    query = Review.objects.filter(reviewer=user).select_related("item").order_by("-pk")
    if before:
        query = query.filter(pk__lt=before)
    return list(query[:size])


# --- statistics ---------------------------------------------------------------


def stats(*, days: int, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    today = now.date()
    first_day = today - timedelta(days=days - 1)
    since = _day_start(first_day)
    day_list = [first_day + timedelta(days=k) for k in range(days)]

    per_day = (
        Review.objects.filter(submitted_at__gte=since)
        .annotate(day=TruncDate("submitted_at"))
        .values("reviewer_id", "reviewer__username", "day")
        .annotate(n=Count("pk"), approved=Count("pk", filter=Q(decision__in=APPROVALS)))
    )
    by_annotator: dict[int, dict] = {}
    for row in per_day:
        entry = by_annotator.setdefault(
            row["reviewer_id"],
            {"username": row["reviewer__username"], "days": defaultdict(int), "n": 0, "ok": 0},
        )
        entry["days"][row["day"]] += row["n"]
        entry["n"] += row["n"]
        entry["ok"] += row["approved"]

    medians = _median_seconds(since=since)
    recent = list(
        Review.objects.filter(submitted_at__gte=since, item__reviews_done__gte=2)
        .order_by("-submitted_at")
        .values(
            "item_id",
            "reviewer_id",
            "decision",
            "accuracy",
            "helpfulness",
            "safety",
            "item__stratum",
        )[:AGREEMENT_MAX_REVIEWS]
    )
    recent.reverse()  # agreement_summary wants oldest first
    per_reviewer_agreement = agreement.per_annotator_agreement(recent)

    annotators = []
    for reviewer_id, entry in sorted(by_annotator.items(), key=lambda kv: kv[1]["username"]):
        agreed = per_reviewer_agreement.get(reviewer_id, {})
        annotators.append(
            {
                "username": entry["username"],
                "per_day": [entry["days"].get(day, 0) for day in day_list],
                "total": entry["n"],
                "approval_rate": _rate(entry["ok"], entry["n"]),
                "median_seconds": medians.get(reviewer_id),
                "agreement_with_others": agreed.get("agreement_with_others"),
                "kappa_vs_others": agreed.get("kappa_vs_others"),
                "compared": agreed.get("n", 0),
            }
        )
    total_n = sum(entry["n"] for entry in by_annotator.values())
    total_ok = sum(entry["ok"] for entry in by_annotator.values())

    by_queue: dict[str, list[dict]] = defaultdict(list)
    for review in recent:
        by_queue[review["item__stratum"]].append(review)

    return {
        "days": days,
        "windows": STATS_WINDOWS,
        "day_list": day_list,
        "annotators": annotators,
        "total_reviews": total_n,
        "approval_rate": _rate(total_ok, total_n),
        "median_seconds": medians.get(None),
        "agreement": _agreement_rows(agreement.agreement_summary(recent)),
        "agreement_by_queue": [
            {"queue": queue, "rows": _agreement_rows(agreement.agreement_summary(reviews))}
            for queue, reviews in sorted(by_queue.items())
        ],
        "queue_depth": queue_depth(day_list=day_list, since=since),
        "adjudication_waiting": ReviewItem.objects.filter(
            status=ReviewItem.Status.ADJUDICATION
        ).count(),
    }


def queue_depth(*, day_list: list[date], since: datetime) -> list[dict]:
    """Open items (queued or in adjudication) at the end of each day.

    Worked backwards from today's count: depth at the end of day d is today's
    depth minus items added after d plus items settled after d. Only the window
    is read (by date index), never the table's whole history.
    """
    queued = ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED).count()
    adjudication = ReviewItem.objects.filter(status=ReviewItem.Status.ADJUDICATION).count()
    added = dict(
        ReviewItem.objects.filter(created_at__gte=since)
        .annotate(day=TruncDate("created_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    settled = dict(
        ReviewOutcome.objects.filter(decided_at__gte=since)
        .annotate(day=TruncDate("decided_at"))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )
    depth = queued + adjudication
    series = []
    for day in reversed(day_list):
        series.append(
            {"day": day, "open": depth, "added": added.get(day, 0), "settled": settled.get(day, 0)}
        )
        depth = depth - added.get(day, 0) + settled.get(day, 0)
    series.reverse()
    peak = max((row["open"] for row in series), default=0) or 1
    for row in series:
        row["bar"] = round(100 * row["open"] / peak)
    return series


def _median_seconds(*, since: datetime) -> dict:
    """Median seconds from claim to submit, per reviewer and overall (key None)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT reviewer_id,
                   percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY EXTRACT(EPOCH FROM (submitted_at - started_at)))
              FROM review_review
             WHERE submitted_at >= %s AND started_at IS NOT NULL
             GROUP BY ROLLUP (reviewer_id)
            """,
            [since],
        )
        return {
            reviewer_id: float(median)
            for reviewer_id, median in cursor.fetchall()
            if median is not None
        }


def _agreement_rows(summary: dict) -> list[dict]:
    return [{"field": field, **values} for field, values in summary.items()]


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
