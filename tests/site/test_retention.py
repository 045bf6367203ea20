"""The retention purge: old interactions and feedback leave in batches with what derives
from them; whatever gold or an open review references stays; each run is recorded, is an
audit event, and shows on the dashboard."""

from datetime import timedelta

import pytest
from django.utils import timezone

from curation import pipeline
from curation.models import Candidate, Feedback, Interaction, Source
from flywheel_site.audit.models import RetentionRule, RetentionRun
from flywheel_site.audit.retention import retention_purge
from flywheel_site.audit.services import audit_verify
from review.models import ReviewItem
from tests.support import training as th
from tests.support.curation import GOOD_ANSWER, GOOD_EDIT, ingest, no_toxicity
from tests.support.factories import feedback, interaction
from training.datasets import services

pytestmark = pytest.mark.django_db

OLD = timedelta(days=100)


def aged(event_id: str, *, age=OLD, edited=False, source="tests") -> Interaction:
    fb = (
        [feedback(event_id, f"{event_id}-fb", kind="edited", final_text=GOOD_EDIT)]
        if edited
        else []
    )
    ingest(interactions=[interaction(event_id, response=GOOD_ANSWER)], feedback=fb)
    row = Interaction.objects.get(event_id=event_id)
    when = timezone.now() - age
    Interaction.objects.filter(pk=row.pk).update(
        received_at=when, source=Source.objects.get_or_create(name=source)[0]
    )
    Feedback.objects.filter(interaction=row).update(received_at=when)
    return row


def test_old_unreferenced_data_is_purged_and_what_gold_or_open_review_needs_stays(settings):
    settings.FLYWHEEL_RETENTION_DAYS = 30
    settings.FLYWHEEL_RETENTION_BATCH = 2
    no_toxicity(sample_rate=1.0)
    plain = [aged(f"old{i}") for i in range(3)]
    reviewed = aged("queued", edited=True)
    pipeline.interactions_curate(interaction_ids=[reviewed.pk])
    assert ReviewItem.objects.filter(candidate__interaction=reviewed, status="queued").exists()
    recent = aged("recent", age=timedelta(days=1))
    outcome = th.approved(received_at=timezone.now() - OLD)
    assert services.gold_pairs_sync() == 1
    gold = outcome.item.candidate.interaction
    Interaction.objects.filter(pk=gold.pk).update(source=Source.objects.get(name="tests"))
    ingest(feedback=[feedback("nobody", "orphan-fb")])
    Feedback.objects.filter(event_id="orphan-fb").update(received_at=timezone.now() - OLD)

    run = retention_purge()

    assert not Interaction.objects.filter(pk__in=[i.pk for i in plain]).exists()
    assert Interaction.objects.filter(pk__in=[reviewed.pk, recent.pk, gold.pk]).count() == 3
    assert Candidate.objects.filter(interaction=reviewed).exists()
    assert not Feedback.objects.filter(event_id="orphan-fb").exists()
    assert run.counts["interactions"] == 3 and run.counts["feedback"] == 1
    assert RetentionRun.pgh_event_model.objects.filter(pgh_obj_id=run.pk).exists()
    # The audit's copies of the purged text are redacted, and the chain verifies.
    events = Interaction.pgh_event_model.objects.filter(pgh_obj_id__in=[i.pk for i in plain])
    assert events.exists() and not any(e.response for e in events)
    check = audit_verify()
    assert check.ok, check.problems
    # A second run finds nothing.
    assert retention_purge().counts.get("interactions", 0) == 0


def test_a_source_rule_overrides_the_default(settings):
    settings.FLYWHEEL_RETENTION_DAYS = 30
    no_toxicity()
    kept = aged("keep", source="forever")
    RetentionRule.objects.create(source=Source.objects.get(name="forever"), days=0)
    short = aged("short", age=timedelta(days=10), source="short")
    RetentionRule.objects.create(source=Source.objects.get(name="short"), days=7)
    run = retention_purge()
    assert Interaction.objects.filter(pk=kept.pk).exists()
    assert not Interaction.objects.filter(pk=short.pk).exists()
    assert run.per_source[str(Source.objects.get(name="short").pk)]["days"] == 7


def test_nothing_is_purged_by_default():
    no_toxicity()
    row = aged("old")
    assert retention_purge().counts == {}
    assert Interaction.objects.filter(pk=row.pk).exists()


def test_the_dashboard_shows_what_retention_removed(client, curator, settings):
    settings.FLYWHEEL_RETENTION_DAYS = 30
    no_toxicity()
    aged("old")
    retention_purge()
    client.force_login(curator)
    html = client.get("/").content.decode()
    assert 'id="retention-last"' in html
    assert "removed 1 interaction and 0 feedback events" in html
