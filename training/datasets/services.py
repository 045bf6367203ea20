"""Writes for gold data, dataset versions and quarantines.

- Gold pairs are made from approved review outcomes, idempotently (`gold_pairs_sync`), and
  corrected by appending a pair that supersedes the old one (`gold_pair_correct`).
- `dataset_version_freeze` selects gold pairs by the dataset's rules, fixes the membership and
  seals it with a manifest whose hash chains to the previous version's.
- `quarantine_create` records data that is no longer trusted; later freezes exclude it.

Export and verification live in training.datasets.export; reads for pages in training.selectors.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta

import pghistory
from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Exists, OuterRef, Q
from django.utils import timezone

from curation.dedup import NearDupIndex, minhash, minhash_from_bytes, minhash_to_bytes
from curation.models import ApiToken, CandidateKind, TokenScope
from curation.services import api_token_create
from review.models import ReviewOutcome
from training.datasets import canonical as gold
from training.datasets import export, hooks, selectors
from training.datasets.models import (
    Dataset,
    DatasetVersion,
    ExportFormat,
    ExportTokenDataset,
    GoldPair,
    Membership,
    PairKind,
    Quarantine,
)
from training.datasets.rollups import gold_rollup_add, gold_rollup_delta, version_rollup_delta
from training.errors import TrainingError
from training.webhooks import services as webhooks

ERR_NOT_APPROVED = "Only approved outcomes become gold; outcome #{pk} is {result}."
ERR_ALREADY_CORRECTED = "Gold pair #{pk} was already corrected by #{by}: correct that pair."
ERR_CORRECTION_REASON = "A correction needs a reason."
ERR_CORRECTION_EMPTY = "The corrected chosen text is empty."
ERR_CORRECTION_UNCHANGED = "The correction changes nothing."
ERR_QUARANTINE_REASON = "A quarantine needs a reason."
ERR_QUARANTINE_NOT_FROZEN = "Only a frozen version can be quarantined; {version} is {status}."
ERR_QUARANTINE_KIND = "Unknown quarantine kind {kind!r}."
ERR_QUARANTINE_WINDOW = "The window must start before it ends."
ERR_QUARANTINE_MISSING = "A {kind} quarantine needs its {field}."
ERR_QUARANTINE_PAIR_TWICE = "Gold pair #{pk} is already quarantined."
ERR_FORMAT_FOR_KIND = (
    "Format {fmt} cannot be exported from a {kind} dataset; choose from {allowed}."
)
ERR_EVAL_FRACTION = "The eval fraction must be at least 0 and below 1."
ERR_NO_FORMATS = "Choose at least one export format."
ERR_RESERVED_NAME = "{name!r} is reserved by the dataset pages; choose another name."
# Path segments of the dataset pages that a dataset name would shadow.
RESERVED_NAMES = ("quarantines", "pairs")

FREEZE_BATCH = 5000
FREEZE_CREATED = "Froze {version}: {train} train and {eval} eval pairs."
FREEZE_UNCHANGED = "Nothing changed since {version}: no new version was made."


# --- gold ---------------------------------------------------------------------------------


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


# --- datasets -----------------------------------------------------------------------------


def allowed_formats(kind: str) -> tuple[str, ...]:
    return (
        gold.FORMATS_BY_KIND[PairKind.PREFERENCE]
        if kind == Dataset.Kind.PREFERENCE
        else gold.FORMATS_BY_KIND[PairKind.SFT]
    )


def dataset_create(
    *,
    name: str,
    user=None,
    kind: str = Dataset.Kind.PREFERENCE,
    description: str = "",
    formats: list[str] | None = None,
    lag_days: int = 14,
    eval_fraction: float = 0.10,
    near_dup_threshold: float = 0.9,
    task_types: list[str] | None = None,
    train_threshold: int = 5000,
) -> Dataset:
    if name in RESERVED_NAMES:
        raise TrainingError(ERR_RESERVED_NAME.format(name=name))
    allowed = allowed_formats(kind)
    if formats is None:
        formats = (
            [ExportFormat.DPO_CONVERSATIONAL, ExportFormat.DPO_STANDARD]
            if kind == Dataset.Kind.PREFERENCE
            else [ExportFormat.SFT_CONVERSATIONAL]
        )
    if not formats:
        raise TrainingError(ERR_NO_FORMATS)
    for fmt in formats:
        if fmt not in allowed:
            raise TrainingError(
                ERR_FORMAT_FOR_KIND.format(fmt=fmt, kind=kind, allowed=", ".join(allowed))
            )
    if not 0 <= eval_fraction < 1:
        raise TrainingError(ERR_EVAL_FRACTION)
    return Dataset.objects.create(
        name=name,
        description=description,
        kind=kind,
        # Stored in a fixed order so manifests do not depend on the order boxes were ticked.
        formats=[f for f in allowed if f in formats],
        lag_days=lag_days,
        eval_fraction=eval_fraction,
        near_dup_threshold=near_dup_threshold,
        task_types=sorted(task_types or []),
        train_threshold=train_threshold,
        created_by=user,
    )


@functools.cache
def code_version() -> str:
    """The git commit of the running code, or "" outside a checkout."""
    try:
        result = subprocess.run(
            ["git", "rev-parse", "HEAD"],  # noqa: S607 (git from PATH, fixed arguments)
            cwd=settings.BASE_DIR,
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


@dataclass
class QuarantineRules:
    """Every active quarantine, in the shape selection needs."""

    sources: dict[int, int]  # source id -> quarantine id
    policies: dict[int, int]
    windows: list[tuple[datetime, datetime, int]]
    # pairs added by a quarantined version, or quarantined one by one -> quarantine id
    pairs: dict[int, int]

    def match(self, *, pair_id: int, source_id: int, policy_id, ingested_at) -> int | None:
        if pair_id in self.pairs:
            return self.pairs[pair_id]
        if source_id in self.sources:
            return self.sources[source_id]
        if policy_id is not None and policy_id in self.policies:
            return self.policies[policy_id]
        for start, end, quarantine_id in self.windows:
            if start <= ingested_at < end:
                return quarantine_id
        return None


def quarantine_rules() -> QuarantineRules:
    rules = QuarantineRules(sources={}, policies={}, windows=[], pairs={})
    for q in Quarantine.objects.order_by("pk"):
        if q.kind == Quarantine.Kind.SOURCE:
            rules.sources.setdefault(q.source_id, q.pk)
        elif q.kind == Quarantine.Kind.POLICY:
            rules.policies.setdefault(q.policy_id, q.pk)
        elif q.kind == Quarantine.Kind.WINDOW:
            rules.windows.append((q.window_start, q.window_end, q.pk))
        elif q.kind == Quarantine.Kind.PAIR:
            rules.pairs.setdefault(q.pair_id, q.pk)
        else:
            for pair_id in version_added_pair_ids(version=q.dataset_version):
                rules.pairs.setdefault(pair_id, q.pk)
    return rules


def version_added_pair_ids(*, version: DatasetVersion):
    """Pairs in the version's train or eval that were not in its previous version's."""
    return (
        selectors.version_added_pairs(version=version)
        .values_list("pair_id", flat=True)
        .iterator(chunk_size=FREEZE_BATCH)
    )


def _select(*, dataset: Dataset, cutoff: datetime) -> list[Membership]:
    """The membership a version frozen now would have (unsaved rows, version unset)."""
    eligible = GoldPair.objects.filter(kind__in=dataset.pair_kinds, occurred_at__lt=cutoff)
    if dataset.task_types:
        eligible = eligible.filter(task_type__in=dataset.task_types)
    corrections = GoldPair.objects.filter(supersedes=OuterRef("pk")).values("pk")[:1]
    rows = (
        eligible.annotate(corrected_by=corrections)
        .order_by("pk")
        .values_list("pk", "lineage_key", "source_id", "policy_id", "ingested_at", "corrected_by")
    )
    rules = quarantine_rules()
    # A pair once in eval stays in eval, even if the eval fraction is lowered later.
    sticky_eval = set(
        Membership.objects.filter(version__dataset=dataset, split=Membership.Split.EVAL)
        .values_list("pair__lineage_key", flat=True)
        .distinct()
    )
    members: list[Membership] = []
    train_ids: list[int] = []
    eval_ids: list[int] = []
    for pair_id, lineage, source_id, policy_id, ingested_at, superseded_by in rows.iterator(
        chunk_size=FREEZE_BATCH
    ):
        if superseded_by is not None:
            members.append(
                Membership(
                    pair_id=pair_id,
                    split=Membership.Split.EXCLUDED,
                    reason=Membership.Reason.SUPERSEDED,
                    detail={"by": superseded_by},
                )
            )
            continue
        quarantine_id = rules.match(
            pair_id=pair_id, source_id=source_id, policy_id=policy_id, ingested_at=ingested_at
        )
        if quarantine_id is not None:
            members.append(
                Membership(
                    pair_id=pair_id,
                    split=Membership.Split.EXCLUDED,
                    reason=Membership.Reason.QUARANTINED,
                    detail={"quarantine": quarantine_id},
                )
            )
            continue
        if lineage in sticky_eval or gold.split_bucket(lineage) < dataset.eval_fraction:
            eval_ids.append(pair_id)
        else:
            train_ids.append(pair_id)
    members.extend(Membership(pair_id=i, split=Membership.Split.EVAL) for i in eval_ids)
    members.extend(
        _contamination_guard(
            train_ids=train_ids, eval_ids=eval_ids, threshold=dataset.near_dup_threshold
        )
    )
    members.sort(key=lambda m: m.pair_id)
    return members


def _signatures(ids: list[int]):
    for start in range(0, len(ids), FREEZE_BATCH):
        chunk = ids[start : start + FREEZE_BATCH]
        yield from GoldPair.objects.filter(pk__in=chunk, minhash__isnull=False).values_list(
            "pk", "minhash"
        )


def _contamination_guard(
    *, train_ids: list[int], eval_ids: list[int], threshold: float
) -> list[Membership]:
    """Train memberships, with near duplicates of any eval pair moved out of train."""
    index = NearDupIndex(threshold=threshold)
    for pair_id, signature in _signatures(eval_ids):
        index.add(pair_id, minhash_from_bytes(signature))
    contaminated: dict[int, tuple[int, float]] = {}
    if len(index):
        for pair_id, signature in _signatures(train_ids):
            match = index.best_match(minhash_from_bytes(signature))
            if match is not None:
                contaminated[pair_id] = (match[0], round(match[1], 4))
    members = []
    for pair_id in train_ids:
        if pair_id in contaminated:
            eval_pair, jaccard = contaminated[pair_id]
            members.append(
                Membership(
                    pair_id=pair_id,
                    split=Membership.Split.EXCLUDED,
                    reason=Membership.Reason.CONTAMINATED,
                    detail={"eval_pair": eval_pair, "jaccard": jaccard},
                )
            )
        else:
            members.append(Membership(pair_id=pair_id, split=Membership.Split.TRAIN))
    return members


def _same_selection(members: list[Membership], version: DatasetVersion) -> bool:
    kept = [(m.pair_id, m.split) for m in members if m.split != Membership.Split.EXCLUDED]
    previous = list(
        version.members.exclude(split=Membership.Split.EXCLUDED)
        .order_by("pair_id")
        .values_list("pair_id", "split")
    )
    return kept == previous


def dataset_version_freeze(
    *, dataset: Dataset, user=None, number: int | None = None, now: datetime | None = None
) -> tuple[DatasetVersion, bool]:
    """Freeze the next version of the dataset. Returns (version, created).

    Idempotent: concurrent calls serialise on the dataset row; a call whose selection equals
    the latest frozen version's returns that version instead of making an identical one, and
    a call naming the `number` it meant to freeze (the page's hidden field) returns that
    version if someone froze it first.
    """
    gold_pairs_sync()
    with transaction.atomic():
        dataset = Dataset.objects.select_for_update().get(pk=dataset.pk)
        versions = DatasetVersion.objects.filter(dataset=dataset)
        if number is not None:
            done = versions.exclude(status=DatasetVersion.Status.DRAFT).filter(number=number)
            if done.exists():
                return done.get(), False
        last = versions.exclude(status=DatasetVersion.Status.DRAFT).order_by("-number").first()
        now = now or timezone.now()
        cutoff = now - timedelta(days=dataset.lag_days)
        members = _select(dataset=dataset, cutoff=cutoff)
        if (
            last is not None
            and last.status == DatasetVersion.Status.FROZEN
            and _same_selection(members, last)
        ):
            return last, False
        # A draft left by a crashed freeze (this function never leaves one) is replaced.
        versions.filter(status=DatasetVersion.Status.DRAFT).delete()
        version = DatasetVersion.objects.create(
            dataset=dataset,
            number=(last.number + 1) if last else 1,
            previous=last,
            kind=dataset.kind,
            formats=list(dataset.formats),
            lag_days=dataset.lag_days,
            eval_fraction=dataset.eval_fraction,
            near_dup_threshold=dataset.near_dup_threshold,
            task_types=list(dataset.task_types),
            cutoff=cutoff,
            code_version=code_version(),
            created_by=user,
        )
        for m in members:
            m.version = version
        Membership.objects.bulk_create(members, batch_size=FREEZE_BATCH)
        version.frozen_at = now
        version.frozen_by = user
        version.previous_manifest_sha256 = last.manifest_sha256 if last else ""
        version.manifest = export.manifest_build(version=version)
        version.manifest_sha256 = gold.sha256_hex(export.manifest_bytes(version.manifest))
        version.status = DatasetVersion.Status.FROZEN
        with version_rollup_delta(version_ids=[version.pk]):
            version.save(
                update_fields=[
                    "frozen_at",
                    "frozen_by",
                    "previous_manifest_sha256",
                    "manifest",
                    "manifest_sha256",
                    "status",
                ]
            )
        # Write the files once the version is committed, so downloads start at once; if
        # this fails, the first download writes them.
        transaction.on_commit(
            functools.partial(export.dataset_version_materialize_quietly, version_id=version.pk)
        )
        webhooks.event_emit(
            type=webhooks.DATASET_VERSION_FROZEN,
            data={
                "dataset": dataset.name,
                "dataset_version": version.pk,
                "number": version.number,
                "counts": version.manifest.get("counts", {}),
                "manifest_sha256": version.manifest_sha256,
                "links": {
                    "version": webhooks.link("datasets:version", dataset.name, version.number)
                },
            },
        )
    return version, True


# --- quarantine ---------------------------------------------------------------------------

_QUARANTINE_FIELDS = {
    Quarantine.Kind.DATASET_VERSION: ("dataset_version",),
    Quarantine.Kind.WINDOW: ("window_start", "window_end"),
    Quarantine.Kind.SOURCE: ("source",),
    Quarantine.Kind.POLICY: ("policy",),
    Quarantine.Kind.PAIR: ("pair",),
}


def quarantine_preview(
    *,
    kind: str,
    reason: str,
    user=None,
    dataset_version: DatasetVersion | None = None,
    source=None,
    policy=None,
    window_start: datetime | None = None,
    window_end: datetime | None = None,
    pair: GoldPair | None = None,
) -> Quarantine:
    """The quarantine these arguments would record, checked but not saved: what a
    confirmation page shows the consequences of (training.selectors.quarantine_consequences)."""
    reason = (reason or "").strip()
    if not reason:
        raise TrainingError(ERR_QUARANTINE_REASON)
    if kind not in _QUARANTINE_FIELDS:
        raise TrainingError(ERR_QUARANTINE_KIND.format(kind=kind))
    values = {
        "dataset_version": dataset_version,
        "source": source,
        "policy": policy,
        "window_start": window_start,
        "window_end": window_end,
        "pair": pair,
    }
    for field in _QUARANTINE_FIELDS[kind]:
        if values[field] is None:
            raise TrainingError(ERR_QUARANTINE_MISSING.format(kind=kind, field=field))
    if kind == Quarantine.Kind.WINDOW and not window_start < window_end:
        raise TrainingError(ERR_QUARANTINE_WINDOW)
    # Only the fields of this kind are stored; the constraint refuses any other.
    kept = {f: v for f, v in values.items() if f in _QUARANTINE_FIELDS[kind]}
    return Quarantine(kind=kind, reason=reason, created_by=user, **kept)


def quarantine_create(*, user=None, **fields) -> Quarantine:
    """Record a quarantine. A version quarantine also marks the version (kept, never
    deleted). Pairs it covers are excluded from every later freeze."""
    quarantine = quarantine_preview(user=user, **fields)
    kind, reason, pair = quarantine.kind, quarantine.reason, quarantine.pair
    kept = {f: getattr(quarantine, f) for f in _QUARANTINE_FIELDS[kind]}
    with transaction.atomic(), pghistory.context(reason=reason):
        if kind == Quarantine.Kind.DATASET_VERSION:
            version = DatasetVersion.objects.select_for_update().get(pk=kept["dataset_version"].pk)
            if version.status != DatasetVersion.Status.FROZEN:
                raise TrainingError(
                    ERR_QUARANTINE_NOT_FROZEN.format(version=version, status=version.status)
                )
            version.status = DatasetVersion.Status.QUARANTINED
            version.quarantined_at = timezone.now()
            with version_rollup_delta(version_ids=[version.pk]):
                version.save(update_fields=["status", "quarantined_at"])
            kept["dataset_version"] = version
        if kind == Quarantine.Kind.PAIR:
            # Gold pairs are never updated: the row lock only serialises two admins
            # quarantining the same pair, so the second is told rather than hitting the
            # unique constraint.
            GoldPair.objects.select_for_update().filter(pk=pair.pk).first()
            if Quarantine.objects.filter(kind=Quarantine.Kind.PAIR, pair=pair).exists():
                raise TrainingError(ERR_QUARANTINE_PAIR_TWICE.format(pk=pair.pk), status=409)
        return Quarantine.objects.create(kind=kind, reason=reason, created_by=user, **kept)


def quarantine_apply(*, user=None, **fields):
    """Record a quarantine and, in the same transaction, roll back every model trained on a
    version it affects (through training.datasets.hooks, which the site wires to the
    registry), restoring the model that was current before. What the pages call. Returns
    (quarantine, rollback)."""
    with transaction.atomic():
        quarantine = quarantine_create(user=user, **fields)
        rollback = hooks.quarantine_recorded(quarantine=quarantine, user=user)
        webhooks.event_emit(
            type=webhooks.QUARANTINE_APPLIED,
            data={
                "quarantine": quarantine.pk,
                "kind": quarantine.kind,
                "reason": quarantine.reason,
                "dataset_version": quarantine.dataset_version_id,
                "rolled_back_models": [model.pk for model in rollback.rolled_back],
                "restored_model": rollback.restored.pk if rollback.restored else None,
                "links": {"quarantines": webhooks.link("datasets:quarantines")},
            },
        )
    return quarantine, rollback


# --- export tokens limited to datasets ------------------------------------------

ERR_UNKNOWN_DATASETS = "No dataset named {names}; datasets: {known}."


def export_token_create(
    *, source_name: str, name: str, datasets: list[str]
) -> tuple[ApiToken, str]:
    """An export-scoped token, limited to `datasets` unless that is empty. Returns the row
    and the clear token (shown once). Unknown dataset names create nothing."""
    wanted = sorted(set(datasets))
    with transaction.atomic():
        found = list(Dataset.objects.filter(name__in=wanted).order_by("name"))
        missing = sorted(set(wanted) - {dataset.name for dataset in found})
        if missing:
            known = ", ".join(Dataset.objects.order_by("name").values_list("name", flat=True))
            raise TrainingError(
                ERR_UNKNOWN_DATASETS.format(names=", ".join(missing), known=known or "none")
            )
        token, raw = api_token_create(
            source_name=source_name, name=name, scopes=[TokenScope.EXPORT]
        )
        ExportTokenDataset.objects.bulk_create(
            ExportTokenDataset(token=token, dataset=dataset) for dataset in found
        )
    return token, raw
