"""The demo's edits (see `flywheel_site.demo.traffic`): typo fixes, substantial rewrites and
complete rewrites of a draft answer, placed by the edit-band filter's own similarity measure."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from random import Random

from curation.filter_rules import edit_similarities
from flywheel_site.demo.content import (
    CODE_INTROS,
    CODE_OUTROS,
    GENERIC_OWN,
    SQL_INTROS,
    SUPPORT_CLOSERS,
    SUPPORT_OPENERS,
    TYPOS,
    Draft,
)

# Where each flavour of edit lands, in char_similarity (the bands in the notes of
# `flywheel_site.demo.traffic`).
TYPO_MIN = 0.95
BAND_LOW, BAND_HIGH = 0.3, 0.9
REWRITE_MAX = 0.3


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


def substantial(rng: Random, draft: Draft, *, lead: str = "") -> str:
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


def complete(rng: Random, draft: Draft) -> str:
    options = draft.own + list(GENERIC_OWN)
    first = rng.randrange(len(draft.own)) if draft.own else 0
    for text in options[first:] + options[:first]:
        if char_similarity(text, draft.response) < REWRITE_MAX - 0.05:
            return text
    return GENERIC_OWN[0]


_WORD_AT = r"(?<![\w`]){}(?![\w`])"


def typo(rng: Random, draft: Draft) -> bool:
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
