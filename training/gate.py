"""The eval gate: a candidate adapter and the current model scored on the version's held-out
eval split, and the verdict the registry records. Writes only the gate's eval file."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

from training import gold, trainer
from training.errors import TrainingError
from training.models import (
    ExportFormat,
    Membership,
    ModelVersion,
    PairKind,
    TrainingRun,
)
from training.selectors_runs import BASE_MODEL_NAME, current_model

GATE_EVAL_FILE = "gate_eval.jsonl"
# What the current model scores against itself on the relative metrics: a candidate must
# prefer chosen answers more often than chance, by a positive margin, relative to it.
RELATIVE_BASELINE = {"implicit_reward_accuracy": 0.5, "reward_margin": 0.0}
ERR_NO_EVAL_PAIRS = "fails: {version} has no held-out preference pairs to evaluate on"
NOT_GATED = "not gated: the external trainer left no LoRA adapter to evaluate; an admin decides"
NOT_GATED_CURRENT = "not gated: the current model {current} cannot be evaluated here (no adapter)"


@dataclass
class GateResult:
    passed: bool | None
    detail: str
    metric: str
    margin: float
    metrics: dict
    baseline: ModelVersion | None
    baseline_metrics: dict


def _rows(path: Path) -> int:
    if not path.is_file():
        return 0
    with open(path, encoding="utf-8") as handle:
        return sum(1 for line in handle if line.strip())


def gate_eval_file(*, run: TrainingRun, export_dir: Path, out: Path) -> Path:
    """Preference pairs of the version's eval split. A DPO run uses its export as is; an SFT
    export has no rejected answers, so its gate file is written from the eval split's
    preference pairs."""
    if run.method == "dpo":
        return export_dir / trainer.EVAL_FILE
    path = out / GATE_EVAL_FILE
    pairs = (
        Membership.objects.filter(
            version_id=run.dataset_version_id,
            split=Membership.Split.EVAL,
            pair__kind=PairKind.PREFERENCE,
        )
        .order_by("pair_id")
        .values_list("pair__prompt", "pair__chosen", "pair__rejected")
    )
    with open(path, "wb") as handle:
        for prompt, chosen, rejected in pairs.iterator(chunk_size=2000):
            handle.write(
                gold.line(
                    fmt=ExportFormat.DPO_CONVERSATIONAL,
                    prompt=prompt,
                    chosen=chosen,
                    rejected=rejected,
                )
            )
    return path


def candidate_gate(
    *, run: TrainingRun, adapter_dir: Path | None, export_dir: Path, out: Path
) -> GateResult:
    """Evaluate the candidate and the current model on the eval split and apply the gate."""
    metric, margin = run.config["gate_metric"], float(run.config["gate_margin"])
    current = current_model()
    result = functools.partial(
        GateResult, metric=metric, margin=margin, baseline=current, metrics={}, baseline_metrics={}
    )
    if adapter_dir is None:
        return result(passed=None, detail=NOT_GATED)
    eval_file = gate_eval_file(run=run, export_dir=export_dir, out=out)
    if _rows(eval_file) == 0:
        return result(passed=False, detail=ERR_NO_EVAL_PAIRS.format(version=run.dataset_version))
    base = Path(run.base_model)
    max_length = run.config["max_length"]
    same_base = current is not None and current.adapter_dir and Path(current.base_model) == base
    if current is not None and not current.adapter_dir:
        return result(passed=None, detail=NOT_GATED_CURRENT.format(current=current))
    try:
        metrics = trainer.evaluate_preferences(
            model_dir_or_base=base,
            adapter_dir=adapter_dir,
            eval_file=eval_file,
            reference_adapter_dir=Path(current.adapter_dir) if same_base else None,
            max_length=max_length,
        )
        if current is None or same_base:
            current_accuracy = metrics["reference_normalised_accuracy"]
        else:
            # Another base model: score the current model on its own base.
            current_accuracy = trainer.evaluate_preferences(
                model_dir_or_base=Path(current.base_model),
                adapter_dir=Path(current.adapter_dir),
                eval_file=eval_file,
                max_length=max_length,
            )["normalised_accuracy"]
    except TrainingError as error:  # no pair fits in max_length
        return result(passed=False, detail=f"fails: {error.message}")
    baseline_metrics = {"normalised_accuracy": current_accuracy, **RELATIVE_BASELINE}
    passed, detail = trainer.gate(
        candidate=metrics, current=baseline_metrics, metric=metric, margin=margin
    )
    name = current.name if current else BASE_MODEL_NAME
    return result(
        passed=passed,
        detail=f"{detail}; current: {name}",
        metrics=metrics,
        baseline_metrics=baseline_metrics,
    )
