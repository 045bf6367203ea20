"""Performing a claimed training run (writes): export the version, train (the built-in TRL +
LoRA trainer or an external command), evaluate the adapter against the current model
(training.registry.gate) and register the model that passed or failed
(training.registry.services)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from django.db.models import F, TextField, Value
from django.db.models.functions import Concat

from training.datasets import export
from training.datasets.models import DatasetVersion, Membership, PairKind, Quarantine
from training.errors import TrainingError
from training.registry import gate, rollback
from training.registry import services as registry
from training.registry.models import ModelVersion
from training.runs import external, trainer
from training.runs import services as runs
from training.runs.models import TrainingRun

# Loss points kept on the row for the chart; long runs keep every 2nd, 4th, ... step.
LOSS_CURVE_POINTS = 300
# Progress and log lines are written at most this often (and once at the end): a fast
# model would otherwise write the row dozens of times a second.
PROGRESS_INTERVAL_S = 1.0
ERR_RUN_NOT_RUNNING = "Run #{pk} is no longer running (marked failed or finished elsewhere)."
ERR_EXTERNAL_EXIT = "The external trainer exited with status {code}."
ERR_NO_TRAIN_PAIRS = (
    "{version} has no pair in its train split: there is nothing to train on. Lower the "
    "dataset's eval fraction or freeze a version with more gold."
)
ERR_TOO_FEW_EVAL_PAIRS = (
    "{version} has {n} held-out preference pairs; the gate needs at least {needed} "
    "(FLYWHEEL_GATE_MIN_EVAL_PAIRS). Raise the eval fraction of dataset {dataset} "
    "(now {fraction:.2f}) or freeze a version with more gold; lowering "
    "FLYWHEEL_GATE_MIN_EVAL_PAIRS makes the gate's verdict less trustworthy."
)


class RunAbandoned(Exception):
    """The run's row left `running` while it trained: stop and leave the row as it is."""


class ExternalTrainerFailed(Exception):
    pass


@dataclass
class _Progress:
    """Writes the trainer's per-step progress and its log lines, each stamped when the
    trainer wrote it, to the run row as training goes: at most once a second, one UPDATE
    each time (and once at the end), so the run page's polling shows the log live."""

    run_id: int
    step: int = 0
    total: int = 0
    loss: float | None = None
    curve: list[list[float]] = field(default_factory=list)
    eval_curve: list[list[float]] = field(default_factory=list)
    pending: list[str] = field(default_factory=list)
    stride: int = 1
    written_at: float = 0.0

    def __call__(self, event: dict) -> None:
        self.step, self.total, self.loss = event["step"], event["max_steps"], event["loss"]
        if self.step % self.stride == 0:
            self.curve.append([self.step, round(self.loss, 6)])
            if len(self.curve) > LOSS_CURVE_POINTS:
                self.curve = self.curve[1::2]
                self.stride *= 2
        self._maybe_flush()

    def log(self, event: dict) -> None:
        self.pending.append(runs.log_line(event["line"], at=event["at"]))
        if event["eval_loss"] is not None:
            self.eval_curve.append([event["step"], round(event["eval_loss"], 6)])
        self._maybe_flush()

    def _maybe_flush(self) -> None:
        if time.monotonic() - self.written_at >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self.written_at = time.monotonic()
        text, self.pending = "".join(self.pending), []
        updated = TrainingRun.objects.filter(
            pk=self.run_id, status=TrainingRun.Status.RUNNING
        ).update(
            progress_step=self.step,
            progress_total=self.total,
            progress_loss=self.loss,
            loss_curve=self.curve,
            eval_loss_curve=self.eval_curve,
            log=Concat(F("log"), Value(text), output_field=TextField()),
        )
        if updated != 1:
            # Raised inside the trainer's callback, this stops training.
            raise RunAbandoned(ERR_RUN_NOT_RUNNING.format(pk=self.run_id))


def training_run_perform(*, run: TrainingRun) -> ModelVersion:
    """Export, train, evaluate, register. The run must be claimed (running)."""
    version = DatasetVersion.objects.select_related("dataset").get(pk=run.dataset_version_id)
    if version.status != DatasetVersion.Status.FROZEN:
        # Quarantined while the run waited in the queue.
        raise TrainingError(runs.ERR_NOT_FROZEN.format(version=version, status=version.status))
    if run.trainer == TrainingRun.Trainer.BUILTIN:
        _check_pairs(run=run, version=version)
    out = runs.run_dir(run)
    if out.exists():
        shutil.rmtree(out)  # debris of a database that was rebuilt and reused this id
    out.mkdir(parents=True)
    TrainingRun.objects.filter(pk=run.pk).update(artifact_dir=str(out))
    runs.stage_set(run.pk, "export", f"exporting {version} ({run.export_format})")
    export_dir = export.dataset_version_materialize(version=version) / run.export_format
    metrics: dict = {}
    if run.trainer == TrainingRun.Trainer.EXTERNAL:
        adapter = _train_external(run=run, export_dir=export_dir, out=out, metrics=metrics)
    else:
        adapter = _train_builtin(run=run, export_dir=export_dir, out=out, metrics=metrics)
    TrainingRun.objects.filter(pk=run.pk).update(metrics=metrics)
    runs.stage_set(
        run.pk, "evaluate", "evaluating on the held-out eval split against the current model"
    )
    gate_result = gate.candidate_gate(
        run=run,
        adapter_dir=adapter,
        export_dir=export_dir,
        out=out,
        evaluate=trainer.evaluate_preferences,
    )
    metrics["eval"] = gate_result.metrics
    metrics["baseline"] = gate_result.baseline_metrics
    model = registry.model_version_register(run=run, adapter_dir=adapter, gate_result=gate_result)
    # Data quarantined while this run trained: the rollback that ran then could not see
    # this model yet.
    for quarantine in Quarantine.objects.filter(created_at__gte=version.frozen_at).order_by("pk"):
        rollback.models_rollback_for(quarantine=quarantine)
    model.refresh_from_db()
    runs.training_run_succeed(run_id=run.pk, metrics=metrics, model=model)
    runs.log_append(run.pk, f"registered {model.name} as {model.status}: gate {model.gate_detail}")
    return model


def _check_pairs(*, run: TrainingRun, version: DatasetVersion) -> None:
    """Refuse before exporting or training a version the gate could never judge, or with
    nothing to train on: found out after training, it would cost the whole run."""
    splits = Membership.objects.filter(version=version)
    if not splits.filter(split=Membership.Split.TRAIN).exists():
        raise TrainingError(ERR_NO_TRAIN_PAIRS.format(version=version))
    eval_pairs = splits.filter(split=Membership.Split.EVAL, pair__kind=PairKind.PREFERENCE).count()
    needed = gate.gate_min_eval_pairs(run)
    if eval_pairs < needed:
        raise TrainingError(
            ERR_TOO_FEW_EVAL_PAIRS.format(
                version=version,
                n=eval_pairs,
                needed=needed,
                fraction=version.eval_fraction,
                dataset=version.dataset.name,
            )
        )


def _train_builtin(*, run: TrainingRun, export_dir: Path, out: Path, metrics: dict) -> Path:
    config = run.config
    runs.stage_set(run.pk, "train", f"training {run.method} + LoRA on {run.base_model}")
    progress = _Progress(run_id=run.pk)
    result = trainer.train(
        export_dir=export_dir,
        config=trainer.TrainConfig(
            method=run.method,
            base_model_dir=Path(run.base_model),
            output_dir=out / "adapter",
            steps=config["steps"],
            batch_size=config["batch_size"],
            learning_rate=config["learning_rate"],
            lora_r=config["lora_r"],
            lora_alpha=2 * config["lora_r"],
            max_length=config["max_length"],
            beta=config["beta"],
        ),
        progress=progress,
        log=progress.log,
    )
    progress.flush()  # the last lines; every line was stamped when the trainer wrote it
    summary = result.as_dict()
    # The row's loss_curve and eval_loss_curve hold them.
    summary.pop("losses")
    summary.pop("eval_losses")
    metrics["train"] = summary
    return result.adapter_dir


def _train_external(*, run: TrainingRun, export_dir: Path, out: Path, metrics: dict) -> Path | None:
    runs.stage_set(run.pk, "train", "running the external trainer")
    result = external.run_external(
        command=run.config["command"],
        export_dir=export_dir,
        output_dir=out,
        timeout_s=run.config["timeout_s"],
    )
    truncated = " (output truncated: the last part is kept)" if result.output_truncated else ""
    runs.log_append(
        run.pk,
        f"$ {' '.join(result.argv)}",
        f"exit status {result.exit_code} after {result.duration_s:.1f} s{truncated}",
        result.output.rstrip("\n"),
    )
    metrics["external"] = {
        "argv": result.argv,
        "exit_code": result.exit_code,
        "timed_out": result.timed_out,
        "duration_s": round(result.duration_s, 3),
        "output_truncated": result.output_truncated,
    }
    if not result.ok:
        raise ExternalTrainerFailed(result.error or ERR_EXTERNAL_EXIT.format(code=result.exit_code))
    return out if (out / "adapter_config.json").is_file() else None
