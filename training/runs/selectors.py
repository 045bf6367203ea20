"""Reads for the training run and model pages."""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.db.models import QuerySet

from flywheel_site.keyset import PAGE_SIZE, KeysetPage
from training.datasets.models import DatasetVersion, ExportFormat, Membership, PairKind
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


# The start form's fit check reads at most this many pairs (by pair id), so it stays a
# fraction of a second on a version of any size; the share it reports is of those.
FIT_CHECK_PAIRS = 2000
# Without the base model's tokenizer: about four characters a token in English text.
CHARS_PER_TOKEN = 4
MEASURED_BY_TOKENIZER = "counted with the base model's tokenizer"
MEASURED_BY_CHARACTERS = (
    "estimated at {chars} characters a token (no tokenizer.json in the base model directory)"
)


def pairs_skipped(*, version: DatasetVersion, max_length: int) -> dict | None:
    """How many of the version's preference pairs a DPO run at `max_length` would skip
    because an answer alone fills it (`trainer.data.pair_fit`), before the run is queued;
    None for a version trained with SFT (which truncates instead) or without pairs."""
    dpo = (ExportFormat.DPO_CONVERSATIONAL, ExportFormat.DPO_STANDARD)
    if not any(fmt in version.formats for fmt in dpo):
        return None
    answers = list(
        Membership.objects.filter(
            version=version,
            split__in=(Membership.Split.TRAIN, Membership.Split.EVAL),
            pair__kind=PairKind.PREFERENCE,
        )
        .order_by("pair_id")
        .values_list("pair__chosen", "pair__rejected")[:FIT_CHECK_PAIRS]
    )
    if not answers:
        return None
    lengths, measured = _answer_lengths([text or "" for pair in answers for text in pair])
    longest = [max(lengths[i], lengths[i + 1]) for i in range(0, len(lengths), 2)]
    skipped = sum(n >= max_length for n in longest)
    return {
        "version": version,
        "checked": len(answers),
        "skipped": skipped,
        "max_length": max_length,
        "measured": measured,
        "most": 2 * skipped > len(answers),
    }


def _answer_lengths(texts: list[str]) -> tuple[list[int], str]:
    # The tokenizers library reads tokenizer.json alone, without importing transformers:
    # cheap enough for a page. Each answer ends with the EOS the trainer appends.
    path = Path(settings.FLYWHEEL_BASE_MODEL) / "tokenizer.json"
    if path.is_file():
        from tokenizers import Tokenizer

        encoded = Tokenizer.from_file(str(path)).encode_batch(texts, add_special_tokens=False)
        return [len(e.ids) + 1 for e in encoded], MEASURED_BY_TOKENIZER
    lengths = [-(-len(text) // CHARS_PER_TOKEN) + 1 for text in texts]
    return lengths, MEASURED_BY_CHARACTERS.format(chars=CHARS_PER_TOKEN)


def start_preset(name: str) -> dict | None:
    return next((p for p in start_presets() if p["name"] == name), None)


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
