"""The scanner's shortcut for short strings (metadata values, names, ids) finds exactly
what the full scan finds: the same string padded with spaces past any shortcut's length
limit goes through the full scan, and spaces before a string change no verdict. The same
for metadata, which redact_json settles with one search over all its strings."""

import re
import uuid

from hypothesis import given, settings
from hypothesis import strategies as st

from curation.pii import find_pii, first_hint, merge_counts, redact
from curation.pii_json import redact_json

PAD = 2000  # well past the length below which the shortcut applies

# Characters every kind of match is built from, and the separators and letters around them.
_ALPHABET = "0123456789 .-/()+:@abcdefxyzABCDEFGBWESTv"
_PIECES = st.sampled_from(
    [
        "4111 1111 1111 1111",
        "123-45-6789",
        "+1 650 253 0000",
        "(415) 555-2671",
        "10.1.2.3",
        "2001:db8::8a2e:370:7334",
        "GB82 WEST 1234 5698 7654 32",
        "anna@example.com",
        "v1.2.3.4",
    ]
)
_SHORT_TEXT = st.lists(
    st.one_of(st.text(alphabet=_ALPHABET, max_size=24), _PIECES), max_size=6
).map("".join)


def _full_scan(text: str) -> list[tuple[str, int, int]]:
    return [(m.kind, m.start - PAD, m.end - PAD) for m in find_pii(" " * PAD + text)]


def _scan(text: str) -> list[tuple[str, int, int]]:
    return [(m.kind, m.start, m.end) for m in find_pii(text)]


@settings(max_examples=300, deadline=None)
@given(_SHORT_TEXT)
def test_a_short_string_gets_the_full_scans_verdict(text):
    assert _scan(text) == _full_scan(text)


@settings(max_examples=150, deadline=None)
@given(st.uuids(), st.booleans(), st.integers(min_value=0, max_value=2**128 - 1))
def test_a_uuid_is_never_pii_in_either_scan(value, upper, digits_only):
    text = str(value).upper() if upper else str(value)
    numeric = str(uuid.UUID(int=int(str(digits_only).zfill(32)[-32:], 16)))
    for candidate in (text, numeric):
        assert _scan(candidate) == _full_scan(candidate) == []


def test_short_strings_with_pii_are_still_found():
    assert [m.kind for m in find_pii("call +1 650 253 0000")] == ["phone"]
    assert [m.kind for m in find_pii("a@b.io")] == ["email"]
    assert find_pii("4.2.1") == find_pii("tenant-113") == []


# Metadata: JSON values whose strings (keys too) are short texts as above, UUIDs among them.
_JSON_STRING = st.one_of(_SHORT_TEXT, st.uuids().map(str))
_JSON = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), _JSON_STRING),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.lists(inner, max_size=3).map(tuple),
        st.dictionaries(_JSON_STRING, inner, max_size=4),
    ),
    max_leaves=12,
)


def _strings(value) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for key, item in value.items() for s in [key, *_strings(item)]]
    if isinstance(value, list | tuple):
        return [s for item in value for s in _strings(item)]
    return []


@settings(max_examples=300, deadline=None)
@given(_JSON)
def test_redact_json_finds_what_scanning_each_string_finds(value):
    """redact_json settles metadata with one search over all its strings; what it reports
    is what `redact` reports string by string, and a value without PII comes back as is."""
    redacted, counts = redact_json(value)
    assert counts == merge_counts(*(redact(text)[1] for text in _strings(value)))
    if not counts:
        assert redacted is value


# The shortcut's search, as a regex: `pii.first_hint` runs it on a byte copy with literal
# prefixes (much faster) and must find the same first match from any position.
_HINT_SPEC = re.compile(r"@|:[0-9A-Fa-f]{0,4}+:|[0-9][0-9 .\-/()]{6}|[A-Z][A-Z][0-9][0-9]")


@settings(max_examples=500, deadline=None)
@given(
    st.one_of(_SHORT_TEXT, st.text(alphabet=_ALPHABET + "é€😀\n\ud800", max_size=60)),
    st.integers(min_value=0, max_value=70),
)
def test_the_hint_search_finds_what_its_regex_finds(text, pos):
    found = _HINT_SPEC.search(text, pos)
    assert first_hint(text, pos) == (found.start() if found else -1)


@settings(max_examples=400, deadline=None)
@given(_SHORT_TEXT, st.booleans())
def test_redacting_twice_changes_nothing(text, padded):
    # A placeholder changes what its neighbours mean ("::0:0/2012000000"): redact scans its
    # output again until nothing is found.
    text = " " * PAD + text if padded else text
    once, counts = redact(text)
    assert redact(once) == (once, {})
    assert find_pii(once) == []
    assert sum(counts.values()) >= len(find_pii(text))
