"""What `manage.py simulate_traffic` does: drive a canary experiment the way a serving
application would, over HTTP only.

For each of --users (--keys) users: ask GET /api/v1/route which model serves them, "serve"
--per-key interactions tagged with the returned serving name and the user id as the route
key, and send feedback on a share of them (--bad-control / --bad-canary: the arm's mean
chance of a bad outcome, sent as thumbs_down or regenerated), through POST /api/v1/batch.
With --correlation each user has their own rate, Beta-distributed around the arm's mean with
that intra-user correlation (real users are not independent draws). --bypass sends that many
more interactions answered by the control with no route key (an app path that never asked
the route); --drop-canary drops that share of the canary's users (a client losing them: a
sample-ratio mismatch). With --wait it then polls the route until the
experiment has ended and prints the decision. It touches no database: run it against the
demo (`make run`) or any deployment, with a token holding the route scope and one holding
the ingest scope (one token may hold both).

    python manage.py simulate_traffic --url http://127.0.0.1:8000 \\
        --route-token fw_... --ingest-token fw_... --keys 2000 --bad-canary 0.3 --wait 900
"""

from __future__ import annotations

import json
import random
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from django.core.management.base import CommandError

BATCH = 500
BAD_KINDS = ("thumbs_down", "regenerated")


class Client:
    def __init__(self, url: str, *, route_token: str, ingest_token: str, timeout: float):
        self.url = url.rstrip("/")
        self.route_token = route_token
        self.ingest_token = ingest_token
        self.timeout = timeout

    def _call(self, method: str, path: str, token: str, body: dict | None = None) -> dict:
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(  # noqa: S310 (an http(s) URL the operator gives)
            self.url + path,
            data=data,
            method=method,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        for attempt in range(5):
            try:
                with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                    return json.load(response)
            except urllib.error.HTTPError as error:
                if error.code == 429 and attempt < 4:
                    time.sleep(int(error.headers.get("Retry-After", "1")))
                    continue
                detail = f"{method} {path}: {error.code} {error.read()[:300]!r}"
                raise CommandError(detail) from None
        raise CommandError(f"{method} {path}: rate limited")

    def route(self, key: str) -> dict:
        query = urllib.parse.urlencode({"key": key})
        return self._call("GET", f"/api/v1/route?{query}", self.route_token)

    def batch(self, *, interactions=(), feedback=()) -> dict:
        body = {"interactions": list(interactions), "feedback": list(feedback)}
        result = self._call("POST", "/api/v1/batch", self.ingest_token, body)
        rejected = [r for r in result.get("results", []) if r.get("status") == "rejected"]
        if rejected:
            raise CommandError(f"the API rejected items: {rejected[:3]}")
        return result


SIMULATE_OPTIONS = (
    "keys", "per_key", "bad_control", "bad_canary", "seed", "prefix", "correlation", "bypass",
    "drop_canary",
)  # fmt: skip


def _user_rate(rng: random.Random, mean: float, correlation: float) -> float:
    """A user's own bad-outcome rate: Beta with this mean and intra-user correlation
    1 / (a + b + 1); the mean itself when the correlation is 0."""
    if correlation <= 0 or mean <= 0 or mean >= 1:
        return mean
    total = 1 / correlation - 1
    return rng.betavariate(mean * total, (1 - mean) * total)


# Stays whole: one pass of route, ingest and feedback per key, counted as it goes; the
# counts and the batches share the loop.
def simulate(
    client: Client,
    *,
    keys: int,
    per_key: int,
    bad_control: float,
    bad_canary: float,
    seed: int,
    prefix: str = "",
    correlation: float = 0.0,
    bypass: int = 0,
    drop_canary: float = 0.0,
) -> dict:
    """Returns per-arm counts, each key's arm, the experiment id and serving names seen."""
    rng = random.Random(seed)
    prefix = prefix or uuid.uuid4().hex[:8]
    bad = {"control": bad_control, "canary": bad_canary}
    arms: dict[str, dict] = {}
    key_arm: dict[str, str] = {}
    changed = 0
    experiment = None
    models: dict[str, str] = {}
    interactions, feedback = [], []
    dropped = 0
    for k in range(keys):
        key = f"{prefix}-user-{k}"
        rate: dict[str, float] = {}
        for i in range(per_key):
            answer = client.route(key)
            arm, model = answer["arm"], answer["model"]
            if arm == "canary" and i == 0 and rng.random() < drop_canary:
                dropped += 1
                break
            if arm not in rate:
                rate[arm] = _user_rate(rng, bad.get(arm, bad["control"]), correlation)
            experiment = experiment or answer["experiment"]
            models[arm] = model
            if key_arm.setdefault(key, arm) != arm:
                changed += 1
            stats = arms.setdefault(arm, {"model": model, "interactions": 0, "bad": 0})
            stats["interactions"] += 1
            event_id = f"{prefix}-{k}-{i}"
            interactions.append(
                {
                    "event_id": event_id,
                    "model": model,
                    "messages": [{"role": "user", "content": f"question number {k} {i}"}],
                    "response": f"answer number {k} {i}",
                    "session_id": key,
                    "user_id": key,
                }
            )
            if rng.random() < rate[arm]:
                stats["bad"] += 1
                feedback.append(
                    {
                        "event_id": f"{event_id}-fb",
                        "interaction_event_id": event_id,
                        "kind": rng.choice(BAD_KINDS),
                    }
                )
            if len(interactions) >= BATCH:
                client.batch(interactions=interactions)
                interactions = []
    probe = 0
    while bypass and "control" not in models and probe < 100:
        # The control's serving name, as the bypassing path would hard-code it.
        answer = client.route(f"{prefix}-probe-{probe}")
        models.setdefault(answer["arm"], answer["model"])
        probe += 1
    for b in range(bypass):
        event_id = f"{prefix}-bypass-{b}"
        interactions.append(
            {
                "event_id": event_id,
                "model": models.get("control", ""),
                "messages": [{"role": "user", "content": f"batch question {b}"}],
                "response": f"batch answer {b}",
            }
        )
        if rng.random() < bad["canary"]:
            feedback.append({"event_id": f"{event_id}-fb", "interaction_event_id": event_id,
                             "kind": rng.choice(BAD_KINDS)})  # fmt: skip
        if len(interactions) >= BATCH:
            client.batch(interactions=interactions)
            interactions = []
    if interactions:
        client.batch(interactions=interactions)
    for start in range(0, len(feedback), BATCH):
        client.batch(feedback=feedback[start : start + BATCH])
    return {
        "arms": arms,
        "experiment": experiment,
        "models": models,
        "key_arm": key_arm,
        "canary_keys": sum(arm == "canary" for arm in key_arm.values()),
        "changed": changed,
        "dropped": dropped,
    }


def wait_for_decision(client: Client, *, summary: dict, seconds: float, poll_s: float) -> str:
    """Poll the route until the experiment is over: `completed` when the canary now serves
    everyone, `rolled back or stopped` when the control does, `undecided` on timeout."""
    deadline = time.monotonic() + seconds
    canary = summary["models"].get("canary")
    while time.monotonic() < deadline:
        answer = client.route("simulate-traffic-probe")
        if answer["experiment"] is None:
            return "completed" if answer["model"] == canary else "rolled back or stopped"
        time.sleep(poll_s)
    return "undecided"
