"""manage.py erase_user: one end user's data leaves every table but frozen gold, which is
kept and quarantined; the audit events' copies of the text are redacted and the chain
still verifies. Transactional: the audit chain is appended at commit."""

import json
from datetime import timedelta

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from curation import pipeline
from curation.ingest_rows import user_hash
from curation.models import Candidate, Feedback, Interaction
from flywheel_site.audit.erasure import REASON
from flywheel_site.audit.models import AuditRedaction, Erasure
from flywheel_site.audit.services import audit_verify
from review.models import ReviewItem
from tests.support import training as th
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, ingest, no_toxicity
from tests.support.factories import feedback, interaction
from training.datasets import services
from training.models import DatasetVersion, GoldPair, ModelVersion, Quarantine

pytestmark = pytest.mark.django_db(transaction=True)

RAW = "alice@example.com"


def users_data(raw: str, prefix: str) -> Interaction:
    """An edited interaction of `raw`, curated and queued for review (sample_rate 1)."""
    ingest(
        interactions=[interaction(f"{prefix}-1", user_id=raw, response=GOOD_ANSWER)],
        feedback=[
            feedback(
                f"{prefix}-1", f"{prefix}-fb", kind="edited", final_text=GOOD_EDIT, user_id=raw
            )
        ],
    )
    row = Interaction.objects.get(event_id=f"{prefix}-1")
    pipeline.interactions_curate(interaction_ids=[row.pk])
    return row


def test_erase_user_removes_unfrozen_data_quarantines_frozen_and_keeps_the_chain(admin):
    no_toxicity(sample_rate=1.0)
    # Frozen: a gold pair of alice's in a frozen version.
    dataset = services.dataset_create(name="support", user=admin, lag_days=0)
    outcome = th.approved(occurred_at=timezone.now() - timedelta(days=1))
    Interaction.objects.filter(pk=outcome.item.candidate.interaction_id).update(
        user_hash=user_hash(RAW)
    )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    trained = th.registered(version, status="promoted")
    # Unfrozen: alice's curated and queued interaction; bob's, untouched.
    mine = users_data(RAW, "a")
    theirs = users_data("bob", "b")
    candidate = Candidate.objects.get(interaction=mine)
    assert ReviewItem.objects.filter(candidate=candidate).exists(), candidate.status_reason

    call_command("erase_user", RAW)

    hashed = user_hash(RAW)
    kept = Interaction.objects.filter(user_hash=hashed)
    assert list(kept.values_list("pk", flat=True)) == [outcome.item.candidate.interaction_id]
    assert not Interaction.objects.filter(pk=mine.pk).exists()
    assert not Feedback.objects.filter(user_hash=hashed).exists()
    assert not Candidate.objects.filter(interaction_id=mine.pk).exists()
    assert Candidate.objects.filter(interaction=theirs).exists()
    assert Feedback.objects.filter(interaction=theirs).exists()
    # Frozen gold stays as frozen, excluded from later versions; its version is quarantined.
    version.refresh_from_db()
    assert version.status == DatasetVersion.Status.QUARANTINED
    pair = GoldPair.objects.get(interaction_id=outcome.item.candidate.interaction_id)
    assert Quarantine.objects.filter(kind="pair", pair=pair, reason=REASON).exists()
    assert Quarantine.objects.filter(kind="dataset_version", dataset_version=version).exists()
    trained.refresh_from_db()
    assert trained.status == ModelVersion.Status.ROLLED_BACK
    # The audit's copies of alice's text are gone; the chain verifies, with redactions.
    events = Interaction.pgh_event_model.objects.filter(pgh_obj_id=mine.pk)
    assert events.exists()
    assert all(not e.messages and not e.response and not e.user_hash for e in events)
    assert AuditRedaction.objects.filter(reason=REASON).count() >= events.count()
    check = audit_verify()
    assert check.ok, check.problems
    assert check.redactions >= events.count()
    # The erasure's record holds no personal data.
    erasure = Erasure.objects.get()
    record = json.dumps([erasure.counts, erasure.quarantined_versions])
    assert RAW not in record and hashed not in record
    assert erasure.counts["interactions"] == 1 and erasure.quarantined_versions == [version.pk]

    # A second run finds nothing more.
    call_command("erase_user", RAW)
    again = Erasure.objects.latest("pk")
    assert again.quarantined_versions == []
    assert {k: v for k, v in again.counts.items() if k != "gold_pairs_kept"} == dict.fromkeys(
        [k for k in again.counts if k != "gold_pairs_kept"], 0
    )
    assert audit_verify().ok


def test_erase_user_needs_an_id():
    with pytest.raises(CommandError, match="user id"):
        call_command("erase_user", "  ")
