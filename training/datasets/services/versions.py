"""Writes for datasets and their versions: `dataset_version_freeze` selects gold pairs by
the dataset's rules, fixes the membership and seals it with a manifest whose hash chains
to the previous version's. Export and verification live in training.datasets.export."""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import OuterRef
from django.utils import timezone

from curation.dedup import NearDupIndex, minhash_from_bytes
from training.datasets import canonical as gold
from training.datasets import export, selectors
from training.datasets.models import (
    Dataset,
    DatasetVersion,
    ExportFormat,
    GoldPair,
    Membership,
    PairKind,
    Quarantine,
)
from training.datasets.rollups import version_rollup_delta
from training.datasets.services.gold import gold_pairs_sync
from training.errors import TrainingError
from training.webhooks import services as webhooks

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


# Stays whole: one transaction under the dataset's row lock (select, guard, write the
# membership, seal the manifest); its steps are only correct together.
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
