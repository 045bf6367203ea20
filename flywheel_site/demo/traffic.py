"""Deterministic demo traffic for `manage.py load_demo`, and the demo accounts.

`generate` builds what a newcomer sees first in every screen: a few thousand interactions
of a fictional SaaS company ("Acme Cloud") over the past six weeks, as plain payloads in the
ingest API's shapes, and the feedback its users left. Everything comes from one
`random.Random(seed)` and is placed relative to a `reference` time, the end of the window,
so a seed and a reference give the same output byte for byte. The reference defaults to the
constant `REFERENCE`; `reference_before(now)` moves it forward by whole weeks, which moves
every timestamp by the same whole weeks and changes nothing else (the weekday and hour
patterns, and so every text, stay as they are). Any other reference gives other data under
the same interaction ids: the interaction ids depend on `n_interactions` alone.

Answers are assembled from per-topic sentence pools (JSON in `data/`) with slot values
(names, files, plans, numbers), not from whole canned answers: two answers on the same
topic share a skeleton but differ in enough sentences and identifiers that near-duplicate
detection (character 5-shingles, Jaccard 0.9) keeps them apart, while genuine repeats still
occur now and then, as they do in production.

Edits come in the three flavours curation must tell apart, measured as character similarity
`1 - Levenshtein(final, response) / max(len)` (the edit-band measure):
- typo fixes (> 0.95): the model's answer carried a misspelling, which the user fixed;
- substantial rewrites (0.3 to 0.9, checked for word similarity too): the user deleted and
  added sentences on the same topic; the useful preference pairs;
- complete rewrites (< 0.3): the user threw the answer away and wrote their own.

A few edits are toxic (an insult pasted into an otherwise in-band edit, so only the toxicity
filter can catch them) and a few texts carry fake personal data from the `PII_*` pools.

Both returned lists are in delivery order. A few interactions with feedback are delivered
late (moved to the end of the interaction list), so a loader that sends the two lists side
by side in proportional slices sends their feedback first; a few feedback events name
interactions that never arrive (`MISSING_ID`).

`demo_users_create` makes the demo accounts; later roles and groups belong there.

The pools, slot values and draft answers are in `flywheel_site.demo.content`, the edits in
`flywheel_site.demo.edits`; this module times the traffic, plans the feedback and assembles the
payloads.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from random import Random

from flywheel_site.demo import edits as demo_edits
from flywheel_site.demo.content import (
    BUILDERS,
    NEGATIVE_COMMENTS,
    NEW_MODEL,
    OLD_MODEL,
    PII_COMMENTS,
    PII_EDIT_LINES,
    POSITIVE_COMMENTS,
    Draft,
    fill,
    random_slots,
)

DEMO_SOURCE = "demo-app"
DEMO_TOKEN_NAME = "demo"  # noqa: S105 (a name, not a secret)
DEMO_TOKEN_SCOPES = ("ingest", "export", "metrics", "route")

WINDOW_DAYS = 42
ROLLOUT_DAYS = 21
# The end of the demo's window: a constant, so the demo's texts (and everything a test
# builds on them) are the same on every day and at every hour.
REFERENCE = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
WEEK = timedelta(weeks=1)
# The rare stratum (sql) is there so stratified sampling has a small group to protect.
TASK_WEIGHTS = {"code_help": 0.37, "summarisation": 0.27, "support": 0.34, "sql": 0.02}
TASK_TYPES = tuple(TASK_WEIGHTS)

INTERACTION_ID = "demo-i-{n:05d}"
FEEDBACK_ID = "demo-f-{n:05d}"
MISSING_ID = "demo-i-missing-{n:03d}"

FEEDBACK_RATE = 0.35
PII_RATE = 0.03
TOXIC_EDIT_RATE = 0.02
LATE_RATE = 0.01
ORPHAN_RATE = 0.005

# Fake, reserved or published test values only: example.* domains (RFC 2606), 555-01xx
# numbers (reserved for fiction in North America), Ofcom's drama range, card-network test
# numbers (Luhn-valid, never issued).
PII_PHONES = ("+1 415 555 0134", "+1 415 555 0199", "+1 (212) 555-0147", "+44 20 7946 0958")
PII_CARDS = ("4111 1111 1111 1111", "5555 5555 5555 4444", "4242 4242 4242 4242")
PII_EMAIL_DOMAINS = ("example.com", "example.org")

# Mild and obviously staged, so the demo shows the toxicity filter without showing anyone
# real abuse.
TOXIC_LINES = (
    "This is a stupid question, you idiot.",
    "Read the docs next time, you moron.",
    "Only an idiot would need this explained.",
    "What a dumb question. Figure it out yourself, idiot.",
    "Stop wasting my time with stupid questions, you clown.",
)


NAIVE_TIME = "{name} must be timezone-aware (for example datetime.now(UTC))"
BAD_COUNT = "n_interactions must be at least 1, got {n}"


# --- time and users ------------------------------------------------------------------

# Traffic by UTC hour: European mornings and American afternoons overlap mid-day.
HOURLY = (
    0.22, 0.18, 0.14, 0.12, 0.12, 0.16, 0.3, 0.55, 0.8, 0.95, 1.0, 1.0,
    0.95, 1.0, 1.0, 1.0, 0.95, 0.9, 0.8, 0.7, 0.58, 0.46, 0.36, 0.28,
)  # fmt: skip
WEEKDAY = (1.0, 1.0, 1.0, 0.97, 0.85, 0.38, 0.32)
LOCALES = ("en-US", "en-US", "en-GB", "en-US", "de-DE", "en-IN", "fr-FR", "en-CA")
SEGMENTS = (("free", 0.5), ("pro", 0.38), ("enterprise", 0.12))
APPS = {
    "code_help": ("acme-ide", "ide"),
    "summarisation": ("acme-docs", "web"),
    "support": ("acme-helpdesk", "helpdesk"),
    "sql": ("acme-analytics", "web"),
}
N_USERS = 420


@dataclass
class _User:
    user_id: str
    segment: str
    locale: str
    task: str
    weight: float


def _users(rng: Random) -> list[_User]:
    users = []
    for k in range(N_USERS):
        segment = rng.choices([s for s, _ in SEGMENTS], [w for _, w in SEGMENTS])[0]
        task = rng.choices(TASK_TYPES, list(TASK_WEIGHTS.values()))[0]
        # A few heavy users and a long tail, as in any product.
        weight = 1.0 / (k + 1) ** 0.75
        users.append(_User(f"acme-user-{k + 1:04d}", segment, rng.choice(LOCALES), task, weight))
    rng.shuffle(users)
    return users


def _timestamps(rng: Random, now: datetime, n: int) -> list[datetime]:
    start = now - timedelta(days=WINDOW_DAYS)
    span = (now - start).total_seconds() - 120
    out = []
    while len(out) < n:
        t = start + timedelta(seconds=rng.uniform(60, span))
        # Usage grew about 60% over the six weeks.
        growth = 0.75 + 0.45 * (t - start).total_seconds() / span
        weight = HOURLY[t.hour] * WEEKDAY[t.weekday()] * growth
        if rng.random() < weight / 1.2:
            out.append(t.replace(microsecond=0))
    return sorted(out)


def _model_for(rng: Random, t: datetime, now: datetime) -> str:
    age = (now - t).total_seconds() / 86400
    if age >= ROLLOUT_DAYS:
        return OLD_MODEL
    # Canary, then half, then nearly all traffic: one week each.
    share = 0.1 if age >= 14 else 0.5 if age >= 7 else 0.92
    return NEW_MODEL if rng.random() < share else OLD_MODEL


def _iso(t: datetime) -> str:
    return t.isoformat().replace("+00:00", "Z")


def _pii_value(rng: Random, slots: Mapping[str, str]) -> dict[str, str]:
    email = f"{slots['first']}.{slots['last']}@{rng.choice(PII_EMAIL_DOMAINS)}".lower()
    return {
        **slots,
        "email": email,
        "phone": rng.choice(PII_PHONES),
        "card": rng.choice(PII_CARDS),
    }


# --- feedback plans ------------------------------------------------------------------

# What a user does after a good or a bad answer, by task: support agents accept or edit
# drafts, developers copy code, readers of summaries rate them.
_GOOD = {
    "support": {"accepted": 30, "thumbs_up": 18, "copied": 8, "rating": 8, "comment": 4,
                "typo": 12, "substantial": 8},
    "code_help": {"copied": 34, "thumbs_up": 26, "accepted": 6, "rating": 8, "comment": 5,
                  "typo": 5, "substantial": 4},
    "summarisation": {"thumbs_up": 26, "copied": 14, "rating": 18, "accepted": 6, "comment": 6,
                      "typo": 10, "substantial": 6},
    "sql": {"copied": 35, "thumbs_up": 25, "rating": 10, "typo": 4, "substantial": 6},
}  # fmt: skip
_BAD = {
    "support": {"thumbs_down": 18, "regenerated": 10, "rating": 6, "comment": 10,
                "substantial": 34, "complete": 14, "typo": 3},
    "code_help": {"thumbs_down": 28, "regenerated": 26, "rating": 6, "comment": 12,
                  "substantial": 16, "complete": 8, "typo": 1},
    "summarisation": {"thumbs_down": 22, "regenerated": 14, "rating": 14, "comment": 12,
                      "substantial": 26, "complete": 8, "typo": 2},
    "sql": {"thumbs_down": 25, "regenerated": 25, "comment": 15, "substantial": 20,
            "complete": 10},
}  # fmt: skip
_FOLLOW_UP = {
    "thumbs_up": ("copied", 0.3),
    "thumbs_down": ("comment", 0.35),
    "regenerated": ("thumbs_down", 0.25),
    "typo": ("accepted", 0.3),
    "substantial": ("comment", 0.2),
    "rating": ("comment", 0.15),
}
# Seconds between the answer and the user's action (low, high).
_DELAY = {
    "copied": (4, 240),
    "accepted": (10, 600),
    "thumbs_up": (8, 900),
    "thumbs_down": (8, 900),
    "rating": (30, 1800),
    "regenerated": (3, 90),
    "comment": (40, 2400),
    "edited": (60, 1500),
    "corrected": (120, 3600),
}


def _p_bad(task: str, model: str) -> float:
    base = 0.3 if model == OLD_MODEL else 0.19
    return base + {"sql": 0.1, "summarisation": -0.04}.get(task, 0.0)


@dataclass
class _Event:
    kind: str
    at: datetime
    value: int | str | None = None
    final_text: str | None = None


def _plan_feedback(
    rng: Random, draft: Draft, model: str, t: datetime, now: datetime, pii: dict
) -> list[_Event]:
    bad = rng.random() < _p_bad(draft.task, model)
    # Unhappy users speak up a little more often than happy ones.
    if rng.random() >= (FEEDBACK_RATE + 0.06 if bad else FEEDBACK_RATE - 0.02):
        return []
    table = (_BAD if bad else _GOOD)[draft.task]
    action = rng.choices(list(table), list(table.values()))[0]
    actions = [action]
    follow = _FOLLOW_UP.get(action)
    if follow and rng.random() < follow[1]:
        actions.append(follow[0])
    events = []
    at = t
    for act in actions:
        kind = act
        value: int | str | None = None
        final_text = None
        if act == "rating":
            value = rng.choice((4, 5, 5, 4, 3)) if not bad else rng.choice((1, 2, 2, 1, 3))
        elif act == "comment":
            if rng.random() < PII_RATE:
                value = fill(rng.choice(PII_COMMENTS), pii)
            elif bad:
                value = rng.choice(draft.complaints + list(NEGATIVE_COMMENTS))
            else:
                value = rng.choice(POSITIVE_COMMENTS)
        elif act == "typo":
            original = draft.response
            if not demo_edits.typo(rng, draft):
                kind = "thumbs_up" if not bad else "thumbs_down"
            else:
                kind, final_text = "edited", original
        elif act == "substantial":
            kind = "edited" if rng.random() < 0.7 else "corrected"
            final_text = demo_edits.substantial(rng, draft)
        elif act == "complete":
            kind = "corrected"
            final_text = demo_edits.complete(rng, draft)
        if act in ("substantial", "complete") and rng.random() < PII_RATE:
            final_text = f"{final_text}\n\n{fill(rng.choice(PII_EDIT_LINES), pii)}"
        low, high = _DELAY[kind]
        at = at + timedelta(seconds=rng.randint(low, high))
        if at >= now:
            # The user hasn't got round to it yet.
            break
        events.append(_Event(kind, at, value, final_text))
    return events


def _toxify(rng: Random, draft: Draft, event: _Event) -> None:
    line = rng.choice(TOXIC_LINES)
    event.kind = "edited"
    event.final_text = demo_edits.substantial(rng, draft, lead=line)


# --- assembling payloads -------------------------------------------------------------


def _usage(rng: Random, messages: list[dict], response: str) -> dict:
    # About four characters per token for English and code, plus a few per message.
    prompt = sum(len(m["content"]) for m in messages) / 4 + 4 * len(messages)
    prompt_tokens = round(prompt * rng.uniform(0.95, 1.08))
    completion_tokens = max(1, round(len(response) / 4 * rng.uniform(0.95, 1.08)))
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def _latency(rng: Random, model: str, usage: dict) -> int:
    tokens_per_s = 42 if model == OLD_MODEL else 68
    first_token = rng.lognormvariate(math.log(420 if model == OLD_MODEL else 300), 0.3)
    ms = first_token + usage["completion_tokens"] / tokens_per_s * 1000
    ms *= rng.lognormvariate(0, 0.12)
    if rng.random() < 0.02:
        ms *= rng.uniform(3, 6)  # the slow tail: cold caches, long queues
    return round(ms)


def _check_aware(name: str, value: datetime) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(NAIVE_TIME.format(name=name))


def reference_before(now: datetime) -> datetime:
    """The latest `REFERENCE` plus whole weeks that is not after `now` (earlier ones for a
    `now` before `REFERENCE`): the demo's window ends within the week before `now`, and its
    data is the same as at `REFERENCE` but for the dates."""
    _check_aware("now", now)
    return REFERENCE + (now - REFERENCE) // WEEK * WEEK


def shifted(data: tuple[list[dict], list[dict]], shift: timedelta):
    """`generate`'s output with every timestamp moved by `shift`, nothing else changed."""

    def move(payload: dict) -> dict:
        at = datetime.fromisoformat(payload["occurred_at"]) + shift
        return {**payload, "occurred_at": _iso(at.astimezone(UTC))}

    return tuple([move(p) for p in payloads] for payloads in data)


def generate(
    *, seed: int = 7, reference: datetime = REFERENCE, n_interactions: int = 3000
) -> tuple[list[dict], list[dict]]:
    """Demo interactions and feedback as ingest payloads, in delivery order, in the six
    weeks before `reference` (nothing happens at or after it)."""
    _check_aware("reference", reference)
    if n_interactions < 1:
        raise ValueError(BAD_COUNT.format(n=n_interactions))
    # Hour-of-day and weekday patterns are in UTC, whatever zone the reference came in.
    now = reference.astimezone(UTC)
    rng = Random(seed)
    users = _users(rng)
    by_task = {task: [u for u in users if u.task == task] or users for task in TASK_TYPES}
    times = _timestamps(rng, now, n_interactions)
    sessions: dict[tuple[str, str], str] = {}
    interactions: list[dict] = []
    plans: list[list[_Event]] = []
    drafts: list[Draft] = []
    for n, t in enumerate(times, 1):
        task = rng.choices(TASK_TYPES, list(TASK_WEIGHTS.values()))[0]
        pool = by_task[task]
        user = rng.choices(pool, [u.weight for u in pool])[0]
        model = _model_for(rng, t, now)
        slots = random_slots(rng)
        pii = _pii_value(rng, slots)
        draft = BUILDERS[task](rng, slots, model, pii if rng.random() < PII_RATE else None)
        events = _plan_feedback(rng, draft, model, t, now, pii)
        app, channel = APPS[task]
        session_key = (user.user_id, t.date().isoformat())
        sessions.setdefault(session_key, f"demo-s-{len(sessions) + 1:05d}")
        usage = _usage(rng, draft.messages, draft.response)
        interactions.append(
            {
                "event_id": INTERACTION_ID.format(n=n),
                "occurred_at": _iso(t),
                "model": model,
                "task_type": task,
                "messages": draft.messages,
                "response": draft.response,
                "usage": usage,
                "latency_ms": _latency(rng, model, usage),
                "user_id": user.user_id,
                "session_id": sessions[session_key],
                "segment": user.segment,
                "metadata": {
                    "app": app,
                    "channel": channel,
                    "app_version": "4.12.0" if (now - t).days < 18 else "4.11.2",
                    "locale": user.locale,
                    "prompt_version": f"{task}-v{4 if model == NEW_MODEL else 3}",
                    "topic": draft.topic,
                },
            }
        )
        plans.append(events)
        drafts.append(draft)

    _make_toxic(rng, plans, drafts)
    feedback = _feedback_payloads(rng, interactions, plans, now)
    return _deliver_late(rng, interactions, plans), feedback


def _make_toxic(rng: Random, plans: list[list[_Event]], drafts: list[Draft]) -> None:
    edits = [
        (i, e)
        for i, events in enumerate(plans)
        for e in events
        if e.kind in ("edited", "corrected")
    ]
    if not edits:
        return
    # A fixed share rather than a coin per edit, so even a small demo shows some.
    for i, event in rng.sample(edits, k=max(1, round(len(edits) * TOXIC_EDIT_RATE))):
        _toxify(rng, drafts[i], event)


def _feedback_payloads(
    rng: Random, interactions: list[dict], plans: list[list[_Event]], now: datetime
) -> list[dict]:
    rows: list[tuple[datetime, dict]] = []
    for interaction, events in zip(interactions, plans, strict=True):
        for event in events:
            rows.append((event.at, _feedback_dict(interaction, event)))
    n_orphans = max(2, round(len(rows) * ORPHAN_RATE))
    for k in range(1, n_orphans + 1):
        at = now - timedelta(seconds=rng.randint(600, WINDOW_DAYS * 86400 - 600))
        orphan = _Event(rng.choice(("thumbs_up", "thumbs_down", "copied")), at)
        target = {
            "event_id": MISSING_ID.format(n=k),
            "user_id": rng.choice(interactions)["user_id"],
        }
        rows.append((at, _feedback_dict(target, orphan)))
    rows.sort(key=lambda row: row[0])
    out = []
    for n, (_, payload) in enumerate(rows, 1):
        out.append({"event_id": FEEDBACK_ID.format(n=n), **payload})
    return out


def _feedback_dict(interaction: dict, event: _Event) -> dict:
    payload = {
        "interaction_event_id": interaction["event_id"],
        "kind": event.kind,
        "occurred_at": _iso(event.at),
        "user_id": interaction["user_id"],
    }
    if event.value is not None:
        payload["value"] = event.value
    if event.final_text is not None:
        payload["final_text"] = event.final_text
    return payload


def _deliver_late(rng: Random, interactions: list[dict], plans: list[list[_Event]]) -> list[dict]:
    """Move a few interactions that have feedback to the end of the list: a logging
    pipeline that flushed late, so their feedback is stored before them."""
    cutoff = int(len(interactions) * 0.8)
    eligible = [i for i in range(cutoff) if plans[i]]
    if not eligible:
        return interactions
    late = set(
        rng.sample(eligible, k=max(1, min(len(eligible), round(len(interactions) * LATE_RATE))))
    )
    return [x for i, x in enumerate(interactions) if i not in late] + [
        interactions[i] for i in sorted(late)
    ]
