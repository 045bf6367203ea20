"""The curation policy: one read-only row per version."""

import pghistory
import pgtrigger
from django.db import models
from django.db.models import Q


def default_enabled_filters() -> list[str]:
    from curation.filters import FILTER_ORDER

    return list(FILTER_ORDER)


def default_judge_rubric() -> str:
    from curation.judge_rubric import DEFAULT_RUBRIC

    return DEFAULT_RUBRIC


def default_audit_rates() -> dict[str, float]:
    # Text the PII filter caught is not put in front of reviewers to measure it.
    return {"pii": 0.0}


@pghistory.track(pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent())
class CurationPolicy(models.Model):
    """Every threshold, the enabled filters, the blocklist and the sampling
    settings. A row is one version: editing creates the next version, and the
    database refuses updates and deletes of existing ones (pgtrigger)."""

    version = models.PositiveIntegerField(unique=True)
    created_at = models.DateTimeField(auto_now_add=True)
    created_by = models.ForeignKey(
        "auth.User", null=True, blank=True, on_delete=models.PROTECT, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    min_words = models.PositiveIntegerField(default=20)
    band_low = models.FloatField(default=0.10)
    band_high = models.FloatField(default=0.95)
    band_measure = models.CharField(
        max_length=4, default="char", choices=[("char", "characters"), ("word", "words")]
    )
    toxicity_threshold = models.FloatField(default=0.1)
    # Optional thresholds per Detoxify label, e.g. {"threat": 0.05}.
    toxicity_per_label = models.JSONField(default=dict, blank=True)
    quality_min = models.FloatField(default=0.6)
    near_dup_threshold = models.FloatField(default=0.9)
    enabled_filters = models.JSONField(default=default_enabled_filters)
    blocklist_terms = models.JSONField(default=list, blank=True)
    blocklist_patterns = models.JSONField(default=list, blank=True)
    sample_rate = models.FloatField(default=0.075)
    needs_answer_rate = models.FloatField(default=1.0)
    sft_rate = models.FloatField(default=0.01)
    # Strata smaller than rate would sample get at least this many items.
    min_per_stratum = models.PositiveIntegerField(default=5)
    reviews_required = models.PositiveSmallIntegerField(default=1)
    # The audit sample: this share of the candidates each filter rejects is
    # reviewed blind, so the filters can be calibrated against human outcomes.
    audit_rate = models.FloatField(default=0.02)
    # Overrides per filter, e.g. {"toxicity": 0.05, "pii": 0}.
    audit_rates = models.JSONField(default=default_audit_rates, blank=True)
    # The LLM judge's system prompt: versioned with the policy (curation/judge.py).
    judge_rubric = models.TextField(default=default_judge_rubric)

    class Meta:
        verbose_name_plural = "curation policies"
        constraints = [
            models.CheckConstraint(
                condition=Q(band_low__gte=0)
                & Q(band_low__lte=models.F("band_high"))
                & Q(band_high__lte=1),
                name="policy_band_valid",
            ),
            models.CheckConstraint(
                condition=Q(sample_rate__gte=0, sample_rate__lte=1)
                & Q(needs_answer_rate__gte=0, needs_answer_rate__lte=1)
                & Q(sft_rate__gte=0, sft_rate__lte=1)
                & Q(toxicity_threshold__gte=0, toxicity_threshold__lte=1)
                & Q(quality_min__gte=0, quality_min__lte=1)
                & Q(near_dup_threshold__gt=0, near_dup_threshold__lte=1),
                name="policy_fractions_valid",
            ),
            models.CheckConstraint(
                condition=Q(audit_rate__gte=0, audit_rate__lte=1), name="policy_audit_rate_valid"
            ),
            models.CheckConstraint(condition=Q(reviews_required__gte=1), name="policy_reviews_min"),
        ]
        triggers = [
            pgtrigger.Protect(
                name="policy_read_only", operation=pgtrigger.Update | pgtrigger.Delete
            ),
        ]

    def __str__(self) -> str:
        return f"policy v{self.version}"

    def filter_policy(self):
        from curation.filters import FilterPolicy

        return FilterPolicy(
            min_words=self.min_words,
            band_low=self.band_low,
            band_high=self.band_high,
            band_measure=self.band_measure,
            toxicity_threshold=self.toxicity_threshold,
            quality_min=self.quality_min,
            near_dup_threshold=self.near_dup_threshold,
            blocklist_terms=tuple(self.blocklist_terms),
            blocklist_patterns=tuple(self.blocklist_patterns),
            enabled=tuple(self.enabled_filters),
        )
