"""Detect and redact personal data (PII) in free text.

One module serves two callers: ingest redacts every string before anything is stored, and the
curation filter reports residual PII without changing text. Both must agree on what PII is, so
both go through `find_pii`.

Speed: ingest handles more than 10,000 events/s of about 2 KB each. Running
`phonenumbers.PhoneNumberMatcher` over a whole text costs about 2.5 ms, so this module never hands
whole texts to the validating libraries. Cheap compiled regexes find candidate spans (digit runs
with separators, an `@`, colons for IPv6) and only those spans go to `phonenumbers`,
`stdnum.luhn`, `stdnum.iban` and `ipaddress`. A text with no ASCII digit and no `@` is settled by
eleven substring tests (about 0.4 us for 2 KB; one regex class `search` would take 20 us).

Kinds and what counts as one:
- email: `local@domain.tld`, local part up to 64 word characters or `.%+-`, a dotted domain
  ending in an alphabetic top-level label.
- phone: 7 to 15 digits in the usual groupings (spaces, dashes, dots, a parenthesised area code,
  a leading `+CC`) that `phonenumbers.is_valid_number` accepts for the given region; a `+CC`
  prefix selects any country. The digit groups must sit where that country's formats put
  breaks (merged groups are fine): read as bare digits, "2024 415 555" is a valid Washington
  number, its grouping is not. A one-digit group is allowed only first (a trunk prefix such as
  `1-800-...`) or right after `+CC` (`+33 1 23 45 67 89`): this keeps lists of small numbers,
  ISBNs and the like from passing as phones.
- card: 13 to 19 digits, contiguous or in groups of four (Amex 4-6-5 and Diners 4-6-4 too) with
  one kind of separator, first digit 1-6 (the payment-card industries), Luhn-valid.
- iban: country code, two check digits and the rest, contiguous or in space-separated groups,
  accepted by `stdnum.iban` (country format and mod-97 check). Upper case only, as printed.
- ssn: `AAA-GG-SSSS` or `AAA GG SSSS`; area 000, 666 and 9xx, group 00 and serial 0000 are
  never issued and are left alone. Nine bare digits are too ambiguous to call an SSN.
- ip: IPv4 dotted quads accepted by `ipaddress` (which refuses leading zeros), and IPv6 with
  at least three colons and at least one decimal digit. Two-colon forms (`::1`, `fe80::1`) are not
  reported because they collide with Python slices (`a[1::2]`); an IPv6 address made only of the
  letters a-f is not reported because a text without digits takes the fast path.

What is left alone, on purpose: numbers glued to letters or continuing a dotted, dashed or
slashed token (`v1.2.3`, UUIDs, hashes, `ID-4155552671`, URL paths), dates, times, prices,
ports, years, ISBNs and order numbers that fail the checks above.

Four-part version numbers: a dotted quad that is a valid IPv4 address is ambiguous
(`1.2.3.4`). Leaking an address costs more than losing a build number, so a bare dotted quad is
redacted, unless a version marker stands right before it (`v1.2.3.4`, `version 1.2.3.4`,
`AssemblyVersion("1.0.0.0")`, `build 10.0.0.1`). Quads with a part above 255 (`10.0.19041.1`)
are never addresses.

Overlaps: when spans of different kinds overlap, the longer span wins; on equal length the more
specific kind wins, in the order email, iban, card, ssn, ip, phone. Within one run of digits
the scan goes left to right and takes the longest window that validates, trying ssn, card, ip
and phone in that order.

Placeholders contain neither digits nor `@`; `redact` scans its output again until nothing
is found, so redacting twice changes nothing.
"""

from __future__ import annotations

import bisect
import functools
import ipaddress
import re
from dataclasses import dataclass
from string import ascii_uppercase

import phonenumbers
from stdnum import iban as stdnum_iban
from stdnum import luhn

from curation.phones import DIGIT_RUN, NON_DIGIT, looks_like_phone

PLACEHOLDERS: dict[str, str] = {
    "email": "[EMAIL]",
    "phone": "[PHONE]",
    "card": "[CARD]",
    "iban": "[IBAN]",
    "ssn": "[SSN]",
    "ip": "[IP]",
}

UNKNOWN_REGION = "Unknown phone region {region!r}: use a two-letter region code such as 'US'."
NOT_TEXT = "PII detection needs a str, got {type_name}."

# Equal-length overlaps go to the more specific kind: a checksum beats a phone pattern.
_PRIORITY = {"email": 0, "iban": 1, "card": 2, "ssn": 3, "ip": 4, "phone": 5}


@dataclass(frozen=True, slots=True)
class PiiMatch:
    kind: str
    start: int
    end: int


# Scanning a 2 KB text for a character class costs the regex engine about 20 us, most of the
# budget for a clean text; a search for one literal character runs ten times faster. So the
# digit scanners run on a byte copy of the text in which every ASCII digit reads "0" and every
# non-ASCII character "?" (one byte each, so offsets stay equal), with patterns that start with
# a literal.
_DIGITS_AS_ZERO = bytes.maketrans(b"0123456789", b"0000000000")

# A run of digits joined by single separators. The lookahead demands seven number-like
# characters so years, prices and counts in prose never leave the regex engine; possessive
# quantifiers keep failure linear on long digit runs.
_NUM = re.compile(rb"0(?=[0 .\-/()]{6})0*+(?:(?:[ .\-/]|[ ]?\(|\)[ .\-]?)0++)*+")
# An IBAN's check digits, preceded by a country code that is not glued to a word.
# At most 38 characters after the check digits: the longest IBAN plus its group spaces.
_IBAN = re.compile(rb"00(?<=[A-Z][A-Z]00)(?<![A-Za-z0][A-Z][A-Z]00)(?:[ ]?[A-Z0]){0,38}+")
_IBAN_MIN, _IBAN_MAX = 15, 34
_IBAN_LETTER_VALUES = {ord(letter): str(value) for value, letter in enumerate(ascii_uppercase, 10)}
# Every IPv6 address with three colons has a ":hex:" somewhere; the full run is read around it.
_IPV6_HINT = re.compile(r":[0-9A-Fa-f]{0,4}+:")
_IPV6_RUN = re.compile(r"[0-9A-Fa-f:.]{0,64}")
_IPV6_MAX = 45

_SSN_SHAPE = re.compile(r"[0-9]{3}([- ])[0-9]{2}\1[0-9]{4}")
_IPV4_SHAPE = re.compile(r"[0-9]{1,3}(?:\.[0-9]{1,3}){3}")
# Read on the few characters before a dotted quad: a version marker makes it a version number.
_VERSION_BEFORE = re.compile(
    r"(?i)(?:version|\bver|\brelease|\bbuild|\brev(?:ision)?|\bfirmware|\bv)\W{0,3}\Z"
)
_VERSION_LOOKBACK = 24

_EMAIL_LOCAL_REVERSED = re.compile(r"[\w.%+\-]{1,64}")
_EMAIL_DOMAIN = re.compile(r"(?:[^\W_](?:[\w\-]{0,61}[^\W_])?\.)+[^\W\d_]{2,63}(?![\w\-])")

# Short strings (metadata values, names, ids) are most of the calls, and a full scan's fixed
# cost is several microseconds whatever the length. One search for what any match must hold
# settles most of them: an "@" (email), ":hex:" (IPv6), a digit followed by six digits or
# separators (what _NUM needs: phone, card, SSN, IPv4) or two capitals and two digits (an
# IBAN's start). On long texts the digit and "@" tests below are cheaper than this search.
#
# That search is the regex `@|:[0-9A-Fa-f]{0,4}+:|[0-9][0-9 .\-/()]{6}|[A-Z][A-Z][0-9][0-9]`,
# run as `first_hint`: an alternation whose branches start with character classes makes the
# regex engine try every branch at every position (2.2 us on a 170-character metadata object,
# 4.4 us on a 290-character system prompt). On a byte copy in which ASCII digits read "0" and
# capitals "A", three of the branches start with a literal, which the engine finds as fast as
# a substring search: 1.0 and 0.7 us (bench/RESULTS.md, "fourth round").
_SHORT = 256
_HINT_CLASSES = bytes.maketrans(b"0123456789" + ascii_uppercase.encode(), b"0" * 10 + b"A" * 26)
_DIGITS_HINT = re.compile(rb"0[0 .\-/()]{6}")
_IBAN_HINT = b"AA00"
# A UUID never holds PII: each digit run in it is glued to a hex letter or continues its
# dashed token, its groups are too short for an IBAN, and it has no "@" nor ":".
_UUID = re.compile(r"[0-9A-Fa-f]{8}(?:-[0-9A-Fa-f]{4}){3}-[0-9A-Fa-f]{12}")

_MAX_WINDOW_SEGMENTS = 8
_MAX_WINDOW_DIGITS = 19
_MIN_WINDOW_DIGITS = 4
_CARD_GROUPINGS = ((4, 6, 5), (4, 6, 4))


def _is_word_char(ch: str) -> bool:
    return ch.isalnum() or ch == "_"


def check_region(region: str) -> None:
    if region not in phonenumbers.SUPPORTED_REGIONS:
        raise ValueError(UNKNOWN_REGION.format(region=region))


def _check_text(text: object) -> None:
    if not isinstance(text, str):
        raise TypeError(NOT_TEXT.format(type_name=type(text).__name__))


def _looks_like_card(window: str, digits: str) -> bool:
    if digits[0] not in "123456":
        return False
    if window != digits:
        separators = set(DIGIT_RUN.sub("", window))
        if separators not in ({" "}, {"-"}):
            return False
        lengths = tuple(len(group) for group in window.split(separators.pop()))
        four_by_four = all(n == 4 for n in lengths[:-1]) and 1 <= lengths[-1] <= 4
        if not four_by_four and lengths not in _CARD_GROUPINGS:
            return False
    return luhn.is_valid(digits)


def _looks_like_ssn(window: str) -> bool:
    area, group, serial = window[:3], window[4:6], window[7:]
    return area not in ("000", "666") and area[0] != "9" and group != "00" and serial != "0000"


# A window's verdict depends on the window alone, and dates, prices and versions recur: a
# lookup instead of the shape and phone checks (a fifth of scanning a 2 KB text with digits).
@functools.lru_cache(maxsize=16384)
def _classify(window: str, n_digits: int, region: str) -> str | None:
    if n_digits == 9 and _SSN_SHAPE.fullmatch(window):
        return "ssn" if _looks_like_ssn(window) else None
    if n_digits >= 13 and _looks_like_card(window, NON_DIGIT.sub("", window)):
        return "card"
    if n_digits <= 12 and _IPV4_SHAPE.fullmatch(window):
        try:
            ipaddress.IPv4Address(window)
        except ValueError:
            pass
        else:
            return "ip"
    if 7 <= n_digits <= 15 and looks_like_phone(window, region):
        return "phone"
    return None


def _leading_context(text: str, start: int, end: int) -> tuple[int, bool]:
    """Where the candidate really starts, and whether its first segment is glued to a word."""
    if start == 0:
        return start, False
    prev = text[start - 1]
    # A "+" belongs to the number, and so does "(" when it opens an area code closed inside
    # the candidate, as in "(415) 555-2671" (but not the one around "(4155552671)").
    area_end = DIGIT_RUN.match(text, start).end()
    opens_area_code = prev == "(" and area_end < end and text[area_end] == ")"
    if prev == "+" or opens_area_code:
        outer = text[start - 2] if start >= 2 else ""
        return start - 1, bool(outer) and (_is_word_char(outer) or outer in "@+")
    if _is_word_char(prev) or prev in "@+":
        return start, True
    if prev in ".-/" and start >= 2 and _is_word_char(text[start - 2]):
        return start, True
    return start, False


def _trailing_tainted(text: str, end: int) -> bool:
    if end >= len(text):
        return False
    nxt = text[end]
    if _is_word_char(nxt) or nxt == "@":
        return True
    return nxt in ".-/" and end + 1 < len(text) and _is_word_char(text[end + 1])


def _has_digit(text: str) -> bool:
    # Ten substring tests (memchr each) beat one regex class search about 30 to 1 on 2 KB.
    return (
        "0" in text
        or "1" in text
        or "2" in text
        or "3" in text
        or "4" in text
        or "5" in text
        or "6" in text
        or "7" in text
        or "8" in text
        or "9" in text
    )


def _digit_matches(
    text: str, classes: bytes, region: str, claimed: list[PiiMatch], out: list[PiiMatch]
) -> None:
    # Digit runs inside an email or IBAN found already would lose to it anyway; skipping them
    # saves a phone validation per IBAN group.
    claimed_starts = [match.start for match in claimed]
    for m in _NUM.finditer(classes):
        end = m.end()
        k = bisect.bisect_right(claimed_starts, m.start()) - 1
        if k >= 0 and claimed[k].end >= end:
            continue
        start, lead_tainted = _leading_context(text, m.start(), end)
        # Windows may only start or end where the candidate has a space: a dotted, dashed or
        # slashed token (a date, a UUID tail, 1.2.3.4.5) is judged whole, never in pieces.
        segments = []
        offset = start
        for piece in text[start:end].split(" "):
            segments.append((offset, offset + len(piece), len(NON_DIGIT.sub("", piece))))
            offset += len(piece) + 1
        if lead_tainted:
            segments = segments[1:]
        if segments and _trailing_tainted(text, end):
            segments = segments[:-1]
        _scan_windows(text, segments, region, out)


def _scan_windows(
    text: str, segments: list[tuple[int, int, int]], region: str, out: list[PiiMatch]
) -> None:
    n = len(segments)
    digits_before = [0]
    for segment in segments:
        digits_before.append(digits_before[-1] + segment[2])
    i = 0
    while i < n:
        hit_end = -1
        last = min(n, i + _MAX_WINDOW_SEGMENTS) - 1
        for j in range(last, i - 1, -1):
            n_digits = digits_before[j + 1] - digits_before[i]
            if not _MIN_WINDOW_DIGITS <= n_digits <= _MAX_WINDOW_DIGITS:
                continue
            w_start, w_end = segments[i][0], segments[j][1]
            kind = _classify(text[w_start:w_end], n_digits, region)
            if kind == "ip" and _VERSION_BEFORE.search(
                text[max(0, w_start - _VERSION_LOOKBACK) : w_start]
            ):
                kind = None
            if kind is not None:
                out.append(PiiMatch(kind, w_start, w_end))
                hit_end = j
                break
        i = hit_end + 1 if hit_end >= 0 else i + 1


def _iban_matches(text: str, classes: bytes, out: list[PiiMatch]) -> None:
    # A search loop rather than finditer: the regex also swallows what follows an IBAN, which
    # may be the next IBAN, so the next search starts where the accepted one ends.
    pos = 0
    while (m := _IBAN.search(classes, pos)) is not None:
        start = m.start() - 2
        pos = m.start() + 1
        chunks = text[start : m.end()].split(" ")
        if _trailing_tainted(text, m.end()):
            chunks = chunks[:-1]
        # The regex also swallows upper-case words after the number; try the longest prefix
        # of space-separated chunks that can still be an IBAN.
        lengths = []
        compact_len = 0
        for chunk in chunks:
            compact_len += len(chunk)
            if compact_len > _IBAN_MAX:
                break
            lengths.append(compact_len)
        for k in range(len(lengths), 0, -1):
            if lengths[k - 1] < _IBAN_MIN:
                break
            candidate = " ".join(chunks[:k])
            compact = candidate.replace(" ", "")
            # The bare mod-97 check costs a microsecond and settles most upper-case-and-digit
            # runs that are not IBANs; stdnum then checks the country's format.
            rearranged = (compact[4:] + compact[:4]).translate(_IBAN_LETTER_VALUES)
            if int(rearranged) % 97 == 1 and stdnum_iban.is_valid(compact):
                out.append(PiiMatch("iban", start, start + len(candidate)))
                pos = start + len(candidate)
                break


def _ipv6_matches(text: str, out: list[PiiMatch]) -> None:
    covered = 0
    for hint in _IPV6_HINT.finditer(text):
        at = hint.start()
        if at < covered:
            continue
        start = at - _IPV6_RUN.match(text[max(0, at - _IPV6_MAX) : at][::-1]).end()
        end = _IPV6_RUN.match(text, at).end()
        covered = end
        if start > 0 and _is_word_char(text[start - 1]) and text[start] != ":":
            continue  # glued to a word: an identifier, not an address
        if end < len(text) and _is_word_char(text[end]):
            continue
        # A lone colon at either end is punctuation ("addr:2001:db8::1", "...::1: ok").
        while start < end and (
            text[start] == "." or (text[start] == ":" and text[start + 1 : start + 2] != ":")
        ):
            start += 1
        while end > start and (
            text[end - 1] == "." or (text[end - 1] == ":" and text[end - 2 : end] != "::")
        ):
            end -= 1
        candidate = text[start:end]
        if candidate.count(":") < 3 or not _has_digit(candidate):
            continue
        try:
            ipaddress.IPv6Address(candidate)
        except ValueError:
            continue
        out.append(PiiMatch("ip", start, end))


def _email_matches(text: str, out: list[PiiMatch]) -> None:
    at = text.find("@")
    while at != -1:
        local = _EMAIL_LOCAL_REVERSED.match(text[max(0, at - 64) : at][::-1])
        domain = _EMAIL_DOMAIN.match(text, at + 1)
        next_from = at + 1
        if local and domain:
            start = at - local.end()
            while start < at and text[start] == ".":
                start += 1
            if start < at:
                out.append(PiiMatch("email", start, domain.end()))
                next_from = domain.end()
        at = text.find("@", next_from)


def _resolve_overlaps(found: list[PiiMatch]) -> list[PiiMatch]:
    if len(found) <= 1:
        return found
    found.sort(key=lambda m: (m.start - m.end, _PRIORITY[m.kind], m.start))
    starts: list[int] = []
    chosen: list[PiiMatch] = []
    for match in found:
        k = bisect.bisect_left(starts, match.start)
        if k > 0 and chosen[k - 1].end > match.start:
            continue
        if k < len(chosen) and chosen[k].start < match.end:
            continue
        starts.insert(k, match.start)
        chosen.insert(k, match)
    return chosen


def find_pii(text: str, *, region: str = "US") -> list[PiiMatch]:
    """Spans of PII in `text`, sorted by start, never overlapping."""
    _check_text(text)
    check_region(region)
    if len(text) <= _SHORT and (first_hint(text) < 0 or _UUID.fullmatch(text)):
        return []
    has_digit = _has_digit(text)
    has_at = "@" in text
    if not has_digit and not has_at:
        return []
    found: list[PiiMatch] = []
    if has_at:
        _email_matches(text, found)
    if has_digit:
        classes = text.encode("ascii", "replace").translate(_DIGITS_AS_ZERO)
        _iban_matches(text, classes, found)
        if text.count(":") >= 3:
            _ipv6_matches(text, found)
        claimed = sorted(found, key=lambda match: match.start) if found else found
        _digit_matches(text, classes, region, claimed, found)
    return _resolve_overlaps(found)


def redact(text: str, *, region: str = "US") -> tuple[str, dict[str, int]]:
    """`text` with every PII span replaced by its placeholder, and the counts by kind found.

    Scanned again until nothing is found: a placeholder can change what its neighbours mean.
    In "::0:0/2012000000" the address glues the number to its token; after "[IP]" the number
    stands alone, and is a phone. The stored text must hold nothing `find_pii` reports (the
    curation filter re-checks it), so redacting twice changes nothing. Each pass replaces a
    digit or an "@" (every kind holds one; placeholders hold none), so the passes end."""
    counts: dict[str, int] = {}
    while matches := find_pii(text, region=region):
        pieces = []
        cursor = 0
        for match in matches:
            pieces.append(text[cursor : match.start])
            pieces.append(PLACEHOLDERS[match.kind])
            counts[match.kind] = counts.get(match.kind, 0) + 1
            cursor = match.end
        pieces.append(text[cursor:])
        text = "".join(pieces)
    return text, counts


def first_hint(text: str, pos: int = 0) -> int:
    """Where the first place that may hold PII starts at or after `pos` (the hint search,
    see `_SHORT`); -1 if there is none. `find_pii` on a string with no hint finds nothing."""
    classes = text.encode("ascii", "replace").translate(_HINT_CLASSES)
    starts = [classes.find(b"@", pos), classes.find(_IBAN_HINT, pos)]
    if (digits := _DIGITS_HINT.search(classes, pos)) is not None:
        starts.append(digits.start())
    if ":" in text and (colons := _IPV6_HINT.search(text, pos)) is not None:
        starts.append(colons.start())
    return min((start for start in starts if start >= 0), default=-1)


def merge_counts(*counts: dict[str, int]) -> dict[str, int]:
    """Sum per-kind counts, keeping only kinds with a positive total."""
    total: dict[str, int] = {}
    for count in counts:
        for kind, n in count.items():
            total[kind] = total.get(kind, 0) + n
    return {kind: n for kind, n in total.items() if n > 0}
