"""Queues people can steer: the picker (kind, task type, source) remembered per
annotator, the "all" queue's mix, the progress strip, skips counted and sent to
a curator, "my reviews" with snippets and a decision filter, and the honest
empty state of the agreement table."""

from datetime import UTC, datetime, timedelta

import pytest
import time_machine
from django.core.exceptions import ImproperlyConfigured
from django.utils import timezone

from curation.models import Source
from flywheel_site.env import env_weights
from review import queues, selectors, services
from review.models import QueueChoice, Review, ReviewItem, ReviewSkip
from tests.support.review import RUBRIC, make_items, refresh, review

pytestmark = pytest.mark.django_db

HTMX = {"HX-Request": "true"}
# A fixed reference day: 14:00 UTC is 09:00 in New York.
NOW = datetime(2026, 3, 10, 14, 0, tzinfo=UTC)


def claim_all(user) -> list[ReviewItem]:
    """Claim and skip until the user's queue is empty; the items in order."""
    served = []
    while (item := services.item_claim_next(user=user)) is not None:
        served.append(item)
        services.item_skip(item=item, user=user)
    return served


# --- the mix setting ----------------------------------------------------------


def test_the_mix_setting_is_read_as_ordered_weights(monkeypatch):
    monkeypatch.setenv("X_MIX", " preference:3 , needs_answer:1")
    assert env_weights("X_MIX", "sft:1") == {"preference": 3, "needs_answer": 1}
    monkeypatch.delenv("X_MIX")
    assert env_weights("X_MIX", "sft:2") == {"sft": 2}


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ("preference", "X_MIX must be name:weight pairs"),
        ("preference:0", "X_MIX must be name:weight pairs"),
        ("preference:1.5", "X_MIX must be name:weight pairs"),
        ("preference:-1", "X_MIX must be name:weight pairs"),
        ("preference:1,,sft:1", "X_MIX must be name:weight pairs"),
        ("preference:1,preference:2", "X_MIX names 'preference' twice"),
    ],
)
def test_a_malformed_mix_fails_loudly_with_the_variable_name(monkeypatch, raw, message):
    monkeypatch.setenv("X_MIX", raw)
    with pytest.raises(ImproperlyConfigured, match=message):
        env_weights("X_MIX", "sft:1")


def test_a_mix_naming_an_unknown_kind_fails_at_start_up():
    with pytest.raises(ImproperlyConfigured, match="names audit, typo; the queue kinds are"):
        queues.check_mix({"preference": 1, "typo": 1, "audit": 2})


def test_the_mix_spreads_kinds_evenly_in_proportion():
    assert queues.mix_sequence({"preference": 3, "needs_answer": 1}) == [
        "preference",
        "preference",
        "needs_answer",
        "preference",
    ]
    cycle = queues.mix_sequence({"preference": 3, "sft": 1, "needs_answer": 1})
    assert sorted(cycle) == ["needs_answer", "preference", "preference", "preference", "sft"]
    assert cycle[0] == "preference" and cycle[1] != "preference"  # spread, not bunched


def test_every_kind_in_the_picker_comes_from_the_one_list():
    assert [value for value, _ in queues.choices()] == [queues.ALL] + [
        kind.name for kind in queues.KINDS
    ]


# --- the items carry their candidate's kind, task type and source ---------------


def test_an_item_copies_kind_task_type_and_source_from_its_candidate():
    (item,) = make_items(1, kind="needs_answer", task_type="billing", source_name="web")
    item = refresh(item)
    assert (item.kind, item.task_type, item.source.name) == ("needs_answer", "billing", "web")


# --- picking a queue ----------------------------------------------------------


def test_the_picker_lists_the_task_types_of_queued_items_only(annotator):
    make_items(2, task_type="support")
    make_items(1, task_type="billing")
    (done,) = make_items(1, task_type="legal")
    ReviewItem.objects.filter(pk=done.pk).update(status="done")
    assert selectors.queued_task_types() == ["billing", "support"]
    services.queue_choose(user=annotator, kind="all", task_type="legal")
    # A remembered choice stays selectable even when nothing of it is queued.
    assert selectors.queue_picker(user=annotator)["task_types"] == ["billing", "support", "legal"]


def test_a_needs_answer_queue_serves_only_needs_answer_items(annotator):
    make_items(3, kind="preference", priority=0.9)
    wanted = make_items(2, kind="needs_answer", priority=0.1)
    services.queue_choose(user=annotator, kind="needs_answer")
    served = claim_all(annotator)
    assert [i.pk for i in served] == [i.pk for i in wanted]


def test_task_type_and_source_narrow_the_queue(annotator):
    make_items(2, task_type="support", source_name="web")
    make_items(2, task_type="billing", source_name="app")
    (wanted,) = make_items(1, task_type="billing", source_name="web", priority=0.0)
    web = Source.objects.get(name="web")
    services.queue_choose(user=annotator, kind="all", task_type="billing", source_id=web.pk)
    assert [i.pk for i in claim_all(annotator)] == [wanted.pk]


def test_the_all_queue_serves_kinds_in_the_configured_proportion(annotator, settings):
    settings.FLYWHEEL_REVIEW_MIX = {"preference": 3, "needs_answer": 1}
    # needs_answer items rank higher: by priority alone they would all come first.
    make_items(10, kind="needs_answer", priority=0.9)
    make_items(10, kind="preference", priority=0.1)
    kinds = [item.kind for item in claim_all(annotator)[:8]]
    assert kinds == ["preference", "preference", "needs_answer", "preference"] * 2


def test_the_mix_falls_back_to_other_kinds_when_one_runs_dry(annotator, settings):
    settings.FLYWHEEL_REVIEW_MIX = {"preference": 1}
    make_items(1, kind="preference")
    make_items(2, kind="sft")  # not in the mix, still served once it runs dry
    assert [i.kind for i in claim_all(annotator)] == ["preference", "sft", "sft"]


def test_the_choice_is_remembered_and_shown_on_the_home_page(as_user, annotator):
    make_items(1, task_type="billing", source_name="web")
    web = Source.objects.get(name="web")
    client = as_user(annotator)
    response = client.post(
        "/review/queue/", {"kind": "needs_answer", "task_type": "billing", "source": web.pk}
    )
    assert response.status_code == 302
    choice = QueueChoice.objects.get(user=annotator)
    assert (choice.kind, choice.task_type, choice.source_id) == ("needs_answer", "billing", web.pk)
    page = client.get("/review/").content.decode()
    assert '<option value="needs_answer" selected>' in page
    assert '<option value="billing" selected>' in page
    assert f'<option value="{web.pk}" selected>' in page
    assert "Needs an answer · task type billing · source web" in page


@pytest.mark.parametrize(
    "data",
    [
        {"kind": "everything"},
        {"kind": "<script>"},
        {"kind": "all", "source": "999999"},
        {"kind": "all", "source": "web"},
        {"kind": "all", "task_type": "x" * 101},
        {},
    ],
)
def test_a_hostile_queue_choice_is_refused_and_changes_nothing(as_user, annotator, data):
    services.queue_choose(user=annotator, kind="sft")
    response = as_user(annotator).post("/review/queue/", data)
    assert response.status_code == 422
    assert services.UNKNOWN_QUEUE in response.content.decode()
    assert QueueChoice.objects.get(user=annotator).kind == "sft"


# --- the progress strip ---------------------------------------------------------


def test_progress_counts_today_in_the_site_time_zone(annotator, settings):
    settings.TIME_ZONE = "America/New_York"
    items = make_items(5)
    # 03:00 UTC on the 10th is still the 9th in New York: not today there.
    with time_machine.travel(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), tick=False):
        review(items[0], annotator)
    for item, minutes in ((items[1], 2), (items[2], 4)):
        with time_machine.travel(NOW - timedelta(minutes=minutes), tick=False):
            claimed = services.item_claim_next(user=annotator)
            assert claimed.pk == item.pk
        with time_machine.travel(NOW, tick=False):
            services.review_submit(item=claimed, reviewer=annotator, decision="approve", **RUBRIC)
    with time_machine.travel(NOW + timedelta(minutes=1), tick=False):
        strip = selectors.queue_progress(user=annotator)
    assert strip["done_today"] == 2
    assert strip["left"] == 2 and not strip["left_capped"]
    assert strip["median_seconds"] == pytest.approx(120)  # of 0 s (instant), 120 s, 240 s
    assert strip["estimate_seconds"] == pytest.approx(240)  # two left at 120 s each


def test_home_and_the_curators_table_count_today_in_the_site_time_zone(as_user, curator, settings):
    settings.TIME_ZONE = "America/New_York"
    first, second = make_items(2)
    with time_machine.travel(datetime(2026, 3, 10, 3, 0, tzinfo=UTC), tick=False):
        review(first, curator)  # the 9th in New York
    with time_machine.travel(NOW, tick=False):
        review(second, curator)
        response = as_user(curator).get("/review/")
    assert response.context["my_today"] == 1
    assert [(row["today"], row["week"]) for row in response.context["progress"]] == [(1, 2)]


def test_left_in_this_queue_follows_the_choice_and_is_capped(annotator, monkeypatch):
    make_items(3, kind="preference")
    make_items(2, kind="needs_answer")
    assert selectors.queue_progress(user=annotator)["left"] == 5
    services.queue_choose(user=annotator, kind="needs_answer")
    assert selectors.queue_progress(user=annotator)["left"] == 2
    monkeypatch.setattr(selectors, "LEFT_COUNT_CAP", 1)
    strip = selectors.queue_progress(user=annotator)
    assert (strip["left"], strip["left_capped"]) == (1, True)


def test_the_home_page_shows_the_strip(as_user, annotator):
    make_items(3)
    page = as_user(annotator).get("/review/").content.decode()
    assert '<strong id="left-in-queue">3</strong> left in this queue' in page
    assert '<strong id="done-today">0</strong> done today' in page


# --- skips --------------------------------------------------------------------


def test_skips_are_counted_per_item_and_an_item_skipped_by_n_goes_to_a_curator(
    django_user_model, settings
):
    settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = 2
    (item,) = make_items(1)
    first, second = (django_user_model.objects.create_user(username=name) for name in ("s1", "s2"))
    services.item_claim_next(user=first)
    assert services.item_skip(item=item, user=first) is False
    assert (refresh(item).skip_count, refresh(item).status) == (1, "queued")
    services.item_claim_next(user=second)
    assert services.item_skip(item=item, user=second) is True
    escalated = refresh(item)
    assert (escalated.skip_count, escalated.status) == (2, "adjudication")
    assert escalated.escalated_at is not None
    assert ReviewSkip.objects.filter(item=item).count() == 2


def test_curators_see_skips_per_annotator_and_escalated_items(
    as_user, annotator, annotator2, curator, settings
):
    settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = 2
    first, second = make_items(2)
    services.item_claim_next(user=annotator)
    services.item_skip(item=first, user=annotator)
    services.item_claim_next(user=annotator)
    services.item_skip(item=second, user=annotator)
    services.item_claim_next(user=annotator2)
    services.item_skip(item=first, user=annotator2)
    client = as_user(curator)
    stats = client.get("/review/stats/")
    assert [(r["user__username"], r["n"]) for r in stats.context["skips_per_annotator"]] == [
        ("annie", 2),
        ("arthur", 1),
    ]
    assert [(r["pk"], r["window_skips"]) for r in stats.context["most_skipped"]] == [
        (first.pk, 2),
        (second.pk, 1),
    ]
    assert stats.context["escalated_waiting"] == 1
    assert "support · support-bot-v2" in stats.content.decode()  # the queue, not its key
    assert "sent to a curator" in stats.content.decode()
    adjudication = client.get("/review/adjudication/").content.decode()
    assert f'id="adj-{first.pk}"' in adjudication
    assert "skipped by 2" in adjudication


def test_skips_before_the_window_count_in_neither_the_total_nor_the_table(
    as_user, annotator, curator
):
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    services.item_skip(item=item, user=annotator)
    ReviewSkip.objects.update(created_at=timezone.now() - timedelta(days=60))

    stats = as_user(curator).get("/review/stats/?days=7")

    assert stats.context["skips_total"] == 0 and stats.context["most_skipped"] == []
    assert "No open item was skipped in this window." in stats.content.decode()


def test_the_skip_notice_says_when_the_item_went_to_a_curator(as_user, annotator, settings):
    settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = 1
    (item,) = make_items(1)
    client = as_user(annotator)
    client.post("/review/next/")
    response = client.post(f"/review/items/{item.pk}/skip/", headers=HTMX)
    assert "so it goes to a curator" in response.content.decode()


def test_a_curator_settles_an_escalated_item(annotator, curator, settings):
    settings.FLYWHEEL_REVIEW_SKIPS_TO_CURATOR = 1
    (item,) = make_items(1)
    services.item_claim_next(user=annotator)
    services.item_skip(item=item, user=annotator)
    claimed = services.item_claim_next(user=curator, mode="adjudication")
    assert claimed.pk == item.pk
    outcome = services.outcome_adjudicate(
        item=claimed, curator=curator, decision="reject", reject_reason="Unclear request"
    )
    assert (outcome.result, refresh(item).status) == ("rejected", "done")


# --- my reviews ---------------------------------------------------------------


def test_my_reviews_show_a_prompt_snippet_and_filter_by_decision(as_user, annotator):
    first, second, third = make_items(3)
    review(first, annotator, "approve")
    review(second, annotator, "reject")
    review(third, annotator, "approve")
    client = as_user(annotator)
    page = client.get("/review/mine/")
    assert [row["snippet"] for row in page.context["rows"]][-1].startswith(
        "How do I reset my password? (case"
    )
    rejected = client.get("/review/mine/?decision=reject")
    assert [row["review"].item_id for row in rejected.context["rows"]] == [second.pk]
    assert '<option value="reject" selected>' in rejected.content.decode()
    # Anything else is no filter, not an error.
    assert len(client.get("/review/mine/?decision=<b>").context["rows"]) == 3


def test_my_reviews_paginate_by_keyset_within_the_filter(as_user, annotator, monkeypatch):
    monkeypatch.setattr(selectors, "PAGE_SIZE", 2)
    items = make_items(5)
    for item in items:
        review(item, annotator, "approve")
    client = as_user(annotator)
    first = client.get("/review/mine/?decision=approve")
    assert [r["review"].item_id for r in first.context["rows"]] == [items[4].pk, items[3].pk]
    cursor = first.context["next_before"]
    second = client.get(f"/review/mine/?decision=approve&before={cursor}")
    assert [r["review"].item_id for r in second.context["rows"]] == [items[2].pk, items[1].pk]
    fragment = client.get(f"/review/mine/?decision=approve&before={cursor}", headers=HTMX)
    html = fragment.content.decode().strip()
    assert html.startswith('<div id="my-reviews">')
    assert "← Newest" in html
    assert f"before={second.context['next_before']}&amp;decision=approve" in html


def test_curators_get_links_to_the_item_and_candidate(as_user, curator):
    (item,) = make_items(1)
    review(item, curator)
    page = as_user(curator).get("/review/mine/").content.decode()
    assert f'href="/review/items/{item.pk}/"' in page
    assert f'href="/curation/candidates/{item.candidate_id}/"' in page


def test_annotators_get_no_curator_links(as_user, annotator):
    (item,) = make_items(1)
    review(item, annotator)
    page = as_user(annotator).get("/review/mine/").content.decode()
    assert "/curation/candidates/" not in page
    assert f"/review/reviews/{Review.objects.get().pk}/" in page


# --- honest words -------------------------------------------------------------


def test_with_one_reviewer_per_item_the_stats_say_there_is_nothing_to_compare(
    as_user, annotator, curator
):
    (item,) = make_items(1)
    review(item, annotator)
    page = as_user(curator).get("/review/stats/").content.decode()
    assert "One reviewer per item in this window: nothing to compare." in page
    assert 'id="agreement"' not in page
    assert "agree" not in page.split('id="agreement-empty"')[1].split("</p>")[0].replace(
        "Agreement needs", ""
    )


def test_with_two_reviewers_the_agreement_table_is_shown(as_user, annotator, annotator2, curator):
    (item,) = make_items(1, reviews_required=2)
    review(item, annotator)
    review(item, annotator2)
    page = as_user(curator).get("/review/stats/").content.decode()
    assert 'id="agreement"' in page
    assert "nothing to compare" not in page


def test_an_empty_adjudication_list_does_not_claim_agreement(as_user, curator):
    page = as_user(curator).get("/review/adjudication/").content.decode()
    assert "Nothing waiting for adjudication." in page
    assert "the reviewers agree" not in page


def test_a_needs_answer_item_asks_to_rate_the_chosen_answer(as_user, annotator):
    make_items(1, kind="needs_answer")
    client = as_user(annotator)
    page = client.post("/review/next/", follow=True).content.decode()
    assert "Rate the chosen answer" in page
    assert "Rate the model's answer" not in page
