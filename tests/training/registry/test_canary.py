"""Canary experiments against the real database: the route (scope, bounds, split, cache),
promotion starting an experiment, the background decisions (run twice), an admin's hand,
and the monitor after the rollout."""

import itertools
from datetime import timedelta

import pytest
from django.utils import timezone
from scipy.stats import binomtest

from curation.ingest_rows import user_hash
from curation.models import Feedback, Interaction, Source
from curation.services import api_token_create
from tests.support import factories
from tests.support.api import ApiClient
from tests.support.training import frozen_version, registered
from training.errors import TrainingError
from training.models import Experiment, ModelEvent, ModelVersion, MonitorAlert
from training.registry import experiments, route
from training.registry import services as registry
from training.registry.api import BAD_ROUTE_KEY
from training.registry.selectors import monitor_alerts_open

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def _fresh_route_cache():
    route.cache_clear()
    yield
    route.cache_clear()


@pytest.fixture(autouse=True)
def _outcomes_mature_at_once(settings):
    # These tests look right after serving; tests/test_decisions_canary.py covers the window.
    settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = 0
    # A completed canary serves every key here; tests/test_decisions_canary.py: the holdback.
    settings.FLYWHEEL_HOLDBACK_SHARE = 0


_users = itertools.count()


def _routed_keys(name: str, count: int) -> list[str]:
    """User hashes of `count` fresh keys the running experiment assigns to `name`'s arm, as
    an app that asks the route would send them (none when no experiment runs)."""
    experiment = Experiment.objects.filter(state="running").first()
    if experiment is None:
        return [""] * count
    arm = "canary" if name == experiment.canary_serving_name else "control"
    keys = []
    while len(keys) < count:
        key = f"user-{next(_users)}"
        if route.arm_for(experiment_id=experiment.pk, share=experiment.share, key=key) == arm:
            keys.append(user_hash(key))
    return keys


@pytest.fixture
def router_api(db, settings):
    # The route counts against the token's rate limit like any call; these tests make many.
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    _, raw = api_token_create(source_name="app", name="router", scopes=["route"])
    return ApiClient(raw)


@pytest.fixture
def candidate(admin):
    return registered(frozen_version(admin), serving_name="support-2")


def start(candidate, admin, **overrides):
    return registry.model_version_canary_start(
        model=candidate, user=admin, reason="beats the base on gold", **overrides
    )


def served(name: str, outcomes: list[str | None], *, source="app", at=None):
    """Interactions served by `name`, each with the feedback kind given (None: none), each
    from its own user routed to `name`'s arm."""
    source, _ = Source.objects.get_or_create(name=source)
    now = at or timezone.now()
    base = Interaction.objects.count()
    keys = _routed_keys(name, len(outcomes))
    for i, kind in enumerate(outcomes):
        interaction = Interaction.objects.create(
            source=source, event_id=f"e{base + i}", occurred_at=now, received_at=now,
            model=name, messages=[{"role": "user", "content": "hi"}], response="hello there",
            curation_state="done", user_hash=keys[i],
        )  # fmt: skip
        if kind:
            Feedback.objects.create(
                source=source, event_id=f"f{base + i}", interaction_event_id=f"e{base + i}",
                interaction=interaction, kind=kind, occurred_at=now, received_at=now,
                final_text="something else entirely" if kind == "edited" else None,
            )  # fmt: skip


# --- the route ---------------------------------------------------------------------------


def test_the_route_answers_the_base_model_when_nothing_runs(router_api, settings):
    settings.FLYWHEEL_BASE_SERVING_NAME = "llama-base"
    response = router_api.get("/api/v1/route?key=user-1")
    assert response.status_code == 200
    assert response.json() == {"model": "llama-base", "arm": "control", "experiment": None,
                               "ttl_s": settings.FLYWHEEL_ROUTE_TTL_S}  # fmt: skip


def test_the_route_needs_the_route_scope_and_a_bounded_key(router_api, api):
    assert api.get("/api/v1/route?key=u").status_code == 403  # an ingest token
    assert router_api.get("/api/v1/route?key=u", token=None).status_code == 401
    for bad in ["", "x" * 201, "with%20space", "%00"]:
        response = router_api.get(f"/api/v1/route?key={bad}")
        assert response.status_code == 422, bad
        if bad:  # an empty key is "required", the others break the rule in words
            assert response.json()["errors"][0]["message"] == BAD_ROUTE_KEY, bad
        assert response.json()["error"] == "invalid"
    assert router_api.get("/api/v1/route").status_code == 422
    assert router_api.get("/api/v1/route?key=" + "x" * 200).status_code == 200
    assert Experiment.objects.count() == 0


def test_the_route_is_in_the_openapi_schema(client):
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/route"]["get"]
    assert operation["summary"] == "Which model to serve for a user or session"
    assert {p["name"] for p in operation["parameters"]} == {"key"}


def test_the_split_follows_the_share_and_a_key_never_changes_arm(
    router_api, candidate, admin, django_assert_num_queries, settings
):
    settings.FLYWHEEL_ROUTE_CACHE_S = 600  # this many calls take longer than the default
    experiment = start(candidate, admin, share=0.3)
    keys = [f"user-{i}" for i in range(1000)]
    arms = {}
    for key in keys:
        body = router_api.get(f"/api/v1/route?key={key}").json()
        assert body["experiment"] == experiment.pk
        assert body["model"] == {"control": "base", "canary": "support-2"}[body["arm"]]
        arms[key] = body["arm"]
    canary = sum(arm == "canary" for arm in arms.values())
    low, high = binomtest(canary, len(keys), 0.3).proportion_ci(confidence_level=0.99)
    assert low <= 0.3 <= high, canary
    # Asked again (from the cache, with no query at all): the same arm for every key.
    with django_assert_num_queries(0):
        for key in keys[:200]:
            assert route.route_for(key=key).arm == arms[key]
    # A new experiment reshuffles: the split is keyed by the experiment too.
    other = [route.arm_for(experiment_id=experiment.pk + 1, share=0.3, key=k) for k in keys]
    assert other != [arms[k] for k in keys]


# --- promotion starts an experiment ------------------------------------------------------


def test_an_admin_promotion_starts_a_canary_with_overrides(as_user, admin, candidate, settings):
    settings.FLYWHEEL_CANARY = True
    response = as_user(admin).post(
        f"/training/models/{candidate.pk}/promote/",
        {"reason": "beats the base", "share": "0.25", "min_sample": "40", "hours": "2"},
        follow=True,
    )
    experiment = Experiment.objects.get()
    assert (experiment.share, experiment.min_sample, experiment.state) == (0.25, 40, "running")
    assert experiment.deadline - experiment.started_at == timedelta(hours=2)
    assert (experiment.control, experiment.control_serving_name) == (None, "base")
    candidate.refresh_from_db()
    assert candidate.status == "candidate"
    event = candidate.changes.get(action="canary_started")
    assert (event.reason, event.user, event.experiment) == ("beats the base", admin, experiment)
    page = response.content.decode()
    assert "is now the canary" in page
    assert 'hx-trigger="every 5s"' in page and 'aria-live="polite"' in page
    # A second canary cannot start while one runs.
    other = registered(candidate.dataset_version, serving_name="support-3")
    with pytest.raises(TrainingError, match="is running"):
        start(other, admin)


def test_a_bad_override_starts_nothing(as_user, admin, candidate):
    for field, value in [("share", "1.5"), ("share", "nan"), ("min_sample", "-3"),
                         ("hours", "lots")]:  # fmt: skip
        response = as_user(admin).post(
            f"/training/models/{candidate.pk}/promote/", {"reason": "r", field: value},
            follow=True,
        )  # fmt: skip
        assert "or blank for the setting" in response.content.decode()
    assert Experiment.objects.count() == 0


def test_serving_names_are_unique(admin, candidate):
    from django.db import IntegrityError, transaction

    with pytest.raises(IntegrityError), transaction.atomic():
        registered(candidate.dataset_version, serving_name="support-2")


# --- decisions ---------------------------------------------------------------------------


def test_a_worse_canary_is_rolled_back_by_the_job_once_even_when_run_twice(
    candidate, admin, router_api
):
    experiment = start(candidate, admin, share=0.5, min_sample=50)
    served("base", ["thumbs_down"] * 10 + [None] * 190)
    served("support-2", ["thumbs_down"] * 80 + ["regenerated"] * 20 + [None] * 100)

    first = experiments.experiments_check()
    second = experiments.experiments_check()

    assert first["experiments"] == {experiment.pk: "roll_back"}
    assert second["experiments"] == {}
    experiment.refresh_from_db()
    candidate.refresh_from_db()
    assert (experiment.state, candidate.status) == ("rolled_back", "rolled_back")
    event = candidate.changes.get(action="rolled_back")
    assert event.experiment == experiment
    assert event.evidence["n"] == {"control": 200, "canary": 200}
    assert event.evidence["rate"] == {"control": 0.05, "canary": 0.5}
    assert event.evidence["interval"][0] > 0
    assert "Deng, Knoblich & Lu 2018" in event.evidence["method"]
    assert event.evidence["keys"] == {"control": 200, "canary": 200}
    assert candidate.changes.filter(action="rolled_back").count() == 1
    # Every key is sent to the control now.
    for i in range(50):
        assert router_api.get(f"/api/v1/route?key=k{i}").json() == {
            "model": "base", "arm": "control", "experiment": None, "ttl_s": 30}  # fmt: skip


def test_the_decision_is_taken_once_when_two_looks_race(candidate, admin):
    """The conditional UPDATE on (running, version): a look that read the experiment
    before another look decided it changes nothing."""
    experiment = start(candidate, admin, share=0.5, min_sample=50)
    served("base", [None] * 200)
    served("support-2", ["thumbs_down"] * 150 + [None] * 50)
    stale = Experiment.objects.get(pk=experiment.pk)
    assert experiments.experiment_check(experiment_id=experiment.pk) == "roll_back"
    assert experiments._end(stale, state="completed", reason="late", now=timezone.now()) is False
    assert Experiment.objects.get(pk=experiment.pk).state == "rolled_back"


def test_an_equal_canary_completes_and_serves_every_key(candidate, admin, settings):
    settings.FLYWHEEL_CANARY_MARGIN = 0.1
    experiment = start(candidate, admin, share=0.5, min_sample=300)
    served("base", ["thumbs_down"] * 30 + [None] * 370)
    served("support-2", ["thumbs_down"] * 31 + [None] * 369)
    # Nothing while a metric arm is under the minimum sample... then complete.
    assert experiments.experiments_check()["experiments"] == {experiment.pk: "complete"}
    candidate.refresh_from_db()
    assert candidate.status == "promoted"
    promoted = candidate.changes.get(action="promoted")
    assert promoted.evidence["interval"][1] < 0.1 and promoted.experiment == experiment
    assert route.route_for(key="anyone").as_dict() == {
        "model": "support-2", "arm": "control", "experiment": None, "ttl_s": 30}  # fmt: skip
    assert experiments.experiments_check()["experiments"] == {}


def test_an_undecided_experiment_waits_then_stops_at_its_deadline(candidate, admin):
    experiment = start(candidate, admin, share=0.5, min_sample=1000, max_duration_s=3600)
    served("base", [None] * 40)
    served("support-2", [None] * 40)
    assert experiments.experiment_check(experiment_id=experiment.pk) == "continue"
    experiment.refresh_from_db()
    assert experiment.last_evidence["n"] == {"control": 40, "canary": 40}
    later = timezone.now() + timedelta(hours=2)
    assert experiments.experiment_check(experiment_id=experiment.pk, now=later) == "stopped"
    candidate.refresh_from_db()
    assert candidate.status == "candidate"
    assert candidate.changes.filter(action="canary_stopped").count() == 1


def test_an_admin_extends_stops_and_decides_with_a_reason(as_user, admin, candidate):
    client = as_user(admin)
    experiment = start(candidate, admin, share=0.5)
    deadline = experiment.deadline
    # No reason: refused, nothing changes.
    client.post(f"/training/experiments/{experiment.pk}/stop/", {"reason": " "})
    assert Experiment.objects.get(pk=experiment.pk).state == "running"
    client.post(
        f"/training/experiments/{experiment.pk}/extend/", {"reason": "slow week", "hours": "24"}
    )
    experiment.refresh_from_db()
    assert experiment.deadline == deadline + timedelta(hours=24)
    assert experiment.version == 2
    client.post(
        f"/training/experiments/{experiment.pk}/decide/",
        {"reason": "users love it", "decision": "complete"},
    )
    experiment.refresh_from_db()
    candidate.refresh_from_db()
    assert (experiment.state, candidate.status) == ("completed", "promoted")
    promoted = candidate.changes.get(action="promoted")
    assert (promoted.reason, promoted.user, promoted.evidence["by_hand"]) == (
        "users love it", admin, True)  # fmt: skip
    assert list(candidate.changes.values_list("action", flat=True).order_by("pk")) == [
        "canary_started", "canary_extended", "promoted"]  # fmt: skip
    # Decided: a late stop is refused with a message.
    response = client.post(
        f"/training/experiments/{experiment.pk}/stop/", {"reason": "late"}, follow=True
    )
    assert "is not running" in response.content.decode()


def test_an_admin_stops_an_experiment_and_the_control_serves_everyone(admin, candidate):
    experiment = start(candidate, admin, share=0.5)
    experiments.experiment_stop(experiment=experiment, user=admin, reason="wrong week")
    experiment.refresh_from_db()
    assert experiment.state == "stopped"
    assert route.route_for(key="k").model == "base"
    assert ModelEvent.objects.get(action="canary_stopped").reason == "wrong week"


def test_auto_promotion_starts_a_canary_when_the_setting_says_so(admin, settings):
    from training.registry.gate import GateResult

    version = frozen_version(admin)
    run = factories.training_run(
        version,
        started_at=timezone.now(),
        config={"auto_promote": True, "canary": True, "serving_name": "support-auto"},
    )
    gate = GateResult(
        passed=True, metric="normalised_accuracy", margin=0.02, detail="passes",
        metrics={}, baseline=None, baseline_metrics={},
    )  # fmt: skip
    model = registry.model_version_register(run=run, adapter_dir=None, gate_result=gate)
    experiment = Experiment.objects.get()
    assert (experiment.canary, model.serving_name, model.status) == (
        model, "support-auto", "candidate")  # fmt: skip


# --- the monitor -------------------------------------------------------------------------


def test_the_monitor_raises_one_alert_and_offers_the_rollback(admin, as_user, settings):
    settings.FLYWHEEL_MONITOR_MIN_SAMPLE = 100
    settings.FLYWHEEL_MONITOR_BOUND = 0.05
    version = frozen_version(admin)
    old = registered(version, serving_name="old")
    registry.model_version_promote(model=old, user=admin, reason="first")
    new = registered(version, serving_name="new", baseline=old)
    registry.model_version_promote(model=new, user=admin, reason="second")
    ModelVersion.objects.filter(pk=new.pk).update(promoted_at=timezone.now() - timedelta(days=2))
    served("new", ["thumbs_down"] * 10 + [None] * 290, at=timezone.now() - timedelta(days=1))
    served("new", ["thumbs_down"] * 80 + [None] * 120)

    alert = experiments.monitor_check()
    assert alert is not None and alert.previous == old
    assert experiments.monitor_check() is None  # one open alert per model
    assert monitor_alerts_open() == [alert]
    page = as_user(admin).get(f"/training/models/{new.pk}/").content.decode()
    assert f"/training/alerts/{alert.pk}/rollback/" in page

    as_user(admin).post(f"/training/alerts/{alert.pk}/rollback/", {"reason": "users unhappy"})
    new.refresh_from_db()
    old.refresh_from_db()
    assert (new.status, old.status) == ("rolled_back", "promoted")
    assert MonitorAlert.objects.get().closed_at is not None
    assert route.route_for(key="k").model == "old"


def test_a_steady_model_raises_no_alert(admin, settings):
    settings.FLYWHEEL_MONITOR_MIN_SAMPLE = 100
    version = frozen_version(admin)
    model = registered(version, serving_name="steady")
    registry.model_version_promote(model=model, user=admin, reason="first")
    ModelVersion.objects.filter(pk=model.pk).update(promoted_at=timezone.now() - timedelta(days=2))
    served("steady", ["thumbs_down"] * 20 + [None] * 280, at=timezone.now() - timedelta(days=1))
    served("steady", ["thumbs_down"] * 22 + [None] * 278)
    assert experiments.monitor_check() is None


def test_the_route_is_cheap_in_process(candidate, admin, settings):
    """p99 of route_for while an experiment runs: one Redis GET, no query, no write."""
    import time

    settings.FLYWHEEL_ROUTE_CACHE_S = 600
    start(candidate, admin, share=0.5)
    route.route_for(key="warm-up")
    timings = []
    for i in range(2000):
        began = time.perf_counter()
        route.route_for(key=f"user-{i}")
        timings.append(time.perf_counter() - began)
    timings.sort()
    p50, p99 = timings[len(timings) // 2] * 1000, timings[int(0.99 * len(timings))] * 1000
    print(f"\n[route] p50 {p50:.3f} ms, p99 {p99:.3f} ms over 2000 calls")
    assert p99 < 20  # a shared 2-core machine; about 0.2 ms when idle
    assert Experiment.objects.get().version == 1  # nothing written
