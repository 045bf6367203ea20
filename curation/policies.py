"""Curation policies: versioned rows of every threshold the filters and the
sampler use. A change makes a new version; the old ones stay, so every
decision can name the policy it was made under."""

from django.conf import settings
from django.db import connection, transaction
from django.db.models import Max

from curation.errors import CurationError
from curation.filters import KNOWN_FILTERS
from curation.models import CurationPolicy
from curation.toxicity import ToxicityConfig

POLICY_INVALID = "policy is invalid: {error}"
# Serialises policy versions (7_201_001 was the retired global curation lock).
POLICY_LOCK = 7_201_002


def policy_current() -> CurationPolicy:
    policy = CurationPolicy.objects.order_by("-version").first()
    if policy is None:
        policy, _ = CurationPolicy.objects.get_or_create(version=1)
    return policy


# The share of passed candidates the product promises reviewers look at.
SAMPLE_RATE_BAND = (0.05, 0.10)
SAMPLE_RATE_WARNING = (
    "The sample rate is {rate:g}, outside the recommended 0.05-0.10: {effect} Set it between "
    "0.05 and 0.10 below and save."
)
SAMPLE_RATE_TOO_HIGH = "reviewers spend their time on candidates the filters have already decided."
SAMPLE_RATE_ALL = "every passed candidate goes to review, the ones the filters decided too."
SAMPLE_RATE_TOO_LOW = "too few passed candidates reach review to check the filters or grow gold."


def sample_rate_warning(policy: CurationPolicy) -> str:
    """What a sample rate outside the band does, and what to do; empty inside it."""
    low, high = SAMPLE_RATE_BAND
    rate = policy.sample_rate
    if low <= rate <= high:
        return ""
    if rate < low:
        effect = SAMPLE_RATE_TOO_LOW
    else:
        effect = SAMPLE_RATE_ALL if rate >= 1 else SAMPLE_RATE_TOO_HIGH
    return SAMPLE_RATE_WARNING.format(rate=rate, effect=effect)


POLICY_FIELDS = (
    "min_words",
    "band_low",
    "band_high",
    "band_measure",
    "toxicity_threshold",
    "toxicity_per_label",
    "quality_min",
    "near_dup_threshold",
    "enabled_filters",
    "blocklist_terms",
    "blocklist_patterns",
    "sample_rate",
    "needs_answer_rate",
    "sft_rate",
    "min_per_stratum",
    "reviews_required",
    "audit_rate",
    "audit_rates",
    "judge_rubric",
)


def policy_create(*, changes: dict, user=None, note: str = "") -> CurationPolicy:
    """The next policy version: the current one with `changes` applied.
    Raises CurationError (message from the filters' validation) on a bad value."""
    base = policy_current()
    values = {name: getattr(base, name) for name in POLICY_FIELDS}
    unknown = set(changes) - set(POLICY_FIELDS)
    if unknown:
        raise CurationError(f"unknown policy fields: {', '.join(sorted(unknown))}")
    values.update(changes)
    candidate = CurationPolicy(**values)
    try:
        candidate.filter_policy()
    except ValueError as error:
        raise CurationError(POLICY_INVALID.format(error=error)) from None
    for name in ("sample_rate", "needs_answer_rate", "sft_rate"):
        if not 0.0 <= float(values[name]) <= 1.0:
            raise CurationError(POLICY_INVALID.format(error=f"{name} must be between 0 and 1"))
    _audit_rates_check(values["audit_rate"], values["audit_rates"])
    if int(values["reviews_required"]) < 1:
        raise CurationError(POLICY_INVALID.format(error="reviews_required must be at least 1"))
    with transaction.atomic():
        # Serialise version numbers: two curators saving at once get v+1 and v+2.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [POLICY_LOCK])
        version = (CurationPolicy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        return CurationPolicy.objects.create(version=version, created_by=user, note=note, **values)


def _audit_rates_check(rate, per_filter) -> None:
    if not isinstance(per_filter, dict):
        raise CurationError(POLICY_INVALID.format(error="audit_rates must map filter: rate"))
    unknown = set(per_filter) - set(KNOWN_FILTERS)
    if unknown:
        raise CurationError(
            POLICY_INVALID.format(error=f"audit_rates names unknown filters: {sorted(unknown)}")
        )
    for name, value in {"audit_rate": rate, **per_filter}.items():
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
            raise CurationError(POLICY_INVALID.format(error=f"{name} must be between 0 and 1"))


def toxicity_config() -> ToxicityConfig:
    return ToxicityConfig(
        model=settings.FLYWHEEL_TOXICITY_MODEL,
        checkpoint=settings.FLYWHEEL_TOXICITY_CHECKPOINT,
        config_dir=settings.FLYWHEEL_TOXICITY_CONFIG_DIR,
        allow_fallback=settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK,
        batch_size=settings.FLYWHEEL_TOXICITY_BATCH_SIZE,
        runtime=settings.FLYWHEEL_TOXICITY_RUNTIME,
        onnx_cache_dir=str(settings.FLYWHEEL_TOXICITY_ONNX_CACHE_DIR),
    )
