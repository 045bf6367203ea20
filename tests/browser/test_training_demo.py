"""`load_demo` simulates six weeks of the loop: curated traffic, scripted reviewers on most
days (two reviews per item in some weeks, disagreements adjudicated by the demo curator),
three frozen dataset versions, a training run and its gate per version, a promotion and a
rejection; every stamp in the simulated past, the same whatever day it is loaded on."""

import io
import re
import shutil
from datetime import timedelta

import pytest
from django.contrib.auth import get_user_model
from django.core.management import call_command
from django.db.models.functions import TruncDate
from django.utils import timezone

from curation.models import CurationRun
from flywheel_site import redis as fw_redis
from flywheel_site.access import CURATOR, role_of
from flywheel_site.demo import accounts, canary, cycles, progress, traffic
from flywheel_site.demo import loop as demo
from flywheel_site.demo.load import CYCLES_QUEUED
from review.models import Review, ReviewItem, ReviewOutcome
from tests.support.browser import ARTIFACTS, CHARTS, READ_CHARTS, WHEN
from tests.support.jobs import run_jobs
from training.metrics.selectors import flywheel_metrics
from training.models import (
    Dataset,
    DatasetVersion,
    GoldPair,
    ModelEvent,
    ModelVersion,
    TrainingRun,
)
from training.runs import services as runs


@pytest.fixture
def demo_settings(settings, tmp_path, monkeypatch):
    for name in (*accounts.PASSWORD_ENVS, "PORT"):
        monkeypatch.delenv(name, raising=False)
    # No Detoxify weights offline: the demo lets the lighter classifier decide, as
    # `make run` does.
    settings.FLYWHEEL_TOXICITY_CHECKPOINT = ""
    settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK = True
    settings.FLYWHEEL_MODELS_DIR = tmp_path / "models"
    settings.FLYWHEEL_BASE_MODEL = tmp_path / "models" / "base"
    yield settings
    # A test that stopped half way leaves no "demo still loading" banner for the next one,
    # and no canary traffic key.
    progress.progress_clear()
    fw_redis.client().delete(canary.KEY)


def load(*extra: str, now=traffic.REFERENCE) -> str:
    out = io.StringIO()
    call_command("load_demo", "--now", now.isoformat(), *extra, stdout=out, stderr=io.StringIO())
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_load_demo_simulates_six_weeks_of_the_flywheel(demo_settings, live_server, browser_page):
    # The small preset trains each cycle in seconds: this test is about the six weeks and
    # the cycles' bookkeeping. Which cycle the real preset promotes is the README's to say
    # (only the experiment cycle's rejection is guaranteed, and asserted here).
    # Loaded at this moment, as `make run` loads it, so that the dashboard's default window
    # (ending today) is the first view a newcomer gets. What the demo makes does not depend
    # on the moment (test_the_demo_is_the_same_whatever_day_it_is_loaded), and every check
    # below is relative to it.
    reference = timezone.now()
    out = load("--preset", "small", now=reference)
    start = reference - timedelta(days=demo.WINDOW_DAYS)

    # Three or more versions frozen over time, each with enough eval pairs for the gate.
    dataset = Dataset.objects.get(name=demo.DATASET_NAME)
    versions = list(dataset.versions.filter(status=DatasetVersion.Status.FROZEN).order_by("number"))
    assert len(versions) >= 3
    frozen = [v.frozen_at for v in versions]
    assert frozen == sorted(frozen) and len(set(frozen)) == len(frozen)
    assert all(start <= at < reference for at in frozen)
    assert all(v.manifest["counts"]["eval"] >= 50 for v in versions)

    # A run and a gate per version, at its simulated time; one promotion, one rejection.
    for version in versions:
        run = TrainingRun.objects.get(dataset_version=version)
        assert run.status == "succeeded", run.error
        assert version.frozen_at < run.started_at < run.finished_at < reference
        gate = run.model_version.metrics["gate"]
        assert gate["n"] >= 50 and gate["test"].startswith("one-sided score test")
        assert gate["passed"] is run.model_version.gate_passed
    models = ModelVersion.objects.all()
    experiment = TrainingRun.objects.get(dataset_version=versions[cycles.EXPERIMENT_CYCLE])
    assert experiment.model_version.status == "rejected"
    assert experiment.model_version.gate_passed is False
    promotions = ModelEvent.objects.filter(action="promoted")
    assert all(start <= e.created_at < reference for e in promotions)
    assert all(m.promoted_at < reference for m in models.filter(promoted_at__isnull=False))
    assert ModelVersion.objects.filter(status="promoted").count() <= 1

    # Scripted reviewers on most days; some items reviewed twice; disagreements adjudicated.
    reviews = Review.objects.filter(reviewer__username__in=demo.REVIEWERS)
    days = set(reviews.annotate(day=TruncDate("submitted_at")).values_list("day", flat=True))
    assert len(days) >= 20
    assert all(start <= r.submitted_at < reference for r in reviews.only("submitted_at"))
    assert ReviewItem.objects.filter(reviews_done=2).exists()
    curator = get_user_model().objects.get(username=accounts.CURATOR_USERNAME)
    assert role_of(curator) == CURATOR
    adjudicated = ReviewOutcome.objects.filter(adjudicated_by=curator)
    assert adjudicated.exists()
    assert all(start <= o.decided_at < reference for o in adjudicated)
    assert all(start <= g.created_at < reference for g in GoldPair.objects.only("created_at"))
    assert CurationRun.objects.filter(trigger="command").count() >= 30
    assert ReviewItem.objects.filter(status="queued").exists()  # left for people
    assert demo.BASE_HINT.format(path=demo_settings.FLYWHEEL_BASE_MODEL.absolute()) in out

    # The automatic trigger has nothing to do, and a second load adds nothing.
    assert runs.training_trigger_check() == []
    before = (Review.objects.count(), GoldPair.objects.count(), TrainingRun.objects.count())
    again = load("--preset", "small")
    assert (Review.objects.count(), GoldPair.objects.count(), TrainingRun.objects.count()) == (
        before
    )
    assert demo.ALREADY_SIMULATED.format(n=len(versions)) in again

    # What `make run` shows the demo admin: six weeks of trends, three cycles, a verdict.
    last_day = (reference - timedelta(days=1)).date()
    metrics = flywheel_metrics(days=demo.WINDOW_DAYS, today=last_day)
    assert sum(1 for d in metrics["days"] if d["interactions"]) >= 40
    assert sum(1 for d in metrics["days"] if d["reviews"]) >= 20
    assert len(metrics["cycles"]) >= 3
    assert metrics["health"]["verdict"] in ("healthy", "stalling", "regressing")

    # The admin's first view: the default window, read as a healthy flywheel that turned
    # three times; every axis title inside its canvas, no negative duration, no ISO stamp.
    page = browser_page(accounts.ADMIN_USERNAME, password=accounts.DEFAULT_ADMIN_PASSWORD)
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-cycles')")
    first_view = page.locator("main").inner_text()
    assert page.locator("#verdict").inner_text() == "healthy", first_view
    assert "stalling" not in first_view and "backed up" not in first_view
    charts = page.evaluate(READ_CHARTS, list(CHARTS))
    misdrawn = [c for c in charts if not (c and c["drawn"] and c["titles_outside"] == [])]
    assert misdrawn == [], misdrawn
    cycles_table = page.locator("#table-cycles tbody tr")
    assert cycles_table.count() >= 3
    improvement = page.locator("#table-cycles td:nth-child(10)").all_inner_texts()
    assert all(re.fullmatch(r"\d+ h|\u2013", cell) for cell in improvement), improvement
    promoted = page.locator("#table-cycles td:nth-child(9)").all_inner_texts()
    assert all(re.fullmatch(WHEN, cell) for cell in promoted), promoted
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "dashboard-demo-first-view.png"), full_page=True)

    query = f"/?days={demo.WINDOW_DAYS}&end={last_day.isoformat()}"
    page.goto(f"{live_server.url}{query}")
    page.wait_for_function("() => window.Chart && Chart.getChart('chart-cycles')")
    charts = page.evaluate(READ_CHARTS, list(CHARTS))
    assert all(c and c["drawn"] and c["y"] == CHARTS[c["id"]] and c["x"] for c in charts), charts
    assert page.locator("#verdict").inner_text() == metrics["health"]["verdict"]
    page.screenshot(path=str(ARTIFACTS / "dashboard-demo.png"), full_page=True)


def _fingerprint(reference) -> dict:
    """What the demo made, with every time relative to its reference."""

    def rel(at):
        return None if at is None else (at - reference).total_seconds()

    return {
        "versions": [
            (
                v.number,
                rel(v.frozen_at),
                v.manifest["counts"]["train"],
                v.manifest["counts"]["eval"],
            )
            for v in DatasetVersion.objects.order_by("number")
        ],
        "runs": [
            (r.status, r.error[:60], rel(r.created_at) // 60)
            for r in TrainingRun.objects.order_by("pk")
        ],
        "models": [
            (m.name, m.status, m.gate_passed, m.metrics.get("gate", {}).get("delta"))
            for m in ModelVersion.objects.order_by("pk")
        ],
        "reviews": sorted(
            (
                r.item.candidate.interaction.event_id,
                r.reviewer.username,
                r.decision,
                rel(r.submitted_at),
            )
            for r in Review.objects.select_related("item__candidate__interaction", "reviewer")
        ),
        "outcomes": sorted(
            (o.item.candidate.interaction.event_id, o.result, rel(o.decided_at))
            for o in ReviewOutcome.objects.select_related("item__candidate__interaction")
        ),
    }


@pytest.mark.slow
@pytest.mark.django_db(transaction=True)
def test_the_demo_is_the_same_whatever_day_it_is_loaded(demo_settings):
    # A smaller demo that stops short of training (the gate's minimum is out of reach): the
    # simulation is what depends on the day; training the same data is deterministic on its
    # own (tests/training/runs/test_trainer.py), and the six-week test above trains at full size.
    demo_settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 1_000_000
    prints = []
    for now in (traffic.REFERENCE, traffic.REFERENCE + timedelta(days=23, hours=5)):
        call_command("flush", interactive=False, verbosity=0)
        shutil.rmtree(demo_settings.FLYWHEEL_MODELS_DIR, ignore_errors=True)
        load("--interactions", "1500", now=now)
        # The weeks end at `now` itself (moved on from the last whole week by less than one).
        prints.append(_fingerprint(now))

    first, second = prints
    assert len(first["versions"]) >= 3
    assert first["reviews"] and not first["models"]
    assert first == second


@pytest.mark.django_db(transaction=True)
def test_the_app_answers_while_the_demo_trains_in_the_background_and_says_how_far(
    demo_settings, live_server, browser_page
):
    # A small demo whose versions the gate will judge, so it has cycles to train.
    demo_settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 3
    out = load("--interactions", "300", "--background", "--preset", "small")
    assert CYCLES_QUEUED in out, out
    versions = DatasetVersion.objects.filter(status=DatasetVersion.Status.FROZEN).count()
    assert versions >= 2
    assert not TrainingRun.objects.exists()  # left to the training worker

    expected = progress.CYCLE.format(cycle=1, of=versions)
    page = browser_page(accounts.ADMIN_USERNAME, password=accounts.DEFAULT_ADMIN_PASSWORD)
    assert page.locator("#demo-loading").inner_text().startswith(expected)
    page.goto(f"{live_server.url}/training/runs/")
    assert page.locator("#demo-loading").inner_text().startswith(expected)

    run_jobs("training")
    runs = TrainingRun.objects.order_by("pk")
    assert runs.count() == versions
    assert all(r.status == "succeeded" for r in runs), [r.error for r in runs]
    # Stamped in the simulated weeks, whenever the worker got to them.
    assert all(r.started_at < r.dataset_version.frozen_at + timedelta(hours=2) for r in runs)
    page.reload()
    assert page.locator("#demo-loading").count() == 0
    assert page.locator("table").first.inner_text().count("succeeded") >= versions
