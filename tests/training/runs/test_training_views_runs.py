"""Training run and model pages: admin only, from every side; starting a run; live progress
polled by HTMX; promotion and rejection recorded."""

import django_rq
import pytest

from flywheel_site.access import FORBIDDEN
from training.models import ModelVersion, TrainingRun
from training.registry import services as registry
from training.runs import services as runs
from training.runs.views import CHOOSE_PRESET, CHOOSE_VERSION, RUN_STARTED

pytestmark = pytest.mark.django_db


@pytest.fixture
def base_model(settings, tmp_path):
    """A directory that looks like a model to the start check (no training happens here)."""
    base = tmp_path / "base"
    base.mkdir()
    (base / "config.json").write_text("{}")
    settings.FLYWHEEL_BASE_MODEL = base
    settings.FLYWHEEL_MODELS_DIR = tmp_path / "models"
    settings.FLYWHEEL_TRAINER = "builtin"
    return base


def pages(run, model) -> list[str]:
    return [
        "/training/runs/",
        f"/training/runs/{run.pk}/",
        "/training/models/",
        f"/training/models/{model.pk}/",
    ]


def posts(version, model) -> list[tuple[str, dict]]:
    return [
        ("/training/runs/start/", {"version": version.pk}),
        (f"/training/models/{model.pk}/promote/", {"reason": "better"}),
        (f"/training/models/{model.pk}/reject/", {"reason": "worse"}),
    ]


def test_anonymous_users_are_sent_to_log_in(client, run, model, version):
    responses = [client.get(url) for url in pages(run, model)]
    responses += [client.post(url, data) for url, data in posts(version, model)]
    for response in responses:
        assert response.status_code == 302
        assert response["Location"].startswith("/login/")
    assert TrainingRun.objects.count() == 1


@pytest.mark.parametrize("persona", ["annotator", "curator", "outsider"])
def test_everyone_but_admins_is_refused_every_page_and_action(
    as_user, request, persona, run, model, version
):
    client = as_user(request.getfixturevalue(persona))
    for url in pages(run, model):
        response = client.get(url)
        assert response.status_code == 403, url
        assert FORBIDDEN in response.content.decode()
    for url, data in posts(version, model):
        assert client.post(url, data).status_code == 403, url
    model.refresh_from_db()
    assert model.status == "candidate"
    assert TrainingRun.objects.count() == 1
    assert not model.changes.exists()


def test_admins_see_every_page(as_user, admin, run, model):
    client = as_user(admin)
    for url in pages(run, model):
        assert client.get(url).status_code == 200, url


GATE_RECORD = {
    "metric": "normalised_accuracy",
    "candidate": 0.8,
    "baseline": 0.5,
    "delta": 0.3,
    "delta_ci": [0.1667, 0.4333],
    "n": 60,
    "test": "paired bootstrap of the per-pair difference (95% percentile interval, ...)",
    "passed": True,
    "truncated": 4,
    "skipped": 2,
    "skipped_reasons": {"answer_fills_max_length": 2},
    "margin": 0.02,
    "min_pairs": 50,
}


def test_the_model_and_run_pages_state_the_test_n_difference_interval_and_pair_counts(
    as_user, admin, run, model
):
    ModelVersion.objects.filter(pk=model.pk).update(metrics={**model.metrics, "gate": GATE_RECORD})
    TrainingRun.objects.filter(pk=run.pk).update(metrics={"eval": {"gate": GATE_RECORD}})
    client = as_user(admin)

    model_page = client.get(f"/training/models/{model.pk}/").content.decode()
    run_page = client.get(f"/training/runs/{run.pk}/").content.decode()

    assert GATE_RECORD["test"] in model_page
    assert "<dd>60 (at least 50 needed)</dd>" in model_page
    assert "[0.1667, 0.4333]" in model_page
    assert "0.3000: 0.8000 vs 0.5000" in model_page
    for page in (model_page, run_page):
        assert "Eval pairs: 60 used, of which 4 truncated" in page
        assert "2 skipped: 2 because an answer alone fills max_length" in page


def test_the_version_page_warns_when_the_gate_would_have_too_few_eval_pairs(
    as_user, admin, version, settings
):
    settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 50
    url = f"/datasets/{version.dataset.name}/v{version.number}/"
    page = as_user(admin).get(url).content.decode()
    assert 'id="eval-shortfall"' in page
    assert "the gate needs at least 50 (FLYWHEEL_GATE_MIN_EVAL_PAIRS)" in page

    settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS = 1
    n_eval = version.manifest["counts"]["eval"]
    page = as_user(admin).get(url).content.decode()
    assert ('id="eval-shortfall"' in page) is (n_eval < 1)


def test_unknown_runs_and_models_are_404(as_user, admin):
    client = as_user(admin)
    assert client.get("/training/runs/999/").status_code == 404
    assert client.get("/training/models/999/").status_code == 404


def test_an_admin_starts_a_run_which_is_queued_after_commit(
    as_user, admin, version, base_model, django_capture_on_commit_callbacks
):
    with django_capture_on_commit_callbacks(execute=True):
        response = as_user(admin).post("/training/runs/start/", {"version": version.pk})

    run = TrainingRun.objects.get()
    assert response.status_code == 302
    assert response["Location"] == f"/training/runs/{run.pk}/"
    assert (run.status, run.trigger, run.requested_by) == ("queued", "manual", admin)
    assert run.config["steps"] >= 1
    assert django_rq.get_queue("training").job_ids == [run.rq_job_id]
    page = as_user(admin).get(response["Location"]).content.decode()
    assert RUN_STARTED.format(pk=run.pk, version=version) in page


def test_starting_a_second_run_of_a_version_shows_why_not(as_user, admin, version, base_model):
    client = as_user(admin)
    client.post("/training/runs/start/", {"version": version.pk})
    response = client.post("/training/runs/start/", {"version": version.pk}, follow=True)

    assert TrainingRun.objects.count() == 1
    assert runs.ERR_RUN_ACTIVE.format(version=version) in response.content.decode()


def test_starting_without_a_version_or_base_model_is_refused(
    as_user, admin, version, settings, tmp_path
):
    settings.FLYWHEEL_BASE_MODEL = tmp_path / "missing"
    client = as_user(admin)
    no_version = client.post("/training/runs/start/", {"version": "x"}, follow=True)
    no_base = client.post("/training/runs/start/", {"version": version.pk}, follow=True)

    assert CHOOSE_VERSION in no_version.content.decode()
    assert "No base model at" in no_base.content.decode()
    assert not TrainingRun.objects.exists()


def test_a_running_run_polls_its_progress_every_two_seconds(as_user, admin, run):
    client = as_user(admin)
    full = client.get(f"/training/runs/{run.pk}/").content.decode()
    assert 'hx-trigger="every 2s"' in full
    assert "<html" in full
    fragment = client.get(f"/training/runs/{run.pk}/", headers={"HX-Request": "true"})
    body = fragment.content.decode()
    assert "<html" not in body
    assert body.strip().startswith('<section class="card" id="run-progress"')
    assert "12/30" in body
    assert "0.5123" in body
    assert 'class="loss-canvas"' in body
    # The runs list polls too while anything is active.
    assert 'hx-trigger="every 2s"' in client.get("/training/runs/").content.decode()


def test_a_finished_run_stops_polling(as_user, admin, run, model):
    body = as_user(admin).get(f"/training/runs/{run.pk}/").content.decode()
    assert "hx-trigger" not in body
    assert model.name in body


@pytest.mark.parametrize(
    ("decision", "status", "done"),
    [("promote", "promoted", "is now the current model"), ("reject", "rejected", "was rejected")],
)
def test_an_admin_decides_on_a_candidate_with_a_recorded_reason(
    as_user, admin, model, decision, status, done, settings
):
    # The immediate promotion (FLYWHEEL_CANARY off); the canary path:
    # tests/training/registry/test_canary.py.
    settings.FLYWHEEL_CANARY = False
    response = as_user(admin).post(
        f"/training/models/{model.pk}/{decision}/", {"reason": "beats the base"}, follow=True
    )

    model.refresh_from_db()
    assert model.status == status
    event = model.changes.get()
    assert (event.action, event.reason, event.user) == (status, "beats the base", admin)
    page = response.content.decode()
    assert done in page
    assert "beats the base" in page
    current = as_user(admin).get("/training/models/").content.decode()
    assert "Current model:" in current
    # Only a promotion makes it the current model, shown with when it was promoted.
    assert ("(promoted " in current) == (decision == "promote")


def test_a_reject_needs_a_reason(as_user, admin, model):
    response = as_user(admin).post(f"/training/models/{model.pk}/reject/", {}, follow=True)
    model.refresh_from_db()
    assert model.status == "candidate"
    assert registry.ERR_REASON in response.content.decode()


def test_a_programming_mistake_in_a_service_is_not_shown_as_a_refusal(
    as_user, admin, model, monkeypatch
):
    """Views catch TrainingError alone: a stray ValueError reaches the error page and the
    logs instead of turning into a polite message."""

    def broken(**kwargs):
        raise ValueError("a bug, not a refusal")

    monkeypatch.setattr(registry, "model_version_canary_start", broken)
    with pytest.raises(ValueError, match="a bug"):
        as_user(admin).post(f"/training/models/{model.pk}/promote/", {"reason": "better"})
    model.refresh_from_db()
    assert model.status == "candidate"


def test_pages_refuse_get_for_actions(as_user, admin, model):
    client = as_user(admin)
    assert client.get("/training/runs/start/").status_code == 405
    # A refused decision re-renders at this URL: Back or reload there reaches the model page.
    response = client.get(f"/training/models/{model.pk}/promote/")
    assert response.status_code == 302
    assert response["Location"] == f"/training/models/{model.pk}/"
    assert client.get(response["Location"]).status_code == 200


def test_the_loss_chart_carries_train_and_eval_loss_and_a_table_of_the_same_figures(
    as_user, admin, run
):
    TrainingRun.objects.filter(pk=run.pk).update(eval_loss_curve=[[6, 0.68], [12, 0.61]])
    response = as_user(admin).get(f"/training/runs/{run.pk}/")
    body = response.content.decode()
    chart = response.context["chart"]
    assert chart["series"] == {
        "train": [[1, 0.6931], [6, 0.66], [12, 0.5123]],
        "eval": [[6, 0.68], [12, 0.61]],
    }
    assert chart["rows"] == [
        {"step": 1, "train": 0.6931, "eval": None},
        {"step": 6, "train": 0.66, "eval": 0.68},
        {"step": 12, "train": 0.5123, "eval": 0.61},
    ]
    assert '<script id="loss-series" type="application/json">' in body
    assert "vendor/chart-4.6.1.umd.min.js" in body and "loss-chart.js" in body
    assert '<td class="num">12</td><td class="num">0.5123</td><td class="num">0.6100</td>' in body


def test_a_run_without_any_loss_yet_shows_no_chart(as_user, admin, run):
    TrainingRun.objects.filter(pk=run.pk).update(loss_curve=[], eval_loss_curve=[])
    response = as_user(admin).get(f"/training/runs/{run.pk}/")
    assert response.context["chart"] is None
    assert 'class="loss-canvas"' not in response.content.decode()


def test_the_start_form_shows_the_settings_a_run_uses_and_offers_the_demo_preset(
    as_user, admin, version, settings
):
    settings.FLYWHEEL_TRAINING_STEPS = 200
    settings.FLYWHEEL_TRAINING_MAX_LENGTH = 256
    page = as_user(admin).get("/training/runs/").content.decode()
    assert "200 steps, batch" in page and "max length 256 tokens" in page
    assert "24 steps, batch" in page and "max length 512 tokens" in page


def test_a_run_started_with_the_demo_preset_uses_it(as_user, admin, version, base_model):
    client = as_user(admin)
    client.post("/training/runs/start/", {"version": version.pk, "preset": "demo"})
    run = TrainingRun.objects.get()
    assert (run.config["steps"], run.config["max_length"]) == (24, 512)


def test_an_unknown_preset_starts_nothing(as_user, admin, version, base_model):
    response = as_user(admin).post(
        "/training/runs/start/", {"version": version.pk, "preset": "<script>"}, follow=True
    )
    assert CHOOSE_PRESET in response.content.decode()
    assert not TrainingRun.objects.exists()


def _word_tokenizer(directory) -> None:
    """A tokenizer.json that makes one token of each word or punctuation run."""
    from tokenizers import Tokenizer, models, pre_tokenizers

    tokenizer = Tokenizer(models.WordLevel({"[UNK]": 0}, unk_token="[UNK]"))
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.save(str(directory / "tokenizer.json"))


def test_a_start_that_would_skip_most_pairs_is_held_back_with_the_count(
    as_user, admin, version, base_model, settings
):
    """No tokenizer in the base model: the check estimates tokens from characters, finds
    every answer (about 190 characters) longer than 16 tokens and asks before starting."""
    settings.FLYWHEEL_TRAINING_MAX_LENGTH = 16
    client = as_user(admin)
    response = client.post("/training/runs/start/", {"version": version.pk})
    assert response.status_code == 302
    assert response["Location"] == (
        f"/training/runs/?version={version.pk}&preset=settings#fit-warning"
    )
    assert not TrainingRun.objects.exists()
    page = client.get(response["Location"]).content.decode()
    assert f"3 of 3 pairs of {version} would be skipped" in page
    assert "an answer alone fills max_length (16 tokens; estimated at 4 characters" in page

    client.post(
        "/training/runs/start/", {"version": version.pk, "preset": "settings", "confirm": "skip"}
    )
    assert TrainingRun.objects.get().config["max_length"] == 16


def test_the_fit_check_counts_with_the_base_models_tokenizer_when_it_has_one(
    as_user, admin, version, base_model, settings
):
    # About 29 tokens an answer with this tokenizer, about 48 by the character estimate.
    _word_tokenizer(base_model)
    client = as_user(admin)
    settings.FLYWHEEL_TRAINING_MAX_LENGTH = 20
    held = client.post("/training/runs/start/", {"version": version.pk})
    page = client.get(held["Location"]).content.decode()
    assert "3 of 3 pairs" in page and "counted with the base model&#x27;s tokenizer" in page
    assert not TrainingRun.objects.exists()

    settings.FLYWHEEL_TRAINING_MAX_LENGTH = 40
    started = client.post("/training/runs/start/", {"version": version.pk})
    assert started["Location"] == f"/training/runs/{TrainingRun.objects.get().pk}/"


def test_the_runs_page_shows_no_warning_for_a_start_that_fits(as_user, admin, version):
    page = as_user(admin).get(f"/training/runs/?version={version.pk}&preset=demo")
    assert 'id="fit-warning"' not in page.content.decode()
