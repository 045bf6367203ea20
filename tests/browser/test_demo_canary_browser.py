"""The canary the demo leaves running (issue 22 §1), as a newcomer sees it: on the model page,
running with the live comparison of its simulated users, then decided by the periodic check,
the page's own poll bringing the decision in. The traffic job is driven directly, each call
a minute of simulated users; the experiment starts an hour ago so that those minutes lie in
the past of the live server's clock."""

import io
from datetime import timedelta

import time_machine
from django.utils import timezone

from flywheel_site import redis as fw_redis
from flywheel_site.demo import canary
from flywheel_site.demo.jobs import demo_canary_traffic_run
from tests.support.browser import ARTIFACTS
from tests.support.training import frozen_version, registered
from training.models import Experiment
from training.registry import route
from training.registry.experiments import experiment_check

# Far more minutes than the demo's arms need; the test fails if it takes them all.
MINUTES = 20


def test_the_demos_canary_runs_on_the_model_page_and_decides(
    browser_page, live_server, admin, settings
):
    settings.FLYWHEEL_INGEST_RATE_LIMIT = 0
    route.cache_clear()
    fw_redis.client().delete(canary.KEY)
    candidate = registered(frozen_version(admin), serving_name="acme-support-v3")
    t0 = timezone.now().replace(second=0, microsecond=0) - timedelta(hours=1)

    def minute(n: int):
        return time_machine.travel(t0 + timedelta(minutes=n, seconds=30), tick=False)

    with time_machine.travel(t0, tick=False):
        experiment = canary.demo_canary_start(user=admin, stdout=io.StringIO())
    for n in range(3):
        with minute(n):
            demo_canary_traffic_run()

    page = browser_page(admin)
    page.goto(f"{live_server.url}/training/models/{candidate.pk}/")
    card = page.locator("#experiment")
    assert card.locator(".pill").inner_text() == "Running"
    assert "Canary minus control on bad_outcome" in card.inner_text()
    assert "Matured interactions\n240" in card.locator("#experiment-counts").inner_text()

    decided = None
    for n in range(3, MINUTES):
        with minute(n):
            demo_canary_traffic_run()
            verdict = experiment_check(experiment_id=experiment.pk)
        if verdict != "continue":
            decided = verdict
            break
    assert decided == "complete"
    # No reload: the running experiment's card polls itself every 5 s.
    page.locator("#experiment .pill.completed").wait_for(timeout=15_000)
    assert f"Decision: canary experiment #{experiment.pk} completed" in card.inner_text()
    assert Experiment.objects.get().state == Experiment.State.COMPLETED
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "demo-canary-decided.png"), full_page=True)
    fw_redis.client().delete(canary.KEY)
