"""The canary's decision through the live stack, on clustered traffic: `manage.py
simulate_traffic` calls a live server over HTTP (route, batch ingest) with users whose own
bad-outcome rates are Beta-distributed (intra-user correlation 0.33), and the periodic
trigger job decides on a real RQ worker against real PostgreSQL and Redis."""

import io

import django_rq
import pytest
from django.core.management import call_command
from rq import SimpleWorker

from curation.services import api_token_create
from tests.support.training import frozen_version, registered
from training.models import Experiment
from training.registry import route
from training.registry import services as registry
from training.runs.jobs import trigger_check

# reset_sequences: the split hashes each key under the experiment's id, so with ids fixed a seed
# always draws the same split (the SRM check never sees a different draw from run to run).
pytestmark = [
    pytest.mark.slow,
    pytest.mark.django_db(transaction=True, reset_sequences=True),
    pytest.mark.usefixtures("export_dir"),
]
USERS, PER_USER, CORRELATION = 240, 4, 0.33


@pytest.fixture
def canary(admin, settings):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = 0
    settings.FLYWHEEL_HOLDBACK_SHARE = 0
    route.cache_clear()
    candidate = registered(frozen_version(admin), serving_name="support-v2")
    experiment = registry.model_version_canary_start(
        model=candidate, user=admin, reason="passed the gate", share=0.5, min_sample=100_000
    )
    _, raw = api_token_create(source_name="shop", name="app", scopes=["route", "ingest"])
    yield experiment, raw
    route.cache_clear()


def simulate(live_server, raw, *, seed, bad_canary=0.1, keys=USERS, per_key=PER_USER,
             **extra) -> str:  # fmt: skip
    out = io.StringIO()
    call_command(
        "simulate_traffic", url=live_server.url, route_token=raw, ingest_token=raw,
        keys=keys, per_key=per_key, correlation=CORRELATION, bad_control=0.1,
        bad_canary=bad_canary, seed=seed, stdout=out, **extra,
    )  # fmt: skip
    return out.getvalue()


def decide(experiment) -> tuple[str, Experiment]:
    queue = django_rq.get_queue("default")
    job = queue.enqueue(trigger_check)
    SimpleWorker([queue], connection=queue.connection).work(burst=True)
    job.refresh()
    assert job.is_finished, job.latest_result()
    return job.return_value()["experiments"].get(experiment.pk), Experiment.objects.get(
        pk=experiment.pk
    )


def test_clustered_equal_arms_do_not_roll_back(live_server, canary, admin, as_user):
    experiment, raw = canary
    simulate(live_server, raw, seed=11)

    verdict, experiment = decide(experiment)

    assert verdict == "continue" and experiment.state == "running"
    evidence = experiment.last_evidence
    assert sum(evidence["keys"].values()) == USERS
    assert evidence["n"]["control"] + evidence["n"]["canary"] == USERS * PER_USER
    assert evidence["h0_low"] <= evidence["interval"][0]
    page = as_user(admin).get(f"/training/models/{experiment.canary_id}/").content.decode()
    assert f"roll-back bound {evidence['h0_low']:.4f}" in page


def test_a_clustered_worse_canary_rolls_back(live_server, canary):
    experiment, raw = canary
    simulate(live_server, raw, seed=12, bad_canary=0.6)

    verdict, experiment = decide(experiment)

    assert verdict == "roll_back" and experiment.state == "rolled_back"
    assert experiment.last_evidence["interval"][0] > 0


def test_traffic_bypassing_the_route_is_non_compliance_and_changes_nothing(live_server, canary):
    experiment, raw = canary
    simulate(live_server, raw, seed=13, bad_canary=0.6)
    keyed_before = _keyed(experiment)
    # Every bypassing interaction answered by the control and bad: pooled into the control,
    # it would hide the canary's harm.
    simulate(live_server, raw, seed=14, bad_canary=1.0, keys=1, per_key=1, bypass=2000)

    keyed_after = _keyed(experiment)
    verdict, experiment = decide(experiment)

    assert keyed_after["counts"]["no_key"] == 2000
    # Only the one keyed user of the second run joined the comparison.
    assert sum(keyed_after["n"].values()) == sum(keyed_before["n"].values()) + 1
    assert verdict == "roll_back"


def test_dropping_the_canarys_keys_pauses_the_experiment(live_server, canary):
    experiment, raw = canary
    # Four in five of the canary's users never reach Flywheel: about 24 canary keys against
    # 120 control keys, a sequential p-value far below FLYWHEEL_CANARY_SRM_P whatever the
    # keys drawn.
    simulate(live_server, raw, seed=15, bad_canary=0.6, drop_canary=0.8)

    verdict, experiment = decide(experiment)

    assert verdict == "paused" and experiment.state == "running"
    assert "sample-ratio mismatch" in experiment.paused_reason
    assert experiment.last_evidence["srm"]["mismatch"] is True


def _keyed(experiment):
    from django.utils import timezone

    from training.registry import selectors as selectors_canary

    return selectors_canary.experiment_keyed(
        experiment=Experiment.objects.get(pk=experiment.pk), now=timezone.now()
    )
