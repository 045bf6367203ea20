"""Retention: interactions and feedback older than their source's retention (a
RetentionRule, else FLYWHEEL_RETENTION_DAYS; 0 keeps forever) are purged in batches, with
everything derived from them and the audit's copies of their text (as for an erasure).
Kept whatever its age: an interaction a gold pair references (and so any dataset version
holding it), and one whose review is still open (queued or in adjudication). Each run is
recorded (RetentionRun, itself an audit event) and shown on the dashboard."""

from collections import defaultdict
from datetime import timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Exists, OuterRef
from django.utils import timezone

from curation.models import Feedback, Interaction, Source
from flywheel_site.audit.erasure import interactions_delete
from flywheel_site.audit.models import RetentionRule, RetentionRun
from review.models import ReviewItem
from training.datasets.rollups import metrics_rebuild
from training.models import GoldPair

REASON = "retention"
OPEN_REVIEW = (ReviewItem.Status.QUEUED, ReviewItem.Status.ADJUDICATION)


def retention_days() -> dict[int, int]:
    """Source id -> days kept, for every source with a limit."""
    rules = dict(RetentionRule.objects.values_list("source_id", "days"))
    days = {}
    for source_id in Source.objects.values_list("pk", flat=True):
        limit = rules.get(source_id, settings.FLYWHEEL_RETENTION_DAYS)
        if limit:
            days[source_id] = limit
    return days


def purgeable(*, source_id: int, cutoff):
    """Interactions of a source received before `cutoff` that nothing kept references."""
    return (
        Interaction.objects.filter(source_id=source_id, received_at__lt=cutoff)
        .exclude(Exists(GoldPair.objects.filter(interaction_id=OuterRef("pk"))))
        .exclude(
            Exists(
                ReviewItem.objects.filter(
                    candidate__interaction_id=OuterRef("pk"), status__in=OPEN_REVIEW
                )
            )
        )
    )


def retention_purge(*, now=None) -> RetentionRun:
    """Purge what retention allows, `FLYWHEEL_RETENTION_BATCH` interactions per
    transaction (a long purge holds no lock for long, and a crash loses one batch's work
    at most: the next run goes on). Idempotent: a second run finds nothing."""
    now = now or timezone.now()
    batch = settings.FLYWHEEL_RETENTION_BATCH
    totals: dict[str, int] = defaultdict(int)
    per_source: dict[str, dict] = {}
    for source_id, days in retention_days().items():
        cutoff = now - timedelta(days=days)
        removed: dict[str, int] = defaultdict(int)
        while True:
            with transaction.atomic():
                ids = list(
                    purgeable(source_id=source_id, cutoff=cutoff)
                    .order_by("pk")
                    .select_for_update(skip_locked=True)
                    .values_list("pk", flat=True)[:batch]
                )
                orphans = list(
                    Feedback.objects.filter(
                        source_id=source_id, interaction__isnull=True, received_at__lt=cutoff
                    ).values_list("pk", flat=True)[:batch]
                )
                if not ids and not orphans:
                    break
                counts = interactions_delete(
                    interaction_ids=set(ids), feedback_ids=set(orphans), reason=REASON
                )
            for name, count in counts.items():
                removed[name] += count
                totals[name] += count
        if removed:
            per_source[str(source_id)] = {"days": days, **removed}
    run = RetentionRun.objects.create(counts=dict(totals), per_source=per_source)
    if totals.get("interactions") or totals.get("feedback"):
        metrics_rebuild()
    return run
