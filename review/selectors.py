"""Reads for the review pages (what they show is shaped in ``review.presenters``).

The review screen reads one item by primary key and never counts the queue, so
claim-and-render costs the same at 1,000 or 100,000 queued items; the only counts
over the open queue go through its partial indexes. The statistics page's reads are
in ``review.stats``.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta

from django.db import connection
from django.db.models import Count, Exists, F, OuterRef, Q, QuerySet
from django.utils import timezone

from curation.filters import KNOWN_FILTERS
from curation.models import CandidateKind, FilterDecision, Source
from curation.policies import policy_current
from curation.sampling import audit_rate_of
from flywheel_site.access import CURATOR, has_role
from flywheel_site.keyset import PAGE_SIZE, KeysetPage
from review import calibration, queues
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
from review.rollups import REVIEW_TABLE
from review.stats import annotator_progress, local_day_start, rate

ADJUDICATION_LIST_SIZE = 100
# "Left in this queue" counts at most this many items, so the strip costs the
# same on a queue of millions ("10,000+").
LEFT_COUNT_CAP = 10_000
# Median time per item over the annotator's reviews of the last this many days.
PROGRESS_DAYS = 7
TASK_TYPES_SHOWN = 200
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
        "my_approving_review_rate": rate(mine["approved"], mine["total"]),
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


_FILTER_AGREE = f"""
SELECT key, sum(n) FROM {REVIEW_TABLE}
WHERE metric = 'filter_agree' AND day >= %s GROUP BY key HAVING sum(n) <> 0
"""  # noqa: S608 (a constant table name)


def filter_agreement(*, since: datetime | None = None) -> list[dict]:
    """Per filter, how often its verdict matches the human outcome (weighted,
    with its 95% interval and the reviewed items behind it), for the dashboard:
    the same figure as the calibration page's, read from review's daily rollup
    (outcomes decided from the UTC day of `since` on), so its cost grows with the
    days and filters, not with the reviewed items. Filters no reviewed item reached
    are left out."""
    with connection.cursor() as cursor:
        cursor.execute(_FILTER_AGREE, [since.astimezone(UTC).date() if since else date.min])
        rows = cursor.fetchall()
    counts: dict[str, dict[tuple[bool, float], int]] = defaultdict(dict)
    for key, n in rows:
        name, hit, probability = key.rsplit("|", 2)
        counts[name][(hit == "1", float(probability))] = int(n)
    out = []
    for name in KNOWN_FILTERS:
        estimate = calibration.agreement_counted(counts.get(name, {}))
        if estimate.n:
            out.append(
                {
                    "filter": name,
                    "agreement": estimate.value,
                    "low": estimate.low,
                    "high": estimate.high,
                    "n": estimate.n,
                }
            )
    return out
