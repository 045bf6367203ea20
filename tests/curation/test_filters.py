import json
from dataclasses import asdict, replace

import pytest

from curation import blocklist, filter_rules
from curation.blocklist import EMPTY_PATTERN, EMPTY_TERM, PATTERN_MATCHES_EMPTY, validate_blocklist
from curation.filter_rules import (
    ABOVE_BAND,
    APPROVED,
    BELOW_BAND,
    BLOCKED,
    EDITED_BY_USER,
    GOOD_QUALITY,
    IDENTICAL,
    IN_BAND,
    LONG_ENOUGH,
    LOW_QUALITY,
    MISSING_CHOSEN,
    MISSING_REJECTED,
    NEEDS_ANSWER_ROUTED,
    NEGATIVE_FEEDBACK,
    NO_APPROVAL,
    NO_CHOSEN_SKIP,
    NO_EDIT,
    NO_RESIDUAL_PII,
    NOT_BLOCKED,
    NOT_PREFERENCE_SKIP,
    REGENERATED_REASON,
    RESIDUAL_PII,
    TOO_SHORT,
    blocklist_filter,
    edit_band_filter,
    edit_similarities,
    length_filter,
    pii_filter,
    quality_filter,
    quality_score,
    quality_signals,
    run_filters,
    user_action_filter,
    word_tokens,
)
from curation.filters import (
    BAD_BAND,
    BAD_BAND_MEASURE,
    BAD_FRACTION,
    BAD_MIN_WORDS,
    FILTER_ORDER,
    MISSING_FILTERS,
    SCORER_NAME,
    SCORER_VERSION,
    UNKNOWN_FILTERS,
    UNKNOWN_KIND,
    FilterInput,
    FilterPolicy,
    FilterResult,
)
from curation.pii import UNKNOWN_REGION, PiiMatch

POLICY = FilterPolicy()
PROMPT = ({"role": "user", "content": "How do I rotate logs?"},)


def words(n: int, stem: str = "word") -> str:
    return " ".join(f"{stem}{i}" for i in range(n))


def substituted(n: int, *, length: int = 100) -> str:
    """A string of `length` a's with the first n replaced: Levenshtein distance n from a*length."""
    return "b" * n + "a" * (length - n)


def sft(chosen: str | None = None, kinds=("accepted",), **kw) -> FilterInput:
    return FilterInput(
        kind="sft",
        prompt_messages=PROMPT,
        chosen=words(30) if chosen is None else chosen,
        feedback_kinds=kinds,
        **kw,
    )


def pref(chosen: str, rejected: str | None, kinds=("edited",), **kw) -> FilterInput:
    return FilterInput(
        kind="preference",
        chosen=chosen,
        rejected=rejected,
        feedback_kinds=kinds,
        **{"prompt_messages": PROMPT, **kw},
    )


def needs_answer(kinds=("thumbs_down",), **kw) -> FilterInput:
    return FilterInput(
        kind="needs_answer",
        prompt_messages=PROMPT,
        rejected="A bad answer.",
        feedback_kinds=kinds,
        **kw,
    )


def stub(name: str, *, passed: bool = True, score: float | None = None, calls=None):
    def run(item: FilterInput, policy: FilterPolicy) -> FilterResult:
        if calls is not None:
            calls.append((name, item))
        return FilterResult(name, passed, score, "stub", {}, "stub-scorer", "0")

    return run


STATEFUL_STUBS = {name: stub(name) for name in ("dedup_exact", "dedup_near", "toxicity")}


# --- FilterInput and FilterPolicy ---------------------------------------------------------


def test_input_refuses_an_unknown_kind():
    with pytest.raises(ValueError, match=UNKNOWN_KIND):
        FilterInput(kind="dpo")


def test_input_normalises_messages_to_role_content_pairs():
    item = FilterInput(
        kind="sft",
        prompt_messages=[
            {"role": "system", "content": "Be brief."},
            {"role": "user", "content": [{"type": "text", "text": "Hi"}, {"type": "image"}]},
            {"role": "assistant", "content": None},
            ("user", "Thanks"),
        ],
        feedback_kinds=["accepted"],
    )
    assert item.prompt_messages == (
        ("system", "Be brief."),
        ("user", "Hi"),
        ("assistant", ""),
        ("user", "Thanks"),
    )
    assert item.feedback_kinds == ("accepted",)
    assert replace(item, feedback_kinds="copied").feedback_kinds == ("copied",)
    assert replace(item, toxicity=0.5).prompt_messages == item.prompt_messages


def test_policy_defaults_match_the_issue():
    assert (POLICY.min_words, POLICY.band_low, POLICY.band_high, POLICY.band_measure) == (
        20,
        0.10,
        0.95,
        "char",
    )
    assert (POLICY.toxicity_threshold, POLICY.quality_min, POLICY.near_dup_threshold) == (
        0.1,
        0.6,
        0.9,
    )
    assert POLICY.enabled == FILTER_ORDER


def test_policy_turns_lists_from_json_into_tuples():
    policy = FilterPolicy(blocklist_terms=["a"], blocklist_patterns=["b+"], enabled=["length"])
    assert policy.blocklist_terms == ("a",)
    assert policy.blocklist_patterns == ("b+",)
    assert policy.enabled == ("length",)
    assert hash(policy) == hash(replace(policy))


def test_policy_turns_decimals_into_floats_for_json():
    from decimal import Decimal

    policy = FilterPolicy(band_low=Decimal("0.10"), quality_min=Decimal("0.6"))
    assert (policy.band_low, policy.quality_min) == (0.1, 0.6)
    result = edit_band_filter(pref(substituted(90), "a" * 100), policy)
    assert result.passed
    assert json.dumps(result.details)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"band_low": 0.6, "band_high": 0.5}, BAD_BAND),
        ({"band_low": -0.1}, BAD_BAND),
        ({"band_high": 1.1}, BAD_BAND),
        ({"band_measure": "token"}, BAD_BAND_MEASURE),
        ({"min_words": -1}, BAD_MIN_WORDS),
        ({"quality_min": 1.5}, BAD_FRACTION.format(name="quality_min")),
        ({"toxicity_threshold": -0.5}, BAD_FRACTION.format(name="toxicity_threshold")),
        ({"near_dup_threshold": 2}, BAD_FRACTION.format(name="near_dup_threshold")),
        ({"enabled": ("length", "vibes")}, UNKNOWN_FILTERS.format(names="vibes")),
        ({"blocklist_patterns": ("(",)}, "Blocklist pattern 1 ('(') is not a valid"),
        ({"blocklist_terms": ("ok", " ")}, EMPTY_TERM.format(n=2)),
        ({"pii_region": "XX"}, UNKNOWN_REGION.format(region="XX")),
    ],
)
def test_policy_refuses_invalid_settings(kwargs, message):
    with pytest.raises(ValueError) as exc:
        FilterPolicy(**kwargs)
    assert message in str(exc.value)


# --- user_action --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "passed", "reason"),
    [
        (needs_answer(("thumbs_down",)), True, NEEDS_ANSWER_ROUTED),
        (needs_answer(("regenerated",)), True, NEEDS_ANSWER_ROUTED),
        (sft(kinds=("accepted",)), True, APPROVED.format(signals="accepted")),
        (sft(kinds=("copied",)), True, APPROVED.format(signals="copied")),
        (sft(kinds=("edited",)), True, APPROVED.format(signals="edited")),
        (sft(kinds=("corrected",)), True, APPROVED.format(signals="corrected")),
        (sft(kinds=("thumbs_up",)), True, APPROVED.format(signals="thumbs_up")),
        (sft(kinds=(), rating=4), True, APPROVED.format(signals="rating 4")),
        (
            sft(kinds=("copied", "accepted"), rating=5),
            True,
            APPROVED.format(signals="accepted, copied, rating 5"),
        ),
        (sft(kinds=("regenerated", "accepted")), False, REGENERATED_REASON),
        (sft(kinds=("regenerated",)), False, REGENERATED_REASON),
        (sft(kinds=("thumbs_down",)), False, NEGATIVE_FEEDBACK.format(signals="thumbs_down")),
        (
            sft(kinds=("thumbs_down", "copied")),
            False,
            NEGATIVE_FEEDBACK.format(signals="thumbs_down"),
        ),
        (sft(kinds=("accepted",), rating=2), False, NEGATIVE_FEEDBACK.format(signals="rating 2")),
        (sft(kinds=()), False, NO_APPROVAL),
        (sft(kinds=("comment",)), False, NO_APPROVAL),
        (sft(kinds=(), rating=3), False, NO_APPROVAL),
        (pref("x", "y", ("edited",)), True, EDITED_BY_USER.format(signals="edited")),
        (
            pref("x", "y", ("corrected", "thumbs_down")),
            True,
            EDITED_BY_USER.format(signals="corrected"),
        ),
        (pref("x", "y", ("edited",), rating=1), True, EDITED_BY_USER.format(signals="edited")),
        (pref("x", "y", ("accepted",)), False, NO_EDIT),
        (pref("x", "y", ("edited", "regenerated")), False, REGENERATED_REASON),
    ],
)
def test_user_action(item, passed, reason):
    result = user_action_filter(item, POLICY)
    assert (result.name, result.passed, result.reason) == ("user_action", passed, reason)


# --- length -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", []),
        ("Hello, wörld!", ["Hello", "wörld"]),
        ("don't snake_case 42", ["don", "t", "snake_case", "42"]),
        ("你好世界", ["你", "好", "世", "界"]),
        ("カタカナ and ひらがな", ["カ", "タ", "カ", "ナ", "and", "ひ", "ら", "が", "な"]),
        ("😀 🎉 👍", []),
        ("안녕하세요 세계", ["안녕하세요", "세계"]),  # Korean is written with spaces
    ],
)
def test_word_tokens(text, expected):
    assert word_tokens(text) == expected


@pytest.mark.parametrize(
    ("chosen", "min_words", "passed", "count"),
    [
        (words(20), 20, True, 20),
        (words(19), 20, False, 19),
        ("", 20, False, 0),
        ("", 0, True, 0),
        ("日" * 20, 20, True, 20),
        ("日" * 19, 20, False, 19),
        ("😀" * 200, 1, False, 0),
        (words(20) + " 🎉" * 10, 20, True, 20),
    ],
)
def test_length_counts_words_of_the_chosen_text(chosen, min_words, passed, count):
    result = length_filter(sft(chosen), FilterPolicy(min_words=min_words))
    assert (result.passed, result.score, result.details["words"]) == (passed, count, count)
    template = LONG_ENOUGH if passed else TOO_SHORT
    assert result.reason == template.format(words=count, minimum=min_words)


def test_length_passes_a_100kb_answer():
    text = words(20_000)
    assert len(text) > 100_000
    assert length_filter(sft(text), POLICY).score == 20_000


def test_length_skips_a_candidate_that_needs_an_answer():
    result = length_filter(needs_answer(), POLICY)
    assert (result.passed, result.reason, result.details) == (
        True,
        NO_CHOSEN_SKIP,
        {"skipped": True},
    )


def test_length_fails_an_sft_without_chosen_text():
    item = FilterInput(kind="sft", chosen=None, feedback_kinds=("accepted",))
    result = length_filter(item, POLICY)
    assert (result.passed, result.reason) == (False, MISSING_CHOSEN)


# --- edit_band ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("substitutions", "similarity", "passed", "template"),
    [
        (4, 0.96, False, ABOVE_BAND),
        (5, 0.95, True, IN_BAND),  # exactly at the upper bound: inclusive
        (50, 0.50, True, IN_BAND),
        (90, 0.10, True, IN_BAND),  # exactly at the lower bound: inclusive
        (91, 0.09, False, BELOW_BAND),
        (100, 0.0, False, BELOW_BAND),
    ],
)
def test_edit_band_char_similarity_at_and_around_its_bounds(
    substitutions, similarity, passed, template
):
    result = edit_band_filter(pref(substituted(substitutions), "a" * 100), POLICY)
    assert result.score == similarity
    assert result.details["char_similarity"] == similarity
    assert result.passed is passed
    assert result.reason == template.format(
        measure="Char", similarity=similarity, low=0.10, high=0.95
    )


@pytest.mark.parametrize(
    ("chosen", "rejected", "similarity", "passed"),
    [
        (words(19) + " changed", words(20), 0.95, True),  # 1 of 20 words: upper bound
        (words(9, "new") + " word9", words(10), 0.10, True),  # 9 of 10 words: lower bound
        (words(18) + " x y", words(20), 0.90, True),
        ("completely different", words(10), 0.0, False),
    ],
)
def test_edit_band_word_similarity_at_its_bounds(chosen, rejected, similarity, passed):
    result = edit_band_filter(pref(chosen, rejected), FilterPolicy(band_measure="word"))
    assert result.score == similarity
    assert result.details["word_similarity"] == similarity
    assert result.details["measure"] == "word"
    assert result.passed is passed


@pytest.mark.parametrize("band_high", [0.95, 1.0])
def test_edit_band_fails_identical_texts_whatever_the_band(band_high):
    result = edit_band_filter(pref("Same text.", "Same text."), FilterPolicy(band_high=band_high))
    assert (result.passed, result.score, result.reason) == (False, 1.0, IDENTICAL)


def test_edit_band_treats_two_empty_texts_as_identical():
    result = edit_band_filter(pref("", ""), POLICY)
    assert (result.passed, result.reason) == (False, IDENTICAL)
    assert result.details["char_similarity"] == result.details["word_similarity"] == 1.0


def test_edit_band_against_an_empty_text_is_a_rewrite():
    result = edit_band_filter(pref("A full answer.", ""), POLICY)
    assert (result.passed, result.score) == (False, 0.0)


def test_edit_band_records_both_similarities_as_json():
    result = edit_band_filter(pref("the cat sat", "the dog sat"), POLICY)
    assert result.details == {
        "char_similarity": 8 / 11,
        "word_similarity": 2 / 3,
        "measure": "char",
        "band": [0.10, 0.95],
    }
    assert json.loads(json.dumps(result.details)) == result.details


def test_edit_band_measures_cjk_and_emoji_by_code_point_and_word():
    sims = edit_similarities(chosen="你好世界😀", rejected="你好世界😁")
    # One code point of five differs; the emoji is not a word, so no word changed.
    assert sims == {"char": 0.8, "word": 1.0}
    by_word = edit_band_filter(pref("你好世界😀", "你好世界😁"), FilterPolicy(band_measure="word"))
    assert (by_word.passed, by_word.score) == (False, 1.0)
    assert edit_band_filter(pref("你好世界😀", "你好世界😁"), POLICY).passed


def test_edit_band_handles_100kb_texts():
    rejected = "a" * 100_000
    chosen = "b" * 10_000 + "a" * 90_000
    result = edit_band_filter(pref(chosen, rejected), POLICY)
    assert (result.passed, result.score) == (True, 0.9)


@pytest.mark.parametrize("item", [sft(), needs_answer()])
def test_edit_band_skips_candidates_that_are_not_pairs(item):
    result = edit_band_filter(item, POLICY)
    assert (result.passed, result.reason, result.details) == (
        True,
        NOT_PREFERENCE_SKIP,
        {"skipped": True},
    )


def test_edit_band_fails_a_pair_without_rejected_text():
    result = edit_band_filter(pref("text", None), POLICY)
    assert (result.passed, result.reason) == (False, MISSING_REJECTED)


# --- blocklist ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("term", "text", "blocked"),
    [
        ("ass", "a class act", False),
        ("ass", "we assess it", False),
        ("ass", "You ASS!", True),
        ("ass", "ass.", True),
        ("ass", "(ass)", True),
        ("bad word", "this is a BAD\n  word indeed", True),
        ("bad word", "bad words", False),
        ("bad word", "badword", False),
        ("über", "Übermensch", False),
        ("über", "ganz ÜBER alles", True),
        ("café", "CAFE\u0301 au lait", True),  # decomposed é, NFKC composes it
        ("strasse", "Hauptstraße", False),
        ("strasse", "die Straße", True),  # casefold: ß is ss
        ("笨蛋", "你是笨蛋吗", True),  # no word boundaries in Chinese
        ("c++", "I write C++ daily", True),
        ("😈", "evil 😈 grin", True),
    ],
)
def test_blocklist_terms_match_whole_words_case_insensitively(term, text, blocked):
    result = blocklist_filter(sft(text), FilterPolicy(blocklist_terms=(term,)))
    assert result.passed is not blocked
    if blocked:
        assert result.reason == BLOCKED.format(matches=f'term "{term}"')
        assert result.details == {"terms": [term], "patterns": []}
    else:
        assert result.reason == NOT_BLOCKED


def test_blocklist_patterns_are_case_insensitive_regexes():
    policy = FilterPolicy(blocklist_patterns=(r"kill\s+yourself", r"\bunrelated\b"))
    result = blocklist_filter(sft("Please don't KILL   Yourself."), policy)
    assert not result.passed
    assert result.reason == BLOCKED.format(matches=r'pattern "kill\s+yourself"')
    assert result.details == {"terms": [], "patterns": [r"kill\s+yourself"]}


def test_blocklist_reports_every_match():
    policy = FilterPolicy(blocklist_terms=("foo", "bar baz", "zip"), blocklist_patterns=("q+x",))
    result = blocklist_filter(sft("bar baz then foo and foo, qqx"), policy)
    assert result.details == {"terms": ["foo", "bar baz"], "patterns": ["q+x"]}
    assert result.reason == BLOCKED.format(matches='term "foo", term "bar baz", pattern "q+x"')


def test_blocklist_terms_sharing_a_prefix_are_told_apart():
    policy = FilterPolicy(blocklist_terms=("bad", "bad word", "badger", "BAD", "bade"))
    assert blocklist_filter(sft("a badger"), policy).details["terms"] == ["badger"]
    assert blocklist_filter(sft("bad words"), policy).details["terms"] == ["bad"]
    assert blocklist_filter(sft("a bad word"), policy).details["terms"] == ["bad word"]
    assert blocklist_filter(sft("badly"), policy).passed


def test_blocklist_applies_to_the_chosen_text_only():
    policy = FilterPolicy(blocklist_terms=("darn",))
    item = pref("A clean edit.", "Darn, a model output.", prompt_messages=(("user", "darn it"),))
    assert blocklist_filter(item, policy).passed


def test_empty_blocklist_passes_everything():
    assert blocklist_filter(sft("anything at all"), POLICY).reason == NOT_BLOCKED


def test_blocklist_skips_a_candidate_that_needs_an_answer():
    policy = FilterPolicy(blocklist_terms=("bad",))
    assert blocklist_filter(needs_answer(), policy).details == {"skipped": True}


def test_blocklist_is_compiled_once_per_policy_content():
    blocklist._compile_blocklist.cache_clear()
    policy = FilterPolicy(blocklist_terms=("foo",), blocklist_patterns=("bar",))
    for text in ("one", "two", "three"):
        blocklist_filter(sft(text), policy)
    blocklist_filter(
        sft("four"), FilterPolicy(blocklist_terms=("foo",), blocklist_patterns=("bar",))
    )
    info = blocklist._compile_blocklist.cache_info()
    assert (info.misses, info.hits) == (1, 3)


def test_blocklist_scans_a_100kb_answer():
    text = words(20_000) + " forbidden"
    policy = FilterPolicy(blocklist_terms=("forbidden",), blocklist_patterns=(r"word1999\d",))
    result = blocklist_filter(sft(text), policy)
    assert result.details == {"terms": ["forbidden"], "patterns": [r"word1999\d"]}


@pytest.mark.parametrize(
    ("patterns", "terms", "errors"),
    [
        ((), (), []),
        ((r"\bfoo\b", "bar+"), ("baz", "two words"), []),
        (("",), (), [EMPTY_PATTERN.format(n=1)]),
        (("ok", "a*"), (), [PATTERN_MATCHES_EMPTY.format(n=2, pattern="a*")]),
        ((), ("fine", "  "), [EMPTY_TERM.format(n=2)]),
        (
            ("(unclosed", "[z-a]"),
            (),
            [
                "Blocklist pattern 1 ('(unclosed') is not a valid regular expression: "
                "missing ), unterminated subpattern at position 0.",
                "Blocklist pattern 2 ('[z-a]') is not a valid regular expression: "
                "bad character range z-a at position 1.",
            ],
        ),
    ],
)
def test_validate_blocklist(patterns, terms, errors):
    assert validate_blocklist(patterns, terms=terms) == errors


# --- pii ----------------------------------------------------------------------------------


def test_pii_passes_clean_text_and_redaction_placeholders():
    item = pref(
        "Write to [EMAIL] or call [PHONE].",
        "Write to support.",
        pii_counts={"email": 1, "phone": 1},
    )
    result = pii_filter(item, POLICY)
    assert (result.passed, result.score, result.reason) == (True, 0.0, NO_RESIDUAL_PII)
    assert result.details == {"residual": {}, "redacted_at_ingest": {"email": 1, "phone": 1}}


def test_pii_names_where_and_what_but_never_the_text():
    item = pref(
        "Mail jane.doe@example.com or call (650) 253-0000.",
        "No contact details here.",
        prompt_messages=(("system", "Be kind."), ("user", "My SSN is 123-45-6789.")),
    )
    result = pii_filter(item, POLICY)
    assert not result.passed
    assert result.reason == RESIDUAL_PII.format(where="prompt (ssn); chosen (email, phone)")
    assert result.details["residual"] == {"prompt": {"ssn": 1}, "chosen": {"email": 1, "phone": 1}}
    assert result.score == 3.0
    recorded = result.reason + json.dumps(result.details)
    for secret in ("jane.doe", "example.com", "253-0000", "123-45-6789"):
        assert secret not in recorded


def test_pii_checks_every_field_in_a_fixed_order(monkeypatch):
    seen = []

    def fake_find_pii(text, *, region):
        seen.append((text, region))
        return {
            "p1": [PiiMatch("email", 0, 2), PiiMatch("email", 3, 4), PiiMatch("phone", 5, 6)],
            "rej": [PiiMatch("ip", 0, 3)],
        }.get(text, [])

    policy = FilterPolicy(pii_region="GB")
    monkeypatch.setattr(filter_rules, "find_pii", fake_find_pii)
    item = pref("ch", "rej", prompt_messages=(("system", "p1"), ("user", ""), ("user", "p2")))
    result = pii_filter(item, policy)
    assert seen == [("p1", "GB"), ("p2", "GB"), ("ch", "GB"), ("rej", "GB")]
    assert result.reason == RESIDUAL_PII.format(where="prompt (email, phone); rejected (ip)")
    assert result.details["residual"] == {"prompt": {"email": 2, "phone": 1}, "rejected": {"ip": 1}}


def test_pii_checks_the_prompt_of_a_candidate_that_needs_an_answer():
    item = FilterInput(
        kind="needs_answer",
        prompt_messages=(("user", "I am at 192.168.1.20"),),
        rejected="ok",
        feedback_kinds=("thumbs_down",),
    )
    assert pii_filter(item, POLICY).reason == RESIDUAL_PII.format(where="prompt (ip)")


# --- quality ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        # rating 5 (1.0 x3), accept (1.0 x2), thumbs up (1.0 x2), toxicity 0 (1.0 x2), 50 words
        (sft(words(50), ("accepted", "thumbs_up"), rating=5, toxicity=0.0), 1.0),
        # rating 3 (0.5 x3), toxicity 0.2 (0.8 x2), 25 words (0.5 x1)
        (sft(words(25), (), rating=3, toxicity=0.2), (1.5 + 1.6 + 0.5) / 6),
        # rating 1 (0 x3), thumbs both (0.5 x2), 10 words (0.2 x1)
        (sft(words(10), ("thumbs_up", "thumbs_down"), rating=1), (0 + 1.0 + 0.2) / 6),
        # copied (1 x2), thumbs down (0 x2), toxicity 1 (0 x2), 100 words (1 x1)
        (sft(words(100), ("copied", "thumbs_down"), toxicity=1.0), (2 + 0 + 0 + 1) / 7),
        # only the length signal
        (sft(words(50), ()), 1.0),
        (sft("", ()), 0.0),
    ],
)
def test_quality_formula(item, expected):
    assert quality_score(item) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("substitutions", "edit_value"),
    [
        (0, 0.0),  # no edit
        (15, 0.5),  # half way up to the peak
        (30, 1.0),  # EDIT_PEAK: the most valuable edit
        (65, 0.5),
        (100, 0.0),  # a full rewrite
    ],
)
def test_quality_edit_signal_peaks_at_a_moderate_edit(substitutions, edit_value):
    item = pref(substituted(substitutions), "a" * 100)
    assert quality_signals(item)["edit"] == (pytest.approx(edit_value), filter_rules.W_EDIT)


def test_quality_of_a_pair_ignores_feedback_on_the_model_output():
    plain = pref(words(50), words(40), ("edited",))
    rated = pref(words(50), words(40), ("edited", "thumbs_down", "accepted"), rating=1)
    assert set(quality_signals(rated)) == {"edit", "length"}
    assert quality_score(rated) == quality_score(plain)


def test_quality_passes_exactly_at_the_minimum():
    result = quality_filter(sft(words(30), ()), POLICY)  # only the length signal: 30 / 50
    assert (result.passed, result.score) == (True, 0.6)


def test_quality_passes_above_the_minimum():
    item = sft(words(50), ("accepted",), toxicity=0.05)
    result = quality_filter(item, POLICY)
    expected = (2 * 1.0 + 2 * 0.95 + 1 * 1.0) / 5
    assert (result.passed, result.score) == (True, pytest.approx(expected))
    assert result.reason == GOOD_QUALITY.format(score=expected, minimum=0.6)
    assert result.details == {
        "signals": {"accept": 1.0, "toxicity": 0.95, "length": 1.0},
        "weights": {"accept": 2.0, "toxicity": 2.0, "length": 1.0},
    }


def test_quality_fails_below_the_minimum():
    item = sft(words(10), (), rating=2, toxicity=0.5)
    result = quality_filter(item, POLICY)
    expected = (3 * 0.25 + 2 * 0.5 + 1 * 0.2) / 6
    assert (result.passed, result.score) == (False, pytest.approx(expected))
    assert result.reason == LOW_QUALITY.format(score=expected, minimum=0.6)


def test_quality_skips_a_candidate_that_needs_an_answer():
    assert quality_filter(needs_answer(), POLICY).details == {"skipped": True}


# --- run_filters --------------------------------------------------------------------------

GOOD_PAIR = pref(
    "To rotate logs nightly, add a logrotate rule with daily, rotate 7 and compress, then "
    "check it with logrotate -d before the cron job picks it up.",
    "To rotate logs, add a logrotate rule with weekly and rotate 4, then wait for cron to "
    "pick it up eventually.",
    ("edited",),
)


def test_run_filters_stops_at_the_first_failure():
    item = sft(kinds=("regenerated",))
    results = run_filters(item, POLICY, extra=STATEFUL_STUBS)
    assert [(r.name, r.passed) for r in results] == [("user_action", False)]


def test_run_filters_in_full_mode_runs_everything_in_order():
    item = sft(words(5), kinds=("regenerated",))
    results = run_filters(item, POLICY, full=True, extra=STATEFUL_STUBS)
    assert [r.name for r in results] == list(FILTER_ORDER)
    assert [r.name for r in results if not r.passed] == ["user_action", "length", "quality"]


def test_run_filters_passes_a_good_pair_through_every_filter():
    results = run_filters(GOOD_PAIR, POLICY, extra=STATEFUL_STUBS)
    assert [r.name for r in results] == list(FILTER_ORDER)
    assert all(r.passed for r in results)
    assert json.loads(json.dumps([asdict(r) for r in results]))


def test_run_filters_runs_only_enabled_filters():
    policy = FilterPolicy(enabled=("quality", "length"))
    assert [r.name for r in run_filters(GOOD_PAIR, policy)] == ["length", "quality"]


def test_run_filters_refuses_to_skip_an_enabled_filter_it_cannot_run():
    with pytest.raises(ValueError) as exc:
        run_filters(GOOD_PAIR, POLICY, extra={"toxicity": stub("toxicity")})
    assert str(exc.value) == MISSING_FILTERS.format(names="dedup_exact, dedup_near")


def test_run_filters_refuses_an_unknown_extra_filter():
    with pytest.raises(ValueError) as exc:
        run_filters(GOOD_PAIR, POLICY, extra={**STATEFUL_STUBS, "sentiment": stub("sentiment")})
    assert str(exc.value) == UNKNOWN_FILTERS.format(names="sentiment")


def test_run_filters_places_stateful_steps_in_filter_order():
    calls = []
    extra = {name: stub(name, calls=calls) for name in ("toxicity", "dedup_near", "dedup_exact")}
    run_filters(GOOD_PAIR, POLICY, extra=extra)
    assert [name for name, _ in calls] == ["dedup_exact", "dedup_near", "toxicity"]


def test_run_filters_hands_the_toxicity_score_to_quality():
    extra = {**STATEFUL_STUBS, "toxicity": stub("toxicity", score=0.25)}
    results = run_filters(GOOD_PAIR, POLICY, extra=extra)
    assert results[-1].details["signals"]["toxicity"] == 0.75
    assert results[-2].scorer == "stub-scorer"
    assert results[0].scorer == SCORER_NAME
    assert results[0].scorer_version == SCORER_VERSION


def test_run_filters_keeps_a_toxicity_already_on_the_item():
    extra = {**STATEFUL_STUBS, "toxicity": stub("toxicity", score=0.25)}
    results = run_filters(replace(GOOD_PAIR, toxicity=0.0), POLICY, extra=extra)
    assert results[-1].details["signals"]["toxicity"] == 1.0


def test_run_filters_lets_extra_replace_a_builtin():
    extra = {**STATEFUL_STUBS, "quality": stub("quality", passed=False, score=0.1)}
    results = run_filters(GOOD_PAIR, POLICY, extra=extra)
    assert (results[-1].name, results[-1].passed, results[-1].reason) == ("quality", False, "stub")


def test_run_filters_sends_a_needs_answer_candidate_through():
    results = run_filters(needs_answer(), POLICY, extra=STATEFUL_STUBS)
    assert all(r.passed for r in results)
    skipped = [r.name for r in results if r.details.get("skipped")]
    assert skipped == ["length", "blocklist", "edit_band", "quality"]
