"""Reads for the statistics page (/review/stats/) and the per-annotator figures on the
review home: reviews per annotator and day, approving-review rate, median time per item,
agreement, queue depth and skips. A window of days is read through the date indexes
(reviews by submitted_at, items by created_at, outcomes by decided_at), never the whole
history.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from review import agreement
from review.models import APPROVALS, Review, ReviewItem, ReviewOutcome, ReviewSkip

STATS_WINDOWS = (7, 14, 30, 90)
# Agreement is computed in Python over at most this many recent reviews, so the
# statistics page stays bounded however much history there is.
AGREEMENT_MAX_REVIEWS = 20_000
MOST_SKIPPED_SHOWN = 20


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the site's time zone (TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def annotator_progress(*, now: datetime, days: int = 7) -> list[dict]:
    """Per annotator: reviews today and over the last ``days`` days, approving-review
    rate and median seconds per item over those days."""
    today = local_day_start(now)
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
            "approving_review_rate": rate(row["approved"], row["n"]),
            "median_seconds": medians.get(row["reviewer_id"]),
        }
        for row in rows
    ]


# --- skips --------------------------------------------------------------------


def skip_summary(*, since: datetime) -> dict:
    """Skips per annotator in the window, the most skipped open items, and the
    items skipping sent to curators that still wait."""
    per_annotator = list(
        ReviewSkip.objects.filter(created_at__gte=since)
        .values("user__username")
        .annotate(n=Count("pk"))
        .order_by("-n", "user__username")
    )
    # Counted from the same skips in the same window as the total above, so the table never
    # lists items "skipped by 2" beside "0 skips in the window"; skip_count (all time, what
    # sends an item to a curator) is shown beside it.
    in_window = Q(skips__created_at__gte=since)
    most_skipped = list(
        ReviewItem.objects.filter(in_window)
        .exclude(status=ReviewItem.Status.DONE)
        .annotate(window_skips=Count("skips", filter=in_window))
        .order_by("-window_skips", "-skip_count", "id")
        .values("pk", "window_skips", "skip_count", "status", "kind", "stratum", "escalated_at")[
            :MOST_SKIPPED_SHOWN
        ]
    )
    return {
        "skips_per_annotator": per_annotator,
        "skips_total": sum(row["n"] for row in per_annotator),
        "most_skipped": most_skipped,
        "escalated_waiting": ReviewItem.objects.filter(
            status=ReviewItem.Status.ADJUDICATION, escalated_at__isnull=False
        ).count(),
    }


# --- statistics ---------------------------------------------------------------


def stats(*, days: int, now: datetime | None = None) -> dict:
    now = now or timezone.now()
    first_day = now.date() - timedelta(days=days - 1)
    since = _day_start(first_day)
    day_list = [first_day + timedelta(days=k) for k in range(days)]
    recent = _recent_compared_reviews(since=since)
    by_queue: dict[str, list[dict]] = defaultdict(list)
    for review in recent:
        by_queue[review["item__stratum"]].append(review)
    annotators, total_n, total_ok = _annotator_rows(since=since, day_list=day_list, recent=recent)
    return {
        "days": days,
        "windows": STATS_WINDOWS,
        "day_list": day_list,
        "annotators": annotators,
        "total_reviews": total_n,
        "approving_review_rate": rate(total_ok, total_n),
        "median_seconds": _median_seconds(since=since).get(None),
        "agreement": _agreement_rows(agreement.agreement_summary(recent)),
        "agreement_by_queue": [
            {"queue": queue, "rows": _agreement_rows(agreement.agreement_summary(reviews))}
            for queue, reviews in sorted(by_queue.items())
        ],
        "queue_depth": queue_depth(day_list=day_list, since=since),
        "adjudication_waiting": ReviewItem.objects.filter(
            status=ReviewItem.Status.ADJUDICATION
        ).count(),
        # Items with two or more reviews in the window; none means one reviewer
        # per item, and there is nothing to compare (not "they agree").
        "compared_items": len({review["item_id"] for review in recent}),
        **skip_summary(since=since),
        "skips_to_curator": settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR,
    }


def _recent_compared_reviews(*, since: datetime) -> list[dict]:
    """The window's reviews of items reviewed twice or more, oldest first (as
    agreement_summary wants them), at most AGREEMENT_MAX_REVIEWS of the latest."""
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
    recent.reverse()
    return recent


def _annotator_rows(
    *, since: datetime, day_list: list[date], recent: list[dict]
) -> tuple[list[dict], int, int]:
    """One row per annotator (reviews per day, approving-review rate, median time,
    agreement with the others), and the window's reviews and approving reviews."""
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
    per_reviewer_agreement = agreement.per_annotator_agreement(recent)
    annotators = []
    for reviewer_id, entry in sorted(by_annotator.items(), key=lambda kv: kv[1]["username"]):
        agreed = per_reviewer_agreement.get(reviewer_id, {})
        annotators.append(
            {
                "username": entry["username"],
                "per_day": [entry["days"].get(day, 0) for day in day_list],
                "total": entry["n"],
                "approving_review_rate": rate(entry["ok"], entry["n"]),
                "median_seconds": medians.get(reviewer_id),
                "agreement_with_others": agreed.get("agreement_with_others"),
                "kappa_vs_others": agreed.get("kappa_vs_others"),
                "compared": agreed.get("n", 0),
            }
        )
    total_n = sum(entry["n"] for entry in by_annotator.values())
    total_ok = sum(entry["ok"] for entry in by_annotator.values())
    return annotators, total_n, total_ok


def queue_depth(*, day_list: list[date], since: datetime) -> list[dict]:
    """Open items (queued or in adjudication) at the end of each day.

    Worked backwards from today's count: depth at the end of day d is today's
    depth minus items added after d plus items settled after d. Only the window
    is read (by date index), never the table's whole history.
    """
    queued = ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED).count()
    adjudication = ReviewItem.objects.filter(status=ReviewItem.Status.ADJUDICATION).count()
    added = _per_day(ReviewItem.objects.all(), "created_at", since=since)
    settled = _per_day(ReviewOutcome.objects.all(), "decided_at", since=since)
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


def _per_day(rows: QuerySet, field: str, *, since: datetime) -> dict[date, int]:
    """Rows per day of ``field`` since ``since``, read through that field's index."""
    return dict(
        rows.filter(**{f"{field}__gte": since})
        .annotate(day=TruncDate(field))
        .values("day")
        .annotate(n=Count("pk"))
        .values_list("day", "n")
    )


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


def rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None
