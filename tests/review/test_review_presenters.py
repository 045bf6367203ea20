"""What the review screen shows (review/presenters.py): the mode each person
sees, the reviews a curator weighs with their diffs, and the score labels."""

import pytest

from review import presenters, services
from review.models import ReviewItem
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT
from tests.support.review import make_items, review

pytestmark = pytest.mark.django_db


def test_the_holder_reviews_a_curator_inspects_and_anyone_else_sees_nothing(
    annotator, annotator2, curator
):
    make_items(1)
    held = services.item_claim_next(user=annotator)
    assert presenters.screen(item=held, user=annotator)["mode"] == "review"
    assert presenters.screen(item=held, user=curator)["mode"] == "inspect"
    lost = presenters.screen(item=held, user=annotator2, error="gone")
    assert lost == {"mode": "lost", "item": held, "error": "gone"}  # no content at all


def test_a_curator_sees_each_edit_diffed_and_starts_from_the_latest(annotator, annotator2, curator):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator, "approve_edit", final_text="Annie's better answer.")
    review(item, annotator2, "reject")
    claimed = services.item_claim(item=ReviewItem.objects.get(pk=item.pk), user=curator)
    context = presenters.screen(item=claimed, user=curator)
    assert context["mode"] == "adjudicate"
    edit, rejection = context["reviews"]
    assert edit["three_way"]["two_way"] is False  # model, user and reviewer texts
    assert "Annie" in str(edit["three_way"]["reviewer_vs_user"])
    assert rejection["three_way"] is None
    assert context["edit_text"] == "Annie's better answer."


def test_a_needs_answer_edit_is_diffed_against_the_model_only(annotator, curator):
    (item,) = make_items(1, kind="needs_answer")
    done = review(item, annotator, "approve_edit", final_text="The answer.\r\nSecond line.")
    detail = presenters.review_detail(done)
    assert detail["three_way"]["two_way"] is True
    assert "The answer." in str(detail["three_way"]["model_vs_reviewer"])
    assert detail["panes"] == {"kind": "single", "text": GOOD_ANSWER}


def test_scores_are_labelled_with_a_dash_for_what_is_missing(annotator):
    make_items(1)
    context = presenters.screen(item=services.item_claim_next(user=annotator), user=annotator)
    scores = dict(context["scores"])
    assert scores["Toxicity"] == "0.012 (detoxify-original)"
    assert scores["Similarity (characters)"] == "0.62"
    assert scores["User rating"] == presenters.NONE
    assert scores["PII redacted"] == "email 1"
    assert context["edit_text"] == GOOD_EDIT


def test_figure_and_the_template_filter_agree():
    from review.templatetags import review_tags

    assert presenters.figure(None) == presenters.NONE
    assert presenters.figure(0.12345, 3) == "0.123"
    assert review_tags.register.filters["figure"](0.5) == "0.50"
