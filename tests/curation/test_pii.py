import dataclasses
import re

import pytest
from stdnum import luhn

from curation.pii import (
    NOT_TEXT,
    PLACEHOLDERS,
    UNKNOWN_REGION,
    PiiMatch,
    find_pii,
    merge_counts,
    redact,
)
from curation.pii_json import redact_json

POSITIVES = [
    # email
    ("john@example.com", "email"),
    ("jane.doe+tag@mail.example.co.uk", "email"),
    ("first_last@sub.domain.org", "email"),
    ("USER.NAME@EXAMPLE.COM", "email"),
    ("josé@bücher.de", "email"),
    ("a.b-c%d@x-y.io", "email"),
    # phone
    ("(415) 555-2671", "phone"),
    ("+44 20 7946 0958", "phone"),
    ("415-555-2671", "phone"),
    ("415.555.2671", "phone"),
    ("4155552671", "phone"),
    ("+1 415 555 2671", "phone"),
    ("+1 (212) 555-0100", "phone"),
    ("1-800-555-1234", "phone"),
    ("+33 1 23 45 67 89", "phone"),
    ("+49 30 1234567", "phone"),
    # card
    ("4111 1111 1111 1111", "card"),
    ("4111-1111-1111-1111", "card"),
    ("4111111111111111", "card"),
    ("5500 0000 0000 0004", "card"),
    ("5555-5555-5555-4444", "card"),
    ("3782 822463 10005", "card"),
    ("6011111111111117", "card"),
    # iban
    ("GB82 WEST 1234 5698 7654 32", "iban"),
    ("DE89370400440532013000", "iban"),
    ("DE89 3704 0044 0532 0130 00", "iban"),
    ("FR14 2004 1010 0505 0001 3M02 606", "iban"),
    ("NL91ABNA0417164300", "iban"),
    ("ES91 2100 0418 4502 0005 1332", "iban"),
    # ssn
    ("123-45-6789", "ssn"),
    ("078-05-1120", "ssn"),
    ("123 45 6789", "ssn"),
    ("665-12-3456", "ssn"),
    ("899-99-9999", "ssn"),
    ("001-01-0001", "ssn"),
    # ip
    ("192.168.0.1", "ip"),
    ("10.0.0.255", "ip"),
    ("8.8.8.8", "ip"),
    ("2001:db8::1", "ip"),
    ("2001:0db8:85a3:0000:0000:8a2e:0370:7334", "ip"),
    ("fe80::1ff:fe23:4567:890a", "ip"),
    ("::ffff:192.0.2.1", "ip"),
]

COUNTER_EXAMPLES = [
    # versions
    "Upgrade to v1.2.3 today",
    "Python 3.11.7 is installed",
    "Release 2.0.1-beta is out",
    "semver 1.0.0-rc.1+build.5",
    "v1.2.3.4",
    "version 1.2.3.4 of the driver",
    'AssemblyVersion("1.0.0.0")',
    "Windows build 10.0.19041.1",
    # dates and times
    "Meeting on 2024-01-15",
    "Meeting on 15/01/2024",
    "Meeting on 2024.01.15",
    "at 12:30:45",
    "at 10:30 AM on 2024-01-15 10:30",
    "timestamp 2024-01-15T12:30:45.123Z",
    "Unix time 1700000000",
    # order numbers and other numbers that fail a check
    "Order 4111 1111 1111 1112",
    "Order #1234567890123456",
    "order 1234-5678-9012",
    "build #20240115123",
    "Short numbers 42 and 7",
    "call 555-2671",
    "tel 12345",
    "numbers 1 2 3 4 5 6 7 8 9 10",
    "scores 98 76 54 32 10",
    "in 2024 415 555",
    "Row 1234 567 890",
    # prices and amounts
    "Price $1,234.56",
    "Preis 1.234,56 €",
    "Totals: 1,000,000 and 3.14159265358979",
    # identifiers
    "ISBN 978-3-16-148410-0",
    "ISBN 0-306-40615-2",
    "ISBN 9783161484100",
    "UUID 123e4567-e89b-12d3-a456-426614174000",
    "sha1 3f786850e387550fdab836ed7e6dc881de23001b",
    "git sha 9fceb02 and 1a2b3c4d5e6f",
    "commit 4155552671abc",
    "ID-4155552671",
    "https://example.org/users/4155552671",
    "MAC 00:1a:2b:3c:4d:5e",
    # code
    "for i in range(10): x[1::2] = 255",
    "Slices a[1::2] and b[::3]",
    "std::vector<int>::iterator",
    "0x7fffffff and 1e10 and 6.022e23",
    # years and ports
    "years 1999 and 2024",
    "http://localhost:8000/api",
    "ports 8080 and 5432",
    # near misses
    "000-12-3456",
    "666-12-3456",
    "900-12-3456",
    "123-00-4567",
    "123-45-0000",
    "IP 999.1.1.1",
    "1.2.3.4.5",
    "GB82 WEST 1234 5698 7654 33",
    "@handle and user@localhost",
]

MIXED = (
    "Hi, I'm Jane (jane.doe@example.com, (415) 555-2671). Card 4111 1111 1111 1111, "
    "IBAN GB82 WEST 1234 5698 7654 32, SSN 123-45-6789, from 192.168.0.1 and 2001:db8::1. "
    "Running v1.2.3 since 2024-01-15, paid $1,234.56, see localhost:8000."
)
MIXED_REDACTED = (
    "Hi, I'm Jane ([EMAIL], [PHONE]). Card [CARD], "
    "IBAN [IBAN], SSN [SSN], from [IP] and [IP]. "
    "Running v1.2.3 since 2024-01-15, paid $1,234.56, see localhost:8000."
)


@pytest.mark.parametrize(("value", "kind"), POSITIVES)
def test_it_replaces_pii_in_a_sentence_with_the_typed_placeholder(value, kind):
    text = f"Contact: {value} today."

    redacted, counts = redact(text)

    assert redacted == f"Contact: {PLACEHOLDERS[kind]} today."
    assert counts == {kind: 1}


@pytest.mark.parametrize(("value", "kind"), POSITIVES)
def test_find_pii_reports_the_exact_span_without_changing_text(value, kind):
    text = f"Contact: {value} today."

    assert find_pii(text) == [PiiMatch(kind, 9, 9 + len(value))]


def test_there_are_at_least_five_positives_per_kind():
    kinds = [kind for _, kind in POSITIVES]

    assert {kind: kinds.count(kind) >= 5 for kind in PLACEHOLDERS} == dict.fromkeys(
        PLACEHOLDERS, True
    )


@pytest.mark.parametrize("text", COUNTER_EXAMPLES)
def test_counter_examples_survive_untouched(text):
    assert redact(text) == (text, {})
    assert find_pii(text) == []


def test_order_number_counter_examples_really_fail_luhn():
    assert not luhn.is_valid("4111111111111112")
    assert not luhn.is_valid("1234567890123456")


def test_a_bare_dotted_quad_is_treated_as_an_address_but_a_marked_version_is_not():
    assert redact("ping 1.2.3.4 now")[0] == "ping [IP] now"
    assert redact("ping version 1.2.3.4 now")[0] == "ping version 1.2.3.4 now"


def test_it_redacts_a_mixed_text_and_counts_each_kind():
    redacted, counts = redact(MIXED)

    assert redacted == MIXED_REDACTED
    assert counts == {"email": 1, "phone": 1, "card": 1, "iban": 1, "ssn": 1, "ip": 2}


def test_counts_add_up_repeated_items_and_list_only_kinds_found():
    text = "a@example.com, b@example.org, 415-555-2671, (212) 555-0100 and 8.8.8.8"

    assert redact(text)[1] == {"email": 2, "phone": 2, "ip": 1}


@pytest.mark.parametrize(
    "text",
    [
        MIXED,
        "Call +44 20 7946 0958 or +1 415 555 2671",
        "DE89370400440532013000 and DE89 3704 0044 0532 0130 00",
        "4111111111111111@example.com then 192.168.0.1:8000",
        "no pii here, just 2024 and v1.2.3",
        "",
        # The address glues the number to its token; after "[IP]" it is a phone on its own.
        "::0:0/2012000000",
    ],
)
def test_redaction_is_idempotent(text):
    once, _ = redact(text)

    assert redact(once) == (once, {})


def test_placeholders_are_not_detected_as_pii():
    text = " ".join(PLACEHOLDERS.values())

    assert find_pii(text) == []


def test_placeholders_cover_exactly_the_six_kinds():
    assert PLACEHOLDERS == {
        "email": "[EMAIL]",
        "phone": "[PHONE]",
        "card": "[CARD]",
        "iban": "[IBAN]",
        "ssn": "[SSN]",
        "ip": "[IP]",
    }


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # an email whose local part is a phone number is one email
        ("mail 4155552671@example.com now", [PiiMatch("email", 5, 27)]),
        # the digit groups of an IBAN are not also a card or a phone
        ("DE89 3704 0044 0532 0130 00", [PiiMatch("iban", 0, 27)]),
        # an IPv4-mapped IPv6 address is one address, not two
        ("::ffff:192.0.2.1", [PiiMatch("ip", 0, 16)]),
        # two IBANs in a row are two
        (
            "DE89370400440532013000 GB82WEST12345698765432",
            [PiiMatch("iban", 0, 22), PiiMatch("iban", 23, 45)],
        ),
        # a year before a phone number does not join it
        ("in 2024 415 555 2671 calls", [PiiMatch("phone", 8, 20)]),
    ],
)
def test_overlapping_candidates_resolve_to_the_longer_more_specific_match(text, expected):
    assert find_pii(text) == expected


def test_unicode_text_keeps_offsets_right():
    text = "電話は (415) 555-2671 です 📞, écrivez à josé@bücher.de — merci ✓ 192.168.0.1"

    redacted, counts = redact(text)

    assert redacted == "電話は [PHONE] です 📞, écrivez à [EMAIL] — merci ✓ [IP]"
    assert counts == {"phone": 1, "email": 1, "ip": 1}


def test_non_ascii_digits_and_letters_are_not_mistaken_for_pii():
    arabic_indic = "\u0664\u0661\u0665\u0665\u0665\u0665\u0662\u0666\u0667\u0661"
    fullwidth = "\uff14\uff11\uff15\uff15\uff15\uff15\uff12\uff16\uff17\uff11"
    greek_country_code = "\u0391\u0392"
    text = f"{arabic_indic} and {fullwidth} and {greek_country_code}89 3704 0044 0532 0130 00"

    assert redact(text) == (text, {})


def test_empty_string_has_no_pii():
    assert redact("") == ("", {})
    assert find_pii("") == []


def test_text_without_digits_or_at_sign_is_returned_as_is():
    text = "Plain prose with no numbers: colons, dashes - and (parentheses)."

    redacted, counts = redact(text)

    assert redacted is text
    assert counts == {}


def test_redact_json_walks_nested_structures_keys_included():
    value = {
        "jane@example.com": "key redacted too",
        "messages": [
            {"role": "user", "content": "call me at (415) 555-2671"},
            {"role": "assistant", "content": ["ok", {"deep": "mail jane@example.com"}]},
        ],
        "meta": {"ip": "192.168.0.1", "port": 8000, "score": 0.5, "ok": True, "none": None},
    }

    redacted, counts = redact_json(value)

    assert redacted == {
        "[EMAIL]": "key redacted too",
        "messages": [
            {"role": "user", "content": "call me at [PHONE]"},
            {"role": "assistant", "content": ["ok", {"deep": "mail [EMAIL]"}]},
        ],
        "meta": {"ip": "[IP]", "port": 8000, "score": 0.5, "ok": True, "none": None},
    }
    assert counts == {"phone": 1, "email": 2, "ip": 1}


def test_redact_json_returns_a_new_structure():
    value = {"a": ["jane@example.com"]}

    redacted, _ = redact_json(value)

    assert value == {"a": ["jane@example.com"]}
    assert redacted is not value
    assert redacted["a"] is not value["a"]


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("jane@example.com", ("[EMAIL]", {"email": 1})),
        (42, (42, {})),
        (None, (None, {})),
        ([], ([], {})),
        ({}, ({}, {})),
    ],
)
def test_redact_json_accepts_any_json_value(value, expected):
    assert redact_json(value) == expected


def test_region_decides_national_numbers_but_international_ones_always_count():
    london = "ring 020 7946 0958"

    assert redact(london) == (london, {})
    assert redact(london, region="GB") == ("ring [PHONE]", {"phone": 1})
    assert redact("ring +1 415 555 2671", region="GB") == ("ring [PHONE]", {"phone": 1})


def test_unknown_region_is_refused_with_a_clear_message():
    with pytest.raises(ValueError, match=re.escape(UNKNOWN_REGION.format(region="XX"))):
        redact("call 415-555-2671", region="XX")
    with pytest.raises(ValueError, match=re.escape(UNKNOWN_REGION.format(region="XX"))):
        redact_json({"a": "b"}, region="XX")


def test_non_text_input_is_refused_with_a_clear_message():
    with pytest.raises(TypeError, match=re.escape(NOT_TEXT.format(type_name="bytes"))):
        redact(b"jane@example.com")


def test_pii_match_is_immutable():
    match = PiiMatch("email", 0, 5)

    with pytest.raises(dataclasses.FrozenInstanceError):
        match.start = 1


@pytest.mark.parametrize(
    ("counts", "expected"),
    [
        ((), {}),
        (({"email": 1},), {"email": 1}),
        (({"email": 1}, {"email": 2, "ip": 1}, {}), {"email": 3, "ip": 1}),
        (({"phone": 0},), {}),
    ],
)
def test_merge_counts_sums_by_kind_and_drops_empty_kinds(counts, expected):
    assert merge_counts(*counts) == expected


def test_a_200_kb_text_is_redacted_completely():
    block = MIXED + " Then some ordinary words follow here. "
    text = block * (200_000 // len(block) + 1)
    repeats = text.count(block)

    redacted, counts = redact(text)

    assert len(text) >= 200_000
    assert redacted == (MIXED_REDACTED + " Then some ordinary words follow here. ") * repeats
    assert counts == {
        "email": repeats,
        "phone": repeats,
        "card": repeats,
        "iban": repeats,
        "ssn": repeats,
        "ip": 2 * repeats,
    }


@pytest.mark.parametrize(
    "text",
    [
        "7" * 200_000,
        "1 " * 100_000,
        "1." * 100_000,
        "a" * 200_000 + "@",
        "a@" * 100_000,
        "1:" * 100_000,
        "1::" * 66_000,
        "AB12 " * 40_000,
        "(1)" * 66_000,
    ],
    ids=[
        "digits",
        "spaced-digits",
        "dots",
        "long-local",
        "ats",
        "colons",
        "double-colons",
        "iban-like",
        "parens",
    ],
)
def test_pathological_200_kb_inputs_finish_and_find_nothing(text):
    assert redact(text) == (text, {})
