"""Reads for the training run and model pages."""

from __future__ import annotations

from django.conf import settings
from django.db.models import QuerySet

from flywheel_site.keyset import PAGE_SIZE, KeysetPage
from training.datasets.models import DatasetVersion
from training.registry.models import ModelEvent, ModelVersion
from training.runs.models import TrainingRun
from training.runs.trainer import GATE_METRICS, SKIP_REASONS

# What a run started from the runs page may use instead of the settings: the demo's short
# runs at the length its answers need (the settings' 200 steps at 256 tokens overfit the demo's
# small versions and cut most of its pairs).
START_PRESETS = {"settings": {}, "demo": {"steps": 24, "max_length": 512}}
START_PRESET_LABELS = {"settings": "The settings", "demo": "The demo's preset"}


def start_presets() -> list[dict]:
    """Each preset the start form offers, with every setting a run would use under it."""
    base = {
        "steps": settings.FLYWHEEL_TRAINING_STEPS,
        "batch_size": settings.FLYWHEEL_TRAINING_BATCH_SIZE,
        "learning_rate": settings.FLYWHEEL_TRAINING_LEARNING_RATE,
        "max_length": settings.FLYWHEEL_TRAINING_MAX_LENGTH,
    }
    return [
        {"name": name, "label": START_PRESET_LABELS[name], **base, **overrides}
        for name, overrides in START_PRESETS.items()
    ]


def runs() -> QuerySet[TrainingRun]:
    return TrainingRun.objects.select_related(
        "dataset_version__dataset", "requested_by", "model_version"
    )


def runs_page(*, before: int | None = None) -> KeysetPage:
    return KeysetPage.of(runs(), before=before)


def versions_trainable() -> list[DatasetVersion]:
    """Frozen versions, newest first, for the start-a-run form."""
    return list(
        DatasetVersion.objects.filter(status=DatasetVersion.Status.FROZEN)
        .select_related("dataset")
        .order_by("dataset__name", "-number")
    )


def version_get(*, pk: int | None) -> DatasetVersion | None:
    """A dataset version to start a run on; the run service refuses one that is not
    frozen, with the reason."""
    if pk is None:
        return None
    return DatasetVersion.objects.select_related("dataset").filter(pk=pk).first()


def models() -> QuerySet[ModelVersion]:
    return ModelVersion.objects.select_related("dataset_version__dataset", "baseline", "run")


def gate_rows(*, model: ModelVersion) -> list[dict]:
    """The gate's metrics side by side: the candidate's and its baseline's."""
    return [
        {
            "metric": name,
            "candidate": model.metrics.get(name),
            "baseline": model.baseline_metrics.get(name),
        }
        for name in GATE_METRICS
    ]


def eval_accounting(metrics: dict | None) -> dict | None:
    """What became of the eval pairs, from a model's (or a run's "eval") metrics: how many
    were scored, how many of those were truncated, and how many skipped, by reason. None
    when nothing was evaluated."""
    if not metrics or ("n" not in metrics and "gate" not in metrics):
        return None
    record = metrics.get("gate") or {}
    reasons = record.get("skipped_reasons", metrics.get("skipped_reasons", {}))
    return {
        "used": record.get("n", metrics.get("n", 0)),
        "truncated": record.get("truncated", metrics.get("truncated", 0)),
        "skipped": record.get("skipped", metrics.get("skipped", 0)),
        "reasons": [
            (SKIP_REASONS.get(key, key.replace("_", " ")), n) for key, n in reasons.items()
        ],
    }


def models_list() -> list[ModelVersion]:
    return list(
        ModelVersion.objects.select_related(
            "dataset_version__dataset", "baseline", "run", "promoted_by"
        ).order_by("-pk")[:PAGE_SIZE]
    )


def model_events(*, model: ModelVersion | None = None, limit: int = PAGE_SIZE) -> list[ModelEvent]:
    events = ModelEvent.objects.select_related("model", "other", "quarantine", "user")
    if model is not None:
        events = events.filter(model=model)
    return list(events.order_by("-pk")[:limit])


def loss_chart(run: TrainingRun) -> dict | None:
    """The loss curves of a run for the chart (static/loss-chart.js draws `series`) and
    for the table beside it: one row per step, train and eval loss where recorded."""
    train, evals = run.loss_curve or [], run.eval_loss_curve or []
    if not train and not evals:
        return None
    by_step: dict[int, dict] = {}
    for step, loss in train:
        by_step.setdefault(int(step), {"step": int(step), "train": None, "eval": None})["train"] = (
            loss
        )
    for step, loss in evals:
        by_step.setdefault(int(step), {"step": int(step), "train": None, "eval": None})["eval"] = (
            loss
        )
    return {
        "series": {"train": train, "eval": evals},
        "rows": [by_step[step] for step in sorted(by_step)],
        "first": train[0][1] if train else None,
        "last": train[-1][1] if train else None,
        "last_eval": evals[-1][1] if evals else None,
    }
