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

Answers are assembled from per-topic sentence pools (JSON in `demo_data/`) with slot values
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
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from random import Random
from typing import Any

from curation.filters import edit_similarities

DEMO_SOURCE = "demo-app"
DEMO_TOKEN_NAME = "demo"  # noqa: S105 (a name, not a secret)
DEMO_TOKEN_SCOPES = ("ingest", "export")
# The curation policy the demo's data and scripted reviews were designed against. A
# database built by migrations starts at policy v1 with min_per_stratum 20 (the default
# when v1 was written); one emptied by a test's flush gets today's default (5) instead, and
# the demo then sampled other candidates. The demo pins what it needs, so it samples the
# same candidates either way.
DEMO_POLICY = {"min_per_stratum": 20}
DEMO_POLICY_NOTE = "The demo's policy (load_demo)."

WINDOW_DAYS = 42
ROLLOUT_DAYS = 21
# The end of the demo's window: a constant, so the demo's texts (and everything a test
# builds on them) are the same on every day and at every hour.
REFERENCE = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
WEEK = timedelta(weeks=1)
OLD_MODEL = "acme-chat-2025-09"
NEW_MODEL = "acme-chat-2025-11"
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

TYPO_MIN = 0.95
BAND_LOW, BAND_HIGH = 0.3, 0.9
REWRITE_MAX = 0.3

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

# Published demo defaults for a local demo; the environment overrides them.
DEFAULT_ADMIN_PASSWORD = "flywheel-admin-demo"  # noqa: S105
DEFAULT_ANNOTATOR_PASSWORD = "flywheel-annotator-demo"  # noqa: S105
ADMIN_PASSWORD_ENV = "FLYWHEEL_DEMO_ADMIN_PASSWORD"  # noqa: S105 (a variable name)
ANNOTATOR_PASSWORD_ENV = "FLYWHEEL_DEMO_ANNOTATOR_PASSWORD"  # noqa: S105 (a variable name)
ADMIN_USERNAME = "admin"
ANNOTATOR_USERNAME = "annotator"

NAIVE_TIME = "{name} must be timezone-aware (for example datetime.now(UTC))"
BAD_COUNT = "n_interactions must be at least 1, got {n}"
WEAK_PASSWORD = "The demo password for {username!r} is not accepted: {problems}"  # noqa: S105


# --- content: text pools in demo_data/*.json, loaded once -----------------------------

DATA_DIR = Path(__file__).with_name("demo_data")


@dataclass(frozen=True)
class SupportTopic:
    key: str
    questions: tuple[str, ...]
    acks: tuple[str, ...]
    steps: tuple[str, ...]
    notes: tuple[str, ...]
    button: str
    complaints: tuple[str, ...]
    own: tuple[str, ...]


@dataclass(frozen=True)
class CodeTopic:
    key: str
    lang: str
    questions: tuple[str, ...]
    explanations: tuple[str, ...]
    code: str
    complaints: tuple[str, ...]
    own: tuple[str, ...]


@dataclass(frozen=True)
class Fact:
    full: str
    short: str
    action: str = ""


@dataclass(frozen=True)
class DocKind:
    key: str
    name: str
    title: str
    facts: tuple[Fact, ...]
    filler: tuple[str, ...]
    lead: str


def _load(name: str) -> dict[str, Any]:
    with (DATA_DIR / f"{name}.json").open(encoding="utf-8") as handle:
        return _tuples(json.load(handle))


def _tuples(value: Any) -> Any:
    """JSON arrays as tuples, all the way down: the pools are constants."""
    if isinstance(value, list):
        return tuple(_tuples(item) for item in value)
    if isinstance(value, dict):
        return {key: _tuples(item) for key, item in value.items()}
    return value


def _by_model(texts: Mapping[str, str]) -> dict[str, str]:
    return {OLD_MODEL: texts["old_model"], NEW_MODEL: texts["new_model"]}


_SLOT_VALUES = _load("slots")
FIRST, LAST = _SLOT_VALUES["first"], _SLOT_VALUES["last"]
COMPANIES, WORKSPACES = _SLOT_VALUES["companies"], _SLOT_VALUES["workspaces"]
PROJECTS, TEAMS, FEATURES = (
    _SLOT_VALUES["projects"],
    _SLOT_VALUES["teams"],
    _SLOT_VALUES["features"],
)
WEEKDAYS, MONTHS, PLANS = _SLOT_VALUES["weekdays"], _SLOT_VALUES["months"], _SLOT_VALUES["plans"]
IDPS, CSV_FILES, COLUMNS = _SLOT_VALUES["idps"], _SLOT_VALUES["csv_files"], _SLOT_VALUES["columns"]
VARS, ENV_VARS, SERVICES = _SLOT_VALUES["vars"], _SLOT_VALUES["env_vars"], _SLOT_VALUES["services"]
ROLES, TITLES = _SLOT_VALUES["roles"], _SLOT_VALUES["titles"]
COMPETITORS, DICT_KEYS = _SLOT_VALUES["competitors"], _SLOT_VALUES["dict_keys"]
EXTS, RENAMES = _SLOT_VALUES["exts"], _SLOT_VALUES["renames"]

_SUPPORT = _load("support")
SUPPORT_SYSTEM = _by_model(_SUPPORT["system"])
SUPPORT_TOPICS = tuple(SupportTopic(**topic) for topic in _SUPPORT["topics"])
SUPPORT_OPENERS, SUPPORT_CLOSERS = _SUPPORT["openers"], _SUPPORT["closers"]
SUPPORT_FOLLOWUPS, SUPPORT_FOLLOWUP_ANSWERS = _SUPPORT["followups"], _SUPPORT["followup_answers"]

_CODE = _load("code")
CODE_SYSTEM = _by_model(_CODE["system"])
CODE_TOPICS = tuple(CodeTopic(**topic) for topic in _CODE["topics"])
CODE_INTROS, CODE_OUTROS = _CODE["intros"], _CODE["outros"]

_SQL = _load("sql")
SQL_SYSTEM = _SQL["system"]
# SQL questions are code questions whose language is always SQL.
SQL_TOPICS = tuple(CodeTopic(lang="sql", **topic) for topic in _SQL["topics"])
SQL_INTROS = _SQL["intros"]

_SUMMARIES = _load("summaries")
SUMMARY_SYSTEM = _by_model(_SUMMARIES["system"])
DOC_KINDS = tuple(
    DocKind(**{**kind, "facts": tuple(Fact(**fact) for fact in kind["facts"])})
    for kind in _SUMMARIES["kinds"]
)
SUMMARY_REQUESTS, SUMMARY_INTROS = _SUMMARIES["requests"], _SUMMARIES["intros"]
SUMMARY_FOLLOWUPS, SUMMARY_COMPLAINTS = _SUMMARIES["followups"], _SUMMARIES["complaints"]

_FEEDBACK = _load("feedback")
POSITIVE_COMMENTS = _FEEDBACK["positive_comments"]
NEGATIVE_COMMENTS = _FEEDBACK["negative_comments"]
PII_COMMENTS, PII_LINES = _FEEDBACK["pii_comments"], _FEEDBACK["pii_lines"]
PII_EDIT_LINES, PII_CODE_LINES = _FEEDBACK["pii_edit_lines"], _FEEDBACK["pii_code_lines"]
GENERIC_OWN = _FEEDBACK["generic_own"]
# Misspellings a language model or a hurried writer makes: (right, wrong); the fix is right.
TYPOS = _FEEDBACK["typos"]


# --- slot values ------------------------------------------------------------------


def _slots(rng: Random) -> dict[str, str]:
    first, last = rng.choice(FIRST), rng.choice(LAST)
    p1, p2, p3 = rng.sample(FIRST, 3)
    plan_a, plan_b = rng.sample(PLANS, 2)
    old, new = rng.choice(RENAMES)
    feature, feature2 = rng.sample(FEATURES, 2)
    return {
        "first": first,
        "last": last,
        "p1": p1,
        "p2": p2,
        "p3": p3,
        "company": rng.choice(COMPANIES),
        "contact": f"{rng.choice(FIRST)} {rng.choice(LAST)}",
        "title": rng.choice(TITLES),
        "workspace": rng.choice(WORKSPACES),
        "project": rng.choice(PROJECTS),
        "team": rng.choice(TEAMS),
        "feature": feature,
        "feature2": feature2,
        "day": rng.choice(WEEKDAYS),
        "day2": rng.choice(WEEKDAYS),
        "month": rng.choice(MONTHS),
        "plan_a": plan_a,
        "plan_b": plan_b,
        "idp": rng.choice(IDPS),
        "invoice": f"INV-2025-{rng.randint(1000, 9999)}",
        "ticket": f"#{rng.randint(18000, 48000)}",
        "seats": str(rng.choice((5, 8, 10, 12, 15, 20, 25, 40, 50))),
        "used": str(rng.choice((2, 3, 4, 6, 7))),
        "pct": str(rng.choice((40, 55, 60, 70, 75, 80, 85, 90))),
        "err_pct": str(rng.choice((2, 4, 7, 12, 18, 25, 31))),
        "minutes": str(rng.choice((12, 18, 25, 34, 41, 47, 58, 73, 95))),
        "detect": str(rng.choice((3, 4, 6, 9, 14, 22))),
        "budget": f"{rng.choice((4, 6, 8, 12, 15, 18))},{rng.choice(('000', '500'))}",
        "quarter": rng.choice(("Q1", "Q2", "Q3", "Q4")),
        "role": rng.choice(ROLES),
        "service": rng.choice(SERVICES),
        "version": f"{rng.randint(3, 5)}.{rng.randint(0, 19)}.{rng.randint(0, 9)}",
        "competitor": rng.choice(COMPETITORS),
        "csv": rng.choice(CSV_FILES),
        "col": rng.choice(COLUMNS),
        "var": rng.choice(VARS),
        "env": rng.choice(ENV_VARS),
        "ext": rng.choice(EXTS),
        "old": old,
        "new": new,
        "k": str(rng.choice((3, 3, 4, 5))),
        "ndays": str(rng.choice((7, 14, 30, 90))),
        "nmonths": str(rng.choice((3, 6, 12))),
        "top": str(rng.choice((5, 10, 20))),
        "n_users": str(rng.choice((120, 240, 310, 480, 650, 1200))),
        "sat": str(rng.choice((61, 68, 72, 77, 83))),
        "renewal": f"{rng.choice(MONTHS)} {rng.randint(1, 28)}",
        "inc": f"INC-{rng.randint(200, 999)}",
        "ms": str(rng.choice((250, 400, 800, 1500, 3000))),
    }


_SLOT = re.compile(r"\{\{(\w+)\}\}")


def _fill(template: str, slots: Mapping[str, str]) -> str:
    # {{name}} rather than str.format: code samples are full of single braces.
    return _SLOT.sub(lambda m: slots[m[1]], template)


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


# --- drafts: one interaction's content and what users might do with it ---------------


@dataclass
class _Draft:
    task: str
    messages: list[dict]
    response: str
    # On-topic material the answer left out, which a user may add back: sentences, and
    # items for the answer's list (steps, bullets).
    spare: list[str] = field(default_factory=list)
    spare_items: list[str] = field(default_factory=list)
    complaints: list[str] = field(default_factory=list)
    own: list[str] = field(default_factory=list)  # what a user writing from scratch writes
    topic: str = ""


def _pick_in_order(rng: Random, items: tuple[str, ...], k: int) -> tuple[list[str], list[str]]:
    k = max(1, min(k, len(items)))
    chosen = set(rng.sample(range(len(items)), k))
    return (
        [x for i, x in enumerate(items) if i in chosen],
        [x for i, x in enumerate(items) if i not in chosen],
    )


def _join_blocks(blocks: list[str]) -> str:
    return "\n\n".join(b for b in blocks if b.strip())


def _support_answer(
    rng: Random, topic: SupportTopic, slots: dict[str, str], model: str, *, lookup: str = ""
):
    # The first step says where to go; without it the rest makes no sense.
    rest, spare_steps = _pick_in_order(rng, topic.steps[1:], rng.randint(2, len(topic.steps) - 1))
    steps = [topic.steps[0], *rest]
    notes, spare_notes = _pick_in_order(rng, topic.notes, rng.randint(1, 2))
    if rng.random() < 0.3:
        spare_notes, notes = spare_notes + notes, []
    numbered = "\n".join(f"{i}. {s}" for i, s in enumerate(steps, 1))
    # The newer model was tuned to skip greetings: users complained about them.
    opener = rng.choice(SUPPORT_OPENERS) if model == OLD_MODEL or rng.random() < 0.3 else ""
    closer = rng.choice(SUPPORT_CLOSERS)
    blocks = [opener, lookup, rng.choice(topic.acks), numbered, " ".join(notes), closer]
    text = _fill(_join_blocks(blocks), slots)
    return text, [_fill(s, slots) for s in spare_notes], [_fill(s, slots) for s in spare_steps]


def _support(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    topic = rng.choice(SUPPORT_TOPICS)
    question = _fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question} {_fill(rng.choice(PII_LINES), pii)}"
    # Half the time the model repeats the customer's email back: PII in the answer too.
    lookup = f"I've checked the account for {pii['email']}." if pii and rng.random() < 0.5 else ""
    response, spare, spare_items = _support_answer(rng, topic, slots, model, lookup=lookup)
    messages = [{"role": "system", "content": SUPPORT_SYSTEM[model]}]
    if topic.button and rng.random() < 0.14:
        button = {"button": topic.button}
        # A follow-up in the same conversation: the earlier answer becomes history.
        messages += [
            {"role": "user", "content": question},
            {"role": "assistant", "content": response},
            {"role": "user", "content": _fill(rng.choice(SUPPORT_FOLLOWUPS), button)},
        ]
        response = _fill(rng.choice(SUPPORT_FOLLOWUP_ANSWERS), {**slots, **button})
        spare, spare_items = [_fill(s, slots) for s in topic.notes], []
    else:
        messages.append({"role": "user", "content": question})
    return _Draft(
        task="support",
        messages=messages,
        response=response,
        spare=spare,
        spare_items=spare_items,
        complaints=[_fill(c, slots) for c in topic.complaints],
        own=[_fill(o, slots) for o in topic.own],
        topic=topic.key,
    )


def _code_answer(
    rng: Random, topic, slots: dict[str, str], *, lang: str, intros: tuple[str, ...] = CODE_INTROS
) -> tuple[str, list]:
    explained, spare = _pick_in_order(rng, topic.explanations, rng.randint(2, 3))
    first, rest = explained[0], explained[1:]
    code = f"```{lang}\n{_fill(topic.code, slots)}\n```"
    blocks = [rng.choice(intros), first, code, " ".join(rest), rng.choice(CODE_OUTROS)]
    return _fill(_join_blocks(blocks), slots), [_fill(s, slots) for s in spare]


def _code_slots(rng: Random, slots: dict[str, str]) -> dict[str, str]:
    var = slots["var"]
    key1, key2, key3 = rng.sample(DICT_KEYS, 3)
    go_type = rng.choice(("Counter", "Tally", "Stats", "Index", "Histogram"))
    go_field = rng.choice(("counts", "seen", "byName", "hits"))
    return {
        **slots,
        "Var": var[:1].upper() + var[1:],
        "env_lower": slots["env"].lower(),
        "verb": rng.choice(("get", "fetch", "call", "request")),
        "attempts": str(rng.choice((3, 4, 5, 6))),
        "timeout": str(rng.choice((5, 10, 15, 30))),
        "cap": str(rng.choice((20, 30, 60))),
        "default": rng.choice(("30", "60", "5", "300", "10")),
        "dict": rng.choice(("cache", "settings", "counts", "prices", "sessions", "config")),
        "key1": key1,
        "key2": key2,
        "key3": key3,
        "Go": go_type,
        "field": go_field,
        # Built here: a literal brace right before a {{slot}} would read as a slot.
        "go_literal": f"{go_type}{{{go_field}: make(map[string]int)}}",
        "jsx_list": f"{{{var}.map((x) => <li key={{x.id}}>{{x.name}}</li>)}}",
        "limit": str(rng.choice((4, 8, 10, 16))),
        "Fetch": rng.choice(("Fetch", "Get", "Load", "Lookup")),
    }


def _code(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    topic = rng.choice(CODE_TOPICS)
    slots = _code_slots(rng, slots)
    question = _fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question}\n\n{_fill(rng.choice(PII_CODE_LINES), pii)}"
    response, spare = _code_answer(rng, topic, slots, lang=topic.lang)
    messages = [{"role": "system", "content": CODE_SYSTEM[model]}]
    if rng.random() < 0.1:
        # Earlier, unrelated question in the same chat session.
        earlier = rng.choice([t for t in CODE_TOPICS if t.key != topic.key])
        earlier_slots = _code_slots(rng, _slots(rng))
        earlier_answer, _ = _code_answer(rng, earlier, earlier_slots, lang=earlier.lang)
        messages += [
            {"role": "user", "content": _fill(earlier.questions[0], earlier_slots)},
            {"role": "assistant", "content": earlier_answer},
        ]
    messages.append({"role": "user", "content": question})
    return _Draft(
        task="code_help",
        messages=messages,
        response=response,
        spare=spare,
        complaints=[_fill(c, slots) for c in topic.complaints],
        own=[_fill(o, slots) for o in topic.own],
        topic=f"{topic.lang}:{topic.key}",
    )


def _sql(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    topic = rng.choice(SQL_TOPICS)
    question = _fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question} {_fill(rng.choice(PII_LINES), pii)}"
    response, spare = _code_answer(rng, topic, slots, lang="sql", intros=SQL_INTROS)
    return _Draft(
        task="sql",
        messages=[
            {"role": "system", "content": SQL_SYSTEM},
            {"role": "user", "content": question},
        ],
        response=response,
        spare=spare,
        complaints=[_fill(c, slots) for c in topic.complaints],
        own=[_fill(o, slots) for o in topic.own],
        topic=topic.key,
    )


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_task(action: str) -> str:
    """'Nora: set up interviews' -> 'Nora to set up interviews', as minutes phrase it."""
    owner, _, task = action.partition(": ")
    return f"{owner} to {task}" if task else action


def _summary(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> _Draft:
    kind = rng.choice(DOC_KINDS)
    slots = {**slots, "kind": kind.name}
    title = _fill(kind.title, slots)
    slots["doc_title"] = title
    facts, unused = _pick_in_order(rng, kind.facts, rng.randint(4, min(6, len(kind.facts))))
    filler = rng.sample(kind.filler, rng.randint(1, min(2, len(kind.filler))))
    lines = [_fill(f.full, slots) for f in facts]
    for sentence in filler:
        lines.insert(rng.randint(0, len(lines)), _fill(sentence, slots))
    if pii:
        lines.append(f"Contact: {pii['first']} {pii['last']}, {pii['email']}, {pii['phone']}.")
    bulleted = rng.random() < 0.5
    body = "\n".join(f"- {x}" for x in lines) if bulleted else " ".join(lines)
    document = f"{title}\n\n{body}"
    request = _fill(rng.choice(SUMMARY_REQUESTS), slots)
    k = int(slots["k"])
    n_shown = k if "bullet" in request else len(facts)
    if rng.random() < 0.2:
        n_shown += 1  # one more than asked for: a classic reason for a complaint
    summary_lines = [f"- {_capitalise(_fill(f.short, slots))}." for f in facts[:n_shown]]
    actions = [_fill(f.action, slots) for f in facts if f.action]
    slots["count"] = str(len(facts))
    intro = kind.lead if rng.random() < 0.5 else rng.choice(SUMMARY_INTROS)
    blocks = [_fill(intro, slots), "\n".join(summary_lines)]
    if actions and (rng.random() < 0.75 or "action items" in request):
        blocks.append("Action items:\n" + "\n".join(f"- {a}." for a in actions))
    if pii and rng.random() < 0.5:
        blocks.append(f"Contact for questions: {pii['email']}.")
    response = _join_blocks(blocks)
    missing = [_capitalise(_fill(f.short, slots)) + "." for f in list(facts[n_shown:]) + unused]
    messages = [
        {"role": "system", "content": SUMMARY_SYSTEM[model]},
        {"role": "user", "content": f"{request}\n\n{document}"},
    ]
    if rng.random() < 0.1:
        messages += [
            {"role": "assistant", "content": response},
            {"role": "user", "content": rng.choice(SUMMARY_FOLLOWUPS)},
        ]
        first, second = (_fill(f.short, slots) for f in facts[:2])
        response = f"{_capitalise(first)}; {second}. " + (
            f"Next: {_as_task(actions[0])}." if actions else "No action items."
        )
    slots["missing"] = missing[0].rstrip(".") if missing else "the action items"
    return _Draft(
        task="summarisation",
        messages=messages,
        response=response,
        spare_items=missing,
        complaints=[_fill(c, slots) for c in SUMMARY_COMPLAINTS],
        own=[
            f"{_capitalise(_fill(facts[-1].short, slots))}. Nothing else needs your attention.",
            f"Short version: {_fill(facts[0].short, slots)}. Details in the doc.",
        ],
        topic=kind.key,
    )


_BUILDERS = {"code_help": _code, "summarisation": _summary, "support": _support, "sql": _sql}


# --- edits -----------------------------------------------------------------------------


def char_similarity(a: str, b: str) -> float:
    """The edit-band filter's character similarity, so the demo's edits land where the
    filter will measure them."""
    return edit_similarities(chosen=a, rejected=b)["char"]


def _in_band(a: str, b: str) -> bool:
    similarity = edit_similarities(chosen=a, rejected=b)
    return (
        BAND_LOW + 0.05 <= similarity["char"] <= BAND_HIGH - 0.05
        and BAND_LOW <= similarity["word"] <= BAND_HIGH
    )


_FENCE = re.compile(r"```.*?```", re.S)
_SENTENCE_END = re.compile(r"(?<=[.!?])\s+(?=[A-Z`*\d])")


_LIST_ITEM = re.compile(r"(\d+\.|-) ")


@dataclass
class _Block:
    """A paragraph of an answer, split into the units a user deletes one at a time."""

    kind: str  # "code" (untouchable), "list" (items), "prose" (sentences), "salutation"
    units: list[str]
    header: str = ""  # a list's heading line, such as "Action items:"


_FORMULAE = frozenset(
    x for x in SUPPORT_OPENERS + SUPPORT_CLOSERS + CODE_INTROS + CODE_OUTROS + SQL_INTROS
    if "{{" not in x
)  # fmt: skip


def _blocks(text: str) -> list[_Block]:
    blocks = []
    for block in text.split("\n\n"):
        lines = block.split("\n")
        header, items = ("", lines) if _LIST_ITEM.match(lines[0]) else (lines[0], lines[1:])
        if block.startswith("```"):
            blocks.append(_Block("code", [block]))
        elif items and all(_LIST_ITEM.match(line) for line in items):
            blocks.append(_Block("list", [_LIST_ITEM.sub("", x, count=1) for x in items], header))
        elif "\n" in block:
            blocks.append(_Block("code", [block]))
        elif block.endswith(",") or block in _FORMULAE:
            blocks.append(_Block("salutation", [block]))
        else:
            blocks.append(_Block("prose", _SENTENCE_END.split(block)))
    return blocks


def _render(blocks: list[_Block], numbered: bool) -> str:
    out = []
    for block in blocks:
        if not block.units:
            continue
        if block.kind == "list":
            items = [f"{n}. {x}" if numbered else f"- {x}" for n, x in enumerate(block.units, 1)]
            out.append("\n".join([block.header, *items] if block.header else items))
        else:
            out.append(" ".join(block.units))
    return "\n\n".join(out)


def _rewrite(
    rng: Random, text: str, spare: list[str], spare_items: list[str], *, lead: str = ""
) -> str:
    """Delete some sentences, steps or bullets and add on-topic ones: a user improving the
    answer. Code is kept as it is; lists stay lists."""
    numbered = bool(re.search(r"^1\. ", text, re.M))
    blocks = _blocks(text)
    # Code stays, and so does a numbered list's first step: it says where to start.
    units = [
        (b, j) for b, block in enumerate(blocks) if block.kind != "code"
        for j in range(len(block.units)) if not (numbered and block.kind == "list" and j == 0)
    ]  # fmt: skip
    if units:
        k = min(len(units) - 1, rng.randint(1, max(1, len(units) // 2)))
        drop = set(rng.sample(units, k=k))
        for b, block in enumerate(blocks):
            block.units = [u for j, u in enumerate(block.units) if (b, j) not in drop]
    blocks = [block for block in blocks if block.units]
    # Missing points go to the main list, not under a heading such as "Action items:".
    lists = [b for b in blocks if b.kind == "list" and not b.header] or [
        b for b in blocks if b.kind == "list"
    ]
    additions = [(x, True) for x in spare_items] if lists else []
    additions += [(x, False) for x in spare]
    for text_added, is_item in rng.sample(additions, k=min(len(additions), rng.randint(1, 2))):
        prose = [block for block in blocks if block.kind == "prose"]
        if is_item:
            target = rng.choice(lists)
            target.units.insert(
                rng.randint(min(1, len(target.units)), len(target.units)), text_added
            )
        elif prose and rng.random() < 0.5:
            target = rng.choice(prose)
            target.units.insert(rng.randint(0, len(target.units)), text_added)
        else:
            # Between greeting and sign-off, where a user would type it.
            low = 1 if blocks and blocks[0].kind == "salutation" else 0
            high = len(blocks) - (1 if len(blocks) > low and blocks[-1].kind == "salutation" else 0)
            blocks.insert(rng.randint(low, high), _Block("prose", [text_added]))
    if lead:
        blocks.insert(0, _Block("prose", [lead]))
    return _render(blocks, numbered)


def _substantial(rng: Random, draft: _Draft, *, lead: str = "") -> str:
    spare = draft.spare or ([] if draft.spare_items else draft.own)
    best, best_gap = None, math.inf
    for _ in range(40):
        candidate = _rewrite(rng, draft.response, spare, draft.spare_items, lead=lead)
        if _in_band(candidate, draft.response):
            return candidate
        gap = abs(char_similarity(candidate, draft.response) - 0.6)
        if gap < best_gap:
            best, best_gap = candidate, gap
    return best or draft.response + "\n\n" + draft.own[0]


def _complete(rng: Random, draft: _Draft) -> str:
    options = draft.own + list(GENERIC_OWN)
    first = rng.randrange(len(draft.own)) if draft.own else 0
    for text in options[first:] + options[:first]:
        if char_similarity(text, draft.response) < REWRITE_MAX - 0.05:
            return text
    return GENERIC_OWN[0]


_WORD_AT = r"(?<![\w`]){}(?![\w`])"


def _typo(rng: Random, draft: _Draft) -> bool:
    """Put a typo into the model's answer; the user's fix is the original. Only prose is
    touched: a typo in code would be a bug, not a typo."""
    text = draft.response
    code = [(m.start(), m.end()) for m in _FENCE.finditer(text)]
    spots = []
    for right, wrong in TYPOS:
        for m in re.finditer(_WORD_AT.format(right), text):
            if not any(a <= m.start() < b for a, b in code):
                spots.append((m.start(), m.end(), wrong))
    if not spots:
        return False
    for start, end, wrong in sorted(rng.sample(spots, k=min(len(spots), rng.randint(1, 2))))[::-1]:
        text = text[:start] + wrong + text[end:]
    if char_similarity(text, draft.response) <= TYPO_MIN:
        return False
    draft.response = text
    return True


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
    rng: Random, draft: _Draft, model: str, t: datetime, now: datetime, pii: dict
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
                value = _fill(rng.choice(PII_COMMENTS), pii)
            elif bad:
                value = rng.choice(draft.complaints + list(NEGATIVE_COMMENTS))
            else:
                value = rng.choice(POSITIVE_COMMENTS)
        elif act == "typo":
            original = draft.response
            if not _typo(rng, draft):
                kind = "thumbs_up" if not bad else "thumbs_down"
            else:
                kind, final_text = "edited", original
        elif act == "substantial":
            kind = "edited" if rng.random() < 0.7 else "corrected"
            final_text = _substantial(rng, draft)
        elif act == "complete":
            kind = "corrected"
            final_text = _complete(rng, draft)
        if act in ("substantial", "complete") and rng.random() < PII_RATE:
            final_text = f"{final_text}\n\n{_fill(rng.choice(PII_EDIT_LINES), pii)}"
        low, high = _DELAY[kind]
        at = at + timedelta(seconds=rng.randint(low, high))
        if at >= now:
            # The user hasn't got round to it yet.
            break
        events.append(_Event(kind, at, value, final_text))
    return events


def _toxify(rng: Random, draft: _Draft, event: _Event) -> None:
    line = rng.choice(TOXIC_LINES)
    event.kind = "edited"
    event.final_text = _substantial(rng, draft, lead=line)


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
    drafts: list[_Draft] = []
    for n, t in enumerate(times, 1):
        task = rng.choices(TASK_TYPES, list(TASK_WEIGHTS.values()))[0]
        pool = by_task[task]
        user = rng.choices(pool, [u.weight for u in pool])[0]
        model = _model_for(rng, t, now)
        slots = _slots(rng)
        pii = _pii_value(rng, slots)
        draft = _BUILDERS[task](rng, slots, model, pii if rng.random() < PII_RATE else None)
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


def _make_toxic(rng: Random, plans: list[list[_Event]], drafts: list[_Draft]) -> None:
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


# --- demo accounts ---------------------------------------------------------------------


@dataclass(frozen=True)
class DemoUser:
    username: str
    role: str
    created: bool
    # None when the account existed with another password: it is not ours to show.
    password: str | None


def demo_passwords(environ: Mapping[str, str]) -> dict[str, str]:
    return {
        "admin_password": environ.get(ADMIN_PASSWORD_ENV) or DEFAULT_ADMIN_PASSWORD,
        "annotator_password": environ.get(ANNOTATOR_PASSWORD_ENV) or DEFAULT_ANNOTATOR_PASSWORD,
    }


def demo_users_create(*, admin_password: str, annotator_password: str) -> list[DemoUser]:
    """Create the demo admin (superuser) and annotator if missing. Existing accounts are
    left as they are: someone may have changed their password or rights on purpose."""
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import Group
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError
    from django.db import transaction

    user_model = get_user_model()
    # The last field is the role group (flywheel_site.access) the account joins.
    specs = (
        (
            ADMIN_USERNAME,
            admin_password,
            "superuser",
            {"is_staff": True, "is_superuser": True},
            "admin",
        ),
        (ANNOTATOR_USERNAME, annotator_password, "annotator", {}, "annotator"),
    )
    out = []
    with transaction.atomic():
        for username, password, role, flags, group in specs:
            user = user_model.objects.filter(username=username).first()
            if user is not None:
                # Passwords of existing accounts are left alone; the role is ensured
                # (accounts made before roles existed had none).
                user.groups.add(Group.objects.get_or_create(name=group)[0])
                shown = password if user.check_password(password) else None
                out.append(DemoUser(username, role, created=False, password=shown))
                continue
            candidate = user_model(username=username, **flags)
            try:
                validate_password(password, candidate)
            except ValidationError as error:
                raise ValueError(
                    WEAK_PASSWORD.format(username=username, problems=" ".join(error.messages))
                ) from None
            candidate.set_password(password)
            candidate.save()
            candidate.groups.add(Group.objects.get_or_create(name=group)[0])
            out.append(DemoUser(username, role, created=True, password=password))
    return out


def demo_policy_apply():
    """The current policy if it is the demo's already, else a new version that is (the
    generator above stays free of the database; only this function touches it)."""
    from curation import policies

    current = policies.policy_current()
    if all(getattr(current, name) == value for name, value in DEMO_POLICY.items()):
        return current
    return policies.policy_create(changes=DEMO_POLICY, note=DEMO_POLICY_NOTE)
