"""Reads for the review pages (what they show is shaped in ``review.presenters``).

The review screen reads one item by primary key and never counts the queue, so
claim-and-render costs the same at 1,000 or 100,000 queued items. Statistics
read a window of days through the date indexes (reviews by submitted_at, items
by created_at, outcomes by decided_at); the only counts over the open queue go
through its partial indexes.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.db.models.functions import TruncDate
from django.utils import timezone

from curation.filters import KNOWN_FILTERS
from curation.models import CandidateKind, FilterDecision, Source
from curation.policies import policy_current
from curation.sampling import audit_rate_of
from flywheel_site.access import CURATOR, has_role
from flywheel_site.keyset import PAGE_SIZE, KeysetPage
from review import agreement, calibration, queues
from review.models import (
    APPROVALS,
    Decision,
    Guideline,
    QueueChoice,
    Review,
    ReviewItem,
    ReviewOutcome,
    ReviewSkip,
)

STATS_WINDOWS = (7, 14, 30, 90)
# Agreement is computed in Python over at most this many recent reviews, so the
# statistics page stays bounded however much history there is.
AGREEMENT_MAX_REVIEWS = 20_000
ADJUDICATION_LIST_SIZE = 100
# "Left in this queue" counts at most this many items, so the strip costs the
# same on a queue of millions ("10,000+").
LEFT_COUNT_CAP = 10_000
# Median time per item over the annotator's reviews of the last this many days.
PROGRESS_DAYS = 7
TASK_TYPES_SHOWN = 200
MOST_SKIPPED_SHOWN = 20
SNIPPET_CHARS = 120


# --- guidelines ---------------------------------------------------------------


def guideline_current() -> Guideline | None:
    return Guideline.objects.order_by("-version").first()


def guideline_versions(limit: int = 50) -> list[dict]:
    return list(
        Guideline.objects.order_by("-version").values(
            "version", "note", "created_at", "created_by__username"
        )[:limit]
    )


# --- the review screen --------------------------------------------------------


def item_with_candidate(*, pk: int) -> ReviewItem:
    """One item with what its screen shows in the same query."""
    return ReviewItem.objects.select_related("candidate__interaction", "lease_holder").get(pk=pk)


def filter_decisions(*, candidate) -> list[FilterDecision]:
    """The filter results of the policy that passed ``candidate``."""
    if candidate.policy_id is None:
        return []
    return list(
        FilterDecision.objects.filter(candidate=candidate, policy_id=candidate.policy_id)
        .only("filter", "passed", "score", "reason", "scorer")
        .order_by("pk")
    )


def item_reviews(*, item: ReviewItem) -> list[Review]:
    return list(item.reviews.select_related("reviewer").order_by("submitted_at", "pk"))


def item_outcome(*, item: ReviewItem) -> ReviewOutcome | None:
    return ReviewOutcome.objects.filter(item=item).first()


# --- home, lists --------------------------------------------------------------


def _day_start(day: date) -> datetime:
    return datetime.combine(day, time.min, tzinfo=UTC)


def home(*, user) -> dict:
    now = timezone.now()
    today = local_day_start(now)
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
        "my_approving_review_rate": _rate(mine["approved"], mine["total"]),
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


# --- the queue picker and progress strip ---------------------------------------


def queue_choice(*, user) -> QueueChoice:
    """The user's queue, unsaved defaults (all kinds, no filter) if never picked."""
    return QueueChoice.objects.filter(user=user).first() or QueueChoice(user=user)


def queue_picker(*, user) -> dict:
    choice = queue_choice(user=user)
    task_types = queued_task_types()
    if choice.task_type and choice.task_type not in task_types:
        task_types.append(choice.task_type)
    return {
        "choice": choice,
        "kinds": queues.choices(),
        "task_types": task_types,
        "sources": list(Source.objects.order_by("name").values_list("pk", "name")),
    }


def queued_task_types(limit: int = TASK_TYPES_SHOWN) -> list[str]:
    """Distinct task types of queued items, by a loose index scan: one index
    probe per distinct value on the partial task-type index, instead of reading
    every queued row (PostgreSQL has no skip scan of its own)."""
    with connection.cursor() as cursor:
        cursor.execute(
            """
            WITH RECURSIVE t(v) AS (
                (SELECT task_type FROM review_reviewitem WHERE status = 'queued'
                  ORDER BY task_type LIMIT 1)
                UNION ALL
                SELECT (SELECT task_type FROM review_reviewitem
                         WHERE status = 'queued' AND task_type > t.v
                         ORDER BY task_type LIMIT 1)
                  FROM t WHERE t.v IS NOT NULL
            )
            SELECT v FROM t WHERE v IS NOT NULL AND v <> '' LIMIT %s
            """,
            [limit],
        )
        return [row[0] for row in cursor.fetchall()]


def queue_items(*, user, choice: QueueChoice) -> QuerySet:
    """Queued items of ``choice``'s queue that ``user`` may still review."""
    items = ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED).filter(
        ~Exists(Review.objects.filter(item=OuterRef("pk"), reviewer=user)),
        ~Exists(ReviewSkip.objects.filter(item=OuterRef("pk"), user=user)),
    )
    if choice.kind in queues.BY_NAME:
        items = items.filter(queues.BY_NAME[choice.kind].condition)
    if choice.task_type:
        items = items.filter(task_type=choice.task_type)
    if choice.source_id is not None:
        items = items.filter(source_id=choice.source_id)
    return items


def local_day_start(now: datetime) -> datetime:
    """Midnight of ``now``'s day in the site's time zone (TIME_ZONE)."""
    return timezone.make_aware(datetime.combine(timezone.localdate(now), time.min))


def queue_progress(*, user, now: datetime | None = None) -> dict:
    """The strip above the queue: done today, left in the queue, median time
    per item over the last days and the time the rest would take at that pace."""
    now = now or timezone.now()
    choice = queue_choice(user=user)
    left = queue_items(user=user, choice=choice).values("pk")[: LEFT_COUNT_CAP + 1].count()
    since = now - timedelta(days=PROGRESS_DAYS)
    done_today = Review.objects.filter(
        reviewer=user, submitted_at__gte=local_day_start(now)
    ).count()
    median = _median_seconds_of(user=user, since=since)
    return {
        "queue_label": _queue_label(choice),
        "done_today": done_today,
        "left": min(left, LEFT_COUNT_CAP),
        "left_capped": left > LEFT_COUNT_CAP,
        "median_seconds": median,
        "estimate_seconds": None if median is None else median * min(left, LEFT_COUNT_CAP),
    }


def _queue_label(choice: QueueChoice) -> str:
    parts = [queues.label(choice.kind)]
    if choice.task_type:
        parts.append(f"task type {choice.task_type}")
    if choice.source_id is not None:
        parts.append(f"source {choice.source.name}")
    return " · ".join(parts)


def _median_seconds_of(*, user, since: datetime) -> float | None:
    with connection.cursor() as cursor:
        cursor.execute(
            """
            SELECT percentile_cont(0.5) WITHIN GROUP (
                       ORDER BY EXTRACT(EPOCH FROM (submitted_at - started_at)))
              FROM review_review
             WHERE reviewer_id = %s AND submitted_at >= %s AND started_at IS NOT NULL
            """,
            [user.pk, since],
        )
        (median,) = cursor.fetchone()
    return None if median is None else float(median)


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
            "approving_review_rate": _rate(row["approved"], row["n"]),
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


def my_reviews(
    *, user, before: int | None = None, decision: str = "", size: int | None = None
) -> KeysetPage:
    """A page of the user's reviews, newest first (see `KeysetPage`), optionally of
    one decision."""
    query = Review.objects.filter(reviewer=user).select_related("item__candidate__interaction")
    if decision in Decision.values:
        query = query.filter(decision=decision)
    return KeysetPage.of(query, before=before, size=size or PAGE_SIZE)


def prompt_snippet(prompt, limit: int = SNIPPET_CHARS) -> str:
    """The last user message of a prompt, cut to ``limit`` characters."""
    text = ""
    if isinstance(prompt, list):
        users = [m for m in prompt if isinstance(m, dict) and m.get("role") == "user"]
        if users:
            text = str(users[-1].get("content", ""))
    elif prompt is not None:
        text = str(prompt)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "\u2026"


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
                "approving_review_rate": _rate(entry["ok"], entry["n"]),
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
        "approving_review_rate": _rate(total_ok, total_n),
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
        # Items with two or more reviews in the window; none means one reviewer
        # per item, and there is nothing to compare (not "they agree").
        "compared_items": len({review["item_id"] for review in recent}),
        **skip_summary(since=since),
        "skips_to_curator": settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR,
    }


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


def _rate(part: int, whole: int) -> float | None:
    return part / whole if whole else None


# --- calibration ----------------------------------------------------------------

# The calibration figures read at most this many recent outcomes, so the page
# stays bounded however much history there is.
CALIBRATION_MAX_ITEMS = 20_000


def calibration_observations(*, since: datetime | None = None) -> dict[str, list]:
    """Per filter, one `calibration.Observation` per reviewed item the filter
    decided on: its verdict and score under the candidate's latest policy, the
    human outcome and the weight of that same policy's draw (`SampleDraw`): an item
    the latest policy's design did not draw is left out, and so is one a curator
    sent to review by hand (it has no draw). needs_answer items are left out (the
    reviewer writes the answer there, rather than judging the model's), and so
    are decisions a filter skipped (an SFT candidate has no edit band)."""
    outcomes = ReviewOutcome.objects.all()
    if since is not None:
        outcomes = outcomes.filter(decided_at__gte=since)
    recent = outcomes.order_by("-decided_at").values("item_id")[:CALIBRATION_MAX_ITEMS]
    rows = (
        FilterDecision.objects.filter(
            candidate__review_item__in=recent,
            policy_id=F("candidate__policy_id"),
            candidate__draws__policy_id=F("candidate__policy_id"),
        )
        .exclude(candidate__kind=CandidateKind.NEEDS_ANSWER)
        .exclude(details__contains={"skipped": True})
        .values_list(
            "filter",
            "passed",
            "score",
            "candidate__draws__inclusion_probability",
            "candidate__review_item__outcome__result",
        )
    )
    by_filter: dict[str, list] = defaultdict(list)
    for name, passed, score, probability, result in rows:
        by_filter[name].append(
            calibration.Observation(
                weight=calibration.weight_of(probability),
                passed=passed,
                approved=result == ReviewOutcome.Result.APPROVED,
                score=score,
            )
        )
    return dict(by_filter)


def calibration_report(*, since: datetime | None = None) -> dict:
    """The calibration page's figures: per filter (in the order they run),
    precision, recall and agreement against human outcomes, the approved-outcome
    rate by score bin, and a suggested threshold where one threshold decides."""
    policy = policy_current()
    observations = calibration_observations(since=since)
    filters = []
    for name in KNOWN_FILTERS:
        rule = calibration.THRESHOLD_RULES.get(name)
        current = getattr(policy, rule.field) if rule else None
        filters.append(
            {
                "name": name,
                "enabled": name in policy.enabled_filters,
                "audit_rate": audit_rate_of(policy=policy, filter_name=name),
                "rule": rule,
                "current": current,
                **calibration.filter_report(observations.get(name, []), rule=rule, current=current),
            }
        )
    return {"policy": policy, "filters": filters}


def filter_agreement(*, since: datetime | None = None) -> list[dict]:
    """Per filter, how often its verdict matches the human outcome (weighted,
    with its 95% Wilson interval and the reviewed items behind it), for the
    dashboard. Filters no reviewed item reached are left out."""
    observations = calibration_observations(since=since)
    rows = []
    for name in KNOWN_FILTERS:
        estimate = calibration.agreement(observations.get(name, []))
        if estimate.n:
            rows.append(
                {
                    "filter": name,
                    "agreement": estimate.value,
                    "low": estimate.low,
                    "high": estimate.high,
                    "n": estimate.n,
                }
            )
    return rows
