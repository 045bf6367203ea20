"""Gold pairs, datasets and their immutable versions, and quarantines.

The invariants that make a dataset version trustworthy live in the database, so no code path
(ORM, bulk SQL, admin, shell) can break them:
- gold pairs are append-only (a correction is a new row that supersedes the old one);
- a version's membership can only be written while the version is a draft;
- a frozen version's content (number, manifest, hashes, cut-off) never changes, its status
  can only move frozen -> quarantined, and it is never deleted;
- quarantines are append-only records.
"""

import pghistory
import pgtrigger
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import models
from django.db.models import Q

from flywheel_site.models import MetricDayBase

SHA256_HEX = 64


class PairKind(models.TextChoices):
    PREFERENCE = "preference", "preference"
    SFT = "sft", "SFT"


class ExportFormat(models.TextChoices):
    DPO_STANDARD = "dpo_standard", "DPO, standard (strings)"
    DPO_CONVERSATIONAL = "dpo_conversational", "DPO, conversational"
    SFT_CONVERSATIONAL = "sft_conversational", "SFT, conversational"


def default_formats() -> list[str]:
    return [ExportFormat.DPO_CONVERSATIONAL.value, ExportFormat.DPO_STANDARD.value]


@pghistory.track(
    # The table is append-only, so every row is its own record; what history adds is who made
    # a correction, from which request, and why.
    pghistory.InsertEvent(condition=pghistory.Q(new__supersedes__isnull=False)),
    fields=["outcome", "supersedes", "correction_reason", "created_by"],
)
class GoldPair(models.Model):
    """One approved review outcome as training data, with its provenance."""

    outcome = models.ForeignKey(
        "review.ReviewOutcome", on_delete=models.PROTECT, related_name="gold_pairs"
    )
    candidate = models.ForeignKey("curation.Candidate", on_delete=models.PROTECT, related_name="+")
    interaction = models.ForeignKey(
        "curation.Interaction", on_delete=models.PROTECT, related_name="+"
    )
    # Denormalised from the interaction so selection and quarantine filter one table.
    source = models.ForeignKey("curation.Source", on_delete=models.PROTECT, related_name="+")
    policy = models.ForeignKey(
        "curation.CurationPolicy", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    # The model that produced the rejected output (the interaction's model version).
    model = models.CharField(max_length=200, blank=True, default="")
    task_type = models.CharField(max_length=100, blank=True, default="")
    kind = models.CharField(max_length=10, choices=PairKind.choices)
    prompt = models.JSONField()
    chosen = models.TextField()
    rejected = models.TextField(null=True, blank=True)
    # sha256 of the canonical JSON of kind, prompt, chosen and rejected: verify_datasets
    # recomputes it to catch a row edited behind the triggers' back.
    content_sha256 = models.CharField(max_length=SHA256_HEX)
    # Decides the train/eval split. A correction inherits it from the pair it supersedes,
    # so fixing a typo never moves a pair from eval into train.
    lineage_key = models.CharField(max_length=SHA256_HEX)
    # MinHash of prompt and chosen text (curation.dedup), for the contamination guard.
    minhash = models.BinaryField(null=True, blank=True)
    reviewer_ids = ArrayField(models.BigIntegerField(), default=list, blank=True)
    # [{"review", "reviewer", "decision", "accuracy", "helpfulness", "safety"}, ...]
    reviews = models.JSONField(default=list, blank=True)
    occurred_at = models.DateTimeField()
    ingested_at = models.DateTimeField()
    approved_at = models.DateTimeField()
    supersedes = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="superseded_by"
    )
    correction_reason = models.TextField(blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=Q(kind__in=PairKind.values), name="gold_valid_kind"),
            models.CheckConstraint(condition=~Q(chosen=""), name="gold_has_chosen"),
            models.CheckConstraint(
                condition=~Q(kind="preference") | (Q(rejected__isnull=False) & ~Q(rejected="")),
                name="gold_preference_has_rejected",
            ),
            # One original pair per outcome; corrections hang off it.
            models.UniqueConstraint(
                fields=["outcome"],
                condition=Q(supersedes__isnull=True),
                name="gold_one_original_per_outcome",
            ),
            models.CheckConstraint(
                condition=Q(supersedes__isnull=True) | ~Q(correction_reason=""),
                name="gold_correction_has_reason",
            ),
        ]
        indexes = [
            models.Index(fields=["kind", "occurred_at"], name="gold_kind_occurred_idx"),
            models.Index(fields=["ingested_at"], name="gold_ingested_idx"),
            models.Index(fields=["lineage_key"], name="gold_lineage_idx"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="gold_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"gold #{self.pk} ({self.kind})"


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class Dataset(models.Model):
    """A named selection of gold pairs and how to export it. Its rules may change; every
    version records the rules it was frozen under."""

    class Kind(models.TextChoices):
        # DPO from preference pairs.
        PREFERENCE = "preference", "preference (DPO)"
        # SFT on the approved answer of every pair, preference or sft.
        SFT = "sft", "SFT"

    name = models.SlugField(max_length=100, unique=True)
    description = models.TextField(blank=True, default="")
    kind = models.CharField(max_length=10, choices=Kind.choices, default=Kind.PREFERENCE)
    formats = models.JSONField(default=default_formats)
    # Only pairs whose interaction is older than this are selected, so a bad week (noise,
    # an attack) is seen by humans before anything trains on it.
    lag_days = models.PositiveIntegerField(default=14)
    eval_fraction = models.FloatField(default=0.10)
    # Train pairs at least this similar (MinHash Jaccard) to an eval pair are dropped.
    near_dup_threshold = models.FloatField(default=0.9)
    # Empty: every task type.
    task_types = models.JSONField(default=list, blank=True)
    # Net-new approved gold since the last frozen version that triggers a training run.
    train_threshold = models.PositiveIntegerField(default=5000)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(
                condition=Q(kind__in=["preference", "sft"]), name="dataset_valid_kind"
            ),
            models.CheckConstraint(
                condition=Q(eval_fraction__gte=0) & Q(eval_fraction__lt=1),
                name="dataset_eval_fraction_valid",
            ),
            models.CheckConstraint(
                condition=Q(near_dup_threshold__gt=0) & Q(near_dup_threshold__lte=1),
                name="dataset_near_dup_valid",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    @property
    def pair_kinds(self) -> tuple[str, ...]:
        """Gold pair kinds a freeze of this dataset selects: an SFT dataset trains on every
        approved answer, whatever the pair's kind."""
        if self.kind == self.Kind.PREFERENCE:
            return (PairKind.PREFERENCE.value,)
        return (PairKind.PREFERENCE.value, PairKind.SFT.value)


# Columns of a version that are fixed once it leaves draft.
_VERSION_CONTENT = (
    "dataset_id",
    "number",
    "previous_id",
    "kind",
    "formats",
    "lag_days",
    "eval_fraction",
    "near_dup_threshold",
    "task_types",
    "cutoff",
    "manifest",
    "manifest_sha256",
    "previous_manifest_sha256",
    "code_version",
    "created_at",
    "frozen_at",
    "frozen_by_id",
)
_VERSION_CONTENT_CHANGED = " OR ".join(
    f'OLD."{c}" IS DISTINCT FROM NEW."{c}"' for c in _VERSION_CONTENT
)


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class DatasetVersion(models.Model):
    class Status(models.TextChoices):
        DRAFT = "draft"
        FROZEN = "frozen"
        QUARANTINED = "quarantined"

    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="versions")
    number = models.PositiveIntegerField()
    status = models.CharField(max_length=12, choices=Status.choices, default=Status.DRAFT)
    # The version this one follows (the hash chain's previous link), quarantined or not.
    previous = models.OneToOneField(
        "self", null=True, blank=True, on_delete=models.PROTECT, related_name="next"
    )
    # The dataset's rules as they were when this version was frozen.
    kind = models.CharField(max_length=10)
    formats = models.JSONField(default=list)
    lag_days = models.PositiveIntegerField()
    eval_fraction = models.FloatField()
    near_dup_threshold = models.FloatField()
    task_types = models.JSONField(default=list, blank=True)
    # Pairs whose interaction occurred before this instant were eligible.
    cutoff = models.DateTimeField()
    manifest = models.JSONField(default=dict, blank=True)
    # sha256 of manifest.json exactly as exported (canonical JSON of `manifest`).
    manifest_sha256 = models.CharField(max_length=SHA256_HEX, blank=True, default="")
    previous_manifest_sha256 = models.CharField(max_length=SHA256_HEX, blank=True, default="")
    code_version = models.CharField(max_length=64, blank=True, default="")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    frozen_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    frozen_at = models.DateTimeField(null=True, blank=True)
    quarantined_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["dataset", "number"], name="version_unique_number"),
            models.UniqueConstraint(
                fields=["dataset"], condition=Q(status="draft"), name="version_one_draft"
            ),
            models.CheckConstraint(condition=Q(number__gte=1), name="version_number_positive"),
            models.CheckConstraint(
                condition=Q(status__in=["draft", "frozen", "quarantined"]),
                name="version_valid_status",
            ),
            models.CheckConstraint(
                condition=Q(status="draft") | (Q(frozen_at__isnull=False) & ~Q(manifest_sha256="")),
                name="version_frozen_has_manifest",
            ),
            models.CheckConstraint(
                condition=~Q(status="quarantined") | Q(quarantined_at__isnull=False),
                name="version_quarantine_has_time",
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="version_frozen_read_only",
                operation=pgtrigger.Update,
                condition=pgtrigger.Condition(
                    "OLD.status <> 'draft' AND ("
                    "NEW.status = 'draft' "
                    "OR (OLD.status = 'quarantined' AND NEW.status <> 'quarantined') "
                    "OR (OLD.status = 'quarantined' "
                    "AND OLD.quarantined_at IS DISTINCT FROM NEW.quarantined_at) "
                    f"OR {_VERSION_CONTENT_CHANGED})"
                ),
            ),
            pgtrigger.Protect(
                name="version_frozen_kept",
                operation=pgtrigger.Delete,
                condition=pgtrigger.Q(old__status__in=["frozen", "quarantined"]),
            ),
        ]

    def __str__(self) -> str:
        return f"{self.dataset.name} v{self.number}"

    @property
    def is_draft(self) -> bool:
        return self.status == self.Status.DRAFT


class Membership(models.Model):
    """A gold pair's place in a version: train, eval, or excluded with a reason. Excluded rows
    are kept so a version's diff can say why a pair left."""

    class Split(models.TextChoices):
        TRAIN = "train"
        EVAL = "eval"
        EXCLUDED = "excluded"

    class Reason(models.TextChoices):
        NONE = ""
        CONTAMINATED = "contaminated", "near duplicate of an eval pair"
        QUARANTINED = "quarantined", "quarantined"
        SUPERSEDED = "superseded", "superseded by a correction"

    version = models.ForeignKey(DatasetVersion, on_delete=models.CASCADE, related_name="members")
    pair = models.ForeignKey(GoldPair, on_delete=models.PROTECT, related_name="memberships")
    split = models.CharField(max_length=8, choices=Split.choices)
    reason = models.CharField(max_length=12, choices=Reason.choices, blank=True, default="")
    # contaminated: {"eval_pair", "jaccard"}; quarantined: {"quarantine"};
    # superseded: {"by"}.
    detail = models.JSONField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["version", "pair"], name="membership_unique_pair"),
            models.CheckConstraint(
                condition=Q(split__in=["train", "eval"], reason="")
                | (Q(split="excluded") & ~Q(reason="")),
                name="membership_reason_iff_excluded",
            ),
        ]
        indexes = [
            # The export's order: one index range scan per split.
            models.Index(fields=["version", "split", "pair"], name="membership_export_idx"),
            models.Index(fields=["pair"], name="membership_pair_idx"),
        ]
        triggers = [
            pgtrigger.Trigger(
                name="membership_frozen",
                operation=pgtrigger.Insert | pgtrigger.Update | pgtrigger.Delete,
                when=pgtrigger.Before,
                func="""
                IF EXISTS (
                    SELECT 1 FROM training_datasetversion v
                    WHERE v.status <> 'draft' AND v.id IN (
                        CASE WHEN TG_OP = 'INSERT' THEN NULL ELSE OLD.version_id END,
                        CASE WHEN TG_OP = 'DELETE' THEN NULL ELSE NEW.version_id END
                    )
                ) THEN
                    RAISE EXCEPTION 'membership of a frozen dataset version cannot change'
                        USING ERRCODE = 'integrity_constraint_violation';
                END IF;
                IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
                RETURN NEW;
                """,
            ),
        ]

    def __str__(self) -> str:
        return f"{self.version} #{self.pair_id} {self.split}"


@pghistory.track(pghistory.InsertEvent())
class Quarantine(models.Model):
    """Data an admin no longer trusts. Every later version excludes the pairs it covers:
    - dataset_version: the pairs that version added (those it inherited stay unless
      another quarantine covers them); the version itself is marked quarantined;
    - window: pairs whose interaction was ingested in [window_start, window_end);
    - source: pairs from that source;
    - policy: pairs curated under that policy version;
    - pair: one gold pair (the versions that hold it stay as they were frozen).
    """

    class Kind(models.TextChoices):
        DATASET_VERSION = "dataset_version", "dataset version"
        WINDOW = "window", "ingest time window"
        SOURCE = "source"
        POLICY = "policy", "policy version"
        PAIR = "pair", "gold pair"

    kind = models.CharField(max_length=16, choices=Kind.choices)
    dataset_version = models.ForeignKey(
        DatasetVersion, null=True, blank=True, on_delete=models.PROTECT, related_name="quarantines"
    )
    window_start = models.DateTimeField(null=True, blank=True)
    window_end = models.DateTimeField(null=True, blank=True)
    source = models.ForeignKey(
        "curation.Source", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    policy = models.ForeignKey(
        "curation.CurationPolicy", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    pair = models.ForeignKey(
        GoldPair, null=True, blank=True, on_delete=models.PROTECT, related_name="quarantines"
    )
    reason = models.TextField()
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.CheckConstraint(condition=~Q(reason=""), name="quarantine_has_reason"),
            models.CheckConstraint(
                condition=(
                    Q(
                        kind="dataset_version",
                        dataset_version__isnull=False,
                        source__isnull=True,
                        policy__isnull=True,
                        window_start__isnull=True,
                        window_end__isnull=True,
                        pair__isnull=True,
                    )
                    | Q(
                        kind="window",
                        dataset_version__isnull=True,
                        source__isnull=True,
                        policy__isnull=True,
                        window_start__isnull=False,
                        window_end__isnull=False,
                        window_start__lt=models.F("window_end"),
                        pair__isnull=True,
                    )
                    | Q(
                        kind="source",
                        dataset_version__isnull=True,
                        source__isnull=False,
                        policy__isnull=True,
                        window_start__isnull=True,
                        window_end__isnull=True,
                        pair__isnull=True,
                    )
                    | Q(
                        kind="policy",
                        dataset_version__isnull=True,
                        source__isnull=True,
                        policy__isnull=False,
                        window_start__isnull=True,
                        window_end__isnull=True,
                        pair__isnull=True,
                    )
                    | Q(
                        kind="pair",
                        dataset_version__isnull=True,
                        source__isnull=True,
                        policy__isnull=True,
                        window_start__isnull=True,
                        window_end__isnull=True,
                        pair__isnull=False,
                    )
                ),
                name="quarantine_fields_match_kind",
            ),
            # Quarantining a version twice would only duplicate the record.
            models.UniqueConstraint(
                fields=["dataset_version"],
                condition=Q(kind="dataset_version"),
                name="quarantine_version_once",
            ),
            models.UniqueConstraint(
                fields=["pair"], condition=Q(kind="pair"), name="quarantine_pair_once"
            ),
        ]
        triggers = [
            pgtrigger.Protect(
                name="quarantine_append_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"quarantine #{self.pk} ({self.kind})"


class TrainingMetricDay(MetricDayBase):
    """Training's daily rollup (`training.datasets.rollups`)."""


@pghistory.track(pghistory.InsertEvent(), pghistory.DeleteEvent())
class ExportTokenDataset(models.Model):
    """Limits an export-scoped API token to the datasets named here. A token with no rows
    may export every dataset, as every token could before limits existed. Kept on the
    training side: curation, which owns tokens, knows nothing of datasets."""

    token = models.ForeignKey(
        "curation.ApiToken", on_delete=models.CASCADE, related_name="export_datasets"
    )
    # PROTECT: removing a token's last row would silently lift its limit.
    dataset = models.ForeignKey(Dataset, on_delete=models.PROTECT, related_name="+")

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["token", "dataset"], name="exporttokendataset_unique")
        ]

    def __str__(self) -> str:
        return f"{self.token} -> {self.dataset}"
