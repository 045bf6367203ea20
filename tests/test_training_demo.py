"""`load_demo` fills the whole loop: curated demo traffic, scripted reviews, gold, a first
frozen version of the demo dataset and a tiny local base model an admin can train on."""

import io

import django_rq
import pytest
from django.core.management import call_command
from rq import SimpleWorker

from curation import demo as curation_demo
from curation.models import CurationRun
from review.models import Review, ReviewItem, ReviewOutcome, ReviewSkip
from tests import review_helpers as rh
from training import demo, runs
from training.models import Dataset, GoldPair, ModelVersion, TrainingRun

pytestmark = pytest.mark.usefixtures("export_dir")


@pytest.fixture
def demo_settings(settings, tmp_path, monkeypatch):
    for name in ("FLYWHEEL_DEMO_ADMIN_PASSWORD", "FLYWHEEL_DEMO_ANNOTATOR_PASSWORD", "PORT"):
        monkeypatch.delenv(name, raising=False)
    # No Detoxify weights offline: the demo lets the lighter classifier decide, as
    # `make run` does.
    settings.FLYWHEEL_TOXICITY_CHECKPOINT = ""
    settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK = True
    settings.FLYWHEEL_MODELS_DIR = tmp_path / "models"
    settings.FLYWHEEL_BASE_MODEL = tmp_path / "models" / "base"
    return settings


def load(n: int = 600) -> str:
    out = io.StringIO()
    # The demo's fixed reference, so the data (and the pairs trained on) are the same on
    # every day; reset sequences, so candidate ids (and the keyed sample) are too.
    now = curation_demo.REFERENCE.isoformat()
    call_command(
        "load_demo", "--interactions", str(n), "--now", now, stdout=out, stderr=io.StringIO()
    )
    return out.getvalue()


@pytest.mark.slow
@pytest.mark.django_db(transaction=True, reset_sequences=True)
def test_load_demo_runs_the_loop_up_to_a_trainable_dataset_version(demo_settings):
    first = load()

    # Curated through curation's run bookkeeping, reviewed through review's claim service:
    # the run is closed, no scripted reviewer keeps a lease, and every review was made
    # under a lease.
    assert list(CurationRun.objects.filter(trigger="command").values_list("status", flat=True)) == [
        "succeeded"
    ]
    assert not ReviewItem.objects.filter(lease_holder__username__in=demo.REVIEWERS).exists()
    assert not Review.objects.filter(started_at__isnull=True).exists()

    reviews = Review.objects.filter(reviewer__username__in=demo.REVIEWERS)
    outcomes = ReviewOutcome.objects.filter(item__reviews__in=reviews).distinct()
    approved = outcomes.filter(result="approved").count()
    assert approved > 0
    assert outcomes.filter(result="rejected").exists()
    assert GoldPair.objects.count() == approved
    dataset = Dataset.objects.get(name=demo.DATASET_NAME)
    assert (dataset.lag_days, dataset.train_threshold) == (0, demo.DATASET_THRESHOLD)
    version = dataset.versions.get()
    assert (version.number, version.status) == (1, "frozen")
    counts = version.manifest["counts"]
    assert counts["train"] + counts["eval"] + sum(counts["excluded"].values()) == approved
    assert counts["eval"] > 0
    base = demo_settings.FLYWHEEL_BASE_MODEL
    assert (base / "config.json").is_file()
    assert demo.FROZEN.format(version=version, train=counts["train"], eval=counts["eval"]) in first
    assert demo.BASE_HINT.format(path=base) in first
    # Nothing new has been approved since v1: the trigger has nothing to do.
    assert runs.training_trigger_check() == []

    # A second load_demo adds nothing.
    before = (Review.objects.count(), GoldPair.objects.count(), dataset.versions.count())
    again = load()
    assert (Review.objects.count(), GoldPair.objects.count(), dataset.versions.count()) == before
    assert demo.ALREADY_REVIEWED.format(n=reviews.count()) in again
    assert demo.HAS_VERSION.format(version=version) in again
    assert demo.BASE_EXISTS.format(path=base) in again

    # The admin starts a run on the demo version and base model; it trains and is gated.
    demo_settings.FLYWHEEL_TRAINING_STEPS = 5
    demo_settings.FLYWHEEL_TRAINING_MAX_LENGTH = 96
    admin = dataset.created_by
    assert admin.is_superuser
    run = runs.training_run_create(version=version, user=admin)
    queue = django_rq.get_queue("training")
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    run.refresh_from_db()
    assert run.status == "succeeded", run.error
    assert (run.progress_step, run.progress_total) == (5, 5)
    model = ModelVersion.objects.get(run=run)
    assert model.metrics["n"] > 0
    assert TrainingRun.objects.count() == 1


@pytest.mark.django_db
def test_the_second_scripted_reviewer_takes_an_item_through_the_queue(settings):
    # Ahead in the queue: items with no user answer, which the scripted reviewers skip
    # (the mix serves one of them before each pair, so both reviewers meet them).
    settings.FLYWHEEL_REVIEW_MIX = {"needs_answer": 1, "preference": 1}
    unanswered = rh.make_items(2, kind="needs_answer", priority=2.0)
    pairs = rh.make_items(3, reviews_required=2)
    out = io.StringIO()

    demo.demo_reviews(stdout=out)

    for item in pairs:
        item.refresh_from_db()
        assert item.status == ReviewItem.Status.DONE
        reviewers = item.reviews.order_by("reviewer__username").values_list(
            "reviewer__username", flat=True
        )
        assert list(reviewers) == list(demo.REVIEWERS)
    assert not Review.objects.filter(item__in=unanswered).exists()
    skipped = ReviewSkip.objects.filter(item__in=unanswered).values_list("user__username")
    assert sorted(name for (name,) in skipped) == sorted(demo.REVIEWERS * 2)
    assert not ReviewItem.objects.filter(lease_holder__isnull=False).exists()
    rejected = sum(demo._rejects(item.candidate_id) for item in pairs)
    names = " and ".join(demo.REVIEWERS)
    assert demo.REVIEWED.format(approved=3 - rejected, rejected=rejected, reviewers=names) in (
        out.getvalue()
    )
