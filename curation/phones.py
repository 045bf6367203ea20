"""Phone numbers for the PII scan (curation.pii): whether a window of digits and
separators is a valid number of a region. The cheap region checks run first; phonenumbers,
which is dear, decides what they cannot."""

from __future__ import annotations

import functools
import re

import phonenumbers

DIGIT_RUN = re.compile(r"[0-9]+")
NON_DIGIT = re.compile(r"[^0-9]+")

_NationalFilter = tuple[str, re.Pattern, re.Pattern | None, re.Pattern, frozenset[int]]


@functools.cache
def _national_filter(region: str) -> _NationalFilter | None:
    metadata = phonenumbers.PhoneMetadata.metadata_for_region(region)
    general = metadata.general_desc
    if metadata.national_prefix_transform_rule or not general.national_number_pattern:
        # Regions that rewrite the number while stripping the prefix go straight to phonenumbers.
        return None
    return (
        str(metadata.country_code),
        re.compile(metadata.international_prefix or r"(?!)"),
        re.compile(metadata.national_prefix_for_parsing)
        if metadata.national_prefix_for_parsing
        else None,
        re.compile(general.national_number_pattern),
        frozenset(general.possible_length),
    )


def _could_be_national(digits: str, region: str) -> bool:
    """A cheap, conservative reject of numbers that cannot be valid in `region`.

    Parsing and validating one span with phonenumbers costs 30-45 us, more than scanning a
    whole clean 2 KB text, and dates and IDs in prose reach this point often. The region's own
    metadata (length and national-number pattern, after the prefixes phonenumbers would strip)
    rejects most of them for about a microsecond. Anything unsure goes on to phonenumbers.
    """
    rules = _national_filter(region)
    if rules is None:
        return True
    country_code, international, national_prefix, pattern, lengths = rules
    if international.match(digits):
        return True
    candidates = [digits]
    if national_prefix is not None:
        stripped = national_prefix.match(digits)
        if stripped and stripped.end():
            candidates.append(digits[stripped.end() :])
    if digits.startswith(country_code):
        candidates.append(digits[len(country_code) :])
    return any(len(c) in lengths and pattern.fullmatch(c) for c in candidates)


def _is_valid_number(number: phonenumbers.PhoneNumber, region: str) -> bool:
    # is_valid_number walks every region sharing the country code (25 for +1), compiling their
    # patterns as it goes; the expected region first settles nearly every number in one step.
    home = phonenumbers.region_code_for_country_code(number.country_code)
    expected = region if number.country_code == _country_code(region) else home
    return phonenumbers.is_valid_number_for_region(
        number, expected
    ) or phonenumbers.is_valid_number(number)


@functools.cache
def _country_code(region: str) -> int:
    return phonenumbers.country_code_for_region(region)


def _groups_fit_format(window: str, number: phonenumbers.PhoneNumber) -> bool:
    """Whether every break between digit groups in `window` falls where the country's main
    format puts one (groups may be merged, never split).

    Read as bare digits, "2024 415 555" and "2024.01.15 12" are valid Washington DC numbers;
    their groups are what gives them away.
    """
    national = phonenumbers.national_significant_number(number)
    digits = NON_DIGIT.sub("", window)
    formatted = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.INTERNATIONAL)
    formatted_groups = DIGIT_RUN.findall(formatted)
    if not digits.endswith(national) or not "".join(formatted_groups).endswith(national):
        return False
    expected: set[int] = set()
    position = len(national) - sum(len(group) for group in formatted_groups)
    for group in formatted_groups:
        position += len(group)
        expected.add(position)
    prefix = len(digits) - len(national)
    position = -prefix
    for group in DIGIT_RUN.findall(window)[:-1]:
        position += len(group)
        if position > 0 and position not in expected:
            return False
    return True


# Support numbers and signatures repeat across traffic; validation is the dear part of the scan.
@functools.lru_cache(maxsize=16384)
def _phone_is_valid(window: str, region: str) -> bool:
    try:
        number = phonenumbers.parse(window, region)
    except phonenumbers.NumberParseException:
        return False
    if not _is_valid_number(number, region):
        return False
    if len(DIGIT_RUN.findall(window)) == 1:
        return True
    if _groups_fit_format(window, number):
        return True
    # Off the main format ("+44 207 946 0958" uses an alternate one) or not lined up: let
    # phonenumbers' own grouping rules, which know every format, decide. Slow, and rare.
    return any(
        found.start == 0 and found.end == len(window)
        for found in phonenumbers.PhoneNumberMatcher(
            window, region, leniency=phonenumbers.Leniency.STRICT_GROUPING
        )
    )


def looks_like_phone(window: str, region: str) -> bool:
    if "/" in window:
        return False
    groups = DIGIT_RUN.findall(window)
    if len(groups) > 6:
        return False
    international = window[0] == "+"
    for position, group in enumerate(groups[1:], start=1):
        if len(group) == 1 and not (position == 1 and international):
            return False
    if not international and not _could_be_national("".join(groups), region):
        return False
    return _phone_is_valid(window, region)
