"""The canary the demo leaves running, and the simulated users who decide it.

When the demo's training cycles are done, the last candidate that passed the gate is not
promoted directly: it starts a canary experiment against the current model (`demo_canary_start`),
and a periodic job (`flywheel_site.cron`, every minute) sends a minute of simulated traffic
for the demo source through the real ingest service (`demo_canary_traffic`): returning users
asking the route which model serves them, answers tagged with that model, and feedback on the
bad ones. The canary's users see fewer bad answers than the control's, so the experiment's
always-valid test completes it within minutes of traffic; the model page shows the live
comparison move and the decision when the periodic check takes it.

Bounded and off outside the demo: the traffic runs only while a Redis key set by the demo
exists (it expires after `HOURS`) and the experiment it names is running; the experiment's own
maximum duration is the same, so an undecided one is stopped then. Without the key the job
reads one key and returns.
"""

from __future__ import annotations

import contextlib
import json
import random
from datetime import timedelta

import redis
from django.utils import timezone

from curation.models import Source
from curation.services import batch_ingest
from flywheel_site import redis as fw_redis
from flywheel_site.demo import traffic
from training.errors import TrainingError
from training.models import Experiment, ModelVersion
from training.registry import route
from training.registry import services as registry

KEY = "flywheel:demo:canary"
HOURS = 2
# Half the keys each, a small minimum sample and feedback counted a minute after the answer
# (the simulated users answer at once): a decision after a few minutes of traffic.
EXPERIMENT = {
    "share": 0.5,
    "min_sample": 150,
    "max_duration_s": HOURS * 3600,
    "feedback_window_s": 60,
}
# Each minute: this many of the demo's returning users ask twice.
USERS_PER_MINUTE = 40
ASKS_PER_USER = 2
USER_POOL = 400
# Chance of a bad outcome (thumbs down or regenerate) per answer, by arm.
BAD = {route.CONTROL: 0.30, route.CANARY: 0.12}
BAD_KINDS = ("thumbs_down", "regenerated")

REASON = "passes the paired gate on held-out gold (demo: canary started by the admin)"
STARTED = (
    "{model} is the canary against {control}: simulated users arrive every minute for up to "
    "{hours} hours (the cron process sends them) and decide it within minutes; watch its "
    "model page."
)
NOT_STARTED = "No canary: {reason}"
NO_CANDIDATE = "no candidate passed the gate."


def demo_canary_candidate() -> ModelVersion | None:
    """The newest candidate that passed the gate against the current model."""
    return (
        ModelVersion.objects.filter(status=ModelVersion.Status.CANDIDATE, gate_passed=True)
        .order_by("-pk")
        .first()
    )


def demo_canary_start(*, user, stdout) -> Experiment | None:
    """Start the demo's canary on `demo_canary_candidate()` and its simulated traffic;
    None (and why, on `stdout`) when there is no candidate or the registry refuses it."""
    model = demo_canary_candidate()
    if model is None:
        stdout.write(NOT_STARTED.format(reason=NO_CANDIDATE))
        return None
    try:
        experiment = registry.model_version_canary_start(
            model=model, user=user, reason=REASON, **EXPERIMENT
        )
    except TrainingError as error:
        stdout.write(NOT_STARTED.format(reason=error.message))
        return None
    with contextlib.suppress(redis.RedisError):
        fw_redis.client().set(KEY, json.dumps({"experiment": experiment.pk}), ex=HOURS * 3600)
    stdout.write(STARTED.format(model=model, control=experiment.control_serving_name, hours=HOURS))
    return experiment


def _running() -> Experiment | None:
    try:
        raw = fw_redis.client().get(KEY)
    except redis.RedisError:
        return None
    if not raw:
        return None
    experiment = Experiment.objects.filter(pk=json.loads(raw)["experiment"]).first()
    if experiment is None or experiment.state != Experiment.State.RUNNING:
        # Decided, stopped or gone: the simulated users leave with it.
        with contextlib.suppress(redis.RedisError):
            fw_redis.client().delete(KEY)
        return None
    return experiment


def demo_canary_traffic() -> dict | None:
    """One minute of simulated traffic for the demo's running canary, counted per arm;
    None when there is none to send (module docstring). Idempotent within a minute: the
    event ids are the minute's, so a retried job stores nothing twice."""
    experiment = _running()
    if experiment is None:
        return None
    now = timezone.now()
    minute = int(now.timestamp() // 60)
    rng = random.Random(minute)
    texts, _ = traffic.generate(
        seed=minute, reference=now, n_interactions=USERS_PER_MINUTE * ASKS_PER_USER
    )
    interactions, feedback = [], []
    counts = {route.CONTROL: 0, route.CANARY: 0}
    for n, text in enumerate(texts):
        user = f"demo-canary-user-{(minute * USERS_PER_MINUTE + n // ASKS_PER_USER) % USER_POOL}"
        served = route.route_for(key=user)
        event_id = f"demo-canary-{experiment.pk}-{minute}-{n}"
        interactions.append(
            {
                **text,
                "event_id": event_id,
                "occurred_at": (now - timedelta(seconds=ASKS_PER_USER - n % ASKS_PER_USER))
                .isoformat()
                .replace("+00:00", "Z"),
                "model": served.model,
                "user_id": user,
                "session_id": user,
            }
        )
        counts[served.arm] = counts.get(served.arm, 0) + 1
        if rng.random() < BAD.get(served.arm, BAD[route.CONTROL]):
            kind = rng.choice(BAD_KINDS)
            feedback.append({"event_id": f"{event_id}-fb", "interaction_event_id": event_id,
                             "kind": kind})  # fmt: skip
    source, _ = Source.objects.get_or_create(name=traffic.DEMO_SOURCE)
    batch_ingest(source=source, interactions=interactions, feedback=feedback, edits=[])
    return {"experiment": experiment.pk, "arms": counts, "bad": len(feedback)}
