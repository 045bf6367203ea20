"""Reads for the dataset pages and for the training trigger. Nothing here writes."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Exists, OuterRef, Q, QuerySet
from django.utils import timezone

from training.datasets import hooks
from training.datasets.models import (
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


def datasets() -> QuerySet[Dataset]:
    return Dataset.objects.all()


def latest_frozen(*, dataset: Dataset) -> DatasetVersion | None:
    """The last version that is frozen or quarantined (quarantined ones still count as the
    chain's tip: the next version follows them)."""
    return dataset.versions.exclude(status=DatasetVersion.Status.DRAFT).order_by("-number").first()


def gold_new_count(*, dataset: Dataset, now: datetime | None = None, lagged: bool = True) -> int:
    """Approved gold the next freeze could add: pairs of the dataset's kinds and task types,
    not corrected since, not in the latest version. With `lagged`, only pairs old enough
    to pass the lag, so a trigger that fires at a threshold freezes what it counted (the
    trigger, training.runs.services.dataset_trigger, counts with this too)."""
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
                        {
                            "pair": pair_id,
                            "split": before,
                            "reason": text,
                            # Django reads jsonb as text on a raw cursor.
                            "detail": json.loads(detail) if isinstance(detail, str) else detail,
                        }
                    )
            else:
                moved += 1
    _with_snippets(added_sample + removed_sample)
    return Diff(
        previous=previous,
        added=added,
        removed=removed,
        moved=moved,
        removed_by_reason=dict(sorted(by_reason.items())),
        added_sample=added_sample,
        removed_sample=removed_sample,
    )


SNIPPET_CHARS = 90


def _clip(text: str) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= SNIPPET_CHARS else text[: SNIPPET_CHARS - 1] + "\u2026"


def _with_snippets(rows: list[dict]) -> None:
    """Each sampled pair's question and chosen answer, clipped: a list of ids alone says
    nothing about what changed. One query for the whole sample."""
    texts = {
        pk: (prompt, chosen)
        for pk, prompt, chosen in GoldPair.objects.filter(
            pk__in=[row["pair"] for row in rows]
        ).values_list("pk", "prompt", "chosen")
    }
    for row in rows:
        prompt, chosen = texts.get(row["pair"], ([], ""))
        asked = prompt[-1].get("content", "") if isinstance(prompt, list) and prompt else ""
        row["asked"], row["answer"] = _clip(asked), _clip(chosen)


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


def versions_published() -> QuerySet[DatasetVersion]:
    """Frozen and quarantined versions: drafts are nobody's to read."""
    return DatasetVersion.objects.select_related("dataset", "previous", "frozen_by").exclude(
        status=DatasetVersion.Status.DRAFT
    )


def version_get(*, name: str, number: int) -> DatasetVersion | None:
    return versions_published().filter(dataset__name=name, number=number).first()


def version_quarantine(*, version: DatasetVersion) -> Quarantine | None:
    return Quarantine.objects.filter(
        Q(kind=Quarantine.Kind.DATASET_VERSION) & Q(dataset_version=version)
    ).first()


def export_token_datasets(*, token) -> list[str]:
    """Names of the datasets an export token is limited to; empty: no limit."""
    return sorted(
        ExportTokenDataset.objects.filter(token=token).values_list("dataset__name", flat=True)
    )


def quarantine_pairs(*, quarantine: Quarantine):
    """The gold pairs a quarantine covers (a version's: the pairs it added)."""
    pairs = GoldPair.objects.all()
    if quarantine.kind == Quarantine.Kind.DATASET_VERSION:
        return pairs.filter(
            pk__in=version_added_pairs(version=quarantine.dataset_version).values("pair_id")
        )
    if quarantine.kind == Quarantine.Kind.PAIR:
        return pairs.filter(pk=quarantine.pair_id)
    if quarantine.kind == Quarantine.Kind.SOURCE:
        return pairs.filter(source_id=quarantine.source_id)
    if quarantine.kind == Quarantine.Kind.POLICY:
        return pairs.filter(policy_id=quarantine.policy_id)
    return pairs.filter(
        ingested_at__gte=quarantine.window_start, ingested_at__lt=quarantine.window_end
    )


def versions_affected(*, quarantine: Quarantine):
    """Frozen versions holding, in train or eval, a pair the quarantine covers: what a
    rollback must look at (models trained on them)."""
    if quarantine.kind == Quarantine.Kind.DATASET_VERSION:
        return DatasetVersion.objects.filter(pk=quarantine.dataset_version_id)
    pairs = quarantine_pairs(quarantine=quarantine)
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


def gold_pairs() -> QuerySet[GoldPair]:
    return GoldPair.objects.select_related("source", "policy", "created_by", "supersedes")


def pair_versions(*, pair: GoldPair):
    """Every frozen version that holds the pair, with its place there (train, eval or
    excluded and why), newest first."""
    return (
        Membership.objects.filter(pair=pair)
        .exclude(version__status=DatasetVersion.Status.DRAFT)
        .select_related("version__dataset")
        .order_by("version__dataset__name", "-version__number")
    )


def pair_quarantine(*, pair: GoldPair) -> Quarantine | None:
    """The first quarantine that keeps the pair out of later versions, if any: its own, or
    a version (that added it), window, source or policy quarantine covering it. The same
    rules as training.datasets.services.quarantine_rules, asked for one pair."""
    kept = [Membership.Split.TRAIN, Membership.Split.EVAL]
    added_by_version = Exists(
        Membership.objects.filter(version=OuterRef("dataset_version"), pair=pair, split__in=kept)
    ) & ~Exists(
        Membership.objects.filter(
            version=OuterRef("dataset_version__previous"), pair=pair, split__in=kept
        )
    )
    covering = (
        Q(kind=Quarantine.Kind.PAIR, pair=pair)
        | Q(kind=Quarantine.Kind.SOURCE, source_id=pair.source_id)
        | Q(
            kind=Quarantine.Kind.WINDOW,
            window_start__lte=pair.ingested_at,
            window_end__gt=pair.ingested_at,
        )
        | (Q(kind=Quarantine.Kind.DATASET_VERSION) & added_by_version)
    )
    if pair.policy_id is not None:
        covering |= Q(kind=Quarantine.Kind.POLICY, policy_id=pair.policy_id)
    return Quarantine.objects.select_related("created_by").filter(covering).order_by("pk").first()


def quarantine_consequences(*, quarantine: Quarantine) -> dict:
    """What a quarantine (saved or not yet) touches, for its confirmation: the gold pairs it
    covers, the frozen versions holding them in train or eval (kept as frozen) and the
    models trained on those, which it rolls back."""
    versions = list(versions_affected(quarantine=quarantine).select_related("dataset"))
    models = hooks.models_affected(versions=versions)
    return {
        "pairs": quarantine_pairs(quarantine=quarantine).count(),
        "versions": versions,
        "models": models,
    }


def pair_correction(*, pair: GoldPair) -> GoldPair | None:
    """The pair that corrects this one, if it was corrected."""
    return GoldPair.objects.filter(supersedes=pair).first()


def version_added_pairs(*, version: DatasetVersion):
    """Memberships of the pairs in the version's train or eval that were not in its
    previous version's: what a quarantine of the version covers."""
    kept = Membership.objects.filter(
        version_id=version.pk, split__in=[Membership.Split.TRAIN, Membership.Split.EVAL]
    )
    if version.previous_id:
        kept = kept.exclude(
            pair_id__in=Membership.objects.filter(
                version_id=version.previous_id,
                split__in=[Membership.Split.TRAIN, Membership.Split.EVAL],
            ).values("pair_id")
        )
    return kept


def models_trained_on(*, version: DatasetVersion) -> list:
    """Models a quarantine of the version would roll back."""
    return hooks.models_affected(versions=[version])


FREEZE_NOTHING_NEW = (
    "Nothing new would enter: no gold pair past the {lag}-day lag is missing from {latest}, "
    "no approved outcome waits to become gold, and nothing was quarantined since."
)
FREEZE_NOTHING_YET = (
    "Nothing would enter yet: no gold pair of this dataset is past its {lag}-day lag."
)


def freeze_blocker(*, dataset: Dataset, new_gold: int, pending_gold: int) -> str:
    """Why a freeze now would make nothing new (the page disables the button and says
    this), or "" when it could. A quarantine since the last freeze counts as new: it
    removes pairs."""
    if new_gold or pending_gold:
        return ""
    latest = latest_frozen(dataset=dataset)
    if latest is None:
        return FREEZE_NOTHING_YET.format(lag=dataset.lag_days)
    if Quarantine.objects.filter(created_at__gt=latest.frozen_at).exists():
        return ""
    return FREEZE_NOTHING_NEW.format(lag=dataset.lag_days, latest=f"v{latest.number}")
