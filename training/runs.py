"""Training runs, the eval gate and the model registry (writes).

- `training_trigger_check` freezes a new dataset version and queues a run when enough new
  approved gold has accrued since the last frozen version (the dataset's `train_threshold`);
  `training_run_create` queues a run by hand (admins, from the runs page).
- A worker claims a queued run (`training_run_claim`, a conditional UPDATE) and performs it
  (`training_run_perform`): export the version, train (the built-in TRL + LoRA trainer or an
  external command), evaluate the adapter on the version's held-out eval split against the
  current model, and register a `ModelVersion` that passed or failed the gate.
- `model_version_promote` makes a candidate current (an admin, or automatically when
  FLYWHEEL_AUTO_PROMOTE is on and the gate passed); `models_rollback_for` flags every model
  trained on quarantined data `rolled_back` and restores the model that was current before.

Every change of a model's standing writes a `ModelEvent` with its reason, inside the same
transaction, under one advisory lock, so the registry is changed by one writer at a time.
"""

from __future__ import annotations

import functools
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import pghistory
import redis
from django.conf import settings
from django.db import IntegrityError, connection, transaction
from django.db.models import Exists, F, OuterRef, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from flywheel_site import redis as fw_redis
from training import export, gold, services, trainer
from training.models import (
    Dataset,
    DatasetVersion,
    ExportFormat,
    GoldPair,
    Membership,
    ModelEvent,
    ModelVersion,
    PairKind,
    Quarantine,
    TrainingRun,
)

QUEUE = "training"
JOB = "training.jobs.training_run_execute"
REGISTRY_LOCK = 7_205_001
# Loss points kept on the row for the chart; long runs keep every 2nd, 4th, ... step.
LOSS_CURVE_POINTS = 300
# Progress is written at most this often (and once at the end): a fast model would
# otherwise write the row dozens of times a second.
PROGRESS_INTERVAL_S = 1.0
# A queued run whose RQ job is gone (Redis was down at enqueue, or flushed) is re-queued by
# the periodic check once it is this old.
REQUEUE_AFTER = timedelta(minutes=2)
# Grace beyond the job timeout before a "running" row is declared abandoned.
ABANDON_GRACE = timedelta(minutes=5)
ERROR_MAX_CHARS = 4000
GATE_EVAL_FILE = "gate_eval.jsonl"
# What the current model scores against itself on the relative metrics: a candidate must
# prefer chosen answers more often than chance, by a positive margin, relative to it.
RELATIVE_BASELINE = {"implicit_reward_accuracy": 0.5, "reward_margin": 0.0}

ERR_NOT_FROZEN = "Only a frozen dataset version can be trained on; {version} is {status}."
ERR_RUN_ACTIVE = "{version} already has a training run queued or running."
ERR_NO_BASE_MODEL = (
    "No base model at {path}: set FLYWHEEL_BASE_MODEL to a local model directory "
    "(`manage.py load_demo` builds a tiny one)."
)
ERR_NO_EXTERNAL_COMMAND = (
    "FLYWHEEL_EXTERNAL_TRAINER_COMMAND is empty: set it to use the external trainer."
)
ERR_NO_FORMAT = "{version} is exported in no format a trainer can use ({formats})."
ERR_RUN_NOT_RUNNING = "Run #{pk} is no longer running (marked failed or finished elsewhere)."
ERR_EXTERNAL_EXIT = "The external trainer exited with status {code}."
ERR_ABANDONED = (
    "abandoned: still running {hours:.1f} h after it started, longer than the job timeout; "
    "its worker died"
)
ERR_NO_EVAL_PAIRS = "fails: {version} has no held-out preference pairs to evaluate on"
ERR_PROMOTE_STATUS = "Only a candidate can be promoted; {model} is {status}."
ERR_PROMOTE_QUARANTINED = (
    "{model} was trained on quarantined data ({version}): it cannot be promoted."
)
ERR_PROMOTE_BASELINE = (
    "{model} was gated against {baseline}, but the current model is now {current}: "
    "start a new run so it is compared with the current model."
)
ERR_REJECT_STATUS = "Only a candidate can be rejected; {model} is {status}."
ERR_REASON = "Say why."
NOT_GATED = "not gated: the external trainer left no LoRA adapter to evaluate; an admin decides"
NOT_GATED_CURRENT = "not gated: the current model {current} cannot be evaluated here (no adapter)"
REASON_AUTO_PROMOTED = "automatic promotion (FLYWHEEL_AUTO_PROMOTE): gate {detail}"
REASON_REGISTERED = "trained by run #{run} on {version}; gate {detail}"
REASON_REPLACED = "replaced as current by {model}"
REASON_RESTORED = "restored as current: {model} was rolled back ({reason})"
REASON_ROLLED_BACK = "trained on quarantined data: quarantine #{pk} ({kind}): {reason}"
REASON_NO_PREVIOUS = "; no earlier model to restore, the base model is current again"
BASE_MODEL_NAME = "the base model"


class RunAbandoned(Exception):
    """The run's row left `running` while it trained: stop and leave the row as it is."""


class ExternalTrainerFailed(Exception):
    pass


# --- paths and choices ----------------------------------------------------------------------


def runs_root() -> Path:
    return Path(settings.FLYWHEEL_MODELS_DIR) / "runs"


def run_dir(run: TrainingRun) -> Path:
    return runs_root() / f"run-{run.pk}"


def base_model_dir() -> Path:
    return Path(settings.FLYWHEEL_BASE_MODEL).absolute()


def training_format(version: DatasetVersion) -> str:
    """The export format to train on: conversational DPO when the version has it (the chat
    template marks turns), else standard DPO, else SFT."""
    for fmt in (
        ExportFormat.DPO_CONVERSATIONAL,
        ExportFormat.DPO_STANDARD,
        ExportFormat.SFT_CONVERSATIONAL,
    ):
        if fmt in version.formats:
            return fmt.value
    raise ValueError(ERR_NO_FORMAT.format(version=version, formats=", ".join(version.formats)))


def method_for(fmt: str) -> str:
    return "sft" if fmt == ExportFormat.SFT_CONVERSATIONAL else "dpo"


def current_model() -> ModelVersion | None:
    return ModelVersion.objects.filter(status=ModelVersion.Status.PROMOTED).first()


def _registry_lock() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [REGISTRY_LOCK])


# --- creating and queueing runs ---------------------------------------------------------------


def _config(trainer_name: str) -> dict:
    config = {
        "gate_metric": settings.FLYWHEEL_GATE_METRIC,
        "gate_margin": settings.FLYWHEEL_GATE_MARGIN,
        "auto_promote": settings.FLYWHEEL_AUTO_PROMOTE,
        "max_length": settings.FLYWHEEL_TRAINING_MAX_LENGTH,
    }
    if trainer_name == TrainingRun.Trainer.EXTERNAL:
        config.update(
            command=settings.FLYWHEEL_EXTERNAL_TRAINER_COMMAND,
            timeout_s=settings.FLYWHEEL_EXTERNAL_TRAINER_TIMEOUT_S,
        )
    else:
        config.update(
            steps=settings.FLYWHEEL_TRAINING_STEPS,
            batch_size=settings.FLYWHEEL_TRAINING_BATCH_SIZE,
            learning_rate=settings.FLYWHEEL_TRAINING_LEARNING_RATE,
            lora_r=settings.FLYWHEEL_TRAINING_LORA_R,
            beta=settings.FLYWHEEL_TRAINING_BETA,
        )
    return config


def training_run_create(
    *,
    version: DatasetVersion,
    trigger: str = TrainingRun.Trigger.MANUAL,
    user=None,
    trainer_name: str | None = None,
    check_base_model: bool = True,
) -> TrainingRun:
    """Queue a training run of a frozen version; the job is enqueued after commit.

    Refuses a draft or quarantined version, a version with a run already queued or running
    (a database constraint), and, when `check_base_model`, a missing base model directory.
    """
    trainer_name = trainer_name or settings.FLYWHEEL_TRAINER
    if version.status != DatasetVersion.Status.FROZEN:
        raise ValueError(ERR_NOT_FROZEN.format(version=version, status=version.status))
    fmt = training_format(version)
    base = base_model_dir()
    if trainer_name == TrainingRun.Trainer.EXTERNAL:
        if not settings.FLYWHEEL_EXTERNAL_TRAINER_COMMAND.strip():
            raise ValueError(ERR_NO_EXTERNAL_COMMAND)
    elif check_base_model and not (base / "config.json").is_file():
        raise ValueError(ERR_NO_BASE_MODEL.format(path=base))
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                dataset_version=version,
                trigger=trigger,
                trainer=trainer_name,
                method=method_for(fmt),
                export_format=fmt,
                base_model=str(base),
                config=_config(trainer_name),
                requested_by=user,
            )
    except IntegrityError as error:
        if "trainingrun_one_active_per_version" in str(error):
            raise ValueError(ERR_RUN_ACTIVE.format(version=version)) from None
        raise
    transaction.on_commit(functools.partial(training_run_enqueue, run_id=run.pk))
    return run


def training_run_enqueue(*, run_id: int) -> bool:
    """Hand the run to the training queue. False if Redis is down: the row stays queued and
    the periodic check queues it again."""
    return fw_redis.enqueue(
        QUEUE,
        JOB,
        run_id,
        job_id=f"training-run-{run_id}",
        job_timeout=settings.FLYWHEEL_TRAINING_JOB_TIMEOUT_S,
    )


# --- the trigger ----------------------------------------------------------------------------------


def gold_new_count(*, dataset: Dataset, now: datetime | None = None) -> int:
    """Approved gold the next freeze of `dataset` could add: pairs of its kinds and task
    types, older than its lag, not superseded, and not in its last frozen version."""
    now = now or timezone.now()
    kinds = (
        services.PREFERENCE_KINDS if dataset.kind == Dataset.Kind.PREFERENCE else services.SFT_KINDS
    )
    pairs = GoldPair.objects.filter(
        kind__in=kinds, occurred_at__lt=now - timedelta(days=dataset.lag_days)
    ).filter(~Exists(GoldPair.objects.filter(supersedes=OuterRef("pk"))))
    if dataset.task_types:
        pairs = pairs.filter(task_type__in=dataset.task_types)
    last = (
        DatasetVersion.objects.filter(dataset=dataset)
        .exclude(status=DatasetVersion.Status.DRAFT)
        .order_by("-number")
        .first()
    )
    if last is not None:
        pairs = pairs.filter(~Exists(Membership.objects.filter(version=last, pair=OuterRef("pk"))))
    return pairs.count()


def dataset_trigger(*, dataset: Dataset, now: datetime | None = None) -> TrainingRun | None:
    """Freeze and queue a run if the dataset's new gold reached its threshold."""
    if gold_new_count(dataset=dataset, now=now) < max(dataset.train_threshold, 1):
        return None
    with transaction.atomic():
        version, created = services.dataset_version_freeze(dataset=dataset, now=now)
        if (
            not created
            or version.training_runs.filter(trigger=TrainingRun.Trigger.THRESHOLD).exists()
        ):
            return None
        return training_run_create(
            version=version, trigger=TrainingRun.Trigger.THRESHOLD, check_base_model=False
        )


def training_trigger_check(*, now: datetime | None = None) -> list[TrainingRun]:
    """Sync gold from approved outcomes, then trigger every dataset that is due. Called by
    the periodic job; safe to run concurrently (freezes serialise on the dataset row and a
    version gets at most one threshold run, by constraint)."""
    services.gold_pairs_sync()
    started = []
    for dataset in Dataset.objects.order_by("pk"):
        try:
            run = dataset_trigger(dataset=dataset, now=now)
        except IntegrityError:
            continue  # a concurrent check queued this version's run first
        if run is not None:
            started.append(run)
    return started


def training_runs_sweep(*, now: datetime | None = None) -> dict:
    """Mark runs whose worker died failed, and re-queue queued runs whose job was lost."""
    now = now or timezone.now()
    timeout = timedelta(seconds=settings.FLYWHEEL_TRAINING_JOB_TIMEOUT_S)
    stale = TrainingRun.objects.filter(
        status=TrainingRun.Status.RUNNING, started_at__lt=now - timeout - ABANDON_GRACE
    )
    abandoned = 0
    for run in stale:
        hours = (now - run.started_at).total_seconds() / 3600
        abandoned += _fail(run_id=run.pk, error=ERR_ABANDONED.format(hours=hours))
    requeued = 0
    for run_id in TrainingRun.objects.filter(
        status=TrainingRun.Status.QUEUED, created_at__lt=now - REQUEUE_AFTER
    ).values_list("pk", flat=True):
        if not _job_exists(f"training-run-{run_id}") and training_run_enqueue(run_id=run_id):
            requeued += 1
    return {"abandoned": abandoned, "requeued": requeued}


def _job_exists(job_id: str) -> bool:
    from rq.job import Job

    try:
        return Job.exists(job_id, connection=fw_redis.client())
    except redis.RedisError:
        return True  # cannot tell; enqueueing would fail anyway


# --- performing a run -----------------------------------------------------------------------


def _append_log(run_id: int, *lines: str) -> None:
    stamp = timezone.now().strftime("%H:%M:%S")
    text = "".join(f"{stamp} {line}\n" for line in lines)
    TrainingRun.objects.filter(pk=run_id).update(
        log=Concat(F("log"), Value(text), output_field=TextField())
    )


def _stage(run_id: int, stage: str, message: str) -> None:
    TrainingRun.objects.filter(pk=run_id).update(stage=stage)
    _append_log(run_id, message)


@dataclass
class _Progress:
    """Writes the trainer's per-step progress to the run row, throttled."""

    run_id: int
    step: int = 0
    total: int = 0
    loss: float | None = None
    curve: list[list[float]] = field(default_factory=list)
    stride: int = 1
    written_at: float = 0.0

    def __call__(self, event: dict) -> None:
        self.step, self.total, self.loss = event["step"], event["max_steps"], event["loss"]
        if self.step % self.stride == 0:
            self.curve.append([self.step, round(self.loss, 6)])
            if len(self.curve) > LOSS_CURVE_POINTS:
                self.curve = self.curve[1::2]
                self.stride *= 2
        if time.monotonic() - self.written_at >= PROGRESS_INTERVAL_S:
            self.flush()

    def flush(self) -> None:
        self.written_at = time.monotonic()
        updated = TrainingRun.objects.filter(
            pk=self.run_id, status=TrainingRun.Status.RUNNING
        ).update(
            progress_step=self.step,
            progress_total=self.total,
            progress_loss=self.loss,
            loss_curve=self.curve,
        )
        if updated != 1:
            # Raised inside the trainer's callback, this stops training.
            raise RunAbandoned(ERR_RUN_NOT_RUNNING.format(pk=self.run_id))


def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Move a queued run to running; None if it is not queued (another worker has it, or
    it is finished). The row count of the conditional UPDATE decides, not a prior read."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), stage="starting"
    )
    if claimed != 1:
        return None
    return TrainingRun.objects.select_related("dataset_version__dataset").get(pk=run_id)


def _fail(*, run_id: int, error: BaseException | str) -> int:
    text = error if isinstance(error, str) else repr(error)
    updated = TrainingRun.objects.filter(
        pk=run_id, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
    ).update(
        status=TrainingRun.Status.FAILED,
        stage="failed",
        error=text[:ERROR_MAX_CHARS],
        finished_at=timezone.now(),
    )
    if updated:
        _append_log(run_id, f"failed: {text[:ERROR_MAX_CHARS]}")
    return updated


def training_run_fail(*, run: TrainingRun, error: BaseException | str) -> None:
    _fail(run_id=run.pk, error=error)


def training_run_perform(*, run: TrainingRun) -> ModelVersion:
    """Export, train, evaluate, register. The run must be claimed (running)."""
    version = DatasetVersion.objects.select_related("dataset").get(pk=run.dataset_version_id)
    if version.status != DatasetVersion.Status.FROZEN:
        # Quarantined while the run waited in the queue.
        raise ValueError(ERR_NOT_FROZEN.format(version=version, status=version.status))
    out = run_dir(run)
    if out.exists():
        shutil.rmtree(out)  # debris of a database that was rebuilt and reused this id
    out.mkdir(parents=True)
    TrainingRun.objects.filter(pk=run.pk).update(artifact_dir=str(out))
    _stage(run.pk, "export", f"exporting {version} ({run.export_format})")
    export_dir = export.dataset_version_materialize(version=version) / run.export_format
    metrics: dict = {}
    if run.trainer == TrainingRun.Trainer.EXTERNAL:
        adapter = _train_external(run=run, export_dir=export_dir, out=out, metrics=metrics)
    else:
        adapter = _train_builtin(run=run, export_dir=export_dir, out=out, metrics=metrics)
    TrainingRun.objects.filter(pk=run.pk).update(metrics=metrics)
    _stage(run.pk, "evaluate", "evaluating on the held-out eval split against the current model")
    gate_result = candidate_gate(run=run, adapter_dir=adapter, export_dir=export_dir, out=out)
    metrics["eval"] = gate_result.metrics
    metrics["baseline"] = gate_result.baseline_metrics
    model = model_version_register(run=run, adapter_dir=adapter, gate_result=gate_result)
    # Data quarantined while this run trained: the rollback that ran then could not see
    # this model yet.
    for quarantine in Quarantine.objects.filter(created_at__gte=version.frozen_at).order_by("pk"):
        models_rollback_for(quarantine=quarantine)
    model.refresh_from_db()
    TrainingRun.objects.filter(pk=run.pk, status=TrainingRun.Status.RUNNING).update(
        status=TrainingRun.Status.SUCCEEDED,
        stage="done",
        metrics=metrics,
        finished_at=timezone.now(),
    )
    _append_log(run.pk, f"registered {model.name} as {model.status}: gate {model.gate_detail}")
    return model


def _train_builtin(*, run: TrainingRun, export_dir: Path, out: Path, metrics: dict) -> Path:
    config = run.config
    _stage(run.pk, "train", f"training {run.method} + LoRA on {run.base_model}")
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
    )
    progress.flush()
    _append_log(run.pk, *result.log_lines)
    summary = result.as_dict()
    summary.pop("losses")  # the row's loss_curve holds them
    metrics["train"] = summary
    return result.adapter_dir


def _train_external(*, run: TrainingRun, export_dir: Path, out: Path, metrics: dict) -> Path | None:
    _stage(run.pk, "train", "running the external trainer")
    result = trainer.run_external(
        command=run.config["command"],
        export_dir=export_dir,
        output_dir=out,
        timeout_s=run.config["timeout_s"],
    )
    truncated = " (output truncated: the last part is kept)" if result.output_truncated else ""
    _append_log(
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


# --- the gate ---------------------------------------------------------------------------------


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
    except ValueError as error:  # no pair fits in max_length
        return result(passed=False, detail=f"fails: {error}")
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


# --- the registry -----------------------------------------------------------------------------


def _event(model: ModelVersion, action: str, *, from_status: str, reason: str, **extra) -> None:
    ModelEvent.objects.create(
        model=model,
        action=action,
        from_status=from_status,
        to_status=model.status,
        reason=reason,
        **extra,
    )


def model_version_register(
    *, run: TrainingRun, adapter_dir: Path | None, gate_result: GateResult
) -> ModelVersion:
    """Record the run's model: `rejected` if it failed the gate, else a `candidate`,
    promoted at once when the run was started with auto-promotion on and the model it was
    gated against is still current."""
    version = run.dataset_version
    status = (
        ModelVersion.Status.REJECTED
        if gate_result.passed is False
        else ModelVersion.Status.CANDIDATE
    )
    reason = REASON_REGISTERED.format(run=run.pk, version=version, detail=gate_result.detail)
    with transaction.atomic(), pghistory.context(reason=reason, run=run.pk):
        _registry_lock()
        model = ModelVersion.objects.create(
            name=f"{version.dataset.name}-v{version.number}-run{run.pk}",
            run=run,
            dataset_version=version,
            method=run.method,
            base_model=run.base_model,
            adapter_dir=str(adapter_dir) if adapter_dir else "",
            metrics=gate_result.metrics,
            baseline=gate_result.baseline,
            baseline_metrics=gate_result.baseline_metrics,
            gate_metric=gate_result.metric,
            gate_margin=gate_result.margin,
            gate_passed=gate_result.passed,
            gate_detail=gate_result.detail,
            status=status,
        )
        action = (
            ModelEvent.Action.REJECTED
            if status == ModelVersion.Status.REJECTED
            else ModelEvent.Action.REGISTERED
        )
        _event(model, action, from_status="", reason=reason)
        if gate_result.passed and run.config.get("auto_promote"):
            current = current_model()
            if current == gate_result.baseline:
                _promote(
                    model=model,
                    current=current,
                    user=None,
                    reason=REASON_AUTO_PROMOTED.format(detail=gate_result.detail),
                )
    return model


def _promote(
    *,
    model: ModelVersion,
    current: ModelVersion | None,
    user,
    reason: str,
    action: str = ModelEvent.Action.PROMOTED,
    replaced: ModelVersion | None = None,
) -> None:
    """Make `model` current; `current` (still promoted) goes back to candidate. `replaced`
    names the model it takes over from when that one has already left `promoted`."""
    if current is not None:
        current.status = ModelVersion.Status.CANDIDATE
        current.save(update_fields=["status"])
        _event(
            current,
            ModelEvent.Action.REPLACED,
            from_status=ModelVersion.Status.PROMOTED,
            reason=REASON_REPLACED.format(model=model),
            other=model,
            user=user,
        )
    before = model.status
    model.status = ModelVersion.Status.PROMOTED
    model.promoted_at = timezone.now()
    model.promoted_by = user
    model.save(update_fields=["status", "promoted_at", "promoted_by"])
    _event(model, action, from_status=before, reason=reason, other=current or replaced, user=user)


def model_version_promote(*, model: ModelVersion, user, reason: str = "") -> ModelVersion:
    """Make a candidate the current model (an admin's decision, recorded with the reason).

    A model never promoted before must have been gated against the model that is current
    now: a candidate that beat last month's model has not shown it beats today's.
    """
    reason = (reason or "").strip() or f"promoted by {user}"
    with transaction.atomic(), pghistory.context(reason=reason):
        _registry_lock()
        model = ModelVersion.objects.select_related("dataset_version").get(pk=model.pk)
        if model.status != ModelVersion.Status.CANDIDATE:
            raise ValueError(ERR_PROMOTE_STATUS.format(model=model, status=model.status))
        if model.dataset_version.status == DatasetVersion.Status.QUARANTINED:
            raise ValueError(
                ERR_PROMOTE_QUARANTINED.format(model=model, version=model.dataset_version)
            )
        current = current_model()
        if (
            model.promoted_at is None
            and model.gate_passed is not None
            and model.baseline_id != (current.pk if current else None)
        ):
            raise ValueError(
                ERR_PROMOTE_BASELINE.format(
                    model=model,
                    baseline=model.baseline or BASE_MODEL_NAME,
                    current=current or BASE_MODEL_NAME,
                )
            )
        _promote(model=model, current=current, user=user, reason=reason)
    return model


def model_version_reject(*, model: ModelVersion, user, reason: str) -> ModelVersion:
    """An admin turns a candidate down (it stays in the registry, never promoted)."""
    reason = (reason or "").strip()
    if not reason:
        raise ValueError(ERR_REASON)
    with transaction.atomic(), pghistory.context(reason=reason):
        _registry_lock()
        model = ModelVersion.objects.get(pk=model.pk)
        if model.status != ModelVersion.Status.CANDIDATE:
            raise ValueError(ERR_REJECT_STATUS.format(model=model, status=model.status))
        model.status = ModelVersion.Status.REJECTED
        model.save(update_fields=["status"])
        _event(
            model,
            ModelEvent.Action.REJECTED,
            from_status=ModelVersion.Status.CANDIDATE,
            reason=reason,
            user=user,
        )
    return model


@dataclass
class Rollback:
    rolled_back: list[ModelVersion]
    previous_current: ModelVersion | None
    restored: ModelVersion | None


def models_rollback_for(*, quarantine: Quarantine, user=None) -> Rollback:
    """Flag every model trained on a version the quarantine affects `rolled_back`; if the
    current model is among them, restore the model that was current before it (the latest
    promoted of the others that is not rolled back), or fall back to the base model.

    Idempotent: models already rolled back are left alone. Call it in the transaction that
    records the quarantine.
    """
    versions = services.versions_affected(quarantine=quarantine)
    reason = REASON_ROLLED_BACK.format(
        pk=quarantine.pk, kind=quarantine.get_kind_display(), reason=quarantine.reason
    )
    with transaction.atomic(), pghistory.context(reason=reason, quarantine=quarantine.pk):
        _registry_lock()
        affected = list(
            ModelVersion.objects.filter(dataset_version__in=versions)
            .exclude(status=ModelVersion.Status.ROLLED_BACK)
            .order_by("pk")
        )
        current = current_model()
        was_current = current is not None and current.pk in {m.pk for m in affected}
        restored = None
        if was_current:
            restored = (
                ModelVersion.objects.filter(
                    status=ModelVersion.Status.CANDIDATE, promoted_at__isnull=False
                )
                .exclude(pk__in=[m.pk for m in affected])
                .order_by("-promoted_at", "-pk")
                .first()
            )
        for model in affected:
            before = model.status
            model.status = ModelVersion.Status.ROLLED_BACK
            model.save(update_fields=["status"])
            note = REASON_NO_PREVIOUS if model == current and restored is None else ""
            _event(
                model,
                ModelEvent.Action.ROLLED_BACK,
                from_status=before,
                reason=reason + note,
                quarantine=quarantine,
                other=restored if model == current else None,
                user=user,
            )
        if restored is not None:
            _promote(
                model=restored,
                current=None,
                user=user,
                reason=REASON_RESTORED.format(model=current, reason=reason),
                action=ModelEvent.Action.RESTORED,
                replaced=current,
            )
    return Rollback(
        rolled_back=affected, previous_current=current if was_current else None, restored=restored
    )
