"""Writes for gold pairs: made from approved review outcomes, idempotently
(`gold_pairs_sync`), and corrected by appending a pair that supersedes the old one
(`gold_pair_correct`)."""

from __future__ import annotations

import pghistory
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from curation.dedup import minhash, minhash_to_bytes
from curation.models import CandidateKind
from review.models import ReviewOutcome
from training.datasets import canonical as gold
from training.datasets.models import (
    GoldPair,
    PairKind,
)
from training.datasets.rollups import gold_rollup_add, gold_rollup_delta
from training.errors import TrainingError

ERR_NOT_APPROVED = "Only approved outcomes become gold; outcome #{pk} is {result}."
ERR_ALREADY_CORRECTED = "Gold pair #{pk} was already corrected by #{by}: correct that pair."
ERR_CORRECTION_REASON = "A correction needs a reason."
ERR_CORRECTION_EMPTY = "The corrected chosen text is empty."
ERR_CORRECTION_UNCHANGED = "The correction changes nothing."


def _gold_from_outcome(outcome: ReviewOutcome) -> GoldPair:
    if outcome.result != ReviewOutcome.Result.APPROVED:
        raise TrainingError(ERR_NOT_APPROVED.format(pk=outcome.pk, result=outcome.result))
    candidate = outcome.item.candidate
    interaction = candidate.interaction
    prompt = gold.clean_messages(candidate.prompt)
    chosen = outcome.chosen
    rejected = outcome.rejected
    if not rejected and candidate.kind == CandidateKind.PREFERENCE:
        rejected = candidate.rejected
    if not rejected and candidate.kind == CandidateKind.NEEDS_ANSWER:
        rejected = interaction.response
    # An approved output with nothing better beside it is an SFT example, not a preference.
    kind = PairKind.PREFERENCE if rejected and rejected != chosen else PairKind.SFT
    if kind == PairKind.SFT:
        rejected = None
    reviews = list(outcome.item.reviews.order_by("pk"))
    reviewer_ids = {r.reviewer_id for r in reviews}
    if outcome.adjudicated_by_id:
        reviewer_ids.add(outcome.adjudicated_by_id)
    content = gold.content_sha256(kind=kind, prompt=prompt, chosen=chosen, rejected=rejected)
    return GoldPair(
        outcome=outcome,
        candidate=candidate,
        interaction=interaction,
        source_id=interaction.source_id,
        policy_id=candidate.policy_id,
        model=candidate.model or interaction.model,
        task_type=candidate.task_type or interaction.task_type,
        kind=kind,
        prompt=prompt,
        chosen=chosen,
        rejected=rejected,
        content_sha256=content,
        lineage_key=content,
        minhash=_minhash_bytes(prompt, chosen),
        reviewer_ids=sorted(reviewer_ids),
        reviews=[
            {
                "review": r.pk,
                "reviewer": r.reviewer_id,
                "decision": r.decision,
                "accuracy": r.accuracy,
                "helpfulness": r.helpfulness,
                "safety": r.safety,
            }
            for r in reviews
        ],
        occurred_at=interaction.occurred_at,
        ingested_at=interaction.received_at,
        approved_at=outcome.decided_at,
    )


def _minhash_bytes(prompt: list[dict], chosen: str) -> bytes:
    return minhash_to_bytes(minhash(gold.prompt_text(prompt) + gold.MINHASH_SEPARATOR + chosen))


def gold_pairs_sync(*, limit: int | None = None) -> int:
    """Make a gold pair for every approved outcome that has none. Safe to run concurrently and
    repeatedly: the one-original-per-outcome constraint drops duplicates. Returns the number
    of pairs created."""
    pending = (
        ReviewOutcome.objects.filter(result=ReviewOutcome.Result.APPROVED)
        # An approved audit item (a candidate the filters rejected) is a
        # measurement, not gold, until its candidate passes a later policy.
        .exclude(Q(item__audit=True) & ~Q(item__candidate__status="passed"))
        .filter(~Exists(GoldPair.objects.filter(outcome=OuterRef("pk"), supersedes__isnull=True)))
        .select_related("item__candidate__interaction")
        .prefetch_related("item__reviews")
        .order_by("pk")
    )
    if limit is not None:
        pending = pending[:limit]
    created = 0
    batch: list[GoldPair] = []
    for outcome in pending.iterator(chunk_size=500):
        batch.append(_gold_from_outcome(outcome))
        if len(batch) >= 500:
            created += _gold_insert(batch)
            batch = []
    if batch:
        created += _gold_insert(batch)
    return created


def _gold_insert(batch: list[GoldPair]) -> int:
    with transaction.atomic(), gold_rollup_delta(outcome_ids=[p.outcome_id for p in batch]):
        return len(GoldPair.objects.bulk_create(batch, ignore_conflicts=True))


def gold_pair_create(*, outcome: ReviewOutcome) -> GoldPair:
    """The gold pair of one approved outcome, made if missing (for the review service to call
    when an outcome is approved; freezing also catches up on any it missed)."""
    existing = GoldPair.objects.filter(outcome=outcome, supersedes__isnull=True).first()
    if existing:
        return existing
    pair = _gold_from_outcome(outcome)
    try:
        with transaction.atomic():
            pair.save()
            gold_rollup_add(pair_ids=[pair.pk])
    except IntegrityError:
        return GoldPair.objects.get(outcome=outcome, supersedes__isnull=True)
    return pair


def gold_pair_correct(
    *, pair: GoldPair, chosen: str, rejected: str | None = None, user, reason: str
) -> GoldPair:
    """Append a pair that supersedes `pair` (which stays, unchanged). The correction keeps the
    original's lineage, so it lands in the same split."""
    reason = (reason or "").strip()
    if not reason:
        raise TrainingError(ERR_CORRECTION_REASON)
    chosen = (chosen or "").strip()
    if not chosen:
        raise TrainingError(ERR_CORRECTION_EMPTY)
    rejected = pair.rejected if rejected is None else (rejected.strip() or None)
    kind = PairKind.PREFERENCE if rejected and rejected != chosen else PairKind.SFT
    if kind == PairKind.SFT:
        rejected = None
    if chosen == pair.chosen and rejected == pair.rejected:
        raise TrainingError(ERR_CORRECTION_UNCHANGED)
    with transaction.atomic(), pghistory.context(reason=reason):
        # Lock the corrected pair's chain: two admins correcting at once get one winner.
        locked = GoldPair.objects.select_for_update().get(pk=pair.pk)
        later = GoldPair.objects.filter(supersedes=locked).first()
        if later:
            raise TrainingError(ERR_ALREADY_CORRECTED.format(pk=pair.pk, by=later.pk), status=409)
        fields = {
            f.attname: getattr(locked, f.attname)
            for f in GoldPair._meta.concrete_fields
            if not f.primary_key
        }
        fields.update(
            kind=kind,
            chosen=chosen,
            rejected=rejected,
            content_sha256=gold.content_sha256(
                kind=kind, prompt=locked.prompt, chosen=chosen, rejected=rejected
            ),
            lineage_key=locked.lineage_key,
            minhash=_minhash_bytes(locked.prompt, chosen),
            supersedes_id=locked.pk,
            correction_reason=reason,
            created_by_id=getattr(user, "pk", None),
            created_at=timezone.now(),
        )
        corrected = GoldPair.objects.create(**fields)
        gold_rollup_add(pair_ids=[corrected.pk])
        return corrected
