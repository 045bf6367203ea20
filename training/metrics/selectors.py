"""Reads for the flywheel dashboard and GET /api/v1/metrics: one dict of figures.

Daily figures come from the three daily rollups (`curation.rollups`, `review.rollups`,
`training.datasets.rollups`), read by a range of the (day, ...) unique index: the cost grows with
the days shown and the sources, task types and models in them, never with the number of
interactions. The live figures (queue depth and age, adjudication backlog) read the
partial index on queued items; cycles read the model registry (one row per trained model).
Lives in training, the app that may read every other.
"""

from __future__ import annotations

import hashlib
import hmac
from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta

from django.conf import settings
from django.contrib.auth import get_user_model
from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone

from curation.models import Source
from curation.rollups import CURATION_TABLE, LAG_BUCKETS_S
from review.models import ReviewItem
from review.presenters import NONE
from review.rollups import REVIEW_TABLE, nominal_alpha
from training.datasets.models import Dataset
from training.datasets.rollups import TRAINING_TABLE
from training.datasets.selectors import gold_new_count, latest_frozen
from training.registry.models import ModelVersion
from training.registry.selectors import time_to_improvement

MAX_DAYS = 366
WINDOWS = (7, 30, 90)
EDIT_KINDS = ("edited", "corrected")
HEALTHY, STALLING, REGRESSING = "healthy", "stalling", "regressing"
# The week compared with the one before for queue growth, and read whatever the window.
WEEK = 7


@dataclass(frozen=True)
class MetricsFilter:
    days: int = 30
    source: str = ""
    task_type: str = ""
    model: str = ""


def _rollup_rows(table: str, *, start: date, end: date, flt: MetricsFilter, source_id):
    where = ["day BETWEEN %(start)s AND %(end)s"]
    params: dict = {"start": start, "end": end}
    if flt.source:
        where.append("source_id = %(source)s")
        params["source"] = source_id
    if flt.task_type:
        where.append("task_type = %(task_type)s")
        params["task_type"] = flt.task_type
    if flt.model:
        where.append("model = %(model)s")
        params["model"] = flt.model
    sql = (
        f"SELECT day, metric, key, sum(n) FROM {table} WHERE {' AND '.join(where)} "  # noqa: S608 (constants)
        "GROUP BY day, metric, key HAVING sum(n) <> 0"
    )
    with connection.cursor() as cursor:
        cursor.execute(sql, params)
        return cursor.fetchall()


def lag_quantile(histogram: dict[str, int], q: float) -> float | None:
    """The upper bound (s) of the bucket holding the q-quantile; None without data.
    Past the last bound it is the last bound (read "at least a week")."""
    total = sum(histogram.values())
    if not total:
        return None
    rank, seen = q * total, 0
    for bound in LAG_BUCKETS_S:
        seen += histogram.get(str(bound), 0)
        if seen >= rank:
            return float(bound)
    return float(LAG_BUCKETS_S[-1])


def _empty_day(day: date) -> dict:
    return {
        "date": day.isoformat(),
        "interactions": 0,
        "with_feedback": 0,
        "feedback": {},
        "edits": 0,
        "candidates": {},
        "passed": 0,
        "failed": {},
        "held": 0,
        "queued": 0,
        "reviews": 0,
        "reviews_by": {},
        "approved": 0,
        "rejected": 0,
        "adjudicated": 0,
        "adjudication": 0,
        "gold": 0,
        "versions": 0,
        "lag": {},
        "agree": {},
    }


# metric -> (field, keyed): keyed fields are {key: n}, the others a plain count.
_FIELDS = {
    "interactions": ("interactions", False),
    "with_feedback": ("with_feedback", False),
    "feedback": ("feedback", True),
    "candidates": ("candidates", True),
    "passed": ("passed", False),
    "failed": ("failed", True),
    "held": ("held", False),
    "lag": ("lag", True),
    "queued": ("queued", False),
    "reviews": ("reviews_by", True),
    "approved": ("approved", False),
    "rejected": ("rejected", False),
    "adjudication": ("adjudication", False),
    "gold": ("gold", False),
    "versions": ("versions", False),
    "agree": ("agree", True),
}


def reviewer_pseudonym(user_id: int) -> str:
    """A stable id for a reviewer that names nobody: the same person reads the same across
    calls and days, and only the server, holding the key, can tell who it is."""
    digest = hmac.new(
        settings.SECRET_KEY.encode(), f"reviewer:{user_id}".encode(), hashlib.sha256
    ).hexdigest()
    return f"reviewer-{digest[:10]}"


def _days(flt: MetricsFilter, *, start: date, end: date, reviewer_names: bool) -> list[dict]:
    source_id = None
    if flt.source:
        # An unknown source matches nothing rather than everything.
        source_id = Source.objects.filter(name=flt.source).values_list("pk", flat=True).first()
        source_id = -1 if source_id is None else source_id
    days = {
        start + timedelta(days=k): _empty_day(start + timedelta(days=k))
        for k in range((end - start).days + 1)
    }
    for table in (CURATION_TABLE, REVIEW_TABLE, TRAINING_TABLE):
        for day, metric, key, n in _rollup_rows(
            table, start=start, end=end, flt=flt, source_id=source_id
        ):
            if metric not in _FIELDS:
                continue
            field, keyed = _FIELDS[metric]
            entry = days[day]
            if keyed:
                entry[field][key] = entry[field].get(key, 0) + int(n)
            else:
                entry[field] += int(n)
            if metric in ("approved", "rejected") and key == "adjudicated":
                entry["adjudicated"] += int(n)
    ids = {int(k) for e in days.values() for k in e["reviews_by"]}
    if reviewer_names:
        names = dict(get_user_model().objects.filter(pk__in=ids).values_list("pk", "username"))
    else:
        names = {pk: reviewer_pseudonym(pk) for pk in ids}
    out = []
    for entry in days.values():
        entry["reviews_by"] = {
            names.get(int(k), f"#{k}"): n for k, n in sorted(entry["reviews_by"].items())
        }
        entry["reviews"] = sum(entry["reviews_by"].values())
        entry["edits"] = sum(entry["feedback"].get(kind, 0) for kind in EDIT_KINDS)
        entry["lag_p50_s"] = lag_quantile(entry["lag"], 0.5)
        entry["lag_p95_s"] = lag_quantile(entry["lag"], 0.95)
        entry["alpha"] = nominal_alpha(entry["agree"])
        out.append(entry)
    return out


def _queue(flt: MetricsFilter) -> dict:
    items = ReviewItem.objects.all()
    if flt.source:
        items = items.filter(candidate__interaction__source__name=flt.source)
    if flt.task_type:
        items = items.filter(candidate__task_type=flt.task_type)
    if flt.model:
        items = items.filter(candidate__model=flt.model)
    queued = items.filter(status=ReviewItem.Status.QUEUED)
    depth = dict(
        queued.values_list("candidate__kind").annotate(n=Count("pk")).order_by("candidate__kind")
    )
    oldest = queued.aggregate(oldest=Min("created_at"))["oldest"]
    age = (timezone.now() - oldest).total_seconds() if oldest else None
    return {
        "depth": depth,
        "total": sum(depth.values()),
        "oldest_age_s": age,
        "adjudication": items.filter(status=ReviewItem.Status.ADJUDICATION).count(),
    }


def _gate(model: ModelVersion) -> dict:
    """The gate's result: `metrics["gate"]` when the gate stored one, else what the
    older gate left (metric name, candidate and baseline metrics, no interval)."""
    gate = (model.metrics or {}).get("gate") or {}
    metric = gate.get("metric") or model.gate_metric
    candidate = gate.get("candidate", (model.metrics or {}).get(metric))
    baseline = gate.get("baseline", (model.baseline_metrics or {}).get(metric))
    delta = gate.get("delta")
    if delta is None and isinstance(candidate, int | float) and isinstance(baseline, int | float):
        delta = candidate - baseline
    ci = gate.get("delta_ci") or [None, None]
    return {
        "gate_metric": metric,
        "candidate": candidate,
        "baseline": baseline,
        "delta": delta,
        "delta_ci": [ci[0], ci[1]] if len(ci) == 2 else [None, None],
        "n": gate.get("n"),
        "test": gate.get("test", ""),
        "passed": model.gate_passed,
    }


def cycles(*, limit: int = 50) -> list[dict]:
    """The last `limit` gated models, oldest first, with their gate and the time to
    improvement each promotion stored (one row per model: no membership is read)."""
    models = list(
        ModelVersion.objects.filter(gate_passed__isnull=False)
        .select_related("dataset_version__dataset")
        .order_by("created_at", "pk")
    )[-limit:]
    previous_promoted = None
    out = []
    for model in models:
        version = model.dataset_version
        counts = (version.manifest or {}).get("counts", {})
        tti = model.time_to_improvement_s
        if model.promoted_at is not None:
            if tti is None:  # promoted before the figure was stored, or no new pair
                tti = time_to_improvement(
                    version_id=version.pk, previous_id=previous_promoted, at=model.promoted_at
                )
            previous_promoted = version.pk
        out.append(
            {
                "dataset_version": f"{version.dataset.name} v{version.number}",
                "gold": counts.get("train", 0) + counts.get("eval", 0),
                "model": model.name,
                "status": model.status,
                **_gate(model),
                "promoted_at": model.promoted_at.isoformat() if model.promoted_at else None,
                "time_to_improvement_s": tti,
            }
        )
    return out


def _training() -> list[dict]:
    out = []
    for dataset in Dataset.objects.order_by("name"):
        last = latest_frozen(dataset=dataset)
        out.append(
            {
                "dataset": dataset.name,
                "latest_version": last.number if last else None,
                "new_gold": gold_new_count(dataset=dataset, lagged=False),
                "threshold": dataset.train_threshold,
            }
        )
    return out


def _ratio(part: int, whole: int) -> float | None:
    return part / whole if whole else None


def _totals(days: list[dict]) -> dict:
    out: dict = {}
    for field, value in _empty_day(date.min).items():
        if isinstance(value, dict):
            merged: dict = defaultdict(int)
            for entry in days:
                for key, n in entry[field].items():
                    merged[key] += n
            out[field] = dict(merged)
        elif isinstance(value, int):
            out[field] = sum(entry[field] for entry in days)
    decided = out.get("passed", 0) + sum(out.get("failed", {}).values())
    out["pass_rate"] = _ratio(out.get("passed", 0), decided)
    out["feedback_rate"] = _ratio(out.get("with_feedback", 0), out.get("interactions", 0))
    out["approval_rate"] = _ratio(
        out.get("approved", 0), out.get("approved", 0) + out.get("rejected", 0)
    )
    out["lag_p50_s"] = lag_quantile(out.get("lag", {}), 0.5)
    out["lag_p95_s"] = lag_quantile(out.get("lag", {}), 0.95)
    out["alpha"] = nominal_alpha(out.pop("agree", {}))
    return out


def health(*, totals: dict, last_week: dict, queue: dict, cycles: list[dict]) -> dict:
    """healthy / stalling / regressing and the causes, from the thresholds in settings
    (FLYWHEEL_HEALTH_*). Regressing: a recent promoted cycle made the gate metric worse."""
    causes = []
    pass_rate = totals.get("pass_rate")
    floor = settings.FLYWHEEL_HEALTH_PASS_RATE_MIN
    if pass_rate is not None and pass_rate < floor:
        causes.append(f"filter too strict: pass rate {pass_rate:.0%} is under {floor:.0%}")
    max_age_days = settings.FLYWHEEL_HEALTH_QUEUE_MAX_AGE_DAYS
    age = queue.get("oldest_age_s")
    if age is not None and age > max_age_days * 86400:
        causes.append(
            f"review backed up: the oldest queued item is {age / 86400:.1f} days old "
            f"(over {max_age_days:g})"
        )
    # Depth a week ago: today's less what entered since, plus what was decided since.
    now_depth = queue.get("total", 0)
    week_ago = max(
        now_depth
        - last_week.get("queued", 0)
        + last_week.get("approved", 0)
        + last_week.get("rejected", 0)
        + last_week.get("adjudication", 0),
        0,
    )
    growth = now_depth - week_ago
    if (
        growth >= settings.FLYWHEEL_HEALTH_QUEUE_GROWTH_MIN_ITEMS
        and growth > settings.FLYWHEEL_HEALTH_QUEUE_GROWTH_MAX * week_ago
    ):
        causes.append(f"review backed up: the queue grew from {week_ago} to {now_depth} in a week")
    feedback_rate = totals.get("feedback_rate")
    feedback_floor = settings.FLYWHEEL_HEALTH_FEEDBACK_RATE_MIN
    if feedback_rate is not None and feedback_rate < feedback_floor:
        causes.append(
            f"signals too sparse: {feedback_rate:.1%} of interactions carry feedback "
            f"(under {feedback_floor:.0%})"
        )
    verdict = STALLING if causes else HEALTHY
    recent = [c for c in cycles if c["promoted_at"] and c["delta"] is not None]
    recent = recent[-settings.FLYWHEEL_HEALTH_QUALITY_CYCLES :]
    delta_min = settings.FLYWHEEL_HEALTH_QUALITY_DELTA_MIN
    if recent and any(c["delta"] < 0 for c in recent):
        verdict = REGRESSING
        causes.insert(0, "quality regressing: a recent promoted model scored below its predecessor")
    elif len(recent) >= settings.FLYWHEEL_HEALTH_QUALITY_CYCLES and all(
        c["delta"] < delta_min for c in recent
    ):
        verdict = STALLING
        causes.append(
            f"quality flat: the last {len(recent)} cycles improved the gate metric by less "
            f"than {delta_min:g}"
        )
    return {"verdict": verdict, "causes": causes}


def flywheel_metrics(
    *,
    days: int = 30,
    source: str = "",
    task_type: str = "",
    model: str = "",
    today: date | None = None,
    reviewer_names: bool = True,
) -> dict:
    """Every figure of the dashboard and of GET /api/v1/metrics for the `days` days
    ending `today` (UTC), optionally for one source, task type and model. Without
    `reviewer_names`, reviewers are keyed by pseudonym (`reviewer_pseudonym`)."""
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days must be 1..{MAX_DAYS}, got {days}")
    flt = MetricsFilter(days=days, source=source, task_type=task_type, model=model)
    end = today or timezone.now().date()
    start = end - timedelta(days=days - 1)
    # At least two weeks are read, for week-over-week queue growth.
    read_start = min(start, end - timedelta(days=2 * WEEK - 1))
    all_days = _days(flt, start=read_start, end=end, reviewer_names=reviewer_names)
    shown = [d for d in all_days if d["date"] >= start.isoformat()]
    totals = _totals(shown)
    last_week = _totals(all_days[-WEEK:])
    for entry in all_days:  # alpha's inputs: summed above, not shown
        del entry["agree"]
    queue = _queue(flt)
    cycles_shown = cycles()
    return {
        "window": {
            "days": days,
            "start": start.isoformat(),
            "end": end.isoformat(),
            "source": source,
            "task_type": task_type,
            "model": model,
        },
        "days": shown,
        "totals": totals,
        "queue": queue,
        "cycles": cycles_shown,
        "training": _training(),
        "health": health(totals=totals, last_week=last_week, queue=queue, cycles=cycles_shown),
    }


def filter_choices() -> dict:
    """The sources, task types and models the filters offer (from the last year of
    the curation rollup, so the list costs days, not rows)."""
    since = timezone.now().date() - timedelta(days=MAX_DAYS)
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT DISTINCT source_id, task_type, model FROM {CURATION_TABLE} WHERE day >= %s",  # noqa: S608
            [since],
        )
        rows = cursor.fetchall()
    names = dict(Source.objects.filter(pk__in={r[0] for r in rows}).values_list("pk", "name"))
    return {
        "sources": sorted({names[r[0]] for r in rows if r[0] in names}),
        "task_types": sorted({r[1] for r in rows if r[1]}),
        "models": sorted({r[2] for r in rows if r[2]}),
    }


def duration_text(seconds: float | None) -> str:
    """A duration as a person reads it at a glance: seconds, minutes, hours or days."""
    if seconds is None:
        return NONE
    for unit, size in (("days", 86400), ("h", 3600), ("min", 60)):
        if seconds >= 2 * size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def table_rows(metrics: dict) -> dict:
    """The figures of `flywheel_metrics` laid out for the dashboard's tables: one
    column per feedback kind, candidate kind, filter and annotator seen in the window."""
    totals = metrics["totals"]
    columns = {
        "feedback_kinds": sorted(totals["feedback"]),
        "candidate_kinds": sorted(totals["candidates"]),
        "filters": sorted(totals["failed"]),
        "reviewers": sorted(totals["reviews_by"]),
    }
    days = []
    for d in metrics["days"]:
        decided = d["passed"] + sum(d["failed"].values())
        days.append(
            {
                **d,
                "feedback_cols": [d["feedback"].get(k, 0) for k in columns["feedback_kinds"]],
                "feedback_share": _ratio(d["with_feedback"], d["interactions"]),
                "candidate_cols": [d["candidates"].get(k, 0) for k in columns["candidate_kinds"]],
                "failed_cols": [d["failed"].get(k, 0) for k in columns["filters"]],
                "pass_rate": _ratio(d["passed"], decided),
                "reviewer_cols": [d["reviews_by"].get(k, 0) for k in columns["reviewers"]],
                "approval_rate": _ratio(d["approved"], d["approved"] + d["rejected"]),
            }
        )
    return {**columns, "days": days, "oldest_age": duration_text(metrics["queue"]["oldest_age_s"])}
