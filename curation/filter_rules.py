"""Curation filters' rules: pure functions from a candidate to a decision (their
vocabulary, input, result and policy types are in ``curation.filters``).

Each filter is ``<name>_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult``.
Every result, passing or not, has a reason a curator can read; filters that do not apply to
a candidate's kind pass with ``details["skipped"] = True`` so the record shows they were
considered. The toxicity and dedup steps need state (a model, an index) and are supplied by
the caller through ``run_filters(extra=...)`` with the same signature.

Candidate kinds: ``preference`` (chosen = the user's edit, rejected = the model output),
``sft`` (chosen = an accepted model answer, no rejected) and ``needs_answer`` (the user
rejected the answer by a thumbs down or a regenerate; there is no chosen yet).

user_action
    needs_answer always passes: going to reviewers for an answer is what it is for.
    Otherwise a ``regenerated`` fails (the user asked for another answer, so this one is
    not endorsed, and an edit made before regenerating is ambiguous). preference needs an
    ``edited`` or ``corrected`` (its chosen is that text); a thumbs down or low rating is
    consistent with its rejected side and does not count against it. sft fails on a
    ``thumbs_down`` or a rating of 1-2, and otherwise needs an approval: ``accepted``,
    ``copied``, ``edited``, ``corrected``, ``thumbs_up`` or a rating of 4-5.

length
    The chosen text has at least ``min_words`` words. A word is a run of ``\\w`` characters,
    except that each character of a script written without spaces (Han, kana) counts as a
    word: otherwise a Chinese paragraph would be one word. (Thai, also written without
    spaces, still counts as runs and is undercounted.)

edit_band (preference only)
    char similarity = 1 - Levenshtein(chosen, rejected) / max(len) over characters; word
    similarity is the same over word tokens. Both are recorded; ``band_measure`` picks the
    one that decides. The band is inclusive: ``band_low <= similarity <= band_high`` passes.
    Below it the "edit" is a rewrite (the user's text is not a correction of the model's),
    above it a typo fix that teaches nothing. Identical texts always fail, whatever the
    band, since a pair with nothing to prefer gives DPO no signal. Two texts with no words
    have word similarity 1.0 (no word changed).

blocklist
    Curator terms and regular expressions, applied to the chosen text (what would become a
    winning answer); how they match is described in ``curation.blocklist``.

pii
    No residual PII (``curation.pii.find_pii``) in any prompt message, the chosen or the
    rejected text. The reason names where and what kinds, never the text found.

quality
    One score in [0, 1]: the weighted mean of the signals present for the candidate::

        rating     (r - 1) / 4                                     weight W_RATING
        accept     1 if accepted or copied (absent otherwise)       weight W_ACCEPT
        thumbs     1 if thumbs up, 0 if down, 0.5 if both           weight W_THUMBS
        edit       e / P if e <= P else (1 - e) / (1 - P),          weight W_EDIT
                   e = 1 - char similarity, P = EDIT_PEAK (preference only)
        toxicity   1 - toxicity                                     weight W_TOXICITY
        length     min(1, words / LENGTH_TARGET_WORDS)              weight W_LENGTH

        quality = sum(w_i * s_i) / sum(w_i)   over the signals present

    A missing signal is left out rather than counted as 0, so an answer is not penalised for
    feedback the app never collects. For a preference pair rating, accept and thumbs are left
    out too: they were given on the model's output, the rejected side, not on the user's text.
    The edit signal peaks at a moderate edit (EDIT_PEAK of the characters changed): a typo
    fix or a full rewrite carries less about what the user wanted. Below ``quality_min``
    fails. needs_answer is skipped: it has no answer to judge.

Filters run cheapest first (FILTER_ORDER); ``run_filters`` stops at the first failure unless
``full=True`` (curators calibrating a policy want every score).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import replace
from functools import lru_cache
from typing import Any

import Levenshtein

from curation.blocklist import NO_SPACE, blocklist_matches
from curation.filters import (
    BLOCKLIST,
    EDIT_BAND,
    FILTER_ORDER,
    LENGTH,
    MISSING_FILTERS,
    NEEDS_ANSWER,
    PII,
    PREFERENCE,
    QUALITY,
    TOXICITY,
    UNKNOWN_FILTERS,
    USER_ACTION,
    FilterInput,
    FilterPolicy,
    FilterResult,
)
from curation.pii import find_pii

# Feedback kinds, as stored by curation.models.FeedbackKind (not imported: this module
# stays free of Django).
THUMBS_UP = "thumbs_up"
THUMBS_DOWN = "thumbs_down"
ACCEPTED = "accepted"
COPIED = "copied"
REGENERATED = "regenerated"
EDITED = "edited"
CORRECTED = "corrected"
EDIT_ACTIONS = frozenset({EDITED, CORRECTED})
APPROVALS = frozenset({ACCEPTED, COPIED, EDITED, CORRECTED, THUMBS_UP})
DISAPPROVALS = frozenset({THUMBS_DOWN, REGENERATED})
APPROVING_RATING = 4
DISAPPROVING_RATING = 2


def disapproves(kinds: Iterable[str], ratings: Iterable[int]) -> bool:
    """The one rule for "the user disliked the answer": a thumbs down, a
    regenerate, or a rating at or below DISAPPROVING_RATING."""
    return bool(DISAPPROVALS & set(kinds)) or any(r <= DISAPPROVING_RATING for r in ratings)


def approves(kinds: Iterable[str], ratings: Iterable[int]) -> bool:
    """The one rule for "the user approved the answer": an approving action or
    a rating at or above APPROVING_RATING."""
    return bool(APPROVALS & set(kinds)) or any(r >= APPROVING_RATING for r in ratings)


# Quality weights and shape (see the module docstring).
W_RATING = 3.0
W_ACCEPT = 2.0
W_THUMBS = 2.0
W_EDIT = 2.0
W_TOXICITY = 2.0
W_LENGTH = 1.0
EDIT_PEAK = 0.3
LENGTH_TARGET_WORDS = 50

# Reasons, stored with each decision and shown to curators.
NEEDS_ANSWER_ROUTED = "Needs an answer: goes to reviewers whatever the user did."
REGENERATED_REASON = "The user regenerated the answer."
NEGATIVE_FEEDBACK = "The user disapproved of the answer ({signals})."
NO_APPROVAL = "No user action approves the answer."
NO_EDIT = "A preference pair needs an edit or correction by the user."
APPROVED = "Approved by the user ({signals})."
EDITED_BY_USER = "The user edited the answer ({signals})."
NO_CHOSEN_SKIP = "No chosen text yet: not checked."
MISSING_CHOSEN = "The candidate has no chosen text."
MISSING_REJECTED = "A preference pair needs a rejected text."
TOO_SHORT = "Chosen text has {words} words, fewer than {minimum}."
LONG_ENOUGH = "Chosen text has {words} words (minimum {minimum})."
NOT_PREFERENCE_SKIP = "Not a preference pair: not checked."
IDENTICAL = "Chosen and rejected are identical: nothing to prefer."
BELOW_BAND = "{measure} similarity {similarity:.3f} is below {low:.3f}: a rewrite, not an edit."
ABOVE_BAND = "{measure} similarity {similarity:.3f} is above {high:.3f}: too small an edit."
IN_BAND = "{measure} similarity {similarity:.3f} is within [{low:.3f}, {high:.3f}]."
BLOCKED = "Chosen text matches the blocklist: {matches}."
NOT_BLOCKED = "Chosen text matches no blocklist entry."
RESIDUAL_PII = "Residual PII: {where}."
NO_RESIDUAL_PII = "No residual PII found."
LOW_QUALITY = "Quality {score:.3f} is below {minimum:.3f}."
GOOD_QUALITY = "Quality {score:.3f} (minimum {minimum:.3f})."


_WORD = re.compile(rf"[{NO_SPACE}]|[^\W{NO_SPACE}]+")


def word_tokens(text: str) -> list[str]:
    """Words as the length filter and the word similarity count them."""
    return _WORD.findall(text)


def _skipped(name: str, reason: str) -> FilterResult:
    return FilterResult(
        name=name, passed=True, score=None, reason=reason, details={"skipped": True}
    )


def _present(kinds: Iterable[str], wanted: Iterable[str]) -> list[str]:
    return sorted(set(kinds) & set(wanted))


# --- user_action ------------------------------------------------------------------------


def user_action_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult:
    kinds = item.feedback_kinds
    details: dict[str, Any] = {"feedback_kinds": sorted(set(kinds)), "rating": item.rating}

    def result(passed: bool, reason: str) -> FilterResult:
        return FilterResult(USER_ACTION, passed, None, reason, details)

    if item.kind == NEEDS_ANSWER:
        return result(True, NEEDS_ANSWER_ROUTED)
    if REGENERATED in kinds:
        return result(False, REGENERATED_REASON)
    if item.kind == PREFERENCE:
        edits = _present(kinds, EDIT_ACTIONS)
        if not edits:
            return result(False, NO_EDIT)
        return result(True, EDITED_BY_USER.format(signals=", ".join(edits)))
    negative = _present(kinds, {THUMBS_DOWN})
    if item.rating is not None and item.rating <= DISAPPROVING_RATING:
        negative.append(f"rating {item.rating}")
    if negative:
        return result(False, NEGATIVE_FEEDBACK.format(signals=", ".join(negative)))
    approvals = _present(kinds, APPROVALS)
    if item.rating is not None and item.rating >= APPROVING_RATING:
        approvals.append(f"rating {item.rating}")
    if not approvals:
        return result(False, NO_APPROVAL)
    return result(True, APPROVED.format(signals=", ".join(approvals)))


# --- length -----------------------------------------------------------------------------


def length_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult:
    if item.kind == NEEDS_ANSWER:
        return _skipped(LENGTH, NO_CHOSEN_SKIP)
    if item.chosen is None:
        return FilterResult(LENGTH, False, None, MISSING_CHOSEN)
    words = len(word_tokens(item.chosen))
    details = {"words": words, "min_words": policy.min_words}
    if words < policy.min_words:
        reason = TOO_SHORT.format(words=words, minimum=policy.min_words)
        return FilterResult(LENGTH, False, float(words), reason, details)
    reason = LONG_ENOUGH.format(words=words, minimum=policy.min_words)
    return FilterResult(LENGTH, True, float(words), reason, details)


# --- edit_band --------------------------------------------------------------------------


def _similarity(a: Sequence[Any], b: Sequence[Any]) -> float:
    longest = max(len(a), len(b))
    if longest == 0:
        return 1.0
    # (longest - distance) / longest rather than 1 - distance / longest: the division is
    # correctly rounded, so a similarity of exactly 95/100 equals the float 0.95 a curator
    # typed as a bound, where 1 - 5/100 need not.
    return (longest - Levenshtein.distance(a, b)) / longest


@lru_cache(maxsize=16)
def _edit_similarities(chosen: str, rejected: str) -> tuple[float, float]:
    # Cached because quality needs the same numbers right after edit_band, and the char
    # distance of two 100 KB texts takes about half a second.
    return _similarity(chosen, rejected), _similarity(word_tokens(chosen), word_tokens(rejected))


def edit_similarities(*, chosen: str, rejected: str) -> dict[str, float]:
    """{"char": ..., "word": ...} similarities in [0, 1] (see edit_band in the docstring)."""
    char, word = _edit_similarities(chosen, rejected)
    return {"char": char, "word": word}


def edit_band_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult:
    if item.kind != PREFERENCE:
        return _skipped(EDIT_BAND, NOT_PREFERENCE_SKIP)
    if item.chosen is None:
        return FilterResult(EDIT_BAND, False, None, MISSING_CHOSEN)
    if item.rejected is None:
        return FilterResult(EDIT_BAND, False, None, MISSING_REJECTED)
    sims = edit_similarities(chosen=item.chosen, rejected=item.rejected)
    similarity = sims[policy.band_measure]
    details = {
        "char_similarity": sims["char"],
        "word_similarity": sims["word"],
        "measure": policy.band_measure,
        "band": [policy.band_low, policy.band_high],
    }
    fmt = {
        "measure": policy.band_measure.capitalize(),
        "similarity": similarity,
        "low": policy.band_low,
        "high": policy.band_high,
    }
    if item.chosen == item.rejected:
        return FilterResult(EDIT_BAND, False, similarity, IDENTICAL, details)
    if similarity < policy.band_low:
        return FilterResult(EDIT_BAND, False, similarity, BELOW_BAND.format(**fmt), details)
    if similarity > policy.band_high:
        return FilterResult(EDIT_BAND, False, similarity, ABOVE_BAND.format(**fmt), details)
    return FilterResult(EDIT_BAND, True, similarity, IN_BAND.format(**fmt), details)


# --- blocklist --------------------------------------------------------------------------


def blocklist_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult:
    if item.kind == NEEDS_ANSWER:
        return _skipped(BLOCKLIST, NO_CHOSEN_SKIP)
    if item.chosen is None:
        return FilterResult(BLOCKLIST, False, None, MISSING_CHOSEN)
    terms, patterns = blocklist_matches(
        item.chosen, terms=policy.blocklist_terms, patterns=policy.blocklist_patterns
    )
    details = {"terms": terms, "patterns": patterns}
    if not terms and not patterns:
        return FilterResult(BLOCKLIST, True, None, NOT_BLOCKED, details)
    matches = ", ".join([f'term "{t}"' for t in terms] + [f'pattern "{p}"' for p in patterns])
    return FilterResult(BLOCKLIST, False, None, BLOCKED.format(matches=matches), details)


# --- pii --------------------------------------------------------------------------------


def pii_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult:
    fields: list[tuple[str, str]] = [("prompt", content) for _, content in item.prompt_messages]
    fields += [("chosen", item.chosen or ""), ("rejected", item.rejected or "")]
    found: dict[str, dict[str, int]] = {}
    for where, text in fields:
        if not text:
            continue
        for match in find_pii(text, region=policy.pii_region):
            counts = found.setdefault(where, {})
            counts[match.kind] = counts.get(match.kind, 0) + 1
    details: dict[str, Any] = {
        "residual": found,
        "redacted_at_ingest": dict(item.pii_counts),
    }
    if not found:
        return FilterResult(PII, True, 0.0, NO_RESIDUAL_PII, details)
    where = "; ".join(
        f"{place} ({', '.join(sorted(found[place]))})"
        for place in ("prompt", "chosen", "rejected")
        if place in found
    )
    total = sum(sum(c.values()) for c in found.values())
    return FilterResult(PII, False, float(total), RESIDUAL_PII.format(where=where), details)


# --- quality ----------------------------------------------------------------------------


def _edit_value(char_similarity: float) -> float:
    edited = 1.0 - char_similarity
    if edited <= EDIT_PEAK:
        return edited / EDIT_PEAK
    return (1.0 - edited) / (1.0 - EDIT_PEAK)


def _clamp(value: float) -> float:
    return min(1.0, max(0.0, value))


def quality_signals(item: FilterInput) -> dict[str, tuple[float, float]]:
    """The quality signals present for item, as {name: (value, weight)}."""
    kinds = set(item.feedback_kinds)
    signals: dict[str, tuple[float, float]] = {}
    # In a preference pair the feedback was given on the model's output, which is the
    # rejected side: it says nothing about the user's text that would win.
    if item.kind != PREFERENCE:
        if item.rating is not None:
            signals["rating"] = (_clamp((item.rating - 1) / 4), W_RATING)
        if kinds & {ACCEPTED, COPIED}:
            signals["accept"] = (1.0, W_ACCEPT)
        up, down = THUMBS_UP in kinds, THUMBS_DOWN in kinds
        if up or down:
            signals["thumbs"] = (0.5 if up and down else float(up), W_THUMBS)
    if item.kind == PREFERENCE and item.chosen is not None and item.rejected is not None:
        char, _ = _edit_similarities(item.chosen, item.rejected)
        signals["edit"] = (_clamp(_edit_value(char)), W_EDIT)
    if item.toxicity is not None:
        signals["toxicity"] = (_clamp(1.0 - item.toxicity), W_TOXICITY)
    if item.chosen is not None:
        words = len(word_tokens(item.chosen))
        signals["length"] = (min(1.0, words / LENGTH_TARGET_WORDS), W_LENGTH)
    return signals


def quality_score(item: FilterInput) -> float | None:
    """The weighted mean of the signals present, or None when there are none."""
    signals = quality_signals(item)
    total = sum(weight for _, weight in signals.values())
    if not total:
        return None
    return sum(value * weight for value, weight in signals.values()) / total


def quality_filter(item: FilterInput, policy: FilterPolicy) -> FilterResult:
    if item.kind == NEEDS_ANSWER:
        return _skipped(QUALITY, NO_CHOSEN_SKIP)
    if item.chosen is None:
        return FilterResult(QUALITY, False, None, MISSING_CHOSEN)
    signals = quality_signals(item)
    score = quality_score(item)
    assert score is not None  # the length signal is present whenever chosen is
    details = {
        "signals": {name: value for name, (value, _) in signals.items()},
        "weights": {name: weight for name, (_, weight) in signals.items()},
    }
    fmt = {"score": score, "minimum": policy.quality_min}
    if score < policy.quality_min:
        return FilterResult(QUALITY, False, score, LOW_QUALITY.format(**fmt), details)
    return FilterResult(QUALITY, True, score, GOOD_QUALITY.format(**fmt), details)


# --- running them -----------------------------------------------------------------------

FilterFunc = Callable[[FilterInput, FilterPolicy], FilterResult]

BUILTIN_FILTERS: dict[str, FilterFunc] = {
    USER_ACTION: user_action_filter,
    LENGTH: length_filter,
    BLOCKLIST: blocklist_filter,
    EDIT_BAND: edit_band_filter,
    PII: pii_filter,
    QUALITY: quality_filter,
}


def run_filters(
    item: FilterInput,
    policy: FilterPolicy,
    *,
    full: bool = False,
    extra: Mapping[str, FilterFunc] | None = None,
) -> list[FilterResult]:
    """Run the policy's enabled filters in FILTER_ORDER.

    Stops after the first failure unless full=True. ``extra`` supplies the stateful steps
    (toxicity, dedup_exact, dedup_near) and may replace a built-in. An enabled filter with no
    implementation is an error rather than a silent pass: a policy that asks for a toxicity
    check must never let a candidate through unchecked. When item.toxicity is None, the
    toxicity step's score is handed on to the filters after it (quality uses it).
    """
    extra = dict(extra or {})
    unknown = sorted(set(extra) - set(FILTER_ORDER))
    if unknown:
        raise ValueError(UNKNOWN_FILTERS.format(names=", ".join(unknown)))
    registry = {**BUILTIN_FILTERS, **extra}
    missing = [n for n in FILTER_ORDER if n in policy.enabled and n not in registry]
    if missing:
        raise ValueError(MISSING_FILTERS.format(names=", ".join(missing)))
    results: list[FilterResult] = []
    for name in FILTER_ORDER:
        if name not in policy.enabled:
            continue
        result = registry[name](item, policy)
        results.append(result)
        if name == TOXICITY and item.toxicity is None and result.score is not None:
            item = replace(item, toxicity=result.score)
        if not result.passed and not full:
            break
    return results
