"""Curation: candidates from interactions, filters with recorded decisions,
and sampling into the reviewer queue.

Every chunk of interactions is curated in one transaction that claims the rows
(`FOR UPDATE SKIP LOCKED` on rows still `pending`), writes candidates,
decisions and sampling decisions (the review app queues sampled candidates in
the same transaction, see `curation.hooks`), and marks the rows `done`. A worker killed halfway
leaves nothing behind: the transaction rolls back, the rows stay pending, and
a retry or the sweeper curates them exactly once. Unique constraints on
(interaction, kind), (candidate, policy, filter) and review item per candidate
make a second run of the same chunk write nothing.

One row that cannot be curated (a value Python cannot hold, a shape no code
expected) must not stall the rest: a chunk that raises is rolled back and
redone one interaction per savepoint, and the interactions that raise again
are marked `failed` with their error, shown on the runs page for a curator to
retry (`interactions_curate_chunk`). The sweeper curates only `pending` rows,
so a failed one is not retried on every sweep.

Sampling (keyed hash, stratified) and priority are described in
`sampling_rate` and `review_priority`.
"""

import hashlib
import hmac
import json
import logging
import math
import time
from collections import defaultdict
from collections.abc import Iterable, Sequence
from contextlib import contextmanager
from dataclasses import replace
from datetime import timedelta

import numpy as np
from django.conf import settings
from django.contrib.postgres.fields import ArrayField
from django.db import DatabaseError, InterfaceError, OperationalError, connection, transaction
from django.db.models import BigIntegerField, Count, F, Max, Min, Value
from django.utils import timezone
from rq.timeouts import JobTimeoutException

from curation import dedup, filters, hooks
from curation.errors import CurationError
from curation.models import (
    Candidate,
    CandidateKind,
    CurationPolicy,
    CurationRun,
    Feedback,
    FilterDecision,
    Interaction,
)
from curation.toxicity import ToxicityConfig, ToxicityUnavailable, get_scorer, toxicity_decision

log = logging.getLogger(__name__)

# Failures of the surroundings, not of a row: never a reason to mark rows
# failed. The chunk stays pending for the job's retry or the sweeper.
ENVIRONMENT_ERRORS = (OperationalError, InterfaceError, JobTimeoutException, MemoryError)

# One curation transaction at a time: dedup must see every earlier candidate.
CURATION_LOCK = 7_201_001
# Stored LSH bands are fixed (tuned for recall at Jaccard 0.8) so that a policy
# can change its near-duplicate threshold without recomputing every row; the
# estimated Jaccard is then checked against the policy's own threshold.
LSH_BANDS, LSH_ROWS = dedup.lsh_params(0.8, dedup.NUM_PERM)
PHASE_ONE = (
    filters.USER_ACTION,
    filters.LENGTH,
    filters.BLOCKLIST,
    filters.EDIT_BAND,
    filters.PII,
    filters.DEDUP_EXACT,
    filters.DEDUP_NEAR,
)
POLICY_INVALID = "policy is invalid: {error}"
EXACT_DUPLICATE = "Exact duplicate of candidate #{other}."
NEAR_DUPLICATE = "Near duplicate of candidate #{other} (estimated Jaccard {jaccard:.3f})."
NOT_DUPLICATE = "No earlier candidate matches."
NO_TEXT_SKIP = "No chosen text: not scored."
HELD_REASON = "Held: {error}"
CURATION_ERROR = "curation raised {error}"
ERROR_MAX_CHARS = 2000
ABANDONED = "abandoned: the worker stopped before finishing; the sweeper curates what it left"


# --- policies -----------------------------------------------------------------


def policy_current() -> CurationPolicy:
    policy = CurationPolicy.objects.order_by("-version").first()
    if policy is None:
        policy, _ = CurationPolicy.objects.get_or_create(version=1)
    return policy


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
    if int(values["reviews_required"]) < 1:
        raise CurationError(POLICY_INVALID.format(error="reviews_required must be at least 1"))
    with transaction.atomic():
        # Serialise version numbers: two curators saving at once get v+1 and v+2.
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CURATION_LOCK + 1])
        version = (CurationPolicy.objects.aggregate(v=Max("version"))["v"] or 0) + 1
        return CurationPolicy.objects.create(version=version, created_by=user, note=note, **values)


def toxicity_config() -> ToxicityConfig:
    return ToxicityConfig(
        model=settings.FLYWHEEL_TOXICITY_MODEL,
        checkpoint=settings.FLYWHEEL_TOXICITY_CHECKPOINT,
        config_dir=settings.FLYWHEEL_TOXICITY_CONFIG_DIR,
        allow_fallback=settings.FLYWHEEL_TOXICITY_ALLOW_FALLBACK,
        batch_size=settings.FLYWHEEL_TOXICITY_BATCH_SIZE,
    )


# --- keyed hashing ------------------------------------------------------------


def keyed_uniform(label: str, value: int) -> float:
    """A deterministic number in [0, 1) from a keyed hash: re-running sampling
    selects the same set, and nobody without the key can predict it."""
    digest = hmac.new(
        settings.FLYWHEEL_SAMPLING_KEY.encode(), f"{label}:{value}".encode(), hashlib.sha256
    ).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


# --- candidates ---------------------------------------------------------------


def candidate_specs(
    *, interaction: Interaction, feedback: Sequence[Feedback], sft_rate: float
) -> list[dict]:
    """Which candidates an interaction's feedback makes (pure apart from reading
    the rows given). An edit or correction makes a preference pair; otherwise a
    thumbs down or regenerate makes a needs_answer; otherwise an approval makes
    an sft candidate for a keyed-hash `sft_rate` fraction of interactions."""
    if not feedback:
        return []
    ordered = sorted(feedback, key=lambda f: (f.occurred_at, f.pk))
    kinds = sorted({f.kind for f in ordered})
    ratings = [f.rating for f in ordered if f.rating is not None]
    common = {
        "interaction": interaction,
        "prompt": interaction.messages,
        "feedback_ids": [f.pk for f in ordered],
        "feedback_kinds": kinds,
        "rating": ratings[-1] if ratings else None,
        "task_type": interaction.task_type,
        "model": interaction.model,
    }
    edits = [f for f in ordered if f.kind in filters.EDIT_ACTIONS]
    if edits:
        # The latest edit is the user's final word on the answer.
        return [
            {
                **common,
                "kind": CandidateKind.PREFERENCE,
                "chosen": edits[-1].final_text,
                "rejected": interaction.response,
            }
        ]
    if filters.disapproves(kinds, ratings):
        return [{**common, "kind": CandidateKind.NEEDS_ANSWER, "chosen": None, "rejected": None}]
    if filters.approves(kinds, ratings) and keyed_uniform("sft", interaction.pk) < sft_rate:
        return [
            {**common, "kind": CandidateKind.SFT, "chosen": interaction.response, "rejected": None}
        ]
    return []


def _prompt_text(messages) -> str:
    return "\n".join(
        f"{m.get('role', '')}: {m.get('content', '')}" for m in messages if isinstance(m, dict)
    )


def band_hashes(sketch) -> list[int]:
    values = np.asarray(sketch.hashvalues, dtype="<u4")
    out = []
    for band in range(LSH_BANDS):
        chunk = values[band * LSH_ROWS : (band + 1) * LSH_ROWS].tobytes()
        digest = hashlib.blake2b(bytes([band]) + chunk, digest_size=8).digest()
        out.append(int.from_bytes(digest, "big", signed=True))
    return out


def _signatures(candidate: Candidate) -> None:
    prompt_text = _prompt_text(candidate.prompt)
    candidate.exact_key = dedup.exact_key(prompt_text=prompt_text, chosen=candidate.chosen)
    sketch = dedup.minhash(prompt_text + "\n" + (candidate.chosen or ""))
    candidate.minhash = dedup.minhash_to_bytes(sketch)
    candidate.lsh_bands = band_hashes(sketch)


def candidates_build(*, interactions: Sequence[Interaction], policy: CurationPolicy) -> list[int]:
    """Create the candidates the interactions call for; existing (interaction,
    kind) pairs are left as they are. Returns the ids of candidates created."""
    by_interaction: dict[int, list[Feedback]] = defaultdict(list)
    for fb in Feedback.objects.filter(interaction__in=[i.pk for i in interactions]):
        by_interaction[fb.interaction_id].append(fb)
    rows = []
    for interaction in interactions:
        for spec in candidate_specs(
            interaction=interaction,
            feedback=by_interaction[interaction.pk],
            sft_rate=policy.sft_rate,
        ):
            candidate = Candidate(**spec)
            _signatures(candidate)
            rows.append(candidate)
    if not rows:
        return []
    before = set(
        Candidate.objects.filter(interaction__in=[i.pk for i in interactions]).values_list(
            "pk", flat=True
        )
    )
    Candidate.objects.bulk_create(rows, ignore_conflicts=True)
    after = Candidate.objects.filter(interaction__in=[i.pk for i in interactions]).values_list(
        "pk", flat=True
    )
    return sorted(set(after) - before)


# --- evaluation ---------------------------------------------------------------


def _filter_input(candidate: Candidate, toxicity: float | None = None) -> filters.FilterInput:
    return filters.FilterInput(
        kind=candidate.kind,
        prompt_messages=candidate.prompt,
        chosen=candidate.chosen,
        rejected=candidate.rejected,
        feedback_kinds=candidate.feedback_kinds,
        rating=candidate.rating,
        toxicity=toxicity,
    )


class _EarlierCandidates:
    """The earlier candidates a chunk's dedup steps can match, read in two
    queries for the whole chunk instead of two per candidate (plus a status
    UPDATE per candidate so the next lookup saw it). Answers what
    "candidates of the same kind with a smaller id, not failed" gave per
    candidate: rows outside the chunk by their stored status, the chunk's own
    by the verdicts recorded here as they are made."""

    def __init__(self, candidates: Sequence[Candidate], *, exact: bool, near: bool):
        self.verdicts: dict[int, bool] = {}  # pk -> failed, for the chunk's candidates
        self.status: dict[int, str] = {}
        self.by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_band: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.minhash: dict[int, bytes] = {}
        if not candidates:
            return
        earlier = Candidate.objects.filter(
            kind__in={c.kind for c in candidates}, pk__lt=max(c.pk for c in candidates)
        ).order_by("pk")
        if exact:
            keys = {c.exact_key for c in candidates}
            for pk, kind, key, status in earlier.filter(exact_key__in=keys).values_list(
                "pk", "kind", "exact_key", "status"
            ):
                self.by_key[(kind, key)].append(pk)
                self.status[pk] = status
        if near:
            # One array parameter: given a list, Django builds an expression per
            # element, about 0.1 s for a chunk's 4,000 band hashes.
            bands = Value(
                sorted({band for c in candidates for band in c.lsh_bands}),
                output_field=ArrayField(BigIntegerField()),
            )
            for pk, kind, status, blob, row_bands in earlier.filter(
                lsh_bands__overlap=bands
            ).values_list("pk", "kind", "status", "minhash", "lsh_bands"):
                self.status[pk] = status
                self.minhash[pk] = bytes(blob)
                for band in row_bands:
                    self.by_band[(kind, band)].append(pk)

    def _usable(self, pk: int, candidate: Candidate) -> bool:
        if pk >= candidate.pk:
            return False
        if pk in self.verdicts:
            return not self.verdicts[pk]
        return self.status[pk] != Candidate.Status.FAILED

    def exact(self, candidate: Candidate) -> int | None:
        """The first earlier candidate with the same exact key."""
        for pk in self.by_key.get((candidate.kind, candidate.exact_key), ()):
            if self._usable(pk, candidate):
                return pk
        return None

    def near(self, candidate: Candidate) -> list[tuple[int, bytes]]:
        """Earlier candidates sharing an LSH band, in id order, with their MinHash."""
        pks = {
            pk
            for band in candidate.lsh_bands
            for pk in self.by_band.get((candidate.kind, band), ())
        }
        return [(pk, self.minhash[pk]) for pk in sorted(pks) if self._usable(pk, candidate)]


def _dedup_steps(candidate: Candidate, earlier: _EarlierCandidates) -> dict:
    def exact(item, policy):
        other = earlier.exact(candidate)
        if other is not None:
            return filters.FilterResult(
                filters.DEDUP_EXACT,
                False,
                1.0,
                EXACT_DUPLICATE.format(other=other),
                {"duplicate_of": other},
            )
        return filters.FilterResult(filters.DEDUP_EXACT, True, 0.0, NOT_DUPLICATE)

    def near(item, policy):
        mine = np.frombuffer(bytes(candidate.minhash), dtype="<u4")
        best = dedup.best_match(
            mine,
            ((other, np.frombuffer(blob, dtype="<u4")) for other, blob in earlier.near(candidate)),
            threshold=policy.near_dup_threshold,
        )
        if best is not None:
            return filters.FilterResult(
                filters.DEDUP_NEAR,
                False,
                best[1],
                NEAR_DUPLICATE.format(other=best[0], jaccard=best[1]),
                {"duplicate_of": best[0]},
            )
        return filters.FilterResult(filters.DEDUP_NEAR, True, None, NOT_DUPLICATE)

    return {filters.DEDUP_EXACT: exact, filters.DEDUP_NEAR: near}


def _toxicity_results(
    candidates: Sequence[Candidate], policy: CurationPolicy
) -> dict[int, filters.FilterResult]:
    """Score every chosen text in batches. Raises ToxicityUnavailable: the
    caller holds the candidates rather than pass them unscored."""
    config = toxicity_config()
    scorer = get_scorer(config)
    results = {}
    to_score = [c for c in candidates if c.chosen]
    for c in candidates:
        if not c.chosen:
            results[c.pk] = filters.FilterResult(
                filters.TOXICITY,
                True,
                None,
                NO_TEXT_SKIP,
                {"skipped": True},
                scorer=scorer.name,
                scorer_version=scorer.version,
            )
    if to_score:
        # One call for the whole chunk: the scorer sorts it by length and then
        # cuts batches of config.batch_size, so batches pad less than batches
        # cut in id order (10% fewer tokens for 40-word texts, bench/curation.py).
        scores = scorer.score_batch([c.chosen for c in to_score])
        for c, label_scores in zip(to_score, scores, strict=True):
            passed, score, reason = toxicity_decision(
                label_scores,
                threshold=policy.toxicity_threshold,
                per_label=policy.toxicity_per_label or None,
            )
            results[c.pk] = filters.FilterResult(
                filters.TOXICITY,
                passed,
                score,
                reason,
                {"scores": {k: round(v, 6) for k, v in label_scores.items()}},
                scorer=scorer.name,
                scorer_version=scorer.version,
            )
    return results


# One statement for a chunk's results. Django's bulk_update writes a CASE WHEN
# per field per row: for 200 candidates and 13 fields, building and parsing it
# took about 7 ms per candidate, over a third of what the pipeline spent outside
# the toxicity model (bench/curation.py). The signature fields are written only
# for candidates that had none (they are set when a candidate is built).
_WRITE_EVALUATION = """
UPDATE curation_candidate AS c SET
    status = v.status, status_reason = v.status_reason, failed_filter = v.failed_filter,
    policy_id = %s, evaluated_at = %s,
    char_similarity = v.char_similarity, word_similarity = v.word_similarity,
    toxicity = v.toxicity, toxicity_scorer = v.toxicity_scorer, quality = v.quality
FROM unnest(
    %s::bigint[], %s::text[], %s::text[], %s::text[],
    %s::float8[], %s::float8[], %s::float8[], %s::text[], %s::float8[]
) AS v(id, status, status_reason, failed_filter,
       char_similarity, word_similarity, toxicity, toxicity_scorer, quality)
WHERE c.id = v.id
"""


def _evaluation_write(*, candidates: Sequence[Candidate], policy: CurationPolicy, now) -> None:
    if not candidates:
        return
    columns = (
        "pk",
        "status",
        "status_reason",
        "failed_filter",
        "char_similarity",
        "word_similarity",
        "toxicity",
        "toxicity_scorer",
        "quality",
    )
    values = [[getattr(c, name) for c in candidates] for name in columns]
    with connection.cursor() as cursor:
        cursor.execute(_WRITE_EVALUATION, [policy.pk, now, *values])


def candidates_evaluate(
    *, candidates: Sequence[Candidate], policy: CurationPolicy, full: bool = False
) -> dict:
    """Run the policy's filters on candidates (in id order), store every
    decision, and set each candidate's status. Cheapest filters first; the
    toxicity model runs once per batch over the survivors. Returns counts."""
    fp = policy.filter_policy()
    enabled = fp.enabled
    phase_one = replace(fp, enabled=tuple(n for n in enabled if n in PHASE_ONE))
    now = timezone.now()
    outcome: dict[int, list[filters.FilterResult]] = {}
    survivors: list[Candidate] = []
    ordered = sorted(candidates, key=lambda c: c.pk)
    resigned = [c for c in ordered if c.minhash is None]
    for candidate in resigned:
        _signatures(candidate)
    earlier = _EarlierCandidates(
        ordered,
        exact=filters.DEDUP_EXACT in phase_one.enabled,
        near=filters.DEDUP_NEAR in phase_one.enabled,
    )
    for candidate in ordered:
        results = filters.run_filters(
            _filter_input(candidate), phase_one, full=full, extra=_dedup_steps(candidate, earlier)
        )
        outcome[candidate.pk] = results
        band = next((r for r in results if r.name == filters.EDIT_BAND), None)
        if band and not band.details.get("skipped"):
            candidate.char_similarity = band.details.get("char_similarity")
            candidate.word_similarity = band.details.get("word_similarity")
        if full or all(r.passed for r in results):
            survivors.append(candidate)
        # Later candidates in this chunk must see this one's verdict for dedup.
        earlier.verdicts[candidate.pk] = not all(r.passed for r in results)

    held: dict[int, str] = {}
    toxicity: dict[int, filters.FilterResult] = {}
    if filters.TOXICITY in enabled and survivors:
        try:
            toxicity = _toxicity_results(survivors, policy)
        except ToxicityUnavailable as error:
            held = {c.pk: HELD_REASON.format(error=error) for c in survivors}
    for candidate in survivors:
        if candidate.pk in held:
            continue
        results = outcome[candidate.pk]
        tox = toxicity.get(candidate.pk)
        if tox is not None:
            results.append(tox)
            candidate.toxicity = tox.score
            candidate.toxicity_scorer = f"{tox.scorer}@{tox.scorer_version}"
        if filters.QUALITY in enabled and (full or all(r.passed for r in results)):
            quality = filters.quality_filter(_filter_input(candidate, candidate.toxicity), fp)
            results.append(quality)
            candidate.quality = quality.score

    decisions = []
    counts = {"passed": 0, "failed": 0, "held": 0, "failed_by_filter": defaultdict(int)}
    for candidate in candidates:
        results = outcome[candidate.pk]
        for r in results:
            decisions.append(
                FilterDecision(
                    candidate=candidate,
                    policy=policy,
                    filter=r.name,
                    passed=r.passed,
                    score=None if r.score is None or not math.isfinite(r.score) else r.score,
                    reason=r.reason,
                    details=r.details,
                    scorer=r.scorer,
                    scorer_version=r.scorer_version,
                )
            )
        failed = next((r for r in results if not r.passed), None)
        candidate.policy = policy
        candidate.evaluated_at = now
        if candidate.pk in held:
            candidate.status = Candidate.Status.HELD
            candidate.status_reason = held[candidate.pk]
            candidate.failed_filter = ""
            counts["held"] += 1
        elif failed is not None:
            candidate.status = Candidate.Status.FAILED
            candidate.status_reason = failed.reason
            candidate.failed_filter = failed.name
            counts["failed"] += 1
            counts["failed_by_filter"][failed.name] += 1
        else:
            candidate.status = Candidate.Status.PASSED
            candidate.status_reason = ""
            candidate.failed_filter = ""
            counts["passed"] += 1
    FilterDecision.objects.bulk_create(decisions, ignore_conflicts=True)
    _evaluation_write(candidates=candidates, policy=policy, now=now)
    if resigned:
        Candidate.objects.bulk_update(resigned, ["exact_key", "minhash", "lsh_bands"])
    counts["failed_by_filter"] = dict(counts["failed_by_filter"])
    scored = next(iter(toxicity.values()), None)
    if scored is not None:
        counts["scorer"] = f"{scored.scorer}@{scored.scorer_version}"
    return counts


# --- sampling -----------------------------------------------------------------


def stratum_of(candidate: Candidate) -> str:
    return f"{candidate.task_type or '-'}|{candidate.model or '-'}"


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


# One statement records a chunk's sampling decisions. `sampled_at IS NULL`
# keeps the first decision: re-curation never re-draws a sampled candidate.
_WRITE_SAMPLE = """
UPDATE curation_candidate AS c SET
    sampled_at = %s, sample_stratum = v.stratum, inclusion_probability = v.probability,
    priority = v.priority, priority_details = v.details
FROM unnest(%s::bigint[], %s::text[], %s::float8[], %s::float8[], %s::jsonb[])
    AS v(id, stratum, probability, priority, details)
WHERE c.id = v.id AND c.sampled_at IS NULL
RETURNING c.id
"""


def candidates_sample(*, candidates: Iterable[Candidate], policy: CurationPolicy) -> int:
    """Draw passed candidates for review and record the decision on each
    (stratum, inclusion probability, priority). Downstream apps are told
    through `hooks.candidates_sampled`. Returns how many were newly sampled."""
    passed = [c for c in candidates if c.status == Candidate.Status.PASSED]
    if not passed:
        return 0
    sizes = {
        f"{row['task_type'] or '-'}|{row['model'] or '-'}": row["n"]
        for row in Candidate.objects.filter(
            status=Candidate.Status.PASSED,
            task_type__in={c.task_type for c in passed},
            model__in={c.model for c in passed},
        )
        .values("task_type", "model")
        .annotate(n=Count("pk"))
    }
    total = max(1, Candidate.objects.filter(status=Candidate.Status.PASSED).count())
    recent = timezone.now() - timedelta(days=14)
    first_seen = dict(
        Interaction.objects.filter(model__in={c.model for c in passed})
        .values("model")
        .annotate(first=Min("occurred_at"))
        .values_list("model", "first")
    )
    drawn: list[tuple[int, str, float, float, str]] = []
    for c in passed:
        stratum = stratum_of(c)
        base = (
            policy.needs_answer_rate if c.kind == CandidateKind.NEEDS_ANSWER else policy.sample_rate
        )
        rate = sampling_rate(
            base_rate=base,
            stratum_size=sizes.get(stratum, 1),
            min_per_stratum=policy.min_per_stratum,
        )
        if rate <= 0 or keyed_uniform("sample", c.pk) >= rate:
            continue
        priority, details = review_priority(
            candidate=c,
            policy=policy,
            stratum_share=sizes.get(stratum, 1) / total,
            new_model=bool(first_seen.get(c.model) and first_seen[c.model] >= recent),
        )
        drawn.append((c.pk, stratum, rate, priority, json.dumps(details)))
    if not drawn:
        return 0
    columns = [list(column) for column in zip(*drawn, strict=True)]
    with connection.cursor() as cursor:
        cursor.execute(_WRITE_SAMPLE, [timezone.now(), *columns])
        sampled = sorted(row[0] for row in cursor.fetchall())
    hooks.candidates_sampled(candidate_ids=sampled)
    return len(sampled)


# --- runs ---------------------------------------------------------------------


def _lock(cursor) -> None:
    cursor.execute("SELECT pg_advisory_xact_lock(%s)", [CURATION_LOCK])


def _claim(cursor, ids: Sequence[int]) -> list[int]:
    cursor.execute(
        "SELECT id FROM curation_interaction WHERE id = ANY(%s::bigint[]) "
        "AND curation_state = 'pending' ORDER BY id FOR UPDATE SKIP LOCKED",
        [list(ids)],
    )
    return [row[0] for row in cursor.fetchall()]


def _run_add(run: CurationRun | None, counts: dict) -> None:
    if run is None:
        return
    by_filter = dict(run.failed_by_filter)
    for name, n in counts.get("failed_by_filter", {}).items():
        by_filter[name] = by_filter.get(name, 0) + n
    CurationRun.objects.filter(pk=run.pk).update(
        interactions=F("interactions") + counts.get("interactions", 0),
        candidates=F("candidates") + counts.get("candidates", 0),
        passed=F("passed") + counts.get("passed", 0),
        failed=F("failed") + counts.get("failed", 0),
        held=F("held") + counts.get("held", 0),
        sampled=F("sampled") + counts.get("sampled", 0),
        errored=F("errored") + counts.get("errored", 0),
        failed_by_filter=by_filter,
        **({"scorer": counts["scorer"]} if counts.get("scorer") else {}),
    )
    run.failed_by_filter = by_filter


# A running run holds a session advisory lock on (RUN_LOCK_SPACE, run id) from the
# connection of the process doing the work. PostgreSQL drops it when that
# process dies (kill -9, OOM) or loses its connection, so the sweeper knows
# the run is abandoned without waiting for any timeout.
RUN_LOCK_SPACE = 7202
_runs_held: set[int] = set()


def _run_lock(run: CurationRun) -> None:
    if run.pk in _runs_held:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_lock(%s, %s)", [RUN_LOCK_SPACE, run.pk % 2**31])
    _runs_held.add(run.pk)


def _run_unlock(run: CurationRun) -> None:
    if run.pk not in _runs_held:
        return
    _runs_held.discard(run.pk)
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK_SPACE, run.pk % 2**31])


def run_start(*, trigger: str, total: int = 0, job_id: str = "") -> CurationRun:
    run = CurationRun.objects.create(
        trigger=trigger,
        status=CurationRun.Status.RUNNING,
        total=total,
        job_id=job_id,
        policy=policy_current(),
        started_at=timezone.now(),
    )
    _run_lock(run)
    return run


@contextmanager
def run_tracked(run: CurationRun):
    """Close the run row as succeeded, or failed with the error's repr, however
    the block ends (a killed worker's row is closed by the sweeper instead)."""
    _run_lock(run)
    try:
        yield run
    except BaseException as error:
        run_finish(run=run, error=error)
        raise
    run_finish(run=run)


def run_finish(*, run: CurationRun, error: BaseException | None = None) -> None:
    try:
        CurationRun.objects.filter(pk=run.pk).update(
            status=CurationRun.Status.FAILED if error else CurationRun.Status.SUCCEEDED,
            error=repr(error) if error else "",
            finished_at=timezone.now(),
        )
    finally:
        try:
            _run_unlock(run)
        except DatabaseError:
            # The connection is gone, and the lock with it: the sweeper closes the row.
            log.warning("could not release the lock of curation run %s", run.pk)


def runs_close_abandoned(*, older_than: timedelta) -> int:
    """Close running rows whose process is gone: their advisory lock is free.
    Rows younger than `older_than` are left alone (a run takes its lock right
    after creating its row)."""
    closed = 0
    cutoff = timezone.now() - older_than
    ids = CurationRun.objects.filter(
        status=CurationRun.Status.RUNNING, started_at__lt=cutoff
    ).values_list("pk", flat=True)
    for pk in ids:
        with connection.cursor() as cursor:
            cursor.execute("SELECT pg_try_advisory_lock(%s, %s)", [RUN_LOCK_SPACE, pk % 2**31])
            if not cursor.fetchone()[0]:
                continue
            try:
                closed += CurationRun.objects.filter(
                    pk=pk, status=CurationRun.Status.RUNNING
                ).update(
                    status=CurationRun.Status.FAILED, error=ABANDONED, finished_at=timezone.now()
                )
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s, %s)", [RUN_LOCK_SPACE, pk % 2**31])
    if closed:
        log.warning("closed %d curation runs whose process stopped", closed)
    return closed


def _curate_claimed(claimed: Sequence[int], policy: CurationPolicy) -> dict:
    """Build, evaluate and sample the claimed interactions and mark them done.
    Runs inside the caller's transaction (or savepoint) and lock."""
    interactions = list(Interaction.objects.filter(pk__in=claimed).order_by("pk"))
    new_ids = candidates_build(interactions=interactions, policy=policy)
    candidates = list(Candidate.objects.filter(pk__in=new_ids).order_by("pk"))
    counts = candidates_evaluate(candidates=candidates, policy=policy)
    counts["sampled"] = candidates_sample(candidates=candidates, policy=policy)
    Interaction.objects.filter(pk__in=claimed).update(
        curation_state=Interaction.CurationState.DONE,
        curation_claimed_at=timezone.now(),
        curation_error="",
        curation_failed_at=None,
    )
    counts["interactions"] = len(claimed)
    counts["candidates"] = len(candidates)
    return counts


def _counts_add(totals: dict, counts: dict) -> None:
    for key, value in counts.items():
        if key == "failed_by_filter":
            by_filter = totals.setdefault(key, {})
            for name, n in value.items():
                by_filter[name] = by_filter.get(name, 0) + n
        elif isinstance(value, int):
            totals[key] = totals.get(key, 0) + value
        else:
            totals[key] = value


def _curate_each(*, interaction_ids: Sequence[int], policy: CurationPolicy) -> dict:
    """The chunk again, one interaction per savepoint: each that raises is
    rolled back alone and marked failed with its error; the others are curated
    as the whole chunk would have curated them, in the same id order (dedup
    sees the earlier ones' candidates, which are in this transaction)."""
    from curation.services import feedback_link_orphans

    totals: dict = {"interactions": 0, "errored": 0}
    failures: dict[int, str] = {}
    with transaction.atomic(), connection.cursor() as cursor:
        _lock(cursor)
        claimed = _claim(cursor, interaction_ids)
        if not claimed:
            return totals
        feedback_link_orphans(interaction_ids=claimed)
        for pk in claimed:
            try:
                with transaction.atomic():
                    counts = _curate_claimed([pk], policy)
            except ENVIRONMENT_ERRORS:
                raise
            except Exception as error:
                log.exception("curation of interaction %s failed; set aside as failed", pk)
                failures[pk] = CURATION_ERROR.format(error=repr(error))[:ERROR_MAX_CHARS]
                continue
            _counts_add(totals, counts)
        now = timezone.now()
        for pk, error in failures.items():
            Interaction.objects.filter(pk=pk).update(
                curation_state=Interaction.CurationState.FAILED,
                curation_claimed_at=now,
                curation_error=error,
                curation_failed_at=now,
            )
    totals["interactions"] += len(failures)
    totals["errored"] = len(failures)
    return totals


def interactions_curate_chunk(*, interaction_ids: Sequence[int], policy: CurationPolicy) -> dict:
    """Curate one chunk in one transaction (see the module docstring).

    One bad row must not stall the chunk (and with it every retry and sweep):
    when the chunk raises, it is rolled back and redone item by item, each in
    a savepoint, and the items that raise are marked failed with their error
    (`_curate_each`). The fast path stays one transaction over the whole chunk;
    only a failing chunk pays for the second pass. Errors of the environment
    (the database gone, the job's time up) are not any row's fault: they
    propagate, the chunk stays pending, and the job's retry or the sweeper
    curates it later."""
    from curation.services import feedback_link_orphans

    try:
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            claimed = _claim(cursor, interaction_ids)
            if not claimed:
                return {"interactions": 0}
            feedback_link_orphans(interaction_ids=claimed)
            counts = _curate_claimed(claimed, policy)
            pause = settings.FLYWHEEL_CURATION_CHUNK_PAUSE_S
            if pause:
                # Failure testing only: widen the window in which a worker can be killed.
                time.sleep(pause)
    except ENVIRONMENT_ERRORS:
        raise
    except Exception:
        log.warning("curation chunk failed; redoing it one interaction at a time", exc_info=True)
        return _curate_each(interaction_ids=interaction_ids, policy=policy)
    return counts


def interactions_curate(
    *, interaction_ids: Sequence[int], run: CurationRun | None = None, progress=None
) -> dict:
    """Curate interactions in chunks, each in its own transaction, updating the
    run row after each so the UI shows progress. An interaction whose curation
    raises is marked failed and counted in `errored`; the others carry on."""
    policy = policy_current()
    chunk = settings.FLYWHEEL_CURATION_CHUNK
    ids = sorted(set(interaction_ids))
    totals: dict = defaultdict(int)
    for start in range(0, len(ids), chunk):
        counts = interactions_curate_chunk(
            interaction_ids=ids[start : start + chunk], policy=policy
        )
        _run_add(run, counts)
        for key, value in counts.items():
            if isinstance(value, int):
                totals[key] += value
        if progress:
            progress(len(ids[start : start + chunk]))
    return dict(totals)


def candidates_recurate(
    *,
    policy: CurationPolicy,
    candidate_ids: Sequence[int] | None = None,
    full: bool = False,
    run: CurationRun | None = None,
    progress=None,
) -> dict:
    """Re-run the filters on existing candidates under `policy`. Decisions made
    under other versions are kept; newly passing candidates are sampled
    (items already queued stay queued)."""
    query = Candidate.objects.order_by("pk")
    if candidate_ids is not None:
        query = query.filter(pk__in=candidate_ids)
    ids = list(query.values_list("pk", flat=True))
    chunk = settings.FLYWHEEL_CURATION_CHUNK
    totals: dict = defaultdict(int)
    for start in range(0, len(ids), chunk):
        part = ids[start : start + chunk]
        with transaction.atomic(), connection.cursor() as cursor:
            _lock(cursor)
            candidates = list(Candidate.objects.filter(pk__in=part).order_by("pk"))
            # Decisions under this version are recomputed, not duplicated.
            FilterDecision.objects.filter(candidate__in=part, policy=policy).delete()
            counts = candidates_evaluate(candidates=candidates, policy=policy, full=full)
            counts["sampled"] = candidates_sample(candidates=candidates, policy=policy)
            counts["candidates"] = len(candidates)
        _run_add(run, counts)
        for key, value in counts.items():
            if isinstance(value, int):
                totals[key] += value
        if progress:
            progress(len(part))
    return dict(totals)


def held_recheck(*, run: CurationRun | None = None) -> dict:
    """Evaluate held candidates again (the toxicity model may be back)."""
    ids = list(Candidate.objects.filter(status=Candidate.Status.HELD).values_list("pk", flat=True))
    if not ids:
        return {}
    return candidates_recurate(policy=policy_current(), candidate_ids=ids, run=run)


_LINK_LATE_FEEDBACK = """
UPDATE curation_feedback f SET interaction_id = i.id
FROM curation_interaction i
WHERE f.interaction_id IS NULL
  AND i.source_id = f.source_id AND i.event_id = f.interaction_event_id
RETURNING f.interaction_id
"""


def sweep(*, grace_seconds: int | None = None, limit: int | None = None) -> dict:
    """What the scheduler runs every FLYWHEEL_SWEEP_INTERVAL_S, and THE recovery
    path for anything a dead worker or a lost job left behind: close the run
    rows of processes that are gone, link feedback that raced its interaction,
    send touched interactions back to curation, curate every interaction left
    pending for longer than the grace (Redis was down, a job was lost, a worker
    was killed), and re-check held candidates. So whatever a fault leaves is
    curated within one interval plus the grace of the fault. Bounded by
    `limit` per sweep."""
    grace = settings.FLYWHEEL_SWEEP_GRACE_S if grace_seconds is None else grace_seconds
    runs_close_abandoned(older_than=timedelta(seconds=grace))
    limit = settings.FLYWHEEL_SWEEP_LIMIT if limit is None else limit
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(_LINK_LATE_FEEDBACK)
        touched = sorted({row[0] for row in cursor.fetchall()})
        if touched:
            cursor.execute(
                "UPDATE curation_interaction SET curation_state = 'pending' "
                "WHERE id = ANY(%s::bigint[]) AND curation_state = 'done'",
                [touched],
            )
    cutoff = timezone.now() - timedelta(seconds=grace)
    pending = list(
        Interaction.objects.filter(
            curation_state=Interaction.CurationState.PENDING, received_at__lte=cutoff
        )
        .order_by("received_at", "pk")
        .values_list("pk", flat=True)[:limit]
    )
    result = {"linked": len(touched), "pending": len(pending)}
    held = Candidate.objects.filter(status=Candidate.Status.HELD).exists()
    if not pending and not held:
        return result
    with run_tracked(run_start(trigger=CurationRun.Trigger.SWEEPER, total=len(pending))) as run:
        if pending:
            result["curated"] = interactions_curate(interaction_ids=pending, run=run)
        if held:
            result["held"] = held_recheck(run=run)
    return result
