"""The demo's content (see `flywheel_site.demo.traffic`): the text pools in `data/*.json`, the
slot values filled into them, and one draft answer per task type together with what a user
might add to it or write instead."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from random import Random
from typing import Any

# System prompts and answer styles differ between the two models the demo's traffic shows.
OLD_MODEL = "acme-chat-2025-09"
NEW_MODEL = "acme-chat-2025-11"


# --- content: text pools in data/*.json, loaded once -----------------------------

DATA_DIR = Path(__file__).with_name("data")


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


def random_slots(rng: Random) -> dict[str, str]:
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


def fill(template: str, slots: Mapping[str, str]) -> str:
    # {{name}} rather than str.format: code samples are full of single braces.
    return _SLOT.sub(lambda m: slots[m[1]], template)


# --- drafts: one interaction's content and what users might do with it ---------------


@dataclass
class Draft:
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
    text = fill(_join_blocks(blocks), slots)
    return text, [fill(s, slots) for s in spare_notes], [fill(s, slots) for s in spare_steps]


def _support(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> Draft:
    topic = rng.choice(SUPPORT_TOPICS)
    question = fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question} {fill(rng.choice(PII_LINES), pii)}"
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
            {"role": "user", "content": fill(rng.choice(SUPPORT_FOLLOWUPS), button)},
        ]
        response = fill(rng.choice(SUPPORT_FOLLOWUP_ANSWERS), {**slots, **button})
        spare, spare_items = [fill(s, slots) for s in topic.notes], []
    else:
        messages.append({"role": "user", "content": question})
    return Draft(
        task="support",
        messages=messages,
        response=response,
        spare=spare,
        spare_items=spare_items,
        complaints=[fill(c, slots) for c in topic.complaints],
        own=[fill(o, slots) for o in topic.own],
        topic=topic.key,
    )


def _code_answer(
    rng: Random, topic, slots: dict[str, str], *, lang: str, intros: tuple[str, ...] = CODE_INTROS
) -> tuple[str, list]:
    explained, spare = _pick_in_order(rng, topic.explanations, rng.randint(2, 3))
    first, rest = explained[0], explained[1:]
    code = f"```{lang}\n{fill(topic.code, slots)}\n```"
    blocks = [rng.choice(intros), first, code, " ".join(rest), rng.choice(CODE_OUTROS)]
    return fill(_join_blocks(blocks), slots), [fill(s, slots) for s in spare]


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


def _code(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> Draft:
    topic = rng.choice(CODE_TOPICS)
    slots = _code_slots(rng, slots)
    question = fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question}\n\n{fill(rng.choice(PII_CODE_LINES), pii)}"
    response, spare = _code_answer(rng, topic, slots, lang=topic.lang)
    messages = [{"role": "system", "content": CODE_SYSTEM[model]}]
    if rng.random() < 0.1:
        # Earlier, unrelated question in the same chat session.
        earlier = rng.choice([t for t in CODE_TOPICS if t.key != topic.key])
        earlier_slots = _code_slots(rng, random_slots(rng))
        earlier_answer, _ = _code_answer(rng, earlier, earlier_slots, lang=earlier.lang)
        messages += [
            {"role": "user", "content": fill(earlier.questions[0], earlier_slots)},
            {"role": "assistant", "content": earlier_answer},
        ]
    messages.append({"role": "user", "content": question})
    return Draft(
        task="code_help",
        messages=messages,
        response=response,
        spare=spare,
        complaints=[fill(c, slots) for c in topic.complaints],
        own=[fill(o, slots) for o in topic.own],
        topic=f"{topic.lang}:{topic.key}",
    )


def _sql(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> Draft:
    topic = rng.choice(SQL_TOPICS)
    question = fill(rng.choice(topic.questions), slots)
    if pii:
        question = f"{question} {fill(rng.choice(PII_LINES), pii)}"
    response, spare = _code_answer(rng, topic, slots, lang="sql", intros=SQL_INTROS)
    return Draft(
        task="sql",
        messages=[
            {"role": "system", "content": SQL_SYSTEM},
            {"role": "user", "content": question},
        ],
        response=response,
        spare=spare,
        complaints=[fill(c, slots) for c in topic.complaints],
        own=[fill(o, slots) for o in topic.own],
        topic=topic.key,
    )


def _capitalise(text: str) -> str:
    return text[:1].upper() + text[1:]


def _as_task(action: str) -> str:
    """'Nora: set up interviews' -> 'Nora to set up interviews', as minutes phrase it."""
    owner, _, task = action.partition(": ")
    return f"{owner} to {task}" if task else action


def _summary(rng: Random, slots: dict[str, str], model: str, pii: dict | None) -> Draft:
    kind = rng.choice(DOC_KINDS)
    slots = {**slots, "kind": kind.name}
    title = fill(kind.title, slots)
    slots["doc_title"] = title
    facts, unused = _pick_in_order(rng, kind.facts, rng.randint(4, min(6, len(kind.facts))))
    filler = rng.sample(kind.filler, rng.randint(1, min(2, len(kind.filler))))
    lines = [fill(f.full, slots) for f in facts]
    for sentence in filler:
        lines.insert(rng.randint(0, len(lines)), fill(sentence, slots))
    if pii:
        lines.append(f"Contact: {pii['first']} {pii['last']}, {pii['email']}, {pii['phone']}.")
    bulleted = rng.random() < 0.5
    body = "\n".join(f"- {x}" for x in lines) if bulleted else " ".join(lines)
    document = f"{title}\n\n{body}"
    request = fill(rng.choice(SUMMARY_REQUESTS), slots)
    k = int(slots["k"])
    n_shown = k if "bullet" in request else len(facts)
    if rng.random() < 0.2:
        n_shown += 1  # one more than asked for: a classic reason for a complaint
    summary_lines = [f"- {_capitalise(fill(f.short, slots))}." for f in facts[:n_shown]]
    actions = [fill(f.action, slots) for f in facts if f.action]
    slots["count"] = str(len(facts))
    intro = kind.lead if rng.random() < 0.5 else rng.choice(SUMMARY_INTROS)
    blocks = [fill(intro, slots), "\n".join(summary_lines)]
    if actions and (rng.random() < 0.75 or "action items" in request):
        blocks.append("Action items:\n" + "\n".join(f"- {a}." for a in actions))
    if pii and rng.random() < 0.5:
        blocks.append(f"Contact for questions: {pii['email']}.")
    response = _join_blocks(blocks)
    missing = [_capitalise(fill(f.short, slots)) + "." for f in list(facts[n_shown:]) + unused]
    messages = [
        {"role": "system", "content": SUMMARY_SYSTEM[model]},
        {"role": "user", "content": f"{request}\n\n{document}"},
    ]
    if rng.random() < 0.1:
        messages += [
            {"role": "assistant", "content": response},
            {"role": "user", "content": rng.choice(SUMMARY_FOLLOWUPS)},
        ]
        first, second = (fill(f.short, slots) for f in facts[:2])
        response = f"{_capitalise(first)}; {second}. " + (
            f"Next: {_as_task(actions[0])}." if actions else "No action items."
        )
    slots["missing"] = missing[0].rstrip(".") if missing else "the action items"
    return Draft(
        task="summarisation",
        messages=messages,
        response=response,
        spare_items=missing,
        complaints=[fill(c, slots) for c in SUMMARY_COMPLAINTS],
        own=[
            f"{_capitalise(fill(facts[-1].short, slots))}. Nothing else needs your attention.",
            f"Short version: {fill(facts[0].short, slots)}. Details in the doc.",
        ],
        topic=kind.key,
    )


BUILDERS = {"code_help": _code, "summarisation": _summary, "support": _support, "sql": _sql}
