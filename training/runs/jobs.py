"""RQ entry points for training runs: thin, take ids, call services.

`training_run_execute` claims its run with a conditional UPDATE (queued -> running) before
doing anything, so a retried job, a duplicate enqueue or a second worker finds the run
claimed and does nothing. Training is not retried automatically: a failed run keeps its
error and an admin starts a new one.
"""

from django.db import close_old_connections

from training.registry import experiments
from training.runs import execute as perform
from training.runs import services as runs


def training_run_execute(run_id: int) -> dict:
    # Workers outlive database restarts; jobs are not requests, so Django's per-request
    # connection check does not run for them.
    close_old_connections()
    run = runs.training_run_claim(run_id=run_id)
    if run is None:
        return {"run": run_id, "skipped": "not queued"}
    try:
        model = perform.training_run_perform(run=run)
    except perform.RunAbandoned:
        return {"run": run_id, "skipped": "abandoned while running"}
    except BaseException as error:
        runs.training_run_fail(run=run, error=error)
        raise
    return {"run": run_id, "model": model.pk, "status": model.status}


def trigger_check() -> dict:
    """Periodic: close dead runs, re-queue lost ones, start the runs that are due, then
    decide the running canary experiment and let the monitor look at the current model."""
    close_old_connections()
    swept = runs.training_runs_sweep()
    started = runs.training_trigger_check()
    checked = experiments.experiments_check()
    return {**swept, "started": [run.pk for run in started], **checked}
