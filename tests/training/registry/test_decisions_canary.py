"""The canary's decision per route key against the real database: intention to treat,
non-compliance counted apart, the outcome horizon, the relative margin, and a sample-ratio
mismatch that pauses automatic decisions and says why (page, history, webhook)."""

import itertools
from datetime import timedelta

import pytest

from curation.ingest_rows import user_hash
from curation.models import Feedback, Interaction, Source
from tests.support.training import frozen_version, registered
from training.models import Experiment, ModelEvent, WebhookEndpoint, WebhookEvent
from training.registry import experiments, route
from training.registry import selectors as selectors_canary
from training.registry import services as registry
from training.webhooks import services as webhooks

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("export_dir")]
_ids = itertools.count()


@pytest.fixture(autouse=True)
def _fresh_route_cache():
    route.cache_clear()
    yield
    route.cache_clear()


@pytest.fixture
def experiment(admin, settings):
    settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = 3600
    candidate = registered(frozen_version(admin), serving_name="support-2")
    return registry.model_version_canary_start(
        model=candidate, user=admin, reason="beats the base", share=0.5, min_sample=50
    )


def _key_for(split: int, share: float, arm: str) -> str:
    while True:
        key = f"person-{next(_ids)}"
        if route.arm_for(experiment_id=split, share=share, key=key) == arm:
            return key


def serve(experiment, *, arm: str, model: str, outcomes, keyed=True, at=None, per_key=1,
          holdback=False):  # fmt: skip
    """Interactions answered by `model` for fresh keys assigned to `arm`, `per_key` each
    (`holdback`: by the completed experiment's holdback split, "canary" = held back)."""
    source, _ = Source.objects.get_or_create(name="app")
    at = at or experiment.started_at + timedelta(minutes=1)
    split, share = experiment.pk, experiment.share
    if holdback:
        split, share = route.holdback_split(experiment.pk), experiment.holdback_share
    key = ""
    for i, kind in enumerate(outcomes):
        if i % per_key == 0:
            key = user_hash(_key_for(split, share, arm)) if keyed else ""
        n = next(_ids)
        interaction = Interaction.objects.create(
            source=source, event_id=f"e{n}", occurred_at=at, received_at=at, model=model,
            messages=[{"role": "user", "content": "hi"}], response="hello there",
            curation_state="done", user_hash=key,
        )  # fmt: skip
        if kind:
            Feedback.objects.create(
                source=source, event_id=f"f{n}", interaction_event_id=f"e{n}",
                interaction=interaction, kind=kind, occurred_at=at, received_at=at,
            )  # fmt: skip


def later(experiment, hours=2):
    return experiment.started_at + timedelta(hours=hours)


def test_the_route_key_of_a_stored_interaction_gives_its_assigned_arm(experiment):
    for i in range(200):
        key = f"k{i}"
        assert route.arm_for(experiment_id=experiment.pk, share=0.5, key=key) == route.arm_for_hash(
            experiment_id=experiment.pk, share=0.5, key_hash=user_hash(key)
        )


def test_interactions_count_once_their_feedback_window_closed(experiment):
    serve(experiment, arm="control", model="base", outcomes=[None] * 40)
    serve(experiment, arm="canary", model="support-2", outcomes=[None] * 40,
          at=experiment.started_at + timedelta(minutes=90))  # fmt: skip

    at_100_min = selectors_canary.experiment_keyed(
        experiment=experiment, now=experiment.started_at + timedelta(minutes=100)
    )
    at_3_h = selectors_canary.experiment_keyed(experiment=experiment, now=later(experiment, 3))

    assert at_100_min["counts"] | {} == {
        "matured": 40, "pending": 40, "no_key": 0, "crossed_over": 0}  # fmt: skip
    assert at_100_min["test"] is None  # the canary has nothing matured yet
    assert (at_3_h["counts"]["matured"], at_3_h["counts"]["pending"]) == (80, 0)
    assert at_3_h["n"] == {"control": 40, "canary": 40}


def test_traffic_without_a_key_is_non_compliance_and_never_joins_control(experiment):
    serve(experiment, arm="control", model="base", outcomes=["thumbs_down"] * 4 + [None] * 76)
    serve(experiment, arm="canary", model="support-2", outcomes=["thumbs_down"] * 4 + [None] * 76)
    before = selectors_canary.experiment_keyed(experiment=experiment, now=later(experiment))
    # An app path that never asked the route: the control's name, no key, all bad.
    serve(experiment, arm="control", model="base", outcomes=["thumbs_down"] * 300, keyed=False)

    after = selectors_canary.experiment_keyed(experiment=experiment, now=later(experiment))

    assert after["counts"]["no_key"] == 300
    assert after["test"] == before["test"]
    assert experiments.experiment_check(experiment_id=experiment.pk, now=later(experiment)) in (
        "continue", "complete")  # fmt: skip


def test_an_interaction_counts_for_its_keys_arm_whichever_model_answered(experiment):
    # Keys assigned to the canary, answered by the control (a stale cache): intention to treat.
    serve(experiment, arm="canary", model="base", outcomes=["thumbs_down"] * 10 + [None] * 30)
    serve(experiment, arm="control", model="base", outcomes=[None] * 40)

    keyed = selectors_canary.experiment_keyed(experiment=experiment, now=later(experiment))

    assert keyed["counts"]["crossed_over"] == 40
    assert keyed["n"] == {"control": 40, "canary": 40}
    assert keyed["test"].rate_canary == pytest.approx(0.25)
    assert keyed["test"].rate_control == 0


def test_a_users_correlated_interactions_weigh_as_one_unit(experiment):
    # 5 canary users, 40 interactions each, two users all bad: per interaction this looks
    # like 80 of 200; per key the variance reflects 5 independent units.
    serve(experiment, arm="canary", model="support-2", per_key=40,
          outcomes=["thumbs_down"] * 80 + [None] * 120)  # fmt: skip
    serve(experiment, arm="control", model="base", per_key=40, outcomes=[None] * 200)

    test = selectors_canary.experiment_keyed(experiment=experiment, now=later(experiment))["test"]

    assert (test.keys_canary, test.n_canary) == (5, 200)
    binomial = 0.4 * 0.6 / 200
    assert test.high - test.low > 4 * (2 * binomial**0.5)


def test_a_relative_margin_is_in_force_and_the_page_says_so(admin, as_user, settings):
    settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = 0
    candidate = registered(frozen_version(admin), serving_name="support-3")
    response = as_user(admin).post(
        f"/training/models/{candidate.pk}/promote/",
        {"reason": "try", "share": "0.5", "margin": "0.2", "margin_kind": "relative"},
    )
    assert response.status_code == 302
    experiment = Experiment.objects.get()
    assert (experiment.margin, experiment.margin_kind) == (0.2, "relative")

    page = as_user(admin).get(f"/training/models/{candidate.pk}/").content.decode()

    assert "relative margin" in page and "0.200" in page
    assert "Non-compliance" in page and "Pending" in page


@pytest.mark.parametrize(
    "post",
    [{"margin_kind": "sideways"}, {"margin": "-0.1"}, {"margin": "nan"}, {"margin": "1e400"}],
)
def test_a_hostile_margin_override_starts_nothing(admin, as_user, post):
    candidate = registered(frozen_version(admin), serving_name="support-4")

    response = as_user(admin).post(
        f"/training/models/{candidate.pk}/promote/", {"reason": "try", **post}
    )

    assert response.status_code in (302, 400)
    assert not Experiment.objects.exists()


def test_a_sample_ratio_mismatch_pauses_decisions_says_why_and_is_recorded(
    experiment, admin, as_user
):
    WebhookEndpoint.objects.create(
        url="https://hooks.example/x", secret="whsec_" + "a" * 32,
        event_types=[webhooks.EXPERIMENT_PAUSED], created_by=admin,
    )  # fmt: skip
    # Half the canary's keys never reach us (say, a client dropping them); the canary is
    # clearly worse, but the split is not the randomised one any more.
    serve(experiment, arm="control", model="base", outcomes=[None] * 400)
    serve(experiment, arm="canary", model="support-2", outcomes=["thumbs_down"] * 150 + [None] * 50)

    verdict = experiments.experiment_check(experiment_id=experiment.pk, now=later(experiment))
    again = experiments.experiment_check(experiment_id=experiment.pk, now=later(experiment, 3))

    assert (verdict, again) == ("paused", "paused")
    experiment.refresh_from_db()
    assert experiment.state == "running" and experiment.paused_at is not None
    assert "sample-ratio mismatch" in experiment.paused_reason
    assert experiment.last_evidence["srm"]["mismatch"] is True
    assert experiment.canary.changes.filter(action=ModelEvent.Action.CANARY_PAUSED).count() == 1
    event = WebhookEvent.objects.get(type=webhooks.EXPERIMENT_PAUSED)
    assert "sample-ratio mismatch" in event.data["reason"]
    assert event.data["evidence"]["srm"]["p_value"] < 0.001
    page = as_user(admin).get(f"/training/models/{experiment.canary_id}/").content.decode()
    assert 'id="experiment-paused"' in page and "sample-ratio mismatch" in page


# --- the holdback after completion -------------------------------------------------------


@pytest.fixture
def completed(experiment, settings):
    settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = 0
    settings.FLYWHEEL_HOLDBACK_SHARE = 0.2
    settings.FLYWHEEL_HOLDBACK_DAYS = 14
    Experiment.objects.filter(pk=experiment.pk).update(margin=0.1)
    serve(experiment, arm="control", model="base", outcomes=["thumbs_down"] * 10 + [None] * 190)
    serve(experiment, arm="canary", model="support-2", outcomes=["thumbs_down"] * 10 + [None] * 190)
    assert experiments.experiment_check(experiment_id=experiment.pk, now=later(experiment)) == (
        "complete")  # fmt: skip
    experiment.refresh_from_db()
    route.cache_clear()
    return experiment


def test_a_completed_canary_keeps_a_holdback_of_keys_on_the_previous_model(completed):
    assert completed.holdback_share == 0.2
    assert completed.holdback_until == completed.ended_at + timedelta(days=14)

    answers = [route.route_for(key=f"visitor-{i}") for i in range(2000)]
    held = [a for a in answers if a.arm == "holdback"]

    assert {a.model for a in held} == {"base"}
    assert {a.model for a in answers if a.arm == "control"} == {"support-2"}
    assert 0.17 < len(held) / len(answers) < 0.23


def test_the_monitor_compares_the_current_model_with_the_holdback(completed, admin, as_user):
    after = completed.ended_at + timedelta(minutes=5)
    serve(completed, arm="control", model="support-2", at=after, holdback=True,
          outcomes=["thumbs_down"] * 100 + [None] * 100)  # fmt: skip
    serve(completed, arm="canary", model="base", at=after, holdback=True,
          outcomes=["thumbs_down"] * 2 + [None] * 48)  # fmt: skip

    alert = experiments.monitor_check(now=completed.ended_at + timedelta(hours=1))

    assert alert is not None and alert.model == completed.canary
    assert "holdback" in alert.evidence["comparison"]
    assert alert.evidence["low"] >= alert.evidence["h0_low"] > 0
    assert (alert.evidence["keys_control"], alert.evidence["keys_canary"]) == (50, 200)
    # The alert offers the rollback, as the baseline monitor's does.
    page = as_user(admin).get(f"/training/models/{completed.canary_id}/").content.decode()
    assert f"/training/alerts/{alert.pk}/rollback/" in page
    response = as_user(admin).post(
        f"/training/alerts/{alert.pk}/rollback/", {"reason": "worse than the holdback"}
    )
    assert response.status_code == 302
    alert.refresh_from_db()
    completed.canary.refresh_from_db()
    assert alert.closed_at is not None and completed.canary.status == "rolled_back"


def test_an_equal_current_model_raises_no_holdback_alert(completed):
    after = completed.ended_at + timedelta(minutes=5)
    serve(completed, arm="control", model="support-2", at=after, holdback=True,
          outcomes=["thumbs_down"] * 10 + [None] * 190)  # fmt: skip
    serve(completed, arm="canary", model="base", at=after, holdback=True,
          outcomes=["thumbs_down"] * 3 + [None] * 47)  # fmt: skip

    assert experiments.monitor_check(now=completed.ended_at + timedelta(hours=1)) is None
