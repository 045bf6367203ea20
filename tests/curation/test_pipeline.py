"""Curation services on real PostgreSQL: candidates, decisions, dedup,
toxicity (real Detoxify path on a tiny model), policies, idempotency."""

import pytest
from django.db import IntegrityError, ProgrammingError, transaction

from curation import dedup_earlier, filters, pipeline, policies
from curation.errors import CurationError
from curation.models import Candidate, CurationPolicy, FilterDecision, Interaction
from curation.toxicity import TOXICITY_UNAVAILABLE
from review.models import ReviewItem
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, edited, no_toxicity, with_feedback
from tests.support.tiny_detoxify import TOXIC_SENTENCES

pytestmark = pytest.mark.django_db


def curate(*interactions) -> dict:
    return pipeline.interactions_curate(interaction_ids=[i.pk for i in interactions])


def decisions(candidate) -> list[tuple[str, bool]]:
    return list(
        FilterDecision.objects.filter(candidate=candidate)
        .order_by("pk")
        .values_list("filter", "passed")
    )


def test_an_edit_makes_a_preference_pair_with_the_users_text_as_chosen():
    no_toxicity()
    interaction = edited("p1")
    curate(interaction)
    candidate = Candidate.objects.get()
    assert candidate.kind == "preference"
    assert candidate.chosen == GOOD_EDIT
    assert candidate.rejected == GOOD_ANSWER
    assert candidate.prompt == interaction.messages
    assert candidate.status == "passed", candidate.status_reason
    assert 0.1 < candidate.char_similarity < 0.95
    assert [d[0] for d in decisions(candidate)] == [
        "user_action",
        "length",
        "blocklist",
        "edit_band",
        "pii",
        "dedup_exact",
        "dedup_near",
        "quality",
    ]
    interaction.refresh_from_db()
    assert interaction.curation_state == "done"


@pytest.mark.parametrize(
    ("kind", "expected"),
    [("thumbs_down", "needs_answer"), ("regenerated", "needs_answer")],
)
def test_negative_feedback_without_an_edit_needs_an_answer(kind, expected):
    no_toxicity()
    curate(with_feedback("n1", kind))
    candidate = Candidate.objects.get()
    assert candidate.kind == expected
    assert candidate.chosen is None


@pytest.mark.parametrize(("rate", "count"), [(1.0, 1), (0.0, 0)])
def test_approved_answers_become_sft_candidates_at_the_sft_rate(rate, count):
    no_toxicity(sft_rate=rate)
    curate(with_feedback("s1", "accepted"))
    assert Candidate.objects.filter(kind="sft").count() == count


def test_interactions_without_feedback_make_no_candidate():
    from tests.support import factories
    from tests.support.curation import ingest

    ingest(interactions=[factories.interaction("plain")])
    curate(Interaction.objects.get())
    assert Candidate.objects.count() == 0
    assert Interaction.objects.get().curation_state == "done"


def test_a_failed_candidate_stops_at_the_first_failing_filter_with_its_reason():
    policy = no_toxicity()
    curate(edited("f1", final=GOOD_ANSWER + "!"))  # a typo-sized edit
    candidate = Candidate.objects.get()
    assert candidate.status == "failed"
    assert candidate.failed_filter == "edit_band"
    assert "above 0.950" in candidate.status_reason
    assert decisions(candidate)[-1] == ("edit_band", False)
    assert len(decisions(candidate)) == 4
    decision = FilterDecision.objects.get(candidate=candidate, filter="edit_band")
    assert decision.policy == policy
    assert decision.scorer == filters.SCORER_NAME
    assert decision.details["char_similarity"] > 0.95


def test_full_evaluation_records_every_filter_for_calibration():
    policy = no_toxicity()
    curate(edited("f1", final=GOOD_ANSWER + "!"))
    candidate = Candidate.objects.get()
    pipeline.candidates_recurate(policy=policy, candidate_ids=[candidate.pk], full=True)
    assert len(decisions(candidate)) == 8
    assert Candidate.objects.get().failed_filter == "edit_band"


def test_exact_and_near_duplicates_name_the_earlier_candidate():
    no_toxicity()
    same = [{"role": "user", "content": "How do I reset my password?"}]
    first = edited("d1", messages=same)
    exact = edited("d2", messages=same)
    near = edited(
        "d3",
        messages=same,
        final=GOOD_EDIT.replace("look in spam first", "look in spam folder first"),
    )
    curate(first, exact, near)
    a, b, c = Candidate.objects.order_by("pk")
    assert a.status == "passed"
    assert b.failed_filter == "dedup_exact"
    assert b.status_reason == dedup_earlier.EXACT_DUPLICATE.format(other=a.pk)
    assert c.failed_filter == "dedup_near"
    assert f"candidate #{a.pk}" in c.status_reason


def test_curating_twice_writes_nothing_more():
    no_toxicity()
    interaction = edited("t1")
    curate(interaction)
    snapshot = (
        Candidate.objects.count(),
        FilterDecision.objects.count(),
        ReviewItem.objects.count(),
    )
    Interaction.objects.filter(pk=interaction.pk).update(curation_state="pending")
    curate(interaction)
    curate(interaction)
    assert (
        Candidate.objects.count(),
        FilterDecision.objects.count(),
        ReviewItem.objects.count(),
    ) == snapshot


@pytest.mark.slow  # loads the tiny Detoxify model, and torch with it
def test_a_toxic_edit_is_discarded_by_the_real_model(toxicity_model):
    policies.policy_create(
        changes={"min_words": 2, "quality_min": 0.0, "band_low": 0.0, "band_high": 1.0}
    )
    curate(edited("x1", response="here is the answer to your question", final=TOXIC_SENTENCES[0]))
    curate(edited("x2", response="here is the answer", final="here is the answer to your question"))
    toxic, clean = Candidate.objects.order_by("pk")
    assert toxic.failed_filter == "toxicity", toxic.status_reason
    assert toxic.toxicity > 0.5
    assert clean.status == "passed", clean.status_reason
    assert clean.toxicity < 0.1
    decision = FilterDecision.objects.get(candidate=toxic, filter="toxicity")
    assert decision.scorer == "detoxify-original"
    assert decision.scorer_version
    assert decision.details["scores"]["toxicity"] > 0.5


def test_without_a_model_candidates_are_held_never_passed(settings):
    from curation.toxicity import reset_scorer_cache

    settings.FLYWHEEL_TOXICITY_CHECKPOINT = "/nonexistent/model.ckpt"
    settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK = False
    reset_scorer_cache()
    curate(edited("h1"))
    candidate = Candidate.objects.get()
    assert candidate.status == "held"
    assert TOXICITY_UNAVAILABLE in candidate.status_reason
    assert not ReviewItem.objects.exists()
    assert not FilterDecision.objects.filter(filter="toxicity").exists()
    reset_scorer_cache()


def test_held_candidates_are_evaluated_once_the_model_is_back(settings, toxicity_model):
    from curation.toxicity import reset_scorer_cache

    good = {"checkpoint": settings.FLYWHEEL_TOXICITY_CHECKPOINT}
    settings.FLYWHEEL_TOXICITY_CHECKPOINT = "/nonexistent/model.ckpt"
    reset_scorer_cache()
    curate(edited("h1"))
    assert Candidate.objects.get().status == "held"
    settings.FLYWHEEL_TOXICITY_CHECKPOINT = good["checkpoint"]
    reset_scorer_cache()
    pipeline.held_recheck()
    candidate = Candidate.objects.get()
    assert candidate.status in ("passed", "failed")
    assert FilterDecision.objects.filter(candidate=candidate, filter="toxicity").exists()


def test_the_fallback_scorer_decides_only_when_allowed_and_is_recorded(settings):
    from curation.toxicity import PROFANITY_CHECK_NAME, reset_scorer_cache

    settings.FLYWHEEL_TOXICITY_CHECKPOINT = "/nonexistent/model.ckpt"
    settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK = True
    reset_scorer_cache()
    curate(edited("fb1"))
    decision = FilterDecision.objects.get(filter="toxicity")
    assert decision.scorer == PROFANITY_CHECK_NAME
    assert Candidate.objects.get().toxicity_scorer.startswith(PROFANITY_CHECK_NAME)
    reset_scorer_cache()


def test_editing_a_policy_creates_a_new_version_and_old_ones_are_read_only():
    v1 = policies.policy_current()
    v2 = policies.policy_create(changes={"min_words": 5}, note="shorter answers")
    assert (v1.version, v2.version) == (1, 2)
    assert policies.policy_current() == v2
    assert CurationPolicy.objects.get(version=1).min_words == 20
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        CurationPolicy.objects.filter(pk=v1.pk).update(min_words=1)
    with pytest.raises(ProgrammingError, match="Cannot update or delete"), transaction.atomic():
        CurationPolicy.objects.filter(pk=v1.pk).delete()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"band_low": 0.9, "band_high": 0.2}, filters.BAD_BAND),
        ({"blocklist_patterns": ["(unclosed"]}, "not a valid regular expression"),
        ({"sample_rate": 1.5}, "sample_rate must be between 0 and 1"),
    ],
)
def test_an_invalid_policy_is_refused_with_a_clear_message(changes, message):
    with pytest.raises(CurationError, match="policy is invalid") as excinfo:
        policies.policy_create(changes=changes)
    assert message in str(excinfo.value)
    assert CurationPolicy.objects.count() == 1


def test_recurating_under_a_new_version_keeps_the_old_decisions():
    v2 = no_toxicity()
    curate(edited("r1"))
    candidate = Candidate.objects.get()
    assert candidate.status == "passed"
    v3 = policies.policy_create(changes={"min_words": 500})
    pipeline.candidates_recurate(policy=v3)
    candidate.refresh_from_db()
    assert candidate.status == "failed"
    assert candidate.failed_filter == "length"
    assert candidate.policy == v3
    assert FilterDecision.objects.filter(candidate=candidate, policy=v2).count() == 8
    assert FilterDecision.objects.filter(candidate=candidate, policy=v3).count() == 2


def test_a_preference_candidate_needs_both_sides_in_the_database():
    interaction = edited("c1")
    with pytest.raises(IntegrityError), transaction.atomic():
        Candidate.objects.create(
            interaction=interaction,
            kind="preference",
            prompt=[],
            chosen="x",
            rejected=None,
            exact_key="k",
        )


def test_new_feedback_on_a_curated_interaction_sends_it_back_to_curation():
    from tests.support import factories
    from tests.support.curation import ingest

    no_toxicity()
    interaction = with_feedback("late", "thumbs_up")
    curate(interaction)
    assert Interaction.objects.get(pk=interaction.pk).curation_state == "done"
    ingest(feedback=[factories.feedback("late", "late-edit", kind="edited", final_text=GOOD_EDIT)])
    assert Interaction.objects.get(pk=interaction.pk).curation_state == "pending"
    curate(interaction)
    assert Candidate.objects.filter(kind="preference").count() == 1
