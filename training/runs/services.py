"""Training runs, from the trigger to a worker's claim (writes).

- `training_trigger_check` freezes a new dataset version and queues a run when enough new
  approved gold has accrued since the last frozen version (the dataset's `train_threshold`);
  `training_run_create` queues a run by hand (admins, from the runs page).
- `training_runs_sweep` fails runs whose worker died and re-queues runs whose job was lost.
- A worker claims a queued run (`training_run_claim`, a conditional UPDATE), performs it
  (training.runs.execute) and, if that raises, marks it failed (`training_run_fail`).
"""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta
from pathlib import Path

import redis
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import F, TextField, Value
from django.db.models.functions import Concat
from django.utils import timezone

from flywheel_site import redis as fw_redis
from training.datasets import selectors, services
from training.datasets.models import Dataset, DatasetVersion, ExportFormat
from training.errors import TrainingError
from training.runs.models import TrainingRun
from training.webhooks import services as webhooks

QUEUE = "training"
JOB = "training.runs.jobs.training_run_execute"
# A queued run whose RQ job is gone (Redis was down at enqueue, or flushed) is re-queued by
# the periodic check once it is this old.
REQUEUE_AFTER = timedelta(minutes=2)
# Grace beyond the job timeout before a "running" row is declared abandoned.
ABANDON_GRACE = timedelta(minutes=5)
ERROR_MAX_CHARS = 4000
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
ERR_ABANDONED = (
    "abandoned: still running {hours:.1f} h after it started, longer than the job timeout; "
    "its worker died"
)


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
    raise TrainingError(ERR_NO_FORMAT.format(version=version, formats=", ".join(version.formats)))


def method_for(fmt: str) -> str:
    return "sft" if fmt == ExportFormat.SFT_CONVERSATIONAL else "dpo"


def _config(trainer_name: str) -> dict:
    config = {
        "gate_metric": settings.FLYWHEEL_GATE_METRIC,
        "gate_margin": settings.FLYWHEEL_GATE_MARGIN,
        "gate_min_eval_pairs": settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS,
        "gate_alpha": settings.FLYWHEEL_GATE_ALPHA,
        "auto_promote": settings.FLYWHEEL_AUTO_PROMOTE,
        "canary": settings.FLYWHEEL_CANARY,
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
    overrides: dict | None = None,
    enqueue: bool = True,
) -> TrainingRun:
    """Queue a training run of a frozen version; the job is enqueued after commit (unless
    `enqueue` is off: the caller performs the run itself, as the demo does).

    `overrides` replace settings in the run's config (the demo trains briefly). Refuses a
    draft or quarantined version, a version with a run already queued or running (a
    database constraint), and, when `check_base_model`, a missing base model directory.
    """
    trainer_name = trainer_name or settings.FLYWHEEL_TRAINER
    if version.status != DatasetVersion.Status.FROZEN:
        raise TrainingError(ERR_NOT_FROZEN.format(version=version, status=version.status))
    fmt = training_format(version)
    base = base_model_dir()
    if trainer_name == TrainingRun.Trainer.EXTERNAL:
        if not settings.FLYWHEEL_EXTERNAL_TRAINER_COMMAND.strip():
            raise TrainingError(ERR_NO_EXTERNAL_COMMAND)
    elif check_base_model and not (base / "config.json").is_file():
        raise TrainingError(ERR_NO_BASE_MODEL.format(path=base))
    try:
        with transaction.atomic():
            run = TrainingRun.objects.create(
                dataset_version=version,
                trigger=trigger,
                trainer=trainer_name,
                method=method_for(fmt),
                export_format=fmt,
                base_model=str(base),
                config={**_config(trainer_name), **(overrides or {})},
                requested_by=user,
            )
    except IntegrityError as error:
        if "trainingrun_one_active_per_version" in str(error):
            raise TrainingError(ERR_RUN_ACTIVE.format(version=version), status=409) from None
        raise
    if enqueue:
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


def dataset_trigger(*, dataset: Dataset, now: datetime | None = None) -> TrainingRun | None:
    """Freeze and queue a run if the dataset's new gold reached its threshold."""
    if selectors.gold_new_count(dataset=dataset, now=now) < max(dataset.train_threshold, 1):
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


def log_line(text: str, *, at: datetime) -> str:
    """One line of a run's log, stamped to the millisecond (UTC) with when it happened."""
    return f"{at.astimezone(UTC):%H:%M:%S}.{at.microsecond // 1000:03d} {text}\n"


def log_append(run_id: int, *lines: str) -> None:
    at = timezone.now()
    text = "".join(log_line(line, at=at) for line in lines)
    TrainingRun.objects.filter(pk=run_id).update(
        log=Concat(F("log"), Value(text), output_field=TextField())
    )


def stage_set(run_id: int, stage: str, message: str) -> None:
    TrainingRun.objects.filter(pk=run_id).update(stage=stage)
    log_append(run_id, message)


def training_run_claim(*, run_id: int) -> TrainingRun | None:
    """Move a queued run to running; None if it is not queued (another worker has it, or
    it is finished). The row count of the conditional UPDATE decides, not a prior read."""
    claimed = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.QUEUED).update(
        status=TrainingRun.Status.RUNNING, started_at=timezone.now(), stage="starting"
    )
    if claimed != 1:
        return None
    return TrainingRun.objects.select_related("dataset_version__dataset").get(pk=run_id)


def _finished_emit(*, run_id: int, status: str, model=None, error: str = "") -> None:
    data = {
        "run": run_id,
        "status": status,
        "model": model.pk if model else None,
        "model_status": model.status if model else None,
        "error": error,
        "links": {"run": webhooks.link("runs:run", run_id)},
    }
    webhooks.event_emit(type=webhooks.TRAINING_RUN_FINISHED, data=data)


def _fail(*, run_id: int, error: BaseException | str) -> int:
    if isinstance(error, TrainingError):
        text = error.message  # written for the admin who reads the run page
    else:
        text = error if isinstance(error, str) else repr(error)
    with transaction.atomic():
        updated = TrainingRun.objects.filter(
            pk=run_id, status__in=[TrainingRun.Status.QUEUED, TrainingRun.Status.RUNNING]
        ).update(
            status=TrainingRun.Status.FAILED,
            stage="failed",
            error=text[:ERROR_MAX_CHARS],
            finished_at=timezone.now(),
        )
        if updated:
            _finished_emit(
                run_id=run_id, status=TrainingRun.Status.FAILED, error=text[:ERROR_MAX_CHARS]
            )
    if updated:
        log_append(run_id, f"failed: {text[:ERROR_MAX_CHARS]}")
    return updated


def training_run_succeed(*, run_id: int, metrics: dict, model) -> bool:
    """running -> succeeded with the run's metrics and its registered model; False when
    the run is no longer running (an admin or the sweeper failed it meanwhile)."""
    with transaction.atomic():
        updated = TrainingRun.objects.filter(pk=run_id, status=TrainingRun.Status.RUNNING).update(
            status=TrainingRun.Status.SUCCEEDED,
            stage="done",
            metrics=metrics,
            finished_at=timezone.now(),
        )
        if updated:
            _finished_emit(run_id=run_id, status=TrainingRun.Status.SUCCEEDED, model=model)
    return bool(updated)


def training_run_fail(*, run: TrainingRun, error: BaseException | str) -> None:
    _fail(run_id=run.pk, error=error)
