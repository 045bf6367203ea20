"""Gold pairs: made from approved outcomes with their provenance, append-only in the database,
corrected by a new pair that supersedes the old one."""

import pytest
from django.db import DatabaseError, connection, transaction

from review.models import ReviewOutcome
from tests.support import training as th
from training.datasets import canonical as gold
from training.datasets import services
from training.errors import TrainingError
from training.models import GoldPair

pytestmark = pytest.mark.django_db


def test_an_approved_preference_outcome_becomes_a_pair_with_its_provenance():
    outcome = th.approved(reviewers=("rita", "raj"))
    assert services.gold_pairs_sync() == 1
    pair = GoldPair.objects.get()
    candidate = outcome.item.candidate
    assert pair.kind == "preference"
    assert pair.chosen == outcome.chosen
    assert pair.rejected == outcome.rejected
    assert pair.prompt == candidate.prompt
    assert pair.candidate == candidate
    assert pair.interaction == candidate.interaction
    assert pair.source_id == candidate.interaction.source_id
    assert pair.policy_id == candidate.policy_id
    assert pair.model == "bot-v1"
    assert pair.occurred_at == candidate.interaction.occurred_at
    assert pair.ingested_at == candidate.interaction.received_at
    assert pair.approved_at == outcome.decided_at
    assert len(pair.reviewer_ids) == 2
    assert [r["helpfulness"] for r in pair.reviews] == [5, 4]
    assert pair.content_sha256 == gold.content_sha256(
        kind="preference", prompt=pair.prompt, chosen=pair.chosen, rejected=pair.rejected
    )
    assert pair.lineage_key == pair.content_sha256
    assert pair.minhash


@pytest.mark.parametrize(
    ("candidate_kind", "pair_kind", "has_rejected"),
    [
        ("preference", "preference", True),
        ("needs_answer", "preference", True),
        ("sft", "sft", False),
    ],
)
def test_the_pair_kind_follows_whether_there_is_a_worse_answer(
    candidate_kind, pair_kind, has_rejected
):
    th.approved(kind=candidate_kind)
    services.gold_pairs_sync()
    pair = GoldPair.objects.get()
    assert pair.kind == pair_kind
    assert (pair.rejected is not None) is has_rejected


def test_sync_is_idempotent_and_ignores_rejected_outcomes():
    th.approved()
    th.approved(result="rejected")
    assert services.gold_pairs_sync() == 1
    assert services.gold_pairs_sync() == 0
    assert GoldPair.objects.count() == 1


def test_a_rejected_outcome_is_refused_by_name():
    outcome = th.approved(result="rejected")
    with pytest.raises(TrainingError) as error:
        services.gold_pair_create(outcome=outcome)
    assert str(error.value) == services.ERR_NOT_APPROVED.format(pk=outcome.pk, result="rejected")


def _one_pair() -> GoldPair:
    th.approved()
    services.gold_pairs_sync()
    return GoldPair.objects.get()


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE training_goldpair SET chosen = 'tampered'",
        "UPDATE training_goldpair SET task_type = 'other'",
        "DELETE FROM training_goldpair",
    ],
)
def test_the_database_refuses_to_change_or_delete_a_gold_pair(sql):
    pair = _one_pair()
    with (
        pytest.raises(DatabaseError, match="Cannot update or delete"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    pair.refresh_from_db()
    assert pair.chosen != "tampered"


def test_the_orm_cannot_edit_a_gold_pair_either():
    pair = _one_pair()
    pair.chosen = "tampered"
    with pytest.raises(DatabaseError), transaction.atomic():
        pair.save()
    with pytest.raises(DatabaseError), transaction.atomic():
        GoldPair.objects.all().delete()
    assert GoldPair.objects.get().chosen != "tampered"


def test_a_correction_is_a_new_pair_that_supersedes_the_old_one_with_history(admin):
    pair = _one_pair()
    fixed = services.gold_pair_correct(
        pair=pair, chosen="A better answer.", user=admin, reason="typo in the answer"
    )
    assert fixed.pk != pair.pk
    assert fixed.supersedes == pair
    assert fixed.lineage_key == pair.lineage_key
    assert fixed.content_sha256 != pair.content_sha256
    assert fixed.outcome == pair.outcome
    pair.refresh_from_db()
    assert pair.chosen != "A better answer."  # the old pair is untouched
    event = GoldPair.pgh_event_model.objects.get()
    assert event.pgh_obj_id == fixed.pk
    assert event.correction_reason == "typo in the answer"
    assert event.pgh_context.metadata["reason"] == "typo in the answer"


def test_only_the_latest_pair_can_be_corrected(admin):
    pair = _one_pair()
    fixed = services.gold_pair_correct(pair=pair, chosen="Second.", user=admin, reason="r")
    with pytest.raises(TrainingError) as error:
        services.gold_pair_correct(pair=pair, chosen="Third.", user=admin, reason="r")
    assert str(error.value) == services.ERR_ALREADY_CORRECTED.format(pk=pair.pk, by=fixed.pk)


@pytest.mark.parametrize(
    ("chosen", "reason", "message"),
    [
        ("New.", "  ", services.ERR_CORRECTION_REASON),
        ("   ", "why", services.ERR_CORRECTION_EMPTY),
    ],
)
def test_a_correction_needs_a_reason_and_a_text(admin, chosen, reason, message):
    pair = _one_pair()
    with pytest.raises(TrainingError) as error:
        services.gold_pair_correct(pair=pair, chosen=chosen, user=admin, reason=reason)
    assert str(error.value) == message


def test_a_correction_that_changes_nothing_is_refused(admin):
    pair = _one_pair()
    with pytest.raises(TrainingError) as error:
        services.gold_pair_correct(pair=pair, chosen=pair.chosen, user=admin, reason="r")
    assert str(error.value) == services.ERR_CORRECTION_UNCHANGED


def test_a_rejected_outcome_in_the_queue_is_not_gold():
    th.approved(result="rejected")
    assert services.gold_pairs_sync() == 0
    assert ReviewOutcome.objects.count() == 1
