"""The decision form (review/forms.py): it parses what the screen posts into the
services' arguments and refuses only what cannot be stored; the rules of a
valid decision, and their wording, stay with the services."""

import pytest
from django.http import QueryDict

from review import services
from review.forms import DecisionForm
from review.models import Review, ReviewOutcome
from tests.support.review import make_items, refresh, review

HTMX = {"HX-Request": "true"}


def parsed(**fields) -> DecisionForm:
    data = QueryDict(mutable=True)
    data.update(fields)
    form = DecisionForm(data)
    assert form.is_valid(), form.errors
    return form


def test_the_free_text_reason_wins_over_the_list_and_is_trimmed():
    form = parsed(
        decision="reject", reject_reason="Wrong or misleading", reject_reason_other=" Spam "
    )
    assert form.verdict()["reject_reason"] == "Spam"
    assert (
        parsed(decision="reject", reject_reason="Wrong or misleading").verdict()["reject_reason"]
        == "Wrong or misleading"
    )


def test_the_edit_text_counts_only_for_an_edit():
    assert parsed(decision="approve", final_text="mine").verdict()["final_text"] is None
    assert parsed(decision="approve_edit", final_text="mine\r\n").verdict()["final_text"] == (
        "mine\r\n"  # the service normalises, not the form
    )


def test_unreadable_scores_count_as_not_given():
    form = parsed(decision="approve", accuracy="4", helpfulness="five", safety="")
    assert form.rubric() == {"accuracy": 4, "helpfulness": None, "safety": None}


def test_a_refused_form_shows_the_edit_exactly_as_typed():
    form = parsed(decision="reject", final_text="half an edit\r\n", note="n")
    assert form.posted()["final_text"] == "half an edit\r\n"
    assert form.posted()["note"] == "n"


@pytest.mark.django_db
@pytest.mark.parametrize("field", ["note", "final_text", "reject_reason_other"])
def test_a_nul_byte_is_a_422_and_stores_nothing(as_user, annotator, field):
    # PostgreSQL cannot store NUL in text: refused by the form, not a 500 from the database.
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    decision = {"final_text": "approve_edit", "reject_reason_other": "reject"}.get(field, "approve")
    response = client.post(
        f"/review/items/{item.pk}/submit/",
        {"decision": decision, "accuracy": "4", "helpfulness": "4", "safety": "4", field: "a\x00b"},
        headers=HTMX,
    )
    assert response.status_code == 422
    assert not Review.objects.exists()
    assert refresh(item).lease_holder_id == annotator.pk  # still theirs to finish


@pytest.mark.django_db
def test_a_nul_byte_in_an_adjudication_is_a_422(as_user, annotator, annotator2, curator):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator, "approve")
    review(item, annotator2, "reject")
    client = as_user(curator)
    client.post("/review/adjudication/next/")
    response = client.post(
        f"/review/items/{item.pk}/adjudicate/", {"decision": "approve", "note": "\x00"}
    )
    assert response.status_code == 422
    assert not ReviewOutcome.objects.exists()
    assert services.item_claim_next(user=curator, mode="adjudication").pk == item.pk
