"""Training runs end to end on real PostgreSQL and Redis with a tiny offline model: the
threshold trigger, export, DPO with LoRA, the eval gate, the model registry, quarantine and
rollback, the external trainer, and jobs that are safe to run twice.

Training tests are marked slow; each trains for a few dozen steps on a 115k-parameter model.
"""

import shlex
import shutil
import sys
from datetime import timedelta
from pathlib import Path

import django_rq
import pytest
from django.db import DatabaseError, IntegrityError, transaction
from django.utils import timezone

from curation import pipeline, policies
from curation.models import Interaction
from review.models import Review, ReviewItem, ReviewOutcome
from tests.support import factories
from tests.support import training as th
from tests.support.curation import ingest
from tests.support.jobs import run_jobs
from tests.support.training import frozen_version, registered
from training.datasets import selectors, services
from training.errors import TrainingError
from training.models import (
    DatasetVersion,
    GoldPair,
    ModelEvent,
    ModelVersion,
    TrainingRun,
)
from training.registry import gate, rollback
from training.registry import services as registry
from training.runs import execute as perform
from training.runs import jobs
from training.runs import services as runs
from training.runs.trainer import TrainConfig, train

STEPS = 12


# --- fixtures -------------------------------------------------------------------------------


@pytest.fixture(autouse=True)
def _roles(db):
    """Transactional tests empty every table afterwards, the role groups that migrations
    made included: make them again."""
    from django.contrib.auth.models import Group

    from flywheel_site.access import ROLES

    for role in ROLES:
        Group.objects.get_or_create(name=role)


@pytest.fixture(scope="session")
def tiny_base(task_lm) -> Path:
    return task_lm


@pytest.fixture(scope="session")
def trained_adapter(tiny_base, tmp_path_factory) -> Path:
    """An adapter trained outside the database on the same task: a "current model" for
    tests that need one already promoted."""
    root = tmp_path_factory.mktemp("current-model")
    th.write_jsonl(
        root / "export" / "train.jsonl", th.preference_rows(conversational=True, seed=99)
    )
    result = train(
        export_dir=root / "export",
        config=TrainConfig(
            method="dpo", base_model_dir=tiny_base, output_dir=root / "adapter", steps=STEPS
        ),
    )
    return result.adapter_dir


@pytest.fixture
def training_settings(settings, tmp_path, tiny_base, export_dir):
    settings.FLYWHEEL_MODELS_DIR = tmp_path / "models"
    settings.FLYWHEEL_BASE_MODEL = tiny_base
    settings.FLYWHEEL_TRAINER = "builtin"
    settings.FLYWHEEL_TRAINING_STEPS = STEPS
    settings.FLYWHEEL_TRAINING_BATCH_SIZE = 8
    settings.FLYWHEEL_TRAINING_LEARNING_RATE = 5e-3
    settings.FLYWHEEL_TRAINING_MAX_LENGTH = 128
    settings.FLYWHEEL_GATE_METRIC = "normalised_accuracy"
    settings.FLYWHEEL_GATE_MARGIN = 0.1
    # These datasets hold 9 to 20 eval pairs so that a run takes seconds; the default (50)
    # is tested on its own below.
    settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 8
    settings.FLYWHEEL_AUTO_PROMOTE = False
    return settings


# --- data that went through curation and review ---------------------------------------------


def curated_and_reviewed(topics: list[str], *, prefix: str, seed: int = 0) -> list[GoldPair]:
    """Users' edits ingested through the API service, curated by the real pipeline, sampled
    into the review queue, approved by a reviewer; returns the gold pairs."""
    policies.policy_create(changes={"enabled_filters": ["user_action"], "sample_rate": 1.0})
    rows = th.preference_triples(topics, seed=seed)
    ingest(
        interactions=[
            factories.interaction(
                f"{prefix}-{i}",
                messages=[{"role": "user", "content": prompt}],
                response=rejected,
            )
            for i, (prompt, _, rejected) in enumerate(rows)
        ],
        feedback=[
            factories.feedback(f"{prefix}-{i}", f"{prefix}-{i}-e", kind="edited", final_text=chosen)
            for i, (_, chosen, _) in enumerate(rows)
        ],
    )
    ids = list(
        Interaction.objects.filter(event_id__startswith=f"{prefix}-").values_list("pk", flat=True)
    )
    pipeline.interactions_curate(interaction_ids=ids)
    items = ReviewItem.objects.filter(candidate__interaction_id__in=ids).select_related("candidate")
    assert items.count() == len(rows)
    for item in items:
        _approve(item, th.reviewer("rita"))
    services.gold_pairs_sync()
    return list(GoldPair.objects.filter(interaction_id__in=ids))


def approved_pairs(topics: list[str], *, seed: int) -> None:
    """The same task straight from approved outcomes (no curation), for tests about the
    gate and the registry rather than about the path into gold."""
    for prompt, chosen, rejected in th.preference_triples(topics, seed=seed):
        th.approved(
            prompt=prompt,
            chosen=chosen,
            rejected=rejected,
            occurred_at=timezone.now() - timedelta(days=1),
        )


def _approve(item: ReviewItem, person) -> ReviewOutcome:
    lease_fields = {f.name for f in ReviewItem._meta.fields}
    lease = {"lease_holder": person, "lease_expires_at": timezone.now() + timedelta(hours=1)}
    if "lease_started_at" in lease_fields:
        lease["lease_started_at"] = timezone.now()
    ReviewItem.objects.filter(pk=item.pk).update(**lease)
    Review.objects.create(
        item=item, reviewer=person, decision="approve", accuracy=5, helpfulness=5, safety=5
    )
    ReviewItem.objects.filter(pk=item.pk).update(**{key: None for key in lease}, status="done")
    candidate = item.candidate
    return ReviewOutcome.objects.create(
        item=item, result="approved", chosen=candidate.chosen, rejected=candidate.rejected
    )


# --- the real path: trigger -> export -> DPO + LoRA -> gate -------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_reviewed_gold_triggers_a_run_that_trains_and_passes_the_gate(training_settings, admin):
    pairs = curated_and_reviewed(th.TOPICS, prefix="e2e")
    dataset = services.dataset_create(
        name="support", user=admin, lag_days=0, eval_fraction=0.25, train_threshold=len(pairs)
    )

    started = runs.training_trigger_check()
    assert len(started) == 1
    assert django_rq.get_queue("training").count == 1
    run_jobs("training")

    run = TrainingRun.objects.get()
    version = run.dataset_version
    assert (run.status, run.trigger, run.stage) == ("succeeded", "threshold", "done"), run.error
    assert (version.dataset, version.number, version.status) == (dataset, 1, "frozen")
    counts = version.manifest["counts"]
    assert counts["train"] + counts["eval"] == len(pairs) == 80
    # The loss starts at log 2 (policy equals reference) and falls; progress reached the end.
    curve = [loss for _, loss in run.loss_curve]
    assert curve[0] == pytest.approx(0.6931, abs=1e-3)
    assert run.progress_loss < curve[0]
    assert (run.progress_step, run.progress_total) == (STEPS, STEPS)
    assert run.metrics["train"]["final_loss"] < run.metrics["train"]["first_loss"]
    # The adapter beats the base model on the held-out pairs, by the configured margin.
    model = run.model_version
    assert model.baseline is None
    assert model.metrics["n"] == counts["eval"]
    assert (
        model.metrics["normalised_accuracy"] >= model.baseline_metrics["normalised_accuracy"] + 0.1
    )
    assert model.metrics["implicit_reward_accuracy"] > 0.5
    assert (model.gate_passed, model.status) == (True, "candidate")
    assert model.gate_detail.startswith("passes: normalised_accuracy")
    record = model.metrics["gate"]
    assert record["n"] == counts["eval"] and record["passed"] is True
    assert "Tango 1998" in record["test"] and record["attempt"] == 1
    assert record["delta_ci"][0] >= 0.1 and record["delta"] >= record["delta_ci"][0]
    assert (record["truncated"], record["skipped"]) == (0, 0)
    assert "per_pair" not in model.metrics and "per_pair" not in run.metrics["eval"]
    assert Path(model.adapter_dir, "adapter_config.json").is_file()
    assert f"step {STEPS}/{STEPS}" in run.log
    print(
        f"\n[e2e] loss {curve[0]:.4f} -> {run.progress_loss:.4f}; eval n={model.metrics['n']} "
        f"accuracy {model.metrics['normalised_accuracy']:.3f} vs base "
        f"{model.baseline_metrics['normalised_accuracy']:.3f}; implicit reward accuracy "
        f"{model.metrics['implicit_reward_accuracy']:.3f}, "
        f"margin {model.metrics['reward_margin']:.3f}"
    )

    # Promotion is explicit and recorded.
    registry.model_version_promote(
        model=model, user=admin, reason="beats the base on held-out gold"
    )
    model.refresh_from_db()
    assert (model.status, model.promoted_by) == ("promoted", admin)
    assert list(model.changes.values_list("action", "reason")) == [
        ("registered", f"trained by run #{run.pk} on {version}; gate {model.gate_detail}"),
        ("promoted", "beats the base on held-out gold"),
    ]
    # Nothing new: the next check starts nothing.
    assert runs.training_trigger_check() == []


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_candidate_that_does_not_beat_the_current_model_is_rejected(
    training_settings, admin, trained_adapter, tiny_base
):
    training_settings.FLYWHEEL_TRAINING_LEARNING_RATE = 1e-9  # learns nothing
    training_settings.FLYWHEEL_TRAINING_STEPS = 2
    approved_pairs(th.TOPICS[:40], seed=1)
    dataset = services.dataset_create(name="support", user=admin, lag_days=0, eval_fraction=0.3)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    current = registered(
        version, status="promoted", adapter=str(trained_adapter), base_model=str(tiny_base)
    )

    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    run.refresh_from_db()
    model = run.model_version
    assert run.status == "succeeded", run.error
    assert model.baseline == current
    assert (model.gate_passed, model.status) == (False, "rejected")
    assert model.gate_detail.startswith("fails: normalised_accuracy")
    assert f"; current: {current.name};" in model.gate_detail
    assert "attempt 2 of dataset support" in model.gate_detail  # `current` was the first
    assert model.metrics["normalised_accuracy"] < model.baseline_metrics["normalised_accuracy"]
    assert ModelVersion.objects.get(status="promoted") == current
    with pytest.raises(TrainingError, match="Only a candidate can be promoted"):
        registry.model_version_promote(model=model, user=admin, reason="try")
    # Not even a direct UPDATE can promote a model that failed the gate.
    with pytest.raises(IntegrityError), transaction.atomic():
        ModelVersion.objects.filter(pk=current.pk).update(status="candidate")
        ModelVersion.objects.filter(pk=model.pk).update(
            status="promoted", promoted_at=timezone.now()
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("same_base", [True, False])
def test_a_reward_metric_names_the_model_it_was_measured_against(
    training_settings, admin, trained_adapter, tiny_base, tmp_path, same_base
):
    training_settings.FLYWHEEL_GATE_METRIC = "implicit_reward_accuracy"
    training_settings.FLYWHEEL_TRAINING_STEPS = 2
    approved_pairs(th.TOPICS[:40], seed=5)
    dataset = services.dataset_create(name="support", user=admin, lag_days=0, eval_fraction=0.3)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    # Another base: the same weights under another path, which the gate must treat as another
    # model (it cannot know they are equal).
    base = tiny_base if same_base else shutil.copytree(tiny_base, tmp_path / "other-base")
    current = registered(
        version, status="promoted", adapter=str(trained_adapter), base_model=str(base)
    )

    runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    record = ModelVersion.objects.exclude(pk=current.pk).get().metrics["gate"]
    if same_base:
        assert record["compared_with"] == gate.COMPARED_CURRENT.format(name=current.name)
    else:
        assert record["compared_with"] == gate.COMPARED_OWN_BASE.format(
            base=tiny_base, name=current.name
        )


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_auto_promotion_makes_a_passing_candidate_current_and_records_why(training_settings, admin):
    training_settings.FLYWHEEL_AUTO_PROMOTE = True
    # The immediate path; with FLYWHEEL_CANARY on it starts an experiment (test_canary.py).
    training_settings.FLYWHEEL_CANARY = False
    approved_pairs(th.TOPICS, seed=2)
    dataset = services.dataset_create(name="support", user=admin, lag_days=0, eval_fraction=0.25)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)

    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    model = ModelVersion.objects.get(run=run)
    assert model.status == "promoted", model.gate_detail
    assert model.promoted_by is None
    promoted = model.changes.get(action="promoted")
    assert promoted.reason.startswith("automatic promotion (FLYWHEEL_AUTO_PROMOTE): gate passes")
    # pghistory has both states, under the run's transaction and its reason.
    history = model.events.order_by("pgh_id")
    assert [e.status for e in history] == ["candidate", "promoted"]
    assert history.last().pgh_context.metadata["reason"].startswith(f"trained by run #{run.pk}")


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_sft_dataset_trains_with_sft_and_is_gated_on_its_held_out_preference_pairs(
    training_settings, admin
):
    training_settings.FLYWHEEL_TRAINING_STEPS = 4
    approved_pairs(th.TOPICS[:40], seed=4)
    dataset = services.dataset_create(
        name="answers", user=admin, kind="sft", lag_days=0, eval_fraction=0.3
    )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)

    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    run.refresh_from_db()
    model = ModelVersion.objects.get(run=run)
    assert run.status == "succeeded", run.error
    assert (run.method, run.export_format) == ("sft", "sft_conversational")
    assert (run.progress_step, run.progress_total) == (4, 4)
    # SFT files have no rejected answers: the gate reads the eval split's preference pairs.
    gate_file = Path(run.artifact_dir) / gate.GATE_EVAL_FILE
    assert model.metrics["n"] == version.manifest["counts"]["eval"] == _lines(gate_file)
    assert model.gate_passed is not None


def _lines(path: Path) -> int:
    return sum(1 for line in path.read_text().splitlines() if line)


# --- the trigger --------------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_trigger_fires_at_its_threshold_and_not_before(
    training_settings, admin, django_capture_on_commit_callbacks
):
    dataset = services.dataset_create(name="support", user=admin, lag_days=0, train_threshold=5)
    for _ in range(4):
        th.approved(occurred_at=timezone.now() - timedelta(hours=1))

    assert runs.training_trigger_check() == []
    assert selectors.gold_new_count(dataset=dataset) == 4
    assert not DatasetVersion.objects.exists()

    th.approved(occurred_at=timezone.now() - timedelta(hours=1))
    with django_capture_on_commit_callbacks(execute=True):
        [run] = runs.training_trigger_check()

    assert (run.trigger, run.status, run.dataset_version.number) == ("threshold", "queued", 1)
    assert (
        run.dataset_version.manifest["counts"]["train"]
        + run.dataset_version.manifest["counts"]["eval"]
        == 5
    )
    assert django_rq.get_queue("training").job_ids == [run.rq_job_id]
    assert selectors.gold_new_count(dataset=dataset) == 0
    # Checked again (the periodic job, or a second worker): nothing more.
    assert runs.training_trigger_check() == []
    # Net-new is counted from the last frozen version: four more do not reach five.
    for _ in range(4):
        th.approved(occurred_at=timezone.now() - timedelta(hours=1))
    assert runs.training_trigger_check() == []
    assert selectors.gold_new_count(dataset=dataset) == 4


@pytest.mark.django_db
def test_the_trigger_counts_only_gold_older_than_the_lag(training_settings, admin):
    dataset = services.dataset_create(name="support", user=admin, lag_days=14, train_threshold=2)
    th.approved(occurred_at=timezone.now() - timedelta(days=20))
    th.approved(occurred_at=timezone.now() - timedelta(days=2))

    assert runs.training_trigger_check() == []
    assert GoldPair.objects.count() == 2
    assert selectors.gold_new_count(dataset=dataset) == 1


@pytest.mark.django_db(transaction=True)
def test_the_periodic_job_is_registered_and_sweeps_before_triggering(training_settings, admin):
    from rq import cron

    import flywheel_site.cron  # noqa: F401 (registers the jobs)

    [entry] = [e for e in cron._job_data_registry if e["name"] == "training-trigger"]
    # The default queue: the trigger must not wait behind a long training run.
    assert (entry["func"], entry["queue_name"]) == (jobs.trigger_check, "default")
    services.dataset_create(name="support", user=admin, lag_days=0, train_threshold=1)
    th.approved(occurred_at=timezone.now() - timedelta(hours=1))

    result = jobs.trigger_check()

    assert result["abandoned"] == 0
    assert result["started"] == list(TrainingRun.objects.values_list("pk", flat=True))


# --- jobs: claimed once, safe to run twice ----------------------------------------------------


@pytest.fixture
def external_settings(training_settings):
    training_settings.FLYWHEEL_TRAINER = "external"
    training_settings.FLYWHEEL_EXTERNAL_TRAINER_COMMAND = shlex.join(
        [
            sys.executable,
            "-c",
            "import pathlib, sys; "
            "rows = sum(1 for _ in open(pathlib.Path(sys.argv[1]) / 'train.jsonl')); "
            "(pathlib.Path(sys.argv[2]) / 'weights.txt').write_text('trained'); "
            "print(f'external trainer saw {rows} train rows')",
            "{export_dir}",
            "{output_dir}",
        ]
    )
    training_settings.FLYWHEEL_EXTERNAL_TRAINER_TIMEOUT_S = 60
    return training_settings


@pytest.mark.django_db(transaction=True)
def test_running_the_job_twice_trains_once(external_settings, admin):
    version = frozen_version(admin)
    run = runs.training_run_create(version=version, user=admin)
    # Delivered twice (a retry, a duplicate enqueue): the second finds the run claimed.
    runs.training_run_enqueue(run_id=run.pk)
    run_jobs("training")
    second = jobs.training_run_execute(run.pk)

    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert second == {"run": run.pk, "skipped": "not queued"}
    assert ModelVersion.objects.filter(run=run).count() == 1
    assert run.log.count("$ ") == 1


@pytest.mark.django_db(transaction=True)
def test_the_external_trainer_runs_on_the_export_and_its_output_is_recorded(
    external_settings, admin
):
    version = frozen_version(admin)
    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    run.refresh_from_db()
    model = run.model_version
    train_rows = version.manifest["counts"]["train"]
    assert run.status == "succeeded", run.error
    assert f"external trainer saw {train_rows} train rows" in run.log
    assert run.metrics["external"]["exit_code"] == 0
    assert Path(run.artifact_dir, "weights.txt").read_text() == "trained"
    # No LoRA adapter to evaluate: registered ungated, for an admin to decide.
    assert (model.gate_passed, model.status) == (None, "candidate")
    assert model.gate_detail == gate.NOT_GATED


@pytest.mark.django_db(transaction=True)
def test_a_failing_external_trainer_fails_the_run_with_its_exit_status(external_settings, admin):
    external_settings.FLYWHEEL_EXTERNAL_TRAINER_COMMAND = shlex.join(
        [sys.executable, "-c", "import sys; print('out of memory'); sys.exit(3)"]
    )
    run = runs.training_run_create(version=frozen_version(admin), user=admin)
    run_jobs("training")

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == repr(
        perform.ExternalTrainerFailed(perform.ERR_EXTERNAL_EXIT.format(code=3))
    )
    assert "out of memory" in run.log
    assert run.finished_at is not None
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_version_quarantined_while_its_run_waited_is_not_trained_on(external_settings, admin):
    version = frozen_version(admin)
    run = runs.training_run_create(version=version, user=admin)
    services.quarantine_create(
        kind="dataset_version", dataset_version=version, reason="bad week", user=admin
    )
    run_jobs("training")

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == runs.ERR_NOT_FROZEN.format(version=version, status="quarantined")
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_model_trained_on_data_quarantined_meanwhile_is_rolled_back_on_arrival(
    external_settings, admin
):
    version = frozen_version(admin)
    run = runs.training_run_create(version=version, user=admin)
    quarantine = services.quarantine_create(
        kind="window",
        window_start=timezone.now() - timedelta(days=7),
        window_end=timezone.now(),
        reason="an attack last week",
        user=admin,
    )
    run_jobs("training")

    model = ModelVersion.objects.get(run=run)
    assert model.status == "rolled_back"
    assert model.changes.get(action="rolled_back").quarantine == quarantine


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_an_external_trainer_that_leaves_a_lora_adapter_is_gated(
    external_settings, admin, trained_adapter
):
    external_settings.FLYWHEEL_EXTERNAL_TRAINER_COMMAND = shlex.join(
        [
            sys.executable,
            "-c",
            "import shutil, sys; shutil.copytree(sys.argv[1], sys.argv[2], dirs_exist_ok=True)",
            str(trained_adapter),
            "{output_dir}",
        ]
    )
    external_settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 5  # this version holds 7
    approved_pairs(th.TOPICS[:40], seed=3)
    dataset = services.dataset_create(name="support", user=admin, lag_days=0, eval_fraction=0.3)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    model = ModelVersion.objects.get(run=run)
    # Gated (not left to an admin), on the few pairs this version holds: better on each pair
    # it differs on, but a handful of pairs is not evidence at the gate's error rate.
    assert model.gate_passed is not None, model.gate_detail
    assert model.metrics["gate"]["n"] == 7 and model.metrics["gate"]["method"] == "tango"
    assert model.metrics["normalised_accuracy"] > model.baseline_metrics["normalised_accuracy"]


# --- starting runs: refusals -------------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_a_run_whose_answers_all_fill_max_length_fails_at_once_naming_the_setting(
    training_settings, admin
):
    training_settings.FLYWHEEL_TRAINING_MAX_LENGTH = 16
    training_settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 1
    dataset = services.dataset_create(name="long", user=admin, lag_days=0, eval_fraction=0.5)
    for n in range(6):
        th.approved(
            chosen=f"a long chosen answer {n} " * 10,
            rejected=f"a long rejected answer {n} " * 10,
            occurred_at=timezone.now() - timedelta(days=1),
        )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error.startswith("None of the ")
    assert "FLYWHEEL_TRAINING_MAX_LENGTH" in run.error
    assert run.progress_step == 0  # no optimiser step was taken
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_run_with_too_few_eval_pairs_fails_before_exporting_naming_the_setting(
    training_settings, admin
):
    training_settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 50
    approved_pairs(th.TOPICS[:40], seed=5)
    dataset = services.dataset_create(name="small", user=admin, lag_days=0, eval_fraction=0.3)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    n_eval = version.manifest["counts"]["eval"]
    assert 0 < n_eval < 50

    run = runs.training_run_create(version=version, user=admin)
    run_jobs("training")

    run.refresh_from_db()
    assert run.status == "failed"
    assert run.error == perform.ERR_TOO_FEW_EVAL_PAIRS.format(
        version=version, n=n_eval, needed=50, fraction=0.3, dataset="small"
    )
    assert "FLYWHEEL_GATE_MIN_EVAL_PAIRS" in run.error
    assert run.stage == "failed" and "exporting" not in run.log  # refused before the export
    assert not ModelVersion.objects.exists()


@pytest.mark.django_db
def test_a_version_gets_one_active_run_at_a_time(training_settings, admin):
    version = frozen_version(admin)
    runs.training_run_create(version=version, user=admin)

    with pytest.raises(TrainingError, match="already has a training run queued or running") as e:
        runs.training_run_create(version=version, user=admin)
    assert e.value.status == 409


@pytest.mark.django_db
def test_a_missing_base_model_is_refused_before_queueing(training_settings, admin, tmp_path):
    training_settings.FLYWHEEL_BASE_MODEL = tmp_path / "nowhere"
    with pytest.raises(TrainingError) as refused:
        runs.training_run_create(version=frozen_version(admin), user=admin)
    assert str(refused.value) == runs.ERR_NO_BASE_MODEL.format(path=tmp_path / "nowhere")


@pytest.mark.django_db
def test_a_quarantined_version_cannot_be_trained_on(training_settings, admin):
    version = frozen_version(admin)
    services.quarantine_create(
        kind="dataset_version", dataset_version=version, reason="bad week", user=admin
    )
    version.refresh_from_db()
    with pytest.raises(TrainingError, match="Only a frozen dataset version can be trained on"):
        runs.training_run_create(version=version, user=admin)


# --- the sweeper -----------------------------------------------------------------------------


@pytest.mark.django_db
def test_the_sweeper_fails_abandoned_runs_and_requeues_lost_ones(training_settings, admin):
    version_a = frozen_version(admin, name="a")
    version_b = frozen_version(admin, name="b")
    long_ago = timezone.now() - timedelta(days=2)
    dead = factories.training_run(version_a, started_at=long_ago)
    lost = factories.training_run(version_b, status="queued")
    TrainingRun.objects.filter(pk=lost.pk).update(created_at=long_ago)

    result = runs.training_runs_sweep()

    dead.refresh_from_db()
    assert (result["abandoned"], result["requeued"]) == (1, 1)
    assert dead.status == "failed"
    assert dead.error.startswith("abandoned: still running")
    assert django_rq.get_queue("training").job_ids == [lost.rq_job_id]
    # The job is there now: a second sweep does not queue it again.
    assert runs.training_runs_sweep()["requeued"] == 0


# --- the registry: one current model, explicit promotion ------------------------------------------


@pytest.mark.django_db
def test_the_database_holds_one_promoted_model_at_most(admin):
    version = frozen_version(admin)
    registered(version, status="promoted")
    with pytest.raises(IntegrityError), transaction.atomic():
        registered(version, status="promoted")


@pytest.mark.django_db
def test_promotion_replaces_the_current_model_and_records_both_sides(admin):
    version = frozen_version(admin)
    old = registered(version, status="promoted")
    new = registered(version, baseline=old)

    registry.model_version_promote(model=new, user=admin, reason="better on billing questions")

    old.refresh_from_db()
    new.refresh_from_db()
    assert (old.status, new.status) == ("candidate", "promoted")
    replaced = old.changes.get()
    assert (replaced.action, replaced.other, replaced.reason) == (
        "replaced",
        new,
        f"replaced as current by {new}",
    )
    promoted = new.changes.get()
    assert (promoted.action, promoted.other, promoted.user) == ("promoted", old, admin)


@pytest.mark.django_db
def test_a_candidate_gated_against_an_older_model_is_not_promoted(admin):
    version = frozen_version(admin)
    first = registered(version, status="promoted")
    stale = registered(version, baseline=None)  # gated against the base, before `first`

    with pytest.raises(TrainingError) as refused:
        registry.model_version_promote(model=stale, user=admin, reason="try")

    assert str(refused.value) == registry.ERR_PROMOTE_BASELINE.format(
        model=stale, baseline="the base model", current=first
    )


@pytest.mark.django_db
def test_an_admin_can_reject_a_candidate_with_a_reason(admin):
    model = registered(frozen_version(admin))
    with pytest.raises(TrainingError, match=registry.ERR_REASON):
        registry.model_version_reject(model=model, user=admin, reason=" ")
    registry.model_version_reject(model=model, user=admin, reason="answers are too long")
    model.refresh_from_db()
    assert model.status == "rejected"
    assert model.changes.get().reason == "answers are too long"


@pytest.mark.django_db
def test_model_events_are_append_only(admin):
    model = registered(frozen_version(admin))
    registry.model_version_reject(model=model, user=admin, reason="no")
    event = model.changes.get()
    with pytest.raises(DatabaseError), transaction.atomic():
        ModelEvent.objects.filter(pk=event.pk).update(reason="yes")
    with pytest.raises(DatabaseError), transaction.atomic():
        ModelEvent.objects.filter(pk=event.pk).delete()


# --- quarantine and rollback --------------------------------------------------------------------


def _two_versions(admin):
    dataset = services.dataset_create(name="support", user=admin, lag_days=0)
    th.approved(occurred_at=timezone.now() - timedelta(days=3))
    v1, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    th.approved(occurred_at=timezone.now() - timedelta(days=2))
    v2, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    return v1, v2


@pytest.mark.django_db
def test_quarantine_rolls_back_the_current_model_and_restores_the_previous_one(admin):
    v1, v2 = _two_versions(admin)
    first = registered(v1, status="promoted", promoted_at=timezone.now() - timedelta(days=1))
    second = registered(v2, baseline=first)
    registry.model_version_promote(model=second, user=admin, reason="better")

    quarantine = services.quarantine_create(
        kind="dataset_version",
        dataset_version=v2,
        reason="a prompt-injection attack got past the filters",
        user=admin,
    )
    result = rollback.models_rollback_for(quarantine=quarantine, user=admin)

    first.refresh_from_db()
    second.refresh_from_db()
    assert (second.status, first.status) == ("rolled_back", "promoted")
    assert (result.rolled_back, result.previous_current, result.restored) == (
        [second],
        second,
        first,
    )
    reason = (
        f"trained on quarantined data: quarantine #{quarantine.pk} (dataset version): "
        "a prompt-injection attack got past the filters"
    )
    rolled = second.changes.get(action="rolled_back")
    assert (rolled.reason, rolled.quarantine, rolled.other, rolled.from_status) == (
        reason,
        quarantine,
        first,
        "promoted",
    )
    restored = first.changes.get(action="restored")
    assert restored.reason == f"restored as current: {second} was rolled back ({reason})"
    assert restored.other == second
    # pghistory recorded the change of status with the same reason.
    event = second.events.order_by("pgh_id").last()
    assert (event.status, event.pgh_context.metadata["reason"]) == ("rolled_back", reason)
    # Idempotent: the hook may run again (a retry); nothing changes.
    again = rollback.models_rollback_for(quarantine=quarantine, user=admin)
    assert (again.rolled_back, again.restored) == ([], None)
    assert ModelVersion.objects.get(status="promoted") == first


@pytest.mark.django_db
def test_rolling_back_the_only_promoted_model_leaves_the_base_model_current(admin):
    _, v2 = _two_versions(admin)
    only = registered(v2, status="promoted")
    candidate = registered(v2)
    quarantine = services.quarantine_create(
        kind="dataset_version", dataset_version=v2, reason="labelling error", user=admin
    )

    result = rollback.models_rollback_for(quarantine=quarantine)

    assert result.restored is None
    assert not ModelVersion.objects.filter(status="promoted").exists()
    assert set(ModelVersion.objects.values_list("pk", "status")) == {
        (only.pk, "rolled_back"),
        (candidate.pk, "rolled_back"),
    }
    assert only.changes.get().reason.endswith(rollback.REASON_NO_PREVIOUS)


@pytest.mark.django_db
def test_a_quarantine_elsewhere_leaves_the_current_model_alone(admin):
    v1, v2 = _two_versions(admin)
    old = registered(v1)
    current = registered(v2, status="promoted")
    quarantine = services.quarantine_create(
        kind="dataset_version", dataset_version=v1, reason="duplicate import", user=admin
    )

    result = rollback.models_rollback_for(quarantine=quarantine)

    assert (result.rolled_back, result.restored) == ([old], None)
    assert ModelVersion.objects.get(status="promoted") == current


@pytest.mark.django_db
def test_a_source_quarantine_rolls_back_models_of_every_version_holding_its_pairs(admin):
    v1, v2 = _two_versions(admin)
    a = registered(v1, status="candidate", promoted_at=timezone.now() - timedelta(days=1))
    b = registered(v2, status="promoted")
    pair = GoldPair.objects.order_by("pk").first()
    quarantine = services.quarantine_create(
        kind="source", source=pair.source, reason="the tests source was spammed", user=admin
    )

    result = rollback.models_rollback_for(quarantine=quarantine)

    # The previously promoted model was trained on the same source: it is not restored.
    assert set(result.rolled_back) == {a, b}
    assert result.restored is None
    assert not ModelVersion.objects.filter(status="promoted").exists()


@pytest.mark.django_db
def test_a_rolled_back_model_cannot_be_promoted_or_revived(admin):
    _, v2 = _two_versions(admin)
    model = registered(v2)
    quarantine = services.quarantine_create(
        kind="dataset_version", dataset_version=v2, reason="bad", user=admin
    )
    rollback.models_rollback_for(quarantine=quarantine)

    with pytest.raises(TrainingError, match="Only a candidate can be promoted"):
        registry.model_version_promote(model=model, user=admin, reason="try")
    with pytest.raises(DatabaseError), transaction.atomic():
        ModelVersion.objects.filter(pk=model.pk).update(status="candidate")
