"""What people read: internal keys as words, strata spelled out, answers' Markdown
rendered safely beside their raw text, and a favicon on every page (issue 12 §5)."""

import pytest

from curation.models import Candidate, CandidateKind, FeedbackKind
from flywheel_site.text_render import key_label, render_markdown, stratum_label
from review import services
from review.models import Decision
from tests.support.review import make_items


@pytest.mark.parametrize(
    ("stratum", "label"),
    [
        ("support|acme-chat-2025-09", "support · acme-chat-2025-09"),
        ("-|acme-chat", "any task · acme-chat"),
        ("billing|-", "billing · any model"),
        ("", "any task · any model"),
    ],
)
def test_a_stratum_is_spelled_out(stratum, label):
    assert stratum_label(stratum) == label


@pytest.mark.parametrize(
    ("key", "label"),
    [
        ("sft", "SFT"),
        ("dpo", "DPO"),
        ("approve_edit", "approve with edit"),
        ("edit_band", "edit band"),
    ],
)
def test_keys_read_as_words(key, label):
    assert key_label(key) == label


def test_enum_labels_are_words_not_title_cased_keys():
    assert CandidateKind.NEEDS_ANSWER.label == "needs an answer"
    assert Decision.APPROVE_EDIT.label == "approve with edit"
    assert FeedbackKind.THUMBS_DOWN.label == "thumbs down"
    # No label is the key with its first letters capitalised, as Django would make it.
    for enum in (CandidateKind, Decision, FeedbackKind):
        for value, label in enum.choices:
            assert label != value.replace("_", " ").title(), label


def test_markdown_in_an_answer_is_rendered_and_cleaned():
    html = render_markdown("**bold** <script>alert(1)</script> <img src=x onerror=alert(1)>")
    assert "<strong>bold</strong>" in html
    # Raw HTML is shown as the text it is (issue 18): nothing runs, nothing is hidden.
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.django_db
def test_the_review_screen_renders_markdown_with_the_raw_text_one_click_away(as_user, annotator):
    (item,) = make_items(1, kind="needs_answer")
    Candidate.objects.filter(pk=item.candidate_id).update(rejected=None)
    item.candidate.interaction.response = "Steps:\n\n1. Open **Settings**\n2. <script>x()</script>"
    item.candidate.interaction.save(update_fields=["response"])
    services.item_claim_next(user=annotator)
    page = as_user(annotator).get(f"/review/items/{item.pk}/").content.decode()
    assert "<li>Open <strong>Settings</strong></li>" in page
    assert "<summary>Raw text</summary>" in page
    assert "1. Open **Settings**" in page  # the raw text, escaped, in the toggle
    assert "<script>x()</script>" not in page
    assert "support · support-bot-v2" in page  # the stratum, spelled out


@pytest.mark.django_db
def test_every_page_links_a_favicon_and_favicon_ico_points_at_it(client):
    page = client.get("/login/").content.decode()
    assert 'rel="icon" href="/static/favicon.svg"' in page
    response = client.get("/favicon.ico")
    assert response.status_code == 301 and response["Location"] == "/static/favicon.svg"


@pytest.mark.django_db
def test_the_candidate_page_renders_markdown_answers_with_their_raw_text(as_user, curator):
    from tests.support.explorer import candidate

    shown = candidate(chosen="Use **Settings** > `Security`.", rejected="<script>x()</script>No.")
    page = as_user(curator).get(f"/curation/candidates/{shown.pk}/").content.decode()
    assert "<strong>Settings</strong>" in page and "<code>Security</code>" in page
    assert 'id="chosen-text"' in page and "<summary>Raw text</summary>" in page
    assert "<script>x()</script>" not in page
