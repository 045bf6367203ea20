"""Reads for the dataset pages and for the training trigger. Nothing here writes."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q
from django.utils import timezone

from training.models import (
    Dataset,
    DatasetVersion,
    ExportTokenDataset,
    GoldPair,
    Membership,
    PairKind,
    Quarantine,
)

DIFF_SAMPLE = 50
NOT_SELECTED = "no longer selected by the dataset's rules"
REASON_TEXT = {
    Membership.Reason.CONTAMINATED: "near duplicate of an eval pair",
    Membership.Reason.QUARANTINED: "quarantined",
    Membership.Reason.SUPERSEDED: "superseded by a correction",
}


def dataset_get(*, name: str) -> Dataset | None:
    return Dataset.objects.filter(name=name).first()


def latest_frozen(*, dataset: Dataset) -> DatasetVersion | None:
    """The last version that is frozen or quarantined (quarantined ones still count as the
    chain's tip: the next version follows them)."""
    return dataset.versions.exclude(status=DatasetVersion.Status.DRAFT).order_by("-number").first()


def gold_new_count(*, dataset: Dataset, now: datetime | None = None, lagged: bool = True) -> int:
    """Approved gold the next freeze could add: pairs of the dataset's kinds and task types,
    not corrected since, not in the latest version. With `lagged`, only pairs old enough
    to pass the lag, so a trigger that fires at a threshold freezes what it counted (the
    trigger, training.runs.dataset_trigger, counts with this too)."""
    pairs = GoldPair.objects.filter(kind__in=dataset.pair_kinds).filter(
        ~Exists(GoldPair.objects.filter(supersedes=OuterRef("pk")))
    )
    if dataset.task_types:
        pairs = pairs.filter(task_type__in=dataset.task_types)
    if lagged:
        cutoff = (now or timezone.now()) - timedelta(days=dataset.lag_days)
        pairs = pairs.filter(occurred_at__lt=cutoff)
    last = latest_frozen(dataset=dataset)
    if last is not None:
        pairs = pairs.filter(~Exists(Membership.objects.filter(version=last, pair=OuterRef("pk"))))
    return pairs.count()


def outcomes_pending_gold_count() -> int:
    """Approved outcomes with no gold pair yet: they become gold at the next freeze (or
    when the review service calls gold_pair_create)."""
    from review.models import ReviewOutcome

    return (
        ReviewOutcome.objects.filter(result=ReviewOutcome.Result.APPROVED)
        .filter(~Exists(GoldPair.objects.filter(outcome=OuterRef("pk"))))
        .count()
    )


def datasets_overview() -> list[dict]:
    rows = []
    for dataset in Dataset.objects.order_by("name"):
        last = latest_frozen(dataset=dataset)
        rows.append(
            {
                "dataset": dataset,
                "latest": last,
                "versions": dataset.versions.exclude(status=DatasetVersion.Status.DRAFT).count(),
                "new_gold": gold_new_count(dataset=dataset),
            }
        )
    return rows


def dataset_versions(*, dataset: Dataset):
    return (
        dataset.versions.exclude(status=DatasetVersion.Status.DRAFT)
        .select_related("frozen_by")
        .order_by("-number")
    )


def quarantines_recent(*, limit: int = 50):
    return Quarantine.objects.select_related(
        "dataset_version__dataset", "source", "policy", "created_by"
    ).order_by("-created_at")[:limit]


@dataclass
class Bar:
    label: str
    train: int
    eval: int
    train_pct: float
    eval_pct: float

    @property
    def total(self) -> int:
        return self.train + self.eval


def composition(*, version: DatasetVersion) -> dict[str, list[Bar]]:
    """Bars for the composition chart, from the manifest (so a past version's chart is the
    one it was frozen with, and drawing it costs no query)."""
    counts = version.manifest.get("counts", {})
    charts = {}
    for key, title in (("by_task_type", "Task type"), ("by_kind", "Kind")):
        table = counts.get(key, {})
        train, evals = table.get("train", {}), table.get("eval", {})
        labels = sorted(set(train) | set(evals))
        biggest = max([train.get(k, 0) + evals.get(k, 0) for k in labels] or [1]) or 1
        charts[title] = [
            Bar(
                label=label,
                train=train.get(label, 0),
                eval=evals.get(label, 0),
                train_pct=round(100 * train.get(label, 0) / biggest, 1),
                eval_pct=round(100 * evals.get(label, 0) / biggest, 1),
            )
            for label in labels
        ]
    return charts


@dataclass
class Diff:
    previous: DatasetVersion | None
    added: int
    removed: int
    moved: int
    removed_by_reason: dict[str, int]
    added_sample: list[dict]
    removed_sample: list[dict]


_DIFF_SQL = """
WITH cur AS (
    SELECT pair_id, split, reason, detail FROM training_membership WHERE version_id = %(cur)s
), prev AS (
    SELECT pair_id, split FROM training_membership
    WHERE version_id = %(prev)s AND split <> 'excluded'
)
SELECT
    COALESCE(cur.pair_id, prev.pair_id) AS pair_id,
    prev.split AS before,
    CASE WHEN cur.split = 'excluded' THEN NULL ELSE cur.split END AS after,
    cur.reason, cur.detail
FROM cur FULL JOIN prev ON prev.pair_id = cur.pair_id
WHERE (prev.pair_id IS NULL AND cur.split <> 'excluded')
   OR (prev.pair_id IS NOT NULL AND (cur.split IS NULL OR cur.split = 'excluded'))
   OR (prev.split <> cur.split AND cur.split <> 'excluded')
ORDER BY 1
"""


def version_diff(*, version: DatasetVersion, sample: int = DIFF_SAMPLE) -> Diff:
    """Pairs added, removed (with the reason recorded at freeze) and moved between splits,
    against the previous version. One streaming query; only a sample is kept."""
    previous = version.previous
    added = removed = moved = 0
    by_reason: dict[str, int] = {}
    added_sample: list[dict] = []
    removed_sample: list[dict] = []
    with connection.cursor() as cursor:
        cursor.execute(_DIFF_SQL, {"cur": version.pk, "prev": previous.pk if previous else -1})
        for pair_id, before, after, reason, detail in cursor:
            if before is None:
                added += 1
                if len(added_sample) < sample:
                    added_sample.append({"pair": pair_id, "split": after})
            elif after is None:
                removed += 1
                text = REASON_TEXT.get(reason, NOT_SELECTED)
                by_reason[text] = by_reason.get(text, 0) + 1
                if len(removed_sample) < sample:
                    removed_sample.append(
                        {"pair": pair_id, "split": before, "reason": text, "detail": detail}
                    )
            else:
                moved += 1
    return Diff(
        previous=previous,
        added=added,
        removed=removed,
        moved=moved,
        removed_by_reason=dict(sorted(by_reason.items())),
        added_sample=added_sample,
        removed_sample=removed_sample,
    )


def version_exclusions(*, version: DatasetVersion) -> dict[str, int]:
    return dict(
        version.members.filter(split=Membership.Split.EXCLUDED)
        .values_list("reason")
        .annotate(n=Count("pk"))
        .order_by("reason")
    )


def eval_shortfall(*, version: DatasetVersion) -> dict | None:
    """{"n", "needed"} when the version holds fewer held-out preference pairs than the gate
    needs (FLYWHEEL_GATE_MIN_EVAL_PAIRS), else None."""
    needed = settings.FLYWHEEL_GATE_MIN_EVAL_PAIRS
    n = Membership.objects.filter(
        version=version, split=Membership.Split.EVAL, pair__kind=PairKind.PREFERENCE
    ).count()
    return {"n": n, "needed": needed} if n < needed else None


def version_get(*, name: str, number: int) -> DatasetVersion | None:
    return (
        DatasetVersion.objects.select_related("dataset", "previous", "frozen_by")
        .exclude(status=DatasetVersion.Status.DRAFT)
        .filter(dataset__name=name, number=number)
        .first()
    )


def version_quarantine(*, version: DatasetVersion) -> Quarantine | None:
    return Quarantine.objects.filter(
        Q(kind=Quarantine.Kind.DATASET_VERSION) & Q(dataset_version=version)
    ).first()


def export_token_datasets(*, token) -> list[str]:
    """Names of the datasets an export token is limited to; empty: no limit."""
    return sorted(
        ExportTokenDataset.objects.filter(token=token).values_list("dataset__name", flat=True)
    )


def versions_affected(*, quarantine: Quarantine):
    """Frozen versions holding, in train or eval, a pair the quarantine covers: what a
    rollback must look at (models trained on them)."""
    if quarantine.kind == Quarantine.Kind.DATASET_VERSION:
        return DatasetVersion.objects.filter(pk=quarantine.dataset_version_id)
    pairs = GoldPair.objects.all()
    if quarantine.kind == Quarantine.Kind.SOURCE:
        pairs = pairs.filter(source_id=quarantine.source_id)
    elif quarantine.kind == Quarantine.Kind.POLICY:
        pairs = pairs.filter(policy_id=quarantine.policy_id)
    else:
        pairs = pairs.filter(
            ingested_at__gte=quarantine.window_start, ingested_at__lt=quarantine.window_end
        )
    return DatasetVersion.objects.filter(
        Exists(
            Membership.objects.filter(
                version=OuterRef("pk"),
                split__in=[Membership.Split.TRAIN, Membership.Split.EVAL],
                pair__in=pairs,
            )
        ),
        ~Q(status=DatasetVersion.Status.DRAFT),
    ).order_by("dataset_id", "number")
