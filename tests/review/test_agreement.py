import random
from fractions import Fraction
from types import SimpleNamespace

import pytest

from review.agreement import (
    MISSING_ID,
    NON_NUMERIC_VALUE,
    UNKNOWN_LEVEL,
    agreement_summary,
    cohen_kappa,
    krippendorff_alpha,
    per_annotator_agreement,
)


def table_to_pairs(table: dict[tuple[str, str], int]) -> list[tuple[str, str]]:
    return [pair for pair, count in table.items() for _ in range(count)]


# --- Cohen's kappa -----------------------------------------------------------------------

# Two raters, 50 items, yes/no (rows: rater A, columns: rater B):
#            B yes  B no
#   A yes      20     5     A yes = 25/50
#   A no       10    15     A no  = 25/50
#   B yes = 30/50, B no = 20/50
# p_o = (20 + 15) / 50 = 0.7
# p_e = 0.5 * 0.6 + 0.5 * 0.4 = 0.5
# kappa = (0.7 - 0.5) / (1 - 0.5) = 0.4
YES_NO_TABLE = {("yes", "yes"): 20, ("yes", "no"): 5, ("no", "yes"): 10, ("no", "no"): 15}

# Three categories, 40 items (rows: A, columns: B):
#        x   y   z
#   x   10   2   3     A: x 15, y 10, z 15
#   y    1   8   1     B: x 13, y 12, z 15
#   z    2   2  11
# p_o = 29/40; p_e = (15*13 + 10*12 + 15*15) / 1600 = 540/1600
# kappa = (29/40 - 540/1600) / (1 - 540/1600) = (1160 - 540) / (1600 - 540) = 620/1060 = 31/53
THREE_WAY_TABLE = {
    ("x", "x"): 10, ("x", "y"): 2, ("x", "z"): 3,
    ("y", "x"): 1, ("y", "y"): 8, ("y", "z"): 1,
    ("z", "x"): 2, ("z", "y"): 2, ("z", "z"): 11,
}  # fmt: skip


@pytest.mark.parametrize(
    ("pairs", "expected"),
    [
        pytest.param(table_to_pairs(YES_NO_TABLE), 0.4, id="textbook-2x2"),
        pytest.param(table_to_pairs(THREE_WAY_TABLE), 31 / 53, id="hand-3x3"),
        pytest.param([("a", "a"), ("b", "b"), ("c", "c")], 1.0, id="perfect"),
        # p_o = 0; each rater a/b half the time, so p_e = 0.5: (0 - 0.5) / 0.5 = -1
        pytest.param([("a", "b"), ("b", "a")], -1.0, id="total-disagreement"),
        # p_o = 0, p_e = 1 * 0 + 0 * 1 = 0: kappa = 0
        pytest.param([("a", "b")], 0.0, id="single-disagreeing-pair"),
        # Chance agreement is 1 (one category on both sides): defined as 1.0.
        pytest.param([("approve", "approve")] * 5, 1.0, id="one-category-throughout"),
        pytest.param([("a", "a")], 1.0, id="single-agreeing-pair"),
        # The None pairs drop out, leaving the 2x2 textbook table.
        pytest.param(
            [*table_to_pairs(YES_NO_TABLE), (None, "yes"), ("no", None)], 0.4, id="missing-skipped"
        ),
    ],
)
def test_cohen_kappa_matches_hand_computed_values(pairs, expected):
    assert cohen_kappa(pairs) == pytest.approx(expected)


@pytest.mark.parametrize("pairs", [[], [(None, "a"), ("b", None), (None, None)]])
def test_cohen_kappa_is_none_without_rated_pairs(pairs):
    assert cohen_kappa(pairs) is None


def test_cohen_kappa_does_not_depend_on_which_rater_is_first():
    pairs = table_to_pairs(THREE_WAY_TABLE)
    assert cohen_kappa([(y, x) for x, y in pairs]) == pytest.approx(cohen_kappa(pairs))


def test_cohen_kappa_agrees_with_scikit_learn():
    from sklearn import metrics  # installed with alt-profanity-check

    rng = random.Random(7)
    pairs = [(rng.choice("abc"), rng.choice("abcc")) for _ in range(200)]
    expected = metrics.cohen_kappa_score([x for x, _ in pairs], [y for _, y in pairs])
    assert cohen_kappa(pairs) == pytest.approx(expected)


# --- Krippendorff's alpha ----------------------------------------------------------------


def reference_alpha(units, level):
    """Krippendorff's coincidence-matrix method written out with exact fractions.

    o[c, k] = sum over units of (number of c-k pairs of ratings in the unit) / (m_u - 1);
    n_c = sum_k o[c, k]; alpha = 1 - (n - 1) * sum o[c,k] d(c,k) / sum n_c n_k d(c,k).
    """
    rated = [[v for v in values if v is not None] for values in units.values()]
    rated = [values for values in rated if len(values) >= 2]
    values = sorted({v for unit in rated for v in unit})
    o = {(c, k): Fraction(0) for c in values for k in values}
    for unit in rated:
        for i, c in enumerate(unit):
            for j, k in enumerate(unit):
                if i != j:
                    o[c, k] += Fraction(1, len(unit) - 1)
    n_c = {c: sum(o[c, k] for k in values) for c in values}
    n = sum(n_c.values())

    def distance(c, k):
        if level == "nominal":
            return 0 if c == k else 1
        if level == "interval":
            return (c - k) ** 2
        low, high = min(c, k), max(c, k)
        return (sum(n_c[g] for g in values if low <= g <= high) - (n_c[c] + n_c[k]) / 2) ** 2

    observed = sum(o[c, k] * distance(c, k) for c in values for k in values)
    expected = sum(n_c[c] * n_c[k] * distance(c, k) for c in values for k in values)
    return 1 - (n - 1) * observed / expected


# Krippendorff (2011), "Computing Krippendorff's Alpha-Reliability", section C: 4 observers,
# 12 units, with missing data. Rows are observers; unit 12 has a single value and drops out.
PAPER_DATA = [
    [1, 2, 3, 3, 2, 1, 4, 1, 2, None, None, None],
    [1, 2, 3, 3, 2, 2, 4, 1, 2, 5, None, 3],
    [None, 3, 3, 3, 2, 3, 4, 2, 2, 5, 1, None],
    [1, 2, 3, 3, 2, 4, 4, 1, 2, 5, 1, None],
]
PAPER_UNITS = {unit: [row[unit] for row in PAPER_DATA] for unit in range(12)}


# Worked by hand from the paper's coincidence matrix (values 1..5):
#        1     2     3     4    5  |  n_c
#   1    7    4/3   1/3   1/3   0  |   9
#   2   4/3   10    4/3   1/3   0  |  13
#   3   1/3   4/3    8    1/3   0  |  10
#   4   1/3   1/3   1/3    4    0  |   5
#   5    0     0     0     0    3  |   3        n = 40
# Nominal: off-diagonal sum = 8; sum_{c != k} n_c n_k = 40^2 - (81 + 169 + 100 + 25 + 9) = 1216
#   alpha = 1 - 39 * 8 / 1216 = 113/152 = 0.7434   (paper: .743)
# Interval: sum o[c,k] (c-k)^2 = 52/3; sum n_c n_k (c-k)^2 / 39 = 4480/39
#   alpha = 1 - (52/3) / (4480/39) = 951/1120 = 0.8491   (paper: .849)
# Ordinal: the same with d(c,k) = (n_c/2 + ... + n_k/2)^2 gives 108577/133160 = 0.8154 (paper: .815)
@pytest.mark.parametrize(
    ("level", "exact", "published"),
    [
        ("nominal", Fraction(113, 152), 0.743),
        ("ordinal", Fraction(108577, 133160), 0.815),
        ("interval", Fraction(951, 1120), 0.849),
    ],
)
def test_krippendorff_alpha_reproduces_the_2011_paper_example(level, exact, published):
    alpha = krippendorff_alpha(PAPER_UNITS, level=level)
    assert alpha == pytest.approx(float(exact))
    assert round(alpha, 3) == published
    assert reference_alpha(PAPER_UNITS, level) == exact


# Three units rated by two coders: (1, 1), (1, 2), (2, 2).
# o11 = 2, o12 = o21 = 1, o22 = 2; n_1 = n_2 = 3; n = 6.
# With only two values every level gives the same figure: 1 - 5 * 2 / (3 * 3 * 2) = 4/9.
SMALL_UNITS = {"u1": [1, 1], "u2": [1, 2], "u3": [2, 2]}


@pytest.mark.parametrize(
    ("units", "level", "expected"),
    [
        pytest.param(SMALL_UNITS, "nominal", 4 / 9, id="small-nominal"),
        pytest.param(SMALL_UNITS, "ordinal", 4 / 9, id="small-ordinal"),
        pytest.param(SMALL_UNITS, "interval", 4 / 9, id="small-interval"),
        pytest.param({"u1": [1, 1, 1], "u2": [3, 3], "u3": [5, 5]}, "ordinal", 1.0, id="perfect"),
        # (1, 2), (2, 1): o12 = o21 = 2; n_1 = n_2 = 2; n = 4: 1 - 3 * 4 / (2 * 2 * 2) = -0.5
        pytest.param({"u1": [1, 2], "u2": [2, 1]}, "nominal", -0.5, id="total-disagreement"),
        # One unit (1, 2): o12 = o21 = 1; n = 2: 1 - 1 * 2 / (1 * 1 * 2) = 0
        pytest.param({"u1": [1, 2]}, "interval", 0.0, id="single-item"),
        # Missing ratings and single-rating units change nothing: still 4/9.
        pytest.param(
            {**SMALL_UNITS, "u4": [5], "u5": [None, 3, None], "u6": []}, "nominal", 4 / 9,
            id="missing-and-single-ratings-ignored",
        ),
        pytest.param(
            {"a": [1.0, float("nan"), 1.0], "b": [1, 2], "c": [2, 2]}, "interval", 4 / 9,
            id="nan-is-missing",
        ),
        # Decisions are strings: the same structure as SMALL_UNITS.
        pytest.param(
            {"u1": ["approve", "approve"], "u2": ["approve", "reject"], "u3": ["reject"] * 2},
            "nominal", 4 / 9, id="string-categories",
        ),
    ],
)  # fmt: skip
def test_krippendorff_alpha_matches_hand_computed_values(units, level, expected):
    assert krippendorff_alpha(units, level=level) == pytest.approx(expected)


@pytest.mark.parametrize(
    "units",
    [
        pytest.param({}, id="empty"),
        pytest.param({"u1": [3], "u2": [4, None]}, id="no-item-with-two-ratings"),
        pytest.param({"u1": [3, 3], "u2": [3, 3, 3]}, id="no-variation"),
    ],
)
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_is_none_when_undefined(units, level):
    assert krippendorff_alpha(units, level=level) is None


@pytest.mark.parametrize("seed", range(8))
@pytest.mark.parametrize("level", ["nominal", "ordinal", "interval"])
def test_krippendorff_alpha_matches_the_reference_on_random_data(seed, level):
    rng = random.Random(seed)
    units = {
        unit: [rng.choice([1, 2, 3, 4, 5, None]) for _ in range(rng.randint(1, 5))]
        for unit in range(rng.randint(3, 30))
    }
    units["anchor"] = [1, 5]  # guarantees some variation
    assert krippendorff_alpha(units, level=level) == pytest.approx(
        float(reference_alpha(units, level))
    )


def test_krippendorff_alpha_rejects_an_unknown_level():
    with pytest.raises(ValueError, match=UNKNOWN_LEVEL):
        krippendorff_alpha(SMALL_UNITS, level="ratio")


def test_krippendorff_alpha_needs_numbers_for_ordered_levels():
    with pytest.raises(ValueError, match=NON_NUMERIC_VALUE):
        krippendorff_alpha({"u1": ["approve", "reject"]}, level="ordinal")


# --- Summaries over reviews --------------------------------------------------------------


def review(item, reviewer, decision, accuracy=None, helpfulness=None, safety=None):
    return {
        "item_id": item,
        "reviewer_id": reviewer,
        "decision": decision,
        "accuracy": accuracy,
        "helpfulness": helpfulness,
        "safety": safety,
    }


# ann and bob both reviewed four items.
# Decisions: 3 of 4 agree. ann: approve 3, reject 1; bob: approve 2, reject 2.
#   kappa = (4 * 3 - (3*2 + 1*2)) / (16 - 8) = 4/8 = 0.5
#   alpha: approve 5, reject 3 (n = 8), one disagreeing item gives o_ar + o_ra = 2:
#   1 - 7 * 2 / (2 * 5 * 3) = 16/30
# Accuracy: item 3 has one rating and drops out; (5, 4), (3, 3), (1, 1) remain.
PAIR_REVIEWS = [
    review(1, "ann", "approve", accuracy=5),
    review(1, "bob", "approve", accuracy=4),
    review(2, "ann", "approve", accuracy=3),
    review(2, "bob", "reject", accuracy=3),
    review(3, "ann", "reject", accuracy=None),
    review(3, "bob", "reject", accuracy=2),
    review(4, "ann", "approve", accuracy=1),
    review(4, "bob", "approve", accuracy=1),
]


def test_summary_for_two_fixed_reviewers_matches_hand_computed_figures():
    summary = agreement_summary(PAIR_REVIEWS)
    decision = summary["decision"]
    assert decision["level"] == "nominal"
    assert decision["n_items"] == 4
    assert decision["n_pairs"] == 4
    assert decision["observed_agreement"] == pytest.approx(0.75)
    assert decision["kappa"] == pytest.approx(0.5)
    assert decision["alpha"] == pytest.approx(16 / 30)
    accuracy = summary["accuracy"]
    assert accuracy["level"] == "ordinal"
    assert (accuracy["n_items"], accuracy["n_pairs"]) == (3, 3)
    assert accuracy["observed_agreement"] == pytest.approx(2 / 3)
    assert accuracy["alpha"] == pytest.approx(
        float(reference_alpha({1: [5, 4], 2: [3, 3], 4: [1, 1]}, "ordinal"))
    )
    assert accuracy["kappa"] == pytest.approx(cohen_kappa([(5, 4), (3, 3), (1, 1)]))


def test_summary_reads_objects_as_well_as_dicts():
    as_objects = [SimpleNamespace(**r) for r in PAIR_REVIEWS]
    assert agreement_summary(as_objects) == agreement_summary(PAIR_REVIEWS)


def test_summary_leaves_kappa_out_when_reviewer_pairs_vary():
    # Three people share the work two at a time: alpha applies, kappa does not.
    reviews = [
        review(1, "ann", "approve"),
        review(1, "bob", "approve"),
        review(2, "bob", "reject"),
        review(2, "cat", "approve"),
        review(3, "cat", "reject"),
        review(3, "ann", "reject"),
    ]
    decision = agreement_summary(reviews)["decision"]
    assert decision["kappa"] is None
    # approve 3, reject 3 (n = 6), one disagreeing item: 1 - 5 * 2 / (2 * 3 * 3) = 4/9
    assert decision["alpha"] == pytest.approx(4 / 9)
    assert decision["observed_agreement"] == pytest.approx(2 / 3)


def test_summary_counts_every_pair_when_an_item_has_three_reviews():
    reviews = [
        review(1, "ann", "approve"),
        review(1, "bob", "approve"),
        review(1, "cat", "reject"),
        review(2, "ann", "reject"),
        review(2, "bob", "reject"),
    ]
    decision = agreement_summary(reviews)["decision"]
    assert (decision["n_items"], decision["n_pairs"]) == (2, 4)
    assert decision["kappa"] is None
    # Pairs: item 1 ann-bob agree, ann-cat and bob-cat disagree; item 2 agrees.
    assert decision["observed_agreement"] == pytest.approx(2 / 4)
    assert decision["alpha"] == pytest.approx(
        float(reference_alpha({1: ["a", "a", "r"], 2: ["r", "r"]}, "nominal"))
    )


def test_summary_keeps_the_later_review_when_a_reviewer_reviews_twice():
    reviews = [
        review(1, "ann", "reject"),
        review(1, "bob", "approve"),
        review(1, "ann", "approve"),
    ]
    decision = agreement_summary(reviews)["decision"]
    assert (decision["n_items"], decision["n_pairs"]) == (1, 1)
    assert decision["observed_agreement"] == 1.0


def test_summary_of_no_reviews_has_no_figures():
    summary = agreement_summary([])
    assert set(summary) == {"decision", "accuracy", "helpfulness", "safety"}
    for field in summary.values():
        assert field["n_items"] == 0
        assert field["n_pairs"] == 0
        assert field["alpha"] is None
        assert field["kappa"] is None
        assert field["observed_agreement"] is None


def test_summary_of_single_reviews_has_no_figures():
    summary = agreement_summary([review(1, "ann", "approve", 5, 5, 5), review(2, "bob", "reject")])
    assert summary["decision"]["n_items"] == 0
    assert summary["decision"]["alpha"] is None


@pytest.mark.parametrize(
    "bad", [{"reviewer_id": "ann", "decision": "approve"}, SimpleNamespace(item_id=1)]
)
def test_summary_rejects_a_review_without_ids(bad):
    with pytest.raises(ValueError, match=MISSING_ID):
        agreement_summary([bad])


def test_per_annotator_agreement_matches_hand_computed_figures():
    reviews = [
        review(1, "ann", "approve"),
        review(1, "bob", "approve"),
        review(1, "cat", "reject"),
        review(2, "ann", "reject"),
        review(2, "bob", "reject"),
        review(3, "cat", "approve"),
        review(4, "dan", "approve"),
        review(5, "eve", None),
        review(5, "ann", "approve"),
    ]
    result = per_annotator_agreement(reviews)
    # ann: (approve, approve) with bob, (approve, reject) with cat, (reject, reject) with bob.
    #   2 of 3 agree; A = ann: approve 2, reject 1; B: approve 1, reject 2
    #   kappa = (3 * 2 - (2*1 + 1*2)) / (9 - 4) = 2/5. bob has the same three comparisons.
    assert result["ann"] == {"n": 3, "agreement_with_others": pytest.approx(2 / 3),
                             "kappa_vs_others": pytest.approx(0.4)}  # fmt: skip
    assert result["bob"] == result["ann"]
    # cat: (reject, approve) twice: p_o = 0, p_e = 0, kappa = 0.
    assert result["cat"] == {"n": 2, "agreement_with_others": 0.0, "kappa_vs_others": 0.0}
    # dan shared no item; eve shared one but gave no decision.
    for lonely in ("dan", "eve"):
        assert result[lonely] == {"n": 0, "agreement_with_others": None, "kappa_vs_others": None}


def test_per_annotator_agreement_of_no_reviews_is_empty():
    assert per_annotator_agreement([]) == {}
