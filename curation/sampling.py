"""Sampling passed candidates into the reviewer queue: a keyed hash decides,
stratified by task type and model (`sampling_rate`), and each sampled item
gets a review priority (`review_priority`).

The audit sample: a share of the candidates each filter rejected
(`audit_rate_of`, a policy field, default 2%) is drawn the same way (a keyed
hash of the candidate id, under its own label) and queued for review with
`audit_filter` naming the filter, so review outcomes can calibrate the filters
(`review.calibration`). needs_answer candidates are never audited: their
reviewer writes the answer rather than judging the model's.

Every candidate inside a policy's design is recorded as a `SampleDraw` (policy, stratum,
probability), including one already queued by an earlier policy: calibration reads each
reviewed item's verdict and probability from the same draw (`_draws_record`)."""

import hashlib
import hmac
import json
from collections.abc import Iterable
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.utils import timezone

from curation import hooks
from curation.models import Candidate, CandidateKind, CurationPolicy, Interaction, SampleDraw
from flywheel_site import rollups


def keyed_uniform(label: str, value: int) -> float:
    """A deterministic number in [0, 1) from a keyed hash: re-running sampling
    selects the same set, and nobody without the key can predict it."""
    digest = hmac.new(
        settings.FLYWHEEL_SAMPLING_KEY.encode(), f"{label}:{value}".encode(), hashlib.sha256
    ).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def stratum_of(candidate: Candidate) -> str:
    return _stratum(candidate.task_type, candidate.model)


def _stratum(task_type: str, model: str) -> str:
    return f"{task_type or '-'}|{model or '-'}"


def sampling_rate(*, base_rate: float, stratum_size: int, min_per_stratum: int) -> float:
    """The inclusion probability in a stratum of `stratum_size` passed candidates:
    the policy rate, raised for small strata so each gets about
    `min_per_stratum` items (a rare task type is not starved by a common one)."""
    if base_rate <= 0:
        return 0.0
    floor = min(1.0, min_per_stratum / max(stratum_size, 1))
    return min(1.0, max(base_rate, floor))


def review_priority(
    *, candidate: Candidate, policy: CurationPolicy, stratum_share: float, new_model: bool
) -> tuple[float, dict]:
    """Priority in [0, 1], higher first:

        0.5 * uncertainty + 0.3 * rarity + 0.2 * new_model

    uncertainty: how close the deciding scores came to a threshold, 1 at the
    threshold falling linearly to 0 at 0.1 away (edit band bounds, toxicity,
    quality; the nearest counts). rarity: 1 - the stratum's share of passed
    candidates. new_model: 1 when the model version was first seen in the last
    14 days. needs_answer items have no scores; they rank by rarity and model.
    """

    def closeness(value, threshold):
        if value is None:
            return 0.0
        return max(0.0, 1.0 - abs(value - threshold) / 0.1)

    sim = candidate.word_similarity if policy.band_measure == "word" else candidate.char_similarity
    parts = {
        "band_low": closeness(sim, policy.band_low),
        "band_high": closeness(sim, policy.band_high),
        "toxicity": closeness(candidate.toxicity, policy.toxicity_threshold),
        "quality": closeness(candidate.quality, policy.quality_min),
    }
    uncertainty = max(parts.values())
    rarity = max(0.0, 1.0 - stratum_share)
    priority = 0.5 * uncertainty + 0.3 * rarity + 0.2 * (1.0 if new_model else 0.0)
    details = {
        "uncertainty": round(uncertainty, 4),
        "rarity": round(rarity, 4),
        "new_model": new_model,
        "closest": max(parts, key=parts.get),
    }
    return round(priority, 6), details


def audit_rate_of(*, policy: CurationPolicy, filter_name: str) -> float:
    """The audit sample's inclusion probability for candidates `filter_name` rejected."""
    return float((policy.audit_rates or {}).get(filter_name, policy.audit_rate))


# One statement records a chunk's sampling decisions. `sampled_at IS NULL`
# keeps the first decision: re-curation never re-draws a sampled candidate.
_WRITE_SAMPLE = """
UPDATE curation_candidate AS c SET
    sampled_at = %s, sample_stratum = v.stratum, inclusion_probability = v.probability,
    priority = v.priority, priority_details = v.details, audit_filter = v.audit_filter
FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::float8[], %s::jsonb[], %s::text[])
    AS v(id, stratum, probability, priority, details, audit_filter)
WHERE c.id = v.id AND c.sampled_at IS NULL
RETURNING c.id
"""


def _draws_record(
    *, candidates: list[Candidate], policy: CurationPolicy, chosen: list[tuple]
) -> None:
    """This policy's design over `candidates`, replacing an earlier draw under the same
    policy (a re-curation under one version recomputes, like its filter decisions)."""
    SampleDraw.objects.filter(candidate__in=[c.pk for c in candidates], policy=policy).delete()
    now = timezone.now()
    SampleDraw.objects.bulk_create(
        [
            SampleDraw(
                candidate_id=c.pk,
                policy=policy,
                stratum=stratum_of(c),
                inclusion_probability=rate,
                audit_filter=audit_filter,
                drawn_at=now,
            )
            for c, rate, audit_filter in chosen
        ]
    )


# The passed candidates of the strata asked for, and the first day each model was seen,
# read from curation's daily rollup: its rows grow with days, not with candidates.
_ROLLUP_STRATA = """
SELECT task_type, model, sum(n) FROM curation_curationmetricday
WHERE metric = 'passed' AND task_type = ANY(%s) AND model = ANY(%s)
GROUP BY task_type, model HAVING sum(n) > 0
"""
_ROLLUP_PASSED = (
    "SELECT coalesce(sum(n), 0) FROM curation_curationmetricday WHERE metric = 'passed'"
)
_ROLLUP_FIRST_DAY = """
SELECT model, min(day) FROM curation_curationmetricday
WHERE metric = 'interactions' AND model = ANY(%s) AND n > 0 GROUP BY model
"""


def _strata_sizes(candidates: list[Candidate]) -> tuple[dict[str, int], int]:
    """Passed candidates per stratum of `candidates`, and in all, counting the chunk's
    own: the rollup holds the rest (the chunk's facts are added when its write ends).
    Without rollups (FLYWHEEL_METRICS_ROLLUPS=false) the candidates are counted."""
    own: dict[str, int] = {}
    for c in candidates:
        if c.status == Candidate.Status.PASSED:
            own[stratum_of(c)] = own.get(stratum_of(c), 0) + 1
    task_types, models = (
        sorted({c.task_type for c in candidates}),
        sorted({c.model for c in candidates}),
    )
    if not rollups.enabled():
        passed = Candidate.objects.filter(status=Candidate.Status.PASSED)
        rows = (
            passed.filter(task_type__in=task_types, model__in=models)
            .values_list("task_type", "model")
            .annotate(n=Count("pk"))
        )
        return {_stratum(t, m): n for t, m, n in rows}, passed.count()
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP_STRATA, [task_types, models])
        sizes = {_stratum(t, m): int(n) for t, m, n in cursor.fetchall()}
        cursor.execute(_ROLLUP_PASSED)
        total = int(cursor.fetchone()[0]) + sum(own.values())
    for stratum, n in own.items():
        sizes[stratum] = sizes.get(stratum, 0) + n
    return sizes, total


def _new_models(models: set[str]) -> set[str]:
    """The models first seen in the last 14 days (by the day their first interaction
    occurred, when read from the rollup)."""
    recent = timezone.now() - timedelta(days=14)
    if not rollups.enabled():
        first = Interaction.objects.filter(model__in=models).values("model")
        first = first.annotate(first=Min("occurred_at")).values_list("model", "first")
        return {model for model, seen in first if seen >= recent}
    with connection.cursor() as cursor:
        cursor.execute(_ROLLUP_FIRST_DAY, [sorted(models)])
        return {model for model, day in cursor.fetchall() if day >= recent.date()}


def candidates_sample(*, candidates: Iterable[Candidate], policy: CurationPolicy) -> int:
    """Draw passed candidates for review, and the audit sample of failed
    ones, and record the decision on each (stratum, inclusion probability,
    priority, audit_filter). Downstream apps are told through
    `hooks.candidates_sampled`. Returns how many were newly sampled."""
    candidates = list(candidates)
    sizes, total = _strata_sizes(candidates)
    chosen: list[tuple[Candidate, float, str]] = []
    for c in candidates:
        if c.status == Candidate.Status.PASSED:
            base = (
                policy.needs_answer_rate
                if c.kind == CandidateKind.NEEDS_ANSWER
                else policy.sample_rate
            )
            rate = sampling_rate(
                base_rate=base,
                stratum_size=sizes.get(stratum_of(c), 1),
                min_per_stratum=policy.min_per_stratum,
            )
            if rate > 0 and keyed_uniform("sample", c.pk) < rate:
                chosen.append((c, rate, ""))
        elif (
            c.status == Candidate.Status.FAILED
            and c.failed_filter
            and c.kind != CandidateKind.NEEDS_ANSWER
        ):
            # Its own hash label: the audit draw is independent of the main one.
            rate = audit_rate_of(policy=policy, filter_name=c.failed_filter)
            if rate > 0 and keyed_uniform("audit", c.pk) < rate:
                chosen.append((c, rate, c.failed_filter))
    _draws_record(candidates=candidates, policy=policy, chosen=chosen)
    if not chosen:
        return 0
    new_models = _new_models({c.model for c, _, _ in chosen})
    drawn = []
    for c, rate, audit_filter in chosen:
        # Audit items get their priority the same way as the others: they sit
        # in the queue among them, indistinguishable to reviewers.
        priority, details = review_priority(
            candidate=c,
            policy=policy,
            stratum_share=sizes.get(stratum_of(c), 1) / max(1, total),
            new_model=c.model in new_models,
        )
        drawn.append((c.pk, stratum_of(c), rate, priority, json.dumps(details), audit_filter))
    columns = [list(column) for column in zip(*drawn, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_WRITE_SAMPLE, [timezone.now(), *columns])
        sampled = sorted(row[0] for row in cursor.fetchall())
    hooks.candidates_sampled(candidate_ids=sampled)
    return len(sampled)
