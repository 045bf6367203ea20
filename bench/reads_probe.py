"""The child process of bench/reads_scale.py: Django set up on one bench database
(DATABASE_URL), either to add the registry rows the reads need (`setup`) or to time
each read (`timed`). Prints one JSON line; run only through bench/reads_scale.py."""

from __future__ import annotations

import os
import sys
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flywheel_site.settings")

import django

django.setup()

from django.db import connection, transaction  # noqa: E402

from bench.reads_scale import CANARY, CONTROL, END  # noqa: E402
from flywheel_site.audit.selectors import audit_status  # noqa: E402
from review.rollups import review_metrics_rebuild  # noqa: E402
from review.selectors import filter_agreement  # noqa: E402
from training.datasets.models import Dataset, DatasetVersion  # noqa: E402
from training.metrics.selectors import cycles, filter_choices, flywheel_metrics  # noqa: E402
from training.registry.models import ModelVersion  # noqa: E402
from training.registry.selectors import (  # noqa: E402
    arm_outcomes,
    keyed_outcomes,
    monitor_alerts_open,
    time_to_improvement,
    time_to_improvement_of,
)
from training.runs.models import TrainingRun  # noqa: E402

DAYS = 90
WARMUP = 2
_MEMBERS = """
INSERT INTO training_membership (version_id, pair_id, split, reason)
SELECT %s, id, CASE WHEN id %% 10 = 0 THEN 'eval' ELSE 'train' END, ''
FROM training_goldpair WHERE %s OR id %% 2 = 0
"""


def _version(dataset: Dataset, number: int, *, every_pair: bool) -> DatasetVersion:
    version = DatasetVersion.objects.create(
        dataset=dataset,
        number=number,
        status="frozen",
        frozen_at=END - timedelta(days=30 - number * 10),
        cutoff=END - timedelta(days=30 - number * 10),
        kind=dataset.kind,
        lag_days=dataset.lag_days,
        eval_fraction=dataset.eval_fraction,
        near_dup_threshold=dataset.near_dup_threshold,
        manifest={"counts": {}},
        manifest_sha256=f"bench-{number}",
    )
    with connection.cursor() as cursor:
        cursor.execute(_MEMBERS, [version.pk, every_pair])
    return version


def setup() -> dict:
    """Two frozen versions (half the gold pairs, then all), a model trained on each,
    promoted one after the other with the figure the registry stores at promotion;
    then review's rollup rebuilt (the filter-agreement counts of the bench's items)."""
    with transaction.atomic():
        for table in ("modelversion", "trainingrun", "membership", "datasetversion", "dataset"):
            connection.cursor().execute(f"TRUNCATE training_{table} CASCADE")
        dataset = Dataset.objects.create(name="bench")
        models = []
        for number in (1, 2):
            version = _version(dataset, number, every_pair=number == 2)
            run = TrainingRun.objects.create(
                dataset_version=version, trigger="manual", trainer="builtin", method="dpo",
                status="succeeded", finished_at=version.frozen_at,
            )  # fmt: skip
            model = ModelVersion.objects.create(
                name=f"bench-m{number}",
                serving_name=f"bench-m{number}",
                run=run,
                dataset_version=version,
                method="dpo",
                base_model="tiny",
                gate_passed=True,
                status="promoted" if number == 2 else "candidate",
                promoted_at=END - timedelta(days=12 - number * 5),
            )
            model.time_to_improvement_s = time_to_improvement_of(model)
            model.save(update_fields=["time_to_improvement_s"])
            models.append(model.time_to_improvement_s)
        review_rows = review_metrics_rebuild()
    return {"time_to_improvement_s": models, "review_rollup_rows": review_rows}


def _reads() -> dict:
    start = END - timedelta(days=1)
    today = (END - timedelta(days=1)).date()
    window = END - timedelta(days=DAYS)
    versions = list(DatasetVersion.objects.order_by("number").values_list("pk", flat=True))
    at = END - timedelta(days=2)

    def arms():
        for name in (CONTROL, CANARY):
            arm_outcomes(serving_name=name, start=start, end=END)

    return {
        "canary_arm_outcomes": arms,
        "canary_keyed_outcomes": lambda: keyed_outcomes(
            experiment_id=1,
            share=0.5,
            control_name=CONTROL,
            canary_name=CANARY,
            metric="bad_outcome",
            start=start,
            end=END,
        ),
        "dashboard_flywheel_metrics_90d": lambda: flywheel_metrics(days=DAYS, today=today),
        "dashboard_filter_choices": filter_choices,
        "dashboard_filter_agreement_90d": lambda: filter_agreement(since=window),
        "dashboard_alerts_and_audit": lambda: (monitor_alerts_open(), audit_status()),
        "cycles_time_to_improvement": cycles,
        # The read the cycles made before the figure was stored, for comparison.
        "time_to_improvement_membership_scan_before": lambda: time_to_improvement(
            version_id=versions[-1], previous_id=versions[0], at=at
        ),
    }


def timed(calls: int) -> dict:
    out = {}
    for name, read in _reads().items():
        for _ in range(WARMUP):
            read()
        seconds = []
        for _ in range(calls):
            began = time.perf_counter()
            read()
            seconds.append(time.perf_counter() - began)
        out[name] = seconds
    return out
