"""The curators' blocklist: terms and regular expressions, applied to the chosen text (what
would become a winning answer). Pure functions, no Django.

Terms match case-insensitively after NFKC on whole words: "ass" does not match "class" or
"assess"; inflections need their own entries. A side of a term bounded by a Han or kana
character has no word boundary to respect, so it matches inside text. Whitespace inside a
term matches any run of whitespace. Patterns are Python regexes searched case-insensitively
in the raw text.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

EMPTY_TERM = "Blocklist term {n} is empty."
EMPTY_PATTERN = "Blocklist pattern {n} is empty."
INVALID_PATTERN = "Blocklist pattern {n} ({pattern!r}) is not a valid regular expression: {error}."
PATTERN_MATCHES_EMPTY = (
    "Blocklist pattern {n} ({pattern!r}) matches the empty string, so it would block every answer."
)

# Scripts written without spaces between words: each character is a word, and a blocklist
# term has no word boundary to respect next to one. Hiragana, katakana, CJK ideographs
# (extension A, unified, compatibility, extensions B onwards).
NO_SPACE = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\U00020000-\U0003134f"
_SPACED_WORD_CLASS = rf"[^\W{NO_SPACE}]"
_SPACED_WORD_CHAR = re.compile(_SPACED_WORD_CLASS)
_WHITESPACE = re.compile(r"\s+")


def _normalise_for_terms(text: str) -> str:
    return unicodedata.normalize("NFKC", text).casefold()


def _term_key(term: str) -> str:
    return " ".join(_WHITESPACE.split(_normalise_for_terms(term).strip()))


def _trie_regex(keys: Iterable[str]) -> str:
    """A regex matching exactly the given keys, branching one character at a time.

    Python's re tries the branches of an alternation one after another at every position,
    so 200 terms as "t1|t2|..." cost 50 ms on a 2 KB answer; shared prefixes merged into a
    trie bring that to well under a millisecond. A space in a key matches any whitespace run.
    """
    trie: dict[str, dict] = {}
    for key in keys:
        node = trie
        for ch in key:
            node = node.setdefault(ch, {})
        node[""] = {}

    def render(node: dict[str, dict]) -> str:
        branches = [
            (r"\s+" if ch == " " else re.escape(ch)) + render(child)
            for ch, child in sorted(node.items())
            if ch
        ]
        if not branches:
            return ""
        body = branches[0] if len(branches) == 1 else "(?:" + "|".join(branches) + ")"
        # Greedy: the longest term is tried first and shorter ones on backtracking.
        return f"(?:{body})?" if "" in node else body

    return render(trie)


@dataclass(frozen=True)
class _CompiledBlocklist:
    term_by_key: dict[str, int]
    term_regex: re.Pattern[str] | None
    patterns: tuple[re.Pattern[str], ...]


@lru_cache(maxsize=16)
def _compile_blocklist(terms: tuple[str, ...], patterns: tuple[str, ...]) -> _CompiledBlocklist:
    term_by_key: dict[str, int] = {}
    for index, term in enumerate(terms):
        if term.strip():
            term_by_key.setdefault(_term_key(term), index)
    # A boundary only on a side that ends in a spaced-script word character: that is what
    # keeps "ass" out of "class", while "c++" or a Han term may sit against anything.
    groups: dict[tuple[bool, bool], list[str]] = {}
    for key in term_by_key:
        edges = (bool(_SPACED_WORD_CHAR.match(key[0])), bool(_SPACED_WORD_CHAR.match(key[-1])))
        groups.setdefault(edges, []).append(key)
    alternatives = [
        (rf"(?<!{_SPACED_WORD_CLASS})" if before else "")
        + "(?:"
        + _trie_regex(keys)
        + ")"
        + (rf"(?!{_SPACED_WORD_CLASS})" if after else "")
        for (before, after), keys in sorted(groups.items())
    ]
    term_regex = re.compile("|".join(alternatives)) if alternatives else None
    compiled = tuple(re.compile(p, re.IGNORECASE) for p in patterns)
    return _CompiledBlocklist(term_by_key, term_regex, compiled)


def validate_blocklist(patterns: Sequence[str], *, terms: Sequence[str] = ()) -> list[str]:
    """Human-readable errors for a curator's blocklist (numbered from 1); empty if valid."""
    errors = [EMPTY_TERM.format(n=n) for n, term in enumerate(terms, 1) if not term.strip()]
    for n, pattern in enumerate(patterns, 1):
        if not pattern:
            errors.append(EMPTY_PATTERN.format(n=n))
            continue
        try:
            compiled = re.compile(pattern, re.IGNORECASE)
        except re.error as exc:
            errors.append(INVALID_PATTERN.format(n=n, pattern=pattern, error=exc))
            continue
        if compiled.search("") is not None:
            errors.append(PATTERN_MATCHES_EMPTY.format(n=n, pattern=pattern))
    return errors


def blocklist_matches(
    text: str, *, terms: tuple[str, ...], patterns: tuple[str, ...]
) -> tuple[list[str], list[str]]:
    """The terms and the patterns `text` matches, each in the curator's order."""
    compiled = _compile_blocklist(terms, patterns)
    hit_terms: list[str] = []
    if compiled.term_regex is not None:
        normalised = _normalise_for_terms(text)
        hit = {
            compiled.term_by_key[_WHITESPACE.sub(" ", m[0])]
            for m in compiled.term_regex.finditer(normalised)
        }
        hit_terms = [terms[i] for i in sorted(hit)]
    hit_patterns = [patterns[i] for i, p in enumerate(compiled.patterns) if p.search(text)]
    return hit_terms, hit_patterns
