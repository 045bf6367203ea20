"""Curators' actions from the explorer: bulk actions on exactly the filtered
set after a confirmation with a count and a reason, large sets as an RQ job
with progress, idempotent when run twice; the candidate page's diff, links and
single actions."""

import django_rq
import pytest

from curation import actions, pipeline, views
from curation.models import Candidate, CandidateAction, CandidateActionItem, FilterDecision
from review.models import ReviewItem
from tests.support.curation import edited, no_toxicity
from tests.support.explorer import candidate
from tests.support.jobs import run_jobs

pytestmark = pytest.mark.django_db

BULK = "/curation/candidates/bulk/"


def confirm(client, **query):
    response = client.get(BULK, query)
    assert response.status_code == 200
    return response.context


def act(client, context, **extra):
    data = {
        **dict(context["hidden"]),
        "action": context["kind"],
        "max_id": context["max_id"],
        "expected": context["count"],
        "reason": "off-topic traffic from a load test",
        **extra,
    }
    return client.post(BULK, data)


def test_a_bulk_reject_acts_on_exactly_the_filtered_set(as_user, curator):
    support = [candidate(task_type="support", status="passed") for _ in range(3)]
    other = [candidate(task_type="billing", status="passed"), candidate(status="passed")]
    client = as_user(curator)
    context = confirm(client, task_type="support", action="reject")
    assert context["count"] == 3
    response = act(client, context)
    action = CandidateAction.objects.get()
    assert response.status_code == 302 and response["Location"] == f"/curation/actions/{action.pk}/"
    rejected = set(Candidate.objects.filter(status="failed").values_list("pk", flat=True))
    assert rejected == {c.pk for c in support}
    assert set(Candidate.objects.filter(status="passed").values_list("pk", flat=True)) == {
        c.pk for c in other
    }
    c = Candidate.objects.get(pk=support[0].pk)
    assert c.failed_filter == "curator"
    assert "carla" in c.status_reason and "load test" in c.status_reason
    assert (action.user, action.reason, action.total, action.done, action.status) == (
        curator,
        "off-topic traffic from a load test",
        3,
        3,
        "succeeded",
    )
    assert action.query == {"task_type": "support"}
    assert CandidateActionItem.objects.filter(action=action).count() == 3
    page = client.get(response["Location"]).content.decode()
    assert '<span class="pill chip">task type: support</span>' in page  # chips, not a dict
    assert "{&#x27;task_type&#x27;" not in page


def test_the_confirmation_says_how_many_and_asks_for_a_reason(as_user, curator):
    for _ in range(2):
        candidate(task_type="support")
    body = as_user(curator).get(BULK, {"task_type": "support", "action": "queue"}).content.decode()
    assert "This will act on <strong>2</strong> candidates" in body
    assert '<textarea name="reason"' in body and "required" in body
    assert "Send to the review queue: 2 candidates" in body
    assert '<span class="pill chip">task type: support</span>' in body
    reject = as_user(curator).get(BULK, {"task_type": "support", "action": "reject"})
    assert '<button type="submit" class="danger">Reject: 2 candidates' in reject.content.decode()


def test_without_a_reason_nothing_is_done(as_user, curator):
    made = candidate(status="passed")
    client = as_user(curator)
    response = act(client, confirm(client, action="reject"), reason="   ")
    assert response.status_code == 400
    assert Candidate.objects.get(pk=made.pk).status == "passed"
    assert not CandidateAction.objects.exists()


def test_when_the_set_changed_since_the_confirmation_nothing_is_done(as_user, curator):
    made = [candidate(status="passed") for _ in range(3)]
    client = as_user(curator)
    context = confirm(client, status="passed", action="reject")
    assert context["count"] == 3
    Candidate.objects.filter(pk=made[0].pk).update(status="held")  # leaves the set
    response = act(client, context)
    assert response.status_code == 409
    assert "3 candidate(s) then, 2 now" in response.content.decode()
    assert Candidate.objects.filter(status="failed").count() == 0
    assert not CandidateAction.objects.exists() and not CandidateActionItem.objects.exists()
    # The page asks again with the new count.
    assert response.context["count"] == 2


def test_candidates_arriving_after_the_confirmation_are_left_out(as_user, curator):
    made = [candidate(status="passed") for _ in range(2)]
    client = as_user(curator)
    context = confirm(client, status="passed", action="reject")
    late = candidate(status="passed")
    assert act(client, context).status_code == 302
    assert set(Candidate.objects.filter(status="failed").values_list("pk", flat=True)) == {
        c.pk for c in made
    }
    assert Candidate.objects.get(pk=late.pk).status == "passed"


# Transactional: the job runs in a real RQ worker (in process), which checks
# its database connection the way a worker process does.
@pytest.mark.django_db(transaction=True)
def test_a_large_set_runs_as_a_job_with_progress_and_twice_changes_nothing(
    as_user, curator, settings, monkeypatch
):
    settings.FLYWHEEL_BULK_ACTION_INLINE = 2
    monkeypatch.setattr(actions, "CHUNK", 2)
    made = [candidate(status="passed") for _ in range(5)]
    client = as_user(curator)
    context = confirm(client, action="reject")
    response = act(client, context)
    action = CandidateAction.objects.get()
    assert (action.status, action.done, action.total) == ("queued", 0, 5)
    page = client.get(response["Location"]).content.decode()
    assert 'hx-trigger="every 2s"' in page and 'aria-live="polite"' in page
    assert '<span id="action-done">0/5</span>' in page
    assert django_rq.get_queue("curation").count == 1

    # One chunk: the polled row says how far it got.
    assert actions._chunk_perform(action) == 2
    partial = client.get(response["Location"], headers={"HX-Request": "true"}).content.decode()
    assert '<span id="action-done">2/5</span>' in partial and "<html" not in partial

    run_jobs("curation")
    action.refresh_from_db()
    assert (action.status, action.done, action.total) == ("succeeded", 5, 5)
    assert Candidate.objects.filter(status="failed").count() == 5
    page = client.get(response["Location"]).content.decode()
    assert "hx-trigger" not in page and '<span id="action-done">5/5</span>' in page

    # Run it twice: the job again (a retry, a second worker) does nothing.
    before = list(Candidate.objects.order_by("pk").values_list("status_reason", "evaluated_at"))
    django_rq.get_queue("curation").enqueue(actions.ACTION_JOB, action.pk)
    run_jobs("curation")
    assert actions.candidate_action_perform(action_id=action.pk) == 0
    action.refresh_from_db()
    assert (action.status, action.done) == ("succeeded", 5)
    after = list(Candidate.objects.order_by("pk").values_list("status_reason", "evaluated_at"))
    assert after == before and len(made) == 5


def test_send_to_the_queue_goes_through_the_sampling_hook(as_user, curator):
    fresh = [candidate(status="passed") for _ in range(2)]
    client = as_user(curator)
    assert act(client, confirm(client, action="queue")).status_code == 302
    items = ReviewItem.objects.filter(candidate__in=fresh)
    assert items.count() == 2
    assert {i.inclusion_probability for i in items} == {1.0}
    c = Candidate.objects.get(pk=fresh[0].pk)
    assert c.sampled_at is not None and c.priority_details["sent_by"] == "carla"
    first = CandidateAction.objects.get()
    said = client.get(f"/curation/actions/{first.pk}/").content.decode()
    assert "<strong>2</strong> added to the review queue · <strong>0</strong> already" in said
    # Twice: the queue holds one item per candidate, and the second action says so.
    again = act(client, confirm(client, action="queue"))
    assert ReviewItem.objects.filter(candidate__in=fresh).count() == 2
    said = client.get(again["Location"]).content.decode()
    assert "<strong>0</strong> added to the review queue · <strong>2</strong> already" in said


def test_recurate_runs_the_current_policy_again(as_user, curator):
    no_toxicity()
    interaction = edited("r1")
    pipeline.interactions_curate(interaction_ids=[interaction.pk])
    made = Candidate.objects.get(interaction=interaction)
    assert made.status == "passed"
    client = as_user(curator)
    client.post(f"/curation/candidates/{made.pk}/act/", {"action": "reject", "reason": "spam"})
    assert Candidate.objects.get(pk=made.pk).status == "failed"
    newer = no_toxicity(min_words=500)
    response = client.post(
        f"/curation/candidates/{made.pk}/act/", {"action": "recurate", "reason": "new policy"}
    )
    assert response.status_code == 302
    made.refresh_from_db()
    assert (made.status, made.failed_filter, made.policy_id) == ("failed", "length", newer.pk)
    assert FilterDecision.objects.filter(candidate=made, policy=newer).exists()
    assert list(
        CandidateAction.objects.filter(items__candidate=made)
        .order_by("pk")
        .values_list("kind", "reason", "user__username")
    ) == [("reject", "spam", "carla"), ("recurate", "new policy", "carla")]


def test_a_single_action_needs_a_known_kind_and_a_reason(as_user, curator):
    made = candidate(status="passed")
    client = as_user(curator)
    for data in ({"action": "reject"}, {"action": "explode", "reason": "x"}, {"reason": "x"}):
        response = client.post(f"/curation/candidates/{made.pk}/act/", data, follow=True)
        # Refused with a redirect to the candidate's page (which answers GET), saying why.
        assert response.redirect_chain == [(f"/curation/candidates/{made.pk}/", 302)]
        assert response.status_code == 200
        assert views.NEED_REASON in response.content.decode()
    assert Candidate.objects.get(pk=made.pk).status == "passed"
    assert not CandidateAction.objects.exists()
    assert client.post("/curation/candidates/999999/act/", {"action": "reject"}).status_code == 404


@pytest.mark.parametrize(
    "query",
    [
        {"action": "explode"},
        {},
        {"action": "reject", "quality_min": "NaN"},
        {"action": "reject", "created_to": "2026-13-01"},
        {"action": "reject", "kind": "explode"},
    ],
)
def test_a_hostile_bulk_link_is_a_400_and_changes_nothing(as_user, curator, query):
    made = candidate(status="passed")
    client = as_user(curator)
    assert client.get(BULK, query).status_code == 400
    response = client.post(BULK, {**query, "reason": "x", "max_id": made.pk, "expected": 1})
    assert response.status_code == 400
    assert Candidate.objects.get(pk=made.pk).status == "passed"


def test_a_forged_count_or_bound_is_refused(as_user, curator):
    made = candidate(status="passed")
    client = as_user(curator)
    base = {"action": "reject", "reason": "x"}
    assert client.post(BULK, {**base, "max_id": "abc", "expected": 1}).status_code == 400
    assert client.post(BULK, {**base, "max_id": made.pk, "expected": "-1"}).status_code == 400
    assert client.post(BULK, {**base, "max_id": made.pk, "expected": 7}).status_code == 409
    assert Candidate.objects.get(pk=made.pk).status == "passed"


def test_the_candidate_page_shows_the_diff_links_and_actions(as_user, curator):
    earlier = candidate()
    made = candidate(
        chosen="Open Settings, then Security.", rejected="Open Setings, then Security."
    )
    FilterDecision.objects.create(
        candidate=made,
        policy=no_toxicity(),
        filter="dedup_exact",
        passed=False,
        reason=f"Exact duplicate of candidate #{earlier.pk}.",
        details={"duplicate_of": earlier.pk},
        scorer="t",
        scorer_version="1",
    )
    body = as_user(curator).get(f"/curation/candidates/{made.pk}/").content.decode()
    assert '<del class="diff-del">Setings,</del>' in body
    assert '<ins class="diff-ins">Settings,</ins>' in body
    assert f'<a href="/curation/candidates/{earlier.pk}/" id="duplicate-of">' in body
    assert f"/admin/curation/interaction/{made.interaction_id}/change/" in body
    assert "not sampled for review" in body
    for kind in ("recurate", "queue", "reject"):
        assert f'name="action" value="{kind}"' in body


def test_the_review_item_link_resolves_by_candidate(as_user, curator):
    made = candidate(status="passed")
    client = as_user(curator)
    client.post(f"/curation/candidates/{made.pk}/act/", {"action": "queue", "reason": "look"})
    body = client.get(f"/curation/candidates/{made.pk}/").content.decode()
    assert f'href="/review/items/by-candidate/{made.pk}/"' in body
    item = ReviewItem.objects.get(candidate=made)
    response = client.get(f"/review/items/by-candidate/{made.pk}/")
    assert response["Location"] == f"/review/items/{item.pk}/"
    assert client.get("/review/items/by-candidate/999999/").status_code == 404
