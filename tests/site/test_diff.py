import json
import random
from itertools import pairwise

import pytest
from django.utils.safestring import SafeData

from flywheel_site.text_diff import (
    Segment,
    _myers,
    count_words,
    new_text,
    old_text,
    render_diff_html,
    render_side_by_side_html,
    render_three_way_html,
    three_way,
    word_diff,
)

ROUND_TRIP_PAIRS = [
    pytest.param("", "", id="both-empty"),
    pytest.param("", "new text", id="from-empty"),
    pytest.param("old text", "", id="to-empty"),
    pytest.param("same words here", "same words here", id="identical"),
    pytest.param("The cat sat on the mat.", "The dog sat on the mat.", id="one-word"),
    pytest.param(
        "line one\nline two\n\nline four", "line one\nline 2\n\n\nline four", id="newlines"
    ),
    pytest.param("a\r\nb\tc  d", "a\nb c\td ", id="crlf-tabs-double-spaces"),
    pytest.param("  leading and trailing  ", "\tleading and trailing\n", id="edge-whitespace"),
    pytest.param("   ", " \n ", id="whitespace-only"),
    pytest.param("naïve café über", "naive café über", id="accents"),
    pytest.param("ship it 🚀 now", "ship it 🚢 now 🎉", id="emoji"),
    pytest.param("日本語のテキスト 変更 なし", "日本語のテキスト 変更あり なし", id="cjk"),
    pytest.param("שלום עולם hello", "שלום hello עולם", id="rtl-and-moves"),
    pytest.param("x\u00a0y z", "x y\u2003z", id="unicode-spaces"),
    pytest.param("<b>bold</b> & 'quotes'", '<i>bold</i> & "quotes"', id="markup-as-text"),
]


@pytest.mark.parametrize(("a", "b"), ROUND_TRIP_PAIRS)
def test_segments_rebuild_both_texts_exactly(a, b):
    segments = word_diff(a, b)
    assert old_text(segments) == a
    assert new_text(segments) == b


def random_text(rng: random.Random) -> str:
    words = ["the", "a", "cat", "café", "🚀", "日本", "x", "Hello,", "world."]
    spaces = [" ", " ", " ", "  ", "\n", "\t", "\r\n", "\u00a0"]
    parts = [rng.choice(spaces) if rng.random() < 0.2 else ""]
    for _ in range(rng.randint(0, 40)):
        parts += [rng.choice(words), rng.choice(spaces)]
    return "".join(parts[: rng.randint(1, len(parts))])


@pytest.mark.parametrize("seed", range(40))
def test_segments_rebuild_random_texts_exactly(seed):
    rng = random.Random(seed)
    a, b = random_text(rng), random_text(rng)
    segments = word_diff(a, b)
    assert old_text(segments) == a
    assert new_text(segments) == b


@pytest.mark.parametrize("seed", range(10))
def test_segments_are_never_empty_and_never_repeat_an_op(seed):
    rng = random.Random(seed)
    segments = word_diff(random_text(rng), random_text(rng))
    assert all(s.text for s in segments)
    assert all(first.op != second.op for first, second in pairwise(segments))
    # A change is shown as its deletion first, then its insertion.
    assert all(
        (first.op, second.op) != ("insert", "delete") for first, second in pairwise(segments)
    )


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        pytest.param(
            "one two three", "one 2 three",
            [("equal", "one "), ("delete", "two"), ("insert", "2"), ("equal", " three")],
            id="replaced-word-keeps-its-spaces",
        ),
        pytest.param(
            "keep this", "keep all of this",
            [("equal", "keep "), ("insert", "all of "), ("equal", "this")],
            id="insertion",
        ),
        pytest.param(
            "drop the extra words", "drop words",
            [("equal", "drop "), ("delete", "the extra "), ("equal", "words")],
            id="deletion",
        ),
        pytest.param(
            "hello world", "hello\nworld",
            [("equal", "hello"), ("delete", " "), ("insert", "\n"), ("equal", "world")],
            id="rewrapped-line-is-a-whitespace-edit",
        ),
        pytest.param(
            "The cat sat", "A cat lay",
            [
                ("delete", "The"), ("insert", "A"), ("equal", " cat "),
                ("delete", "sat"), ("insert", "lay"),
            ],
            id="kept-word-between-one-word-swaps-stays",
        ),
        pytest.param(
            "The cat sat on the mat.", "A dog lay on a rug.",
            [("delete", "The cat sat on the mat."), ("insert", "A dog lay on a rug.")],
            id="stray-common-word-folds-into-a-rewrite",
        ),
        pytest.param(
            "I think the answer is 42 because of the data.",
            "The answer is 42, based on the data provided.",
            [
                ("delete", "I think the"), ("insert", "The"), ("equal", " answer is "),
                ("delete", "42 because of the data."),
                ("insert", "42, based on the data provided."),
            ],
            id="kept-phrase-inside-a-rewrite-stays",
        ),
        pytest.param("same", "same", [("equal", "same")], id="identical"),
        pytest.param("", "", [], id="both-empty"),
    ],
)  # fmt: skip
def test_word_diff_segments(a, b, expected):
    assert word_diff(a, b) == [Segment(op, text) for op, text in expected]


def test_a_repeated_paragraph_edit_is_matched_to_the_right_copy():
    paragraph = "The model should answer briefly and cite the source of every figure it gives.\n"
    a = paragraph * 3
    b = paragraph + paragraph.replace("briefly", "clearly") + paragraph
    segments = word_diff(a, b)
    assert [s for s in segments if s.op != "equal"] == [
        Segment("delete", "briefly"), Segment("insert", "clearly")
    ]  # fmt: skip
    # The deletion sits in the second copy: the kept text before it is one paragraph plus
    # "The model should answer ".
    assert segments[0] == Segment("equal", paragraph + "The model should answer ")


def test_a_ten_thousand_word_pair_keeps_its_unchanged_words():
    # Timing is reported, not asserted; this checks the fast path gives a faithful diff.
    rng = random.Random(3)
    vocabulary = [f"w{rank}" for rank in range(5000)]
    weights = [1 / (rank + 1) for rank in range(5000)]  # Zipf-like, as in prose
    words = rng.choices(vocabulary, weights, k=10_000)
    edited = [w if rng.random() > 0.05 else "CHANGED" for w in words]
    a, b = " ".join(words), " ".join(edited)
    segments = word_diff(a, b)
    assert old_text(segments) == a
    assert new_text(segments) == b
    changed = sum(1 for x, y in zip(words, edited, strict=True) if x != y)
    assert count_words(segments)["words_inserted"] <= changed * 1.5


@pytest.mark.parametrize(
    ("a", "b", "expected_changes"),
    [
        # A model stuck in a loop, shifted by one word: the minimal edit, not a rewrite.
        pytest.param(
            "x y " * 5000, "y x " * 5000,
            [Segment("delete", "x "), Segment("insert", "x ")],
            id="periodic-shift",
        ),
        pytest.param(
            "I'm sorry. " * 3000, "I'm sorry. " * 1500 + "Fixed. " + "I'm sorry. " * 1500,
            [Segment("insert", "Fixed. ")],
            id="edit-inside-a-loop",
        ),
    ],
)  # fmt: skip
def test_repetitive_text_gets_a_minimal_diff(a, b, expected_changes):
    segments = word_diff(a, b)
    assert [s for s in segments if s.op != "equal"] == expected_changes
    assert (old_text(segments), new_text(segments)) == (a, b)


def test_repetitive_text_too_different_to_match_cheaply_is_shown_replaced():
    a, b = "a b c " * 3333, "a c b " * 3333
    segments = word_diff(a, b)
    assert [s.op for s in segments] == ["equal", "delete", "insert", "equal"]
    assert (old_text(segments), new_text(segments)) == (a, b)


@pytest.mark.parametrize("seed", range(6))
def test_small_vocabulary_texts_round_trip(seed):
    # No word is unique here, so anchoring falls back to runs of words and then to difflib.
    rng = random.Random(seed)
    a = " ".join(rng.choices(["yes", "no", "0", "1"], k=rng.randint(200, 3000)))
    b = " ".join(w if rng.random() > 0.03 else "maybe" for w in a.split())
    segments = word_diff(a, b)
    assert (old_text(segments), new_text(segments)) == (a, b)


def lcs_length(a, b):
    row = [0] * (len(b) + 1)
    for x in a:
        previous_diagonal = 0
        for j, y in enumerate(b, start=1):
            previous_diagonal, row[j] = (
                row[j],
                (previous_diagonal + 1 if x == y else max(row[j], row[j - 1])),
            )
    return row[-1]


@pytest.mark.parametrize("seed", range(20))
def test_myers_finds_a_longest_common_subsequence(seed):
    rng = random.Random(seed)
    a = rng.choices("abc", k=rng.randint(0, 40))
    b = rng.choices("abc", k=rng.randint(0, 40))
    matches = _myers(a, b, max_edits=100)
    assert len(matches) == lcs_length(a, b)
    assert all(a[i] == b[j] and size == 1 for i, j, size in matches)
    assert all(i1 < i2 and j1 < j2 for (i1, j1, _), (i2, j2, _) in pairwise(matches))


def test_myers_gives_up_past_its_edit_budget():
    assert _myers(list("abcdef"), list("uvwxyz"), max_edits=11) is None
    assert _myers(list("abcdef"), list("uvwxyz"), max_edits=12) == []


def test_segments_serialise_to_json_as_op_text_pairs():
    assert json.loads(json.dumps(word_diff("a b", "a c"))) == [
        ["equal", "a "], ["delete", "b"], ["insert", "c"]
    ]  # fmt: skip


# --- HTML --------------------------------------------------------------------------------


def test_render_diff_html_marks_deletions_and_insertions():
    html = render_diff_html("one two three", "one 2 three")
    assert html == 'one <del class="diff-del">two</del><ins class="diff-ins">2</ins> three'
    assert isinstance(html, SafeData)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        pytest.param(
            "<script>alert(1)</script> kept", "<script>alert(1)</script> kept", id="equal"
        ),
        pytest.param("kept", "kept <script>alert(1)</script>", id="inserted"),
        pytest.param("kept <script>alert(1)</script>", "kept", id="deleted"),
    ],
)
def test_render_diff_html_escapes_user_text(a, b):
    html = render_diff_html(a, b)
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_render_diff_html_escapes_quotes_and_ampersands():
    html = render_diff_html('say "hi" & go', "say 'hi' & go")
    assert "&quot;hi&quot;" in html
    assert "&#x27;hi&#x27;" in html
    assert "&amp;" in html
    assert "& " not in html


def test_render_side_by_side_html_splits_one_diff_into_two_panes():
    panes = render_side_by_side_html("one two three", "one 2 three")
    assert panes == {
        "old": 'one <del class="diff-del">two</del> three',
        "new": 'one <ins class="diff-ins">2</ins> three',
    }
    assert all(isinstance(pane, SafeData) for pane in panes.values())


# --- Three-way ---------------------------------------------------------------------------

MODEL = "The capital of France is Lyon. It is large."
USER = "The capital of France is Paris. It is large."
REVIEWER = "The capital of France is Paris. It is a large city."


def test_three_way_gives_both_edit_steps():
    result = three_way(model=MODEL, user=USER, reviewer=REVIEWER)
    assert result["user_vs_model"] == word_diff(MODEL, USER)
    assert result["reviewer_vs_user"] == word_diff(USER, REVIEWER)
    assert new_text(result["user_vs_model"]) == old_text(result["reviewer_vs_user"]) == USER


def test_three_way_summary_counts_words_per_step():
    # model -> user: "Lyon." becomes "Paris." (1 out, 1 in);
    # user -> reviewer: "large." becomes "a large city." (1 out, 3 in).
    summary = three_way(model=MODEL, user=USER, reviewer=REVIEWER)["summary"]
    assert summary == {
        "user_vs_model": {"words_inserted": 1, "words_deleted": 1},
        "reviewer_vs_user": {"words_inserted": 3, "words_deleted": 1},
    }


def test_three_way_with_no_edits_counts_nothing():
    summary = three_way(model=MODEL, user=MODEL, reviewer=MODEL)["summary"]
    assert summary["user_vs_model"] == summary["reviewer_vs_user"] == {
        "words_inserted": 0, "words_deleted": 0
    }  # fmt: skip


def test_three_way_takes_keyword_arguments_only():
    with pytest.raises(TypeError):
        three_way(MODEL, USER, REVIEWER)


def test_render_three_way_html_renders_each_step_escaped():
    result = render_three_way_html(model="x <b>", user="y <b>", reviewer="y <i>")
    assert result["user_vs_model"] == (
        '<del class="diff-del">x</del><ins class="diff-ins">y</ins> &lt;b&gt;'
    )
    assert result["reviewer_vs_user"] == (
        'y <del class="diff-del">&lt;b&gt;</del><ins class="diff-ins">&lt;i&gt;</ins>'
    )
    assert result["summary"]["reviewer_vs_user"] == {"words_inserted": 1, "words_deleted": 1}
    assert isinstance(result["user_vs_model"], SafeData)


@pytest.mark.parametrize(
    ("segments", "expected"),
    [
        ([], {"words_inserted": 0, "words_deleted": 0}),
        ([Segment("insert", " \n ")], {"words_inserted": 0, "words_deleted": 0}),
        (
            [Segment("delete", "two words"), Segment("insert", "three new words")],
            {"words_inserted": 3, "words_deleted": 2},
        ),
    ],
)
def test_count_words_ignores_whitespace(segments, expected):
    assert count_words(segments) == expected
