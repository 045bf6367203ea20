"""The demo's training cycles: each dataset version the simulated weeks froze is trained,
gated and decided, in order, at its simulated time.

They are the slow part of `load_demo` (three models trained on the CPU), so `make run`
serves first and runs them in the background (`flywheel_site.demo.jobs`), while every page
says how far they are (`flywheel_site.demo.progress`). `load_demo` without `--background` runs them
inline, as before.

A cycle happens at its version's simulated time: the run starts an hour after the freeze
(the clock then runs on, the run takes its real time) and a candidate that passes the gate
is promoted the next morning, so the rows the services stamp lie in the simulated weeks
whenever the worker gets to them. Idempotent: a version that has a run is not trained again.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta

from django.contrib.auth import get_user_model

from flywheel_site.demo import canary, progress
from training.datasets import selectors
from training.errors import TrainingError
from training.models import DatasetVersion, ModelVersion, TrainingRun
from training.registry import services as registry
from training.runs import jobs
from training.runs import services as training_runs

# The second cycle's run is an experiment with a far lower learning rate: it learns next to
# nothing, so the gate rejects it whatever the data.
EXPERIMENT_CYCLE = 1
EXPERIMENT = {"learning_rate": 1e-5}
# Short runs keep the demo's cycles within a couple of minutes on a laptop; the small preset
# (`load_demo --preset small`) trains in seconds, for tests that need cycles, not models.
PRESETS = {
    "demo": {"steps": 24, "batch_size": 8, "max_length": 512},
    "small": {"steps": 2, "batch_size": 4, "max_length": 512},
}
DEFAULT_PRESET = "demo"
RUN_AFTER_FREEZE = timedelta(hours=1)
# Frozen at 18:00, promoted at 9:30 the next morning.
PROMOTE_AFTER_FREEZE = timedelta(hours=15, minutes=30)

NOT_TRAINED = "{version}: not trained, {error}"
GATED = "{model}: {status}; gate {detail}"
PROMOTE_REASON = "passes the paired gate on held-out gold (demo: promoted by the admin)"


def _versions(dataset_name: str) -> list[DatasetVersion]:
    """The demo's frozen versions the gate can judge (a small demo's may be too short)."""
    versions = DatasetVersion.objects.filter(
        dataset__name=dataset_name, status=DatasetVersion.Status.FROZEN
    ).order_by("number")
    return [v for v in versions if selectors.eval_shortfall(version=v) is None]


def demo_cycles_pending(*, dataset_name: str) -> tuple[int, int]:
    """(the first cycle not trained yet, how many cycles there are); the first is past the
    last when all are trained."""
    versions = _versions(dataset_name)
    trained = TrainingRun.objects.filter(dataset_version__in=versions).count()
    return trained + 1, len(versions)


def demo_cycles_train(*, dataset_name: str, stdout, preset: str = DEFAULT_PRESET) -> None:
    """Train, gate and decide every cycle not trained yet, in order (module docstring);
    the banner on every page counts them, and is gone when they are done."""
    admin = get_user_model().objects.filter(is_superuser=True).order_by("pk").first()
    versions = _versions(dataset_name)
    try:
        trained = False
        for number, version in enumerate(versions, 1):
            if TrainingRun.objects.filter(dataset_version=version).exists():
                continue
            progress.progress_set(text=progress.CYCLE.format(cycle=number, of=len(versions)))
            # The last candidate is left for the canary (flywheel_site.demo.canary).
            _cycle_train(
                version=version,
                user=admin,
                stdout=stdout,
                training=PRESETS[preset],
                promote=number < len(versions),
            )
            trained = True
        if trained:
            canary.demo_canary_start(user=admin, stdout=stdout)
    finally:
        # Done or failed, the demo is no longer loading (and `make run` starts cron).
        progress.progress_clear()


@contextlib.contextmanager
def _one_thread():
    """Train on one thread with torch's deterministic kernels: how a CPU splits a sum
    across threads changes its last bits, and the demo's gate margins are small enough for
    that to flip a verdict between a 2-core laptop and a 16-core server. (A CPU with other
    vector instructions can still differ: the README says what the demo guarantees.)

    Deterministic mode also fills every new uninitialised tensor with NaN, a debugging aid
    that changes no result (a kernel that reads memory before writing it would turn NaN)
    and is turned off here: TRL's log-probabilities allocate a [tokens, 32768] buffer per
    forward whatever the vocabulary (512 for the demo's base model), and filling it took a
    third of every cycle's time."""
    import torch
    from torch.utils import deterministic as torch_deterministic

    threads = torch.get_num_threads()
    deterministic = torch.are_deterministic_algorithms_enabled()
    fill = torch_deterministic.fill_uninitialized_memory
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch_deterministic.fill_uninitialized_memory = False
    try:
        yield
    finally:
        torch.set_num_threads(threads)
        torch.use_deterministic_algorithms(deterministic)
        torch_deterministic.fill_uninitialized_memory = fill


def _cycle_train(
    *, version: DatasetVersion, user, stdout, training: dict, promote: bool = True
) -> None:
    import time_machine

    experiment = version.number - 1 == EXPERIMENT_CYCLE
    overrides = dict(training, **(EXPERIMENT if experiment else {}))
    with time_machine.travel(version.frozen_at + RUN_AFTER_FREEZE, tick=True):
        run = training_runs.training_run_create(
            version=version, user=user, overrides=overrides, enqueue=False
        )
        try:
            with _one_thread():
                jobs.training_run_execute(run.pk)
        except TrainingError as error:
            # Kept on the run as its error, as a worker would leave it.
            stdout.write(NOT_TRAINED.format(version=version, error=error.message))
            return
    model = ModelVersion.objects.filter(run=run).first()
    if model is None:  # the run was closed under it (its row says why)
        run.refresh_from_db()
        stdout.write(NOT_TRAINED.format(version=version, error=run.error))
        return
    # With FLYWHEEL_AUTO_PROMOTE on, the registry has promoted it already.
    if promote and model.gate_passed and model.status == ModelVersion.Status.CANDIDATE:
        with time_machine.travel(version.frozen_at + PROMOTE_AFTER_FREEZE, tick=False):
            registry.model_version_promote(model=model, user=user, reason=PROMOTE_REASON)
        model.refresh_from_db()
    stdout.write(GATED.format(model=model, status=model.status, detail=model.gate_detail))
