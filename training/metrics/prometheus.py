"""The figures /metrics reads at scrape time, as a Prometheus collector.

Cheap at any table size: totals come from the three daily rollups (rows per day,
source, task type and model, never per interaction), live figures from the partial
index on queued review items (rows in the queue now), Redis (RQ's own counters) and
the registry and run tables (a row per trained model or run). No query here reads
the interactions, feedback or candidates: bench/scrape.py shows the scrape costs the
same at 10 thousand interactions and at millions.

Lives in training, the app that may read every other."""

import django_rq
import redis
from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
)
from prometheus_client.registry import Collector
from prometheus_client.samples import Sample

from curation.rollups import CURATION_TABLE, LAG_BUCKETS_S
from flywheel_site import redis as fw_redis
from review.models import ReviewItem
from review.rollups import REVIEW_TABLE
from training.registry.models import Experiment, ModelVersion
from training.registry.selectors import current_model
from training.runs.models import TrainingRun

DECISIONS = ("approved", "rejected")


def _rollup_sums(table: str, metrics: tuple[str, ...]) -> list[tuple[str, str, int]]:
    """(metric, key, n) summed over every day, source, task type, model and shard."""
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT metric, key, sum(n) FROM {table} WHERE metric = ANY(%s) "  # noqa: S608 (constant)
            "GROUP BY metric, key",
            [list(metrics)],
        )
        return [(metric, key, int(n)) for metric, key, n in cursor.fetchall()]


def curation_lag() -> HistogramMetricFamily:
    """Ingest to curated, from the rollup's fixed buckets (cumulative, as Prometheus wants
    them). The rollup keeps counts per bucket, not the sum of the lags: no `_sum`."""
    counts = {key: n for _, key, n in _rollup_sums(CURATION_TABLE, ("lag",))}
    buckets, seen = [], 0
    for bound in LAG_BUCKETS_S:
        seen += counts.get(str(bound), 0)
        buckets.append((str(float(bound)), seen))
    buckets.append(("+Inf", seen + counts.get("inf", 0)))
    family = HistogramMetricFamily(
        "flywheel_curation_lag_seconds",
        "Time from an interaction's ingest to its curation (daily rollup buckets).",
    )
    family.add_metric([], buckets, None)
    # Without a sum the library writes no _count either; the count is known, so it is kept.
    family.samples.append(Sample("flywheel_curation_lag_seconds_count", {}, buckets[-1][1]))
    return family


def reviews() -> list:
    rows = _rollup_sums(REVIEW_TABLE, ("reviews", *DECISIONS))
    submitted = CounterMetricFamily("flywheel_reviews", "Reviews submitted by annotators.")
    submitted.add_metric([], sum(n for metric, _, n in rows if metric == "reviews"))
    outcomes = CounterMetricFamily(
        "flywheel_review_outcomes",
        "Review outcomes decided (by reviewers' agreement or a curator), by decision.",
        labels=["decision"],
    )
    for decision in DECISIONS:
        outcomes.add_metric([decision], sum(n for metric, _, n in rows if metric == decision))
    return [submitted, outcomes]


def review_queue() -> list:
    now = timezone.now()
    depth = GaugeMetricFamily(
        "flywheel_review_queue_depth", "Items queued for review now, by kind.", labels=["kind"]
    )
    age = GaugeMetricFamily(
        "flywheel_review_queue_oldest_age_seconds",
        "Age of the oldest item queued for review, by kind.",
        labels=["kind"],
    )
    rows = (
        ReviewItem.objects.filter(status=ReviewItem.Status.QUEUED)
        .values_list("kind")
        .annotate(n=Count("pk"), oldest=Min("created_at"))
        .order_by("kind")
    )
    for kind, n, oldest in rows:
        depth.add_metric([kind], n)
        age.add_metric([kind], (now - oldest).total_seconds())
    adjudication = GaugeMetricFamily(
        "flywheel_review_adjudication_depth", "Items waiting for a curator's decision now."
    )
    adjudication.add_metric(
        [], ReviewItem.objects.filter(status=ReviewItem.Status.ADJUDICATION).count()
    )
    return [depth, age, adjudication]


def rq_queues() -> list:
    """RQ's own counters in Redis. Redis down: no queue series and `flywheel_redis_up` 0,
    and the rest of the scrape still answers."""
    up = GaugeMetricFamily("flywheel_redis_up", "Whether the scrape could read Redis (1/0).")
    length = GaugeMetricFamily(
        "flywheel_rq_queue_length", "Jobs waiting in an RQ queue.", labels=["queue"]
    )
    failed = GaugeMetricFamily(
        "flywheel_rq_failed_jobs", "Jobs in an RQ queue's failed registry.", labels=["queue"]
    )
    try:
        for name in settings.RQ_QUEUES:
            queue = django_rq.get_queue(name, connection=fw_redis.client())
            length.add_metric([name], queue.count)
            failed.add_metric([name], queue.failed_job_registry.count)
    except redis.RedisError as error:
        fw_redis.mark_down(error)
        up.add_metric([], 0)
        return [up]
    up.add_metric([], 1)
    return [up, length, failed]


def _counts_by(name: str, doc: str, model, field: str, values) -> GaugeMetricFamily:
    """Rows of `model` by `field`, one series per possible value (0 when none)."""
    family = GaugeMetricFamily(name, doc, labels=[field])
    counts = dict(model.objects.values_list(field).annotate(n=Count("pk")).order_by())
    for value in values:
        family.add_metric([value], counts.get(value, 0))
    return family


def training_runs() -> GaugeMetricFamily:
    return _counts_by(
        "flywheel_training_runs",
        "Training runs, by status.",
        TrainingRun,
        "status",
        TrainingRun.Status.values,
    )


def models() -> list:
    current = current_model()
    info = GaugeMetricFamily(
        "flywheel_model_current_info",
        "The model serving by default (1): its name, or `base` before any promotion.",
        labels=["model", "serving_name"],
    )
    if current is None:
        info.add_metric(["base", settings.FLYWHEEL_BASE_SERVING_NAME], 1)
    else:
        info.add_metric([current.name, current.serving_name], 1)
    versions = _counts_by(
        "flywheel_model_versions",
        "Trained model versions, by status.",
        ModelVersion,
        "status",
        ModelVersion.Status.values,
    )
    return [info, versions, *experiments()]


def experiments() -> list:
    states = _counts_by(
        "flywheel_experiments",
        "Canary experiments, by state.",
        Experiment,
        "state",
        Experiment.State.values,
    )
    running = GaugeMetricFamily(
        "flywheel_experiment_canary_share",
        "The running canary's share of route keys (no series when none runs); paused is 1 "
        "while a sample-ratio mismatch holds its decisions.",
        labels=["experiment", "control", "canary", "paused"],
    )
    live = Experiment.objects.filter(state=Experiment.State.RUNNING).first()
    if live is not None:
        running.add_metric(
            [
                str(live.pk),
                live.control_serving_name,
                live.canary_serving_name,
                "1" if live.paused_at else "0",
            ],
            live.share,
        )
    return [states, running]


class FlywheelCollector(Collector):
    def collect(self):
        yield curation_lag()
        yield from reviews()
        yield from review_queue()
        yield from rq_queues()
        yield training_runs()
        yield from models()
