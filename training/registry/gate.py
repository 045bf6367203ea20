"""The eval gate: a candidate adapter and the current model scored on the same pairs of the
version's held-out eval split, the paired test of their difference (training.registry.paired), and
the verdict the registry records. Writes only the gate's eval file."""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from django.conf import settings

if TYPE_CHECKING:
    from training.runs.models import TrainingRun

from training.datasets import canonical as gold
from training.datasets.files import EVAL_FILE
from training.datasets.models import ExportFormat, Membership, PairKind
from training.errors import TrainingError
from training.registry.models import ModelVersion
from training.registry.paired import PairedResult, attempt_alpha, paired_gate
from training.registry.selectors import BASE_MODEL_NAME, current_model

GATE_EVAL_FILE = "gate_eval.jsonl"
# What the current model scores against itself on the relative metrics: a candidate must
# prefer chosen answers more often than chance, by a positive margin, relative to it.
RELATIVE_BASELINE = {"implicit_reward_accuracy": 0.5, "reward_margin": 0.0}
ERR_NO_EVAL_PAIRS = "fails: {version} has no held-out preference pairs to evaluate on"
NOT_GATED = "not gated: the external trainer left no LoRA adapter to evaluate; an admin decides"
NOT_GATED_CURRENT = "not gated: the current model {current} cannot be evaluated here (no adapter)"
SKIP_NOT_SCORED_BY_BOTH = "not_scored_by_both_models"
SPENDING = (
    "alpha spent across attempts on the same eval pairs: attempt {attempt} of dataset "
    "{dataset} may err with probability {alpha:.4g} (alpha {total} x 6 / (pi^2 k^2))"
)
# Implicit-reward metrics are measured against a reference model: the current one when it
# shares the candidate's base, else the candidate's own base model.
COMPARED_CURRENT = "current: {name}"
COMPARED_OWN_BASE = (
    "compared with the candidate's own base model {base}, not with the current model "
    "{name}: the current model has another base, so this metric cannot be measured against it"
)


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


def gate_min_eval_pairs(run: TrainingRun) -> int:
    """The minimum the run was started with (runs queued before the setting: today's)."""
    return int(run.config.get("gate_min_eval_pairs", settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS))


def gate_eval_file(*, run: TrainingRun, export_dir: Path, out: Path) -> Path:
    """Preference pairs of the version's eval split. A DPO run uses its export as is; an SFT
    export has no rejected answers, so its gate file is written from the eval split's
    preference pairs."""
    if run.method == "dpo":
        return export_dir / EVAL_FILE
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


def _per_pair_scores(metric: str, per_pair: dict) -> list[float]:
    """The candidate's per-pair score on `metric`, whose mean is the metric."""
    key = {
        "normalised_accuracy": "policy_hit",
        "implicit_reward_accuracy": "reward_hit",
        "reward_margin": "margin",
    }[metric]
    return [float(value) for value in per_pair[key]]


def gate_attempt(run: TrainingRun) -> int:
    """1 + the candidates already gated on this dataset's eval pairs (the split is stable
    across the dataset's versions, so every earlier candidate looked at the same pairs)."""
    earlier = ModelVersion.objects.filter(
        dataset_version__dataset_id=run.dataset_version.dataset_id, gate_passed__isnull=False
    ).exclude(run=run)
    return earlier.count() + 1


def _record(
    *,
    metric: str,
    paired: PairedResult | None,
    truncated: int,
    skipped: dict[str, int],
    spending: dict | None = None,
    compared_with: str = "",
) -> dict:
    """`ModelVersion.metrics["gate"]`: the keys the dashboard and the model page read."""
    return {
        **(spending or {}),
        "compared_with": compared_with,
        "method": paired.method if paired else None,
        "metric": metric,
        "candidate": paired.candidate if paired else None,
        "baseline": paired.baseline if paired else None,
        "delta": paired.delta if paired else None,
        "delta_ci": list(paired.delta_ci) if paired and paired.delta_ci else None,
        "n": paired.n if paired else 0,
        "test": paired.test if paired else None,
        "passed": paired.passed if paired else False,
        "truncated": truncated,
        "skipped": sum(skipped.values()),
        "skipped_reasons": skipped,
        "margin": paired.margin if paired else None,
        "min_pairs": paired.min_pairs if paired else None,
    }


# Stays whole: one pass from the eval file to the verdict; every early return is a
# verdict the model page shows, and splitting would scatter them.
def candidate_gate(
    *,
    run: TrainingRun,
    adapter_dir: Path | None,
    export_dir: Path,
    out: Path,
    evaluate: Callable[..., dict],
) -> GateResult:
    """Evaluate the candidate and the current model on the same eval pairs and apply the
    paired gate (training.registry.paired). `evaluate` scores a model on preference pairs
    (training.runs.trainer.evaluate_preferences): the run that owns the trainer passes it
    in, as the registry sits below runs and does not import them."""
    metric, margin = run.config["gate_metric"], float(run.config["gate_margin"])
    min_pairs = gate_min_eval_pairs(run)
    total_alpha = float(run.config.get("gate_alpha", settings.FLYWHEEL_GATE_ALPHA))
    attempt = gate_attempt(run)
    alpha = attempt_alpha(alpha=total_alpha, attempt=attempt)
    spending = {
        "attempt": attempt,
        "alpha": alpha,
        "alpha_total": total_alpha,
        "spending": SPENDING.format(
            attempt=attempt, dataset=run.dataset_version.dataset, alpha=alpha, total=total_alpha
        ),
    }
    current = current_model()
    result = functools.partial(
        GateResult, metric=metric, margin=margin, baseline=current, metrics={}, baseline_metrics={}
    )
    if adapter_dir is None:
        return result(passed=None, detail=NOT_GATED)
    eval_file = gate_eval_file(run=run, export_dir=export_dir, out=out)
    total = _rows(eval_file)
    if total == 0:
        return result(
            passed=False,
            detail=ERR_NO_EVAL_PAIRS.format(version=run.dataset_version),
            metrics={"gate": _record(metric=metric, paired=None, truncated=0, skipped={})},
        )
    base = Path(run.base_model)
    max_length = run.config["max_length"]
    same_base = current is not None and current.adapter_dir and Path(current.base_model) == base
    if current is not None and not current.adapter_dir:
        return result(passed=None, detail=NOT_GATED_CURRENT.format(current=current))
    try:
        metrics = evaluate(
            model_dir_or_base=base,
            adapter_dir=adapter_dir,
            eval_file=eval_file,
            reference_adapter_dir=Path(current.adapter_dir) if same_base else None,
            max_length=max_length,
        )
        per_pair = metrics.pop("per_pair")
        candidate = dict(zip(per_pair["index"], _per_pair_scores(metric, per_pair), strict=True))
        if current is None or same_base:
            current_accuracy = metrics["reference_normalised_accuracy"]
            current_hits = dict(zip(per_pair["index"], per_pair["reference_hit"], strict=True))
        else:
            # Another base model: score the current model on its own base.
            other = evaluate(
                model_dir_or_base=Path(current.base_model),
                adapter_dir=Path(current.adapter_dir),
                eval_file=eval_file,
                max_length=max_length,
            )
            current_accuracy = other["normalised_accuracy"]
            current_hits = dict(
                zip(other["per_pair"]["index"], other["per_pair"]["policy_hit"], strict=True)
            )
    except TrainingError as error:  # no pair fits in max_length
        skipped = {"no_pair_fits_max_length": total}
        return result(
            passed=False,
            detail=f"fails: {error.message}",
            metrics={"gate": _record(metric=metric, paired=None, truncated=0, skipped=skipped)},
        )
    skipped = dict(metrics["skipped_reasons"])
    # Pairs one model's tokenizer could score and the other's could not: the test compares
    # the same pairs only, and says how many it left out and why.
    common = sorted(set(candidate) & set(current_hits))
    if len(common) < len(candidate):
        skipped[SKIP_NOT_SCORED_BY_BOTH] = len(candidate) - len(common)
    baseline_scores = (
        [float(current_hits[i]) for i in common]
        if metric == "normalised_accuracy"
        else [RELATIVE_BASELINE[metric]] * len(common)
    )
    paired = paired_gate(
        candidate=[candidate[i] for i in common],
        baseline=baseline_scores,
        margin=margin,
        min_pairs=min_pairs,
        metric=metric,
        alpha=alpha,
    )
    name = current.name if current else BASE_MODEL_NAME
    if metric != "normalised_accuracy" and current is not None and not same_base:
        compared_with = COMPARED_OWN_BASE.format(base=run.base_model, name=name)
    else:
        compared_with = COMPARED_CURRENT.format(name=name)
    metrics["gate"] = _record(
        metric=metric,
        paired=paired,
        truncated=metrics["truncated"],
        skipped=skipped,
        spending=spending,
        compared_with=compared_with,
    )
    baseline_metrics = {"normalised_accuracy": current_accuracy, **RELATIVE_BASELINE}
    return result(
        passed=paired.passed,
        detail=f"{paired.detail}; {compared_with}; {spending['spending']}",
        metrics=metrics,
        baseline_metrics=baseline_metrics,
    )
