"""The whole loop after the gate, driven as a serving application would drive it: HTTP calls
to a live server (route, batch ingest) by `manage.py simulate_traffic`, the decision taken
by the periodic trigger job on a real RQ worker, against real PostgreSQL and Redis, and the
decision's signed webhook delivered by a real worker to a local receiver that verifies it
with the `standardwebhooks` package."""

import io

import django_rq
import pytest
from django.core.management import call_command
from scipy.stats import binomtest

from curation.models import Interaction
from curation.services import api_token_create
from flywheel_site.demo.simulate import Client, wait_for_decision
from tests.support.jobs import run_jobs
from tests.support.training import frozen_version, registered
from tests.support.webhooks import LOOPBACK, Receiver
from training.models import Experiment, ModelVersion
from training.registry import route
from training.registry import services as registry
from training.runs.jobs import trigger_check
from training.webhooks import services as webhooks

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.slow]
SHARE = 0.3
KEYS = 500


@pytest.fixture
def receiver(settings):
    """A local receiver subscribed to the experiment's outcome (loopback allowed here)."""
    settings.FLYWHEEL_WEBHOOK_ALLOWED_NETWORKS = LOOPBACK
    r = Receiver()
    endpoint = webhooks.webhook_endpoint_create(
        url=r.url(),
        event_types=[webhooks.EXPERIMENT_ROLLED_BACK, webhooks.EXPERIMENT_COMPLETED],
    )
    r.secret = endpoint.secret
    yield r
    r.close()


def delivered(receiver) -> list[dict]:
    run_jobs("webhooks")
    assert all(request["verified"] for request in receiver.requests), receiver.requests
    return [request["payload"] for request in receiver.requests]


@pytest.fixture
def canary(admin, settings, receiver):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    settings.FLYWHEEL_CANARY_MARGIN = 0.1
    # Decided at once after the traffic; no holdback, so every key is asked about below.
    settings.FLYWHEEL_CANARY_FEEDBACK_WINDOW_S = 0
    settings.FLYWHEEL_HOLDBACK_SHARE = 0
    route.cache_clear()
    candidate = registered(frozen_version(admin), serving_name="support-v2")
    experiment = registry.model_version_canary_start(
        model=candidate, user=admin, reason="passed the gate", share=SHARE, min_sample=150
    )
    _, raw = api_token_create(source_name="shop", name="app", scopes=["route", "ingest"])
    yield candidate, experiment, raw
    route.cache_clear()


def simulate(live_server, raw, *, bad_control, bad_canary, seed) -> str:
    out = io.StringIO()
    call_command(
        "simulate_traffic", url=live_server.url, route_token=raw, ingest_token=raw, keys=KEYS,
        per_key=2, bad_control=bad_control, bad_canary=bad_canary, seed=seed, stdout=out,
    )  # fmt: skip
    return out.getvalue()


def run_the_trigger_job():
    """The periodic job, as rqcron enqueues it, on a real worker (in process: no fork)."""
    job = django_rq.get_queue("default").enqueue(trigger_check)
    run_jobs("default")
    job.refresh()
    assert job.is_finished, job.latest_result()
    return job.return_value()


def arms_of(client: Client, keys: list[str]) -> dict[str, str]:
    return {key: client.route(key)["model"] for key in keys}


def test_a_worse_canary_rolls_back_by_itself_and_the_route_returns_control_only(
    live_server, canary, receiver
):
    candidate, experiment, raw = canary
    output = simulate(live_server, raw, bad_control=0.05, bad_canary=0.4, seed=3)

    # The split: within the binomial interval of the share; no key changed arm.
    line = output.strip().splitlines()[-1]
    on_canary = int(line.split(": ")[1].split(" of ")[0])
    low, high = binomtest(on_canary, KEYS, SHARE).proportion_ci(confidence_level=0.999)
    assert low <= SHARE <= high, line
    assert "; 0 keys changed arm" in line
    assert Interaction.objects.filter(model="support-v2").count() == 2 * on_canary

    result = run_the_trigger_job()
    assert result["experiments"] == {experiment.pk: "roll_back"}
    experiment.refresh_from_db()
    candidate.refresh_from_db()
    assert (experiment.state, candidate.status) == ("rolled_back", "rolled_back")
    event = candidate.changes.get(action="rolled_back")
    assert event.evidence["interval"][0] > 0
    assert event.evidence["n"]["canary"] == 2 * on_canary

    client = Client(live_server.url, route_token=raw, ingest_token=raw, timeout=10)
    summary = {"models": {"canary": "support-v2"}}
    assert wait_for_decision(client, summary=summary, seconds=10, poll_s=0.1) == (
        "rolled back or stopped"
    )
    assert set(arms_of(client, [f"anyone-{i}" for i in range(200)]).values()) == {"base"}
    # Run again: nothing more happens.
    assert run_the_trigger_job()["experiments"] == {}
    assert candidate.changes.filter(action="rolled_back").count() == 1

    # The signed webhook reached the receiver, once, and its signature verified.
    (payload,) = delivered(receiver)
    assert payload["type"] == webhooks.EXPERIMENT_ROLLED_BACK
    assert payload["data"]["experiment"] == experiment.pk


def test_equal_rates_complete_the_rollout(live_server, canary, receiver):
    candidate, experiment, raw = canary
    simulate(live_server, raw, bad_control=0.05, bad_canary=0.05, seed=4)

    result = run_the_trigger_job()

    assert result["experiments"] == {experiment.pk: "complete"}
    candidate.refresh_from_db()
    assert candidate.status == "promoted"
    assert ModelVersion.objects.get(status="promoted") == candidate
    client = Client(live_server.url, route_token=raw, ingest_token=raw, timeout=10)
    summary = {"models": {"canary": "support-v2"}}
    assert wait_for_decision(client, summary=summary, seconds=10, poll_s=0.1) == "completed"
    assert set(arms_of(client, [f"anyone-{i}" for i in range(200)]).values()) == {"support-v2"}
    assert Experiment.objects.get().state == "completed"
    (payload,) = delivered(receiver)
    assert payload["type"] == webhooks.EXPERIMENT_COMPLETED
    assert payload["data"]["experiment"] == experiment.pk
