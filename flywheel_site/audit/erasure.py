"""The right to erasure: `user_erase` (manage.py erase_user <raw user id>).

The raw id is hashed the way ingest hashes it (curation.ingest_rows.user_hash) and never
stored. Everything of that user's that is not frozen is deleted: interactions, feedback,
candidates (and their filter decisions and action snapshots), review items with their
reviews, outcomes and skips. Gold pairs in no frozen version go too, with their
memberships of draft versions and any pair quarantine naming them. What a frozen version
holds is kept, because a frozen version must stay as it was frozen: each such pair is
quarantined ("erasure request") so no later version includes it, and every frozen version
holding one is quarantined, which rolls back the models trained on it. The audit events'
copies of the deleted rows' text are redacted through the chain's redaction path, so the
audit keeps that the rows existed (and their hash), not their content. Rollups are
recomputed. Export files on disk that belong to no frozen version are removed, and
webhook events whose payload mentions the user (or attempts whose response echoed them)
are redacted. A second run finds nothing more to delete."""

import pgtrigger
from django.db import transaction

from curation.ingest_rows import user_hash
from curation.models import Candidate, CandidateActionItem, Feedback, Interaction
from flywheel_site.audit.models import Erasure
from flywheel_site.audit.services import AuditError, audit_event_redact
from review.models import Review, ReviewItem, ReviewOutcome
from training.datasets.export_prune import exports_prune
from training.datasets.rollups import metrics_rebuild
from training.datasets.services import quarantine_apply
from training.models import DatasetVersion, GoldPair, Membership, Quarantine
from training.webhooks.services import webhook_payloads_redact

REASON = "erasure request"
_NOT_DRAFT = [DatasetVersion.Status.FROZEN, DatasetVersion.Status.QUARANTINED]
ERR_EMPTY = "Give the user id exactly as the application sent it."

# The event columns that hold a person's text or identifiers, per tracked model.
_REDACT = {
    Interaction: ["messages", "response", "metadata", "user_hash", "session_id", "usage"],
    Feedback: ["final_text", "comment", "metadata", "user_hash"],
    Candidate: ["prompt", "chosen", "rejected"],
    Review: ["final_text", "note"],
    ReviewOutcome: ["chosen", "rejected", "note"],
    GoldPair: ["correction_reason"],
}


def user_erase(*, raw_user_id: str, user=None) -> Erasure:
    if not raw_user_id or not raw_user_id.strip():
        raise AuditError(ERR_EMPTY)
    hashed = user_hash(raw_user_id)
    # Files first: what is kept on disk is decided by frozen-ness, which erasure never changes.
    exports_removed = len(exports_prune())
    with transaction.atomic():
        interactions = set(
            Interaction.objects.filter(user_hash=hashed).values_list("pk", flat=True)
        )
        gold = GoldPair.objects.filter(pk__in=_frozen_pairs(interactions))
        dropped = _unfrozen_pairs_delete(interactions, kept_pairs=gold)
        kept = set(gold.values_list("interaction_id", flat=True))
        feedback = set(
            Feedback.objects.filter(user_hash=hashed)
            .exclude(interaction_id__in=kept)
            .values_list("pk", flat=True)
        )
        counts = interactions_delete(
            interaction_ids=interactions - kept, feedback_ids=feedback, reason=REASON
        )
        counts["gold_pairs"] = dropped
        counts["gold_pairs_kept"] = gold.count()
        counts["pairs_quarantined"] = _pairs_quarantine(gold, user=user)
        versions = _versions_quarantine(gold, user=user)
        counts["export_entries_removed"] = exports_removed
        counts["webhook_payloads_redacted"] = webhook_payloads_redact(
            needles=[raw_user_id, hashed], reason=REASON
        )
        erasure = Erasure.objects.create(counts=counts, quarantined_versions=versions)
    metrics_rebuild()
    return erasure


def interactions_delete(*, interaction_ids: set[int], feedback_ids: set[int], reason: str) -> dict:
    """Delete interactions (none referenced by gold: the caller filters) with everything
    derived from them, and feedback, in the caller's transaction; redact the audit's
    copies of their text with `reason`. Returns counts per kind of row."""
    counts: dict[str, int] = {}
    candidates = list(
        Candidate.objects.filter(interaction_id__in=interaction_ids).values_list("pk", flat=True)
    )
    items = list(
        ReviewItem.objects.filter(candidate_id__in=candidates).values_list("pk", flat=True)
    )
    feedback = set(feedback_ids) | set(
        Feedback.objects.filter(interaction_id__in=interaction_ids).values_list("pk", flat=True)
    )
    reviews = list(Review.objects.filter(item_id__in=items).values_list("pk", flat=True))
    outcomes = list(ReviewOutcome.objects.filter(item_id__in=items).values_list("pk", flat=True))
    # Reviews and outcomes are append-only; their data leaving is the one reason to delete them.
    with pgtrigger.ignore("review.Review:review_append_only", "review.ReviewOutcome:outcome_final"):
        counts["review_outcomes"] = ReviewOutcome.objects.filter(pk__in=outcomes).delete()[0]
        counts["reviews"] = Review.objects.filter(pk__in=reviews).delete()[0]
    counts["review_items"] = ReviewItem.objects.filter(pk__in=items).delete()[0]
    CandidateActionItem.objects.filter(candidate_id__in=candidates).delete()
    counts["candidates"] = Candidate.objects.filter(pk__in=candidates).delete()[0]
    counts["feedback"] = Feedback.objects.filter(pk__in=feedback).delete()[0]
    counts["interactions"] = Interaction.objects.filter(pk__in=interaction_ids).delete()[0]
    counts["audit_events_redacted"] = _events_redact(
        {
            Interaction: interaction_ids,
            Feedback: feedback,
            Candidate: candidates,
            Review: reviews,
            ReviewOutcome: outcomes,
        },
        reason=reason,
    )
    return counts


def _events_redact(rows: dict, *, reason: str) -> int:
    redacted = 0
    for model, pks in rows.items():
        if not pks:
            continue
        events = model.pgh_event_model
        columns = [c for c in _REDACT[model] if c in {f.column for f in events._meta.fields}]
        for pk in events.objects.filter(pgh_obj_id__in=pks).values_list("pgh_id", flat=True):
            audit_event_redact(table=events._meta.db_table, pk=pk, columns=columns, reason=reason)
            redacted += 1
    return redacted


def _frozen_pairs(interaction_ids: set[int]) -> set[int]:
    """The pairs of these interactions that a frozen (or since quarantined) version holds,
    with the originals they correct: a correction keeps the pair it supersedes."""
    pairs = GoldPair.objects.filter(interaction_id__in=interaction_ids)
    kept = set(
        pairs.filter(memberships__version__status__in=_NOT_DRAFT).values_list("pk", flat=True)
    )
    parents = dict(pairs.values_list("pk", "supersedes_id"))
    for pk in list(kept):
        while parents.get(pk):
            pk = parents[pk]
            kept.add(pk)
    return kept


def _unfrozen_pairs_delete(interaction_ids: set[int], *, kept_pairs) -> int:
    pairs = list(
        GoldPair.objects.filter(interaction_id__in=interaction_ids)
        .exclude(pk__in=kept_pairs)
        .order_by("-pk")
        .values_list("pk", flat=True)
    )
    if not pairs:
        return 0
    # Draft memberships may go (the trigger allows it); a pair quarantine naming a pair that
    # leaves has nothing left to exclude. Gold is append-only but for this one reason.
    Membership.objects.filter(
        pair_id__in=pairs, version__status=DatasetVersion.Status.DRAFT
    ).delete()
    with pgtrigger.ignore(
        "training.Quarantine:quarantine_append_only", "training.GoldPair:gold_append_only"
    ):
        Quarantine.objects.filter(kind=Quarantine.Kind.PAIR, pair_id__in=pairs).delete()
        # Newest first: a correction protects the pair it supersedes.
        for pk in pairs:
            GoldPair.objects.filter(pk=pk).delete()
    _events_redact({GoldPair: pairs}, reason=REASON)
    return len(pairs)


def _pairs_quarantine(gold, *, user) -> int:
    done = 0
    covered = Quarantine.objects.filter(kind=Quarantine.Kind.PAIR).values_list("pair_id", flat=True)
    for pair in gold.exclude(pk__in=covered):
        quarantine_apply(kind=Quarantine.Kind.PAIR, pair=pair, reason=REASON, user=user)
        done += 1
    return done


def _versions_quarantine(gold, *, user) -> list[int]:
    versions = DatasetVersion.objects.filter(
        members__pair__in=gold, status=DatasetVersion.Status.FROZEN
    ).distinct()
    done = []
    for version in versions:
        quarantine_apply(
            kind=Quarantine.Kind.DATASET_VERSION, dataset_version=version, reason=REASON, user=user
        )
        done.append(version.pk)
    return done
