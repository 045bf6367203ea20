"""Evaluation: the policy's filters run on candidates, every decision
recorded, and each candidate's status set. Cheapest filters first (phase one,
with dedup against earlier candidates); the toxicity model runs once per chunk
over the survivors, then the quality score."""

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np
from django.db import connection
from django.utils import timezone

from curation import dedup, filter_rules, filters, judge
from curation.candidates import dedup_keys, dedup_keys_claim, dedup_matches, signatures_set
from curation.models import Candidate, CurationPolicy
from curation.policies import toxicity_config
from curation.toxicity import ToxicityUnavailable, get_scorer, toxicity_decision

PHASE_ONE = (
    filters.USER_ACTION,
    filters.LENGTH,
    filters.BLOCKLIST,
    filters.EDIT_BAND,
    filters.PII,
    filters.DEDUP_EXACT,
    filters.DEDUP_NEAR,
)
DEDUP = (filters.DEDUP_EXACT, filters.DEDUP_NEAR)
EXACT_DUPLICATE = "Exact duplicate of candidate #{other}."
NEAR_DUPLICATE = "Near duplicate of candidate #{other} (estimated Jaccard {jaccard:.3f})."
NOT_DUPLICATE = "No earlier candidate matches."
NO_TEXT_SKIP = "No chosen text: not scored."
HELD_REASON = "Held: {error}"


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


_EARLIER_READ = (
    "SELECT id, kind, status, exact_key, minhash, lsh_bands FROM curation_candidate "
    "WHERE id = ANY(%s) AND kind = ANY(%s) AND id < %s"
)


class _EarlierCandidates:
    """The earlier candidates a chunk's dedup steps can match, read in two
    queries for the whole chunk instead of two per candidate (plus a status
    UPDATE per candidate so the next lookup saw it). Answers what
    "candidates of the same kind with a smaller id, not failed" gave per
    candidate: rows outside the chunk by their stored status, the chunk's own
    by the verdicts recorded here as they are made."""

    def __init__(
        self, candidates: Sequence[Candidate], *, exact: bool, near: bool, by_commit: bool
    ):
        # by_commit: every other committed candidate is earlier, whatever its id. A new
        # chunk inserts its candidates before it locks its dedup keys, so a worker that
        # committed after that insert (and could not see it) may hold higher ids.
        self.by_commit = by_commit
        self.own = {c.pk for c in candidates}
        self.verdicts: dict[int, bool] = {}  # pk -> failed, for the chunk's candidates
        self.status: dict[int, str] = {}
        self.by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_band: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.minhash: dict[int, bytes] = {}
        if not candidates or not (exact or near):
            return
        # The candidates listed under the chunk's keys (an exact key's prefix, the LSH
        # bands) are all it can match: read by key from the claim table, not by a scan
        # or an array-overlap search of the candidates (whose cost grew with the table).
        ids = dedup_matches([key for c in candidates for key in dedup_keys(c)])
        bound = 2**63 - 1 if by_commit else max(c.pk for c in candidates)
        with connection.cursor() as cursor:
            cursor.execute(
                _EARLIER_READ, [sorted(ids), sorted({c.kind for c in candidates}), bound]
            )
            rows = cursor.fetchall()
        for pk, kind, status, key, blob, bands in sorted(rows):
            self.status[pk] = status
            if exact:
                self.by_key[(kind, key)].append(pk)
            if near and blob is not None:
                self.minhash[pk] = bytes(blob)
                for band in bands:
                    self.by_band[(kind, band)].append(pk)

    def _usable(self, pk: int, candidate: Candidate) -> bool:
        if pk in self.own:
            return pk < candidate.pk and not self.verdicts[pk]
        if pk >= candidate.pk and not self.by_commit:
            return False
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
) -> dict[tuple, filters.FilterResult]:
    """Score every chosen text in batches. Raises ToxicityUnavailable: the
    caller holds the candidates rather than pass them unscored."""
    config = toxicity_config()
    scorer = get_scorer(config)
    results = {}
    to_score = [c for c in candidates if c.chosen]
    for c in candidates:
        if not c.chosen:
            results[c.ref] = filters.FilterResult(
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
            results[c.ref] = filters.FilterResult(
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


# A chunk's decisions as one JSON parameter: Django's bulk_create spent about 5 ms per
# candidate building and adapting the statement's parameters, inside the write step.
_WRITE_DECISIONS = """
INSERT INTO curation_filterdecision
    (candidate_id, policy_id, filter, passed, score, reason, details, scorer, scorer_version,
     created_at)
SELECT candidate_id, %s, filter, passed, score, reason, coalesce(details, '{}'), scorer,
       scorer_version, %s
FROM jsonb_to_recordset(%s::jsonb) AS r(
    candidate_id bigint, filter text, passed boolean, score float8, reason text,
    details jsonb, scorer text, scorer_version text)
ON CONFLICT (candidate_id, policy_id, filter) DO NOTHING
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


@dataclass
class Prepared:
    """What every filter but dedup decided of a chunk's candidates (by `Candidate.ref`):
    the cheap filters' results, then toxicity, quality and the judge as if dedup passed,
    and the candidates held (a model was unavailable). Pure work with no lock held;
    `candidates_decide` adds dedup's verdicts under the candidates' key claims."""

    before: dict[tuple, list[filters.FilterResult]] = field(default_factory=dict)
    after: dict[tuple, list[filters.FilterResult]] = field(default_factory=dict)
    held: dict[tuple, str] = field(default_factory=dict)
    scorer: str = ""
    # The scores each survivor had before it was scored, for one that dedup fails.
    unscored: dict[tuple, tuple] = field(default_factory=dict)


def candidates_prepare(
    *, candidates: Sequence[Candidate], policy: CurationPolicy, full: bool = False
) -> Prepared:
    """Run every filter but dedup (see `Prepared`). Duplicates are scored too: which
    are duplicates is only known once the chunk holds its keys, and holding them while
    a model runs would make every worker sharing a key wait for it."""
    fp = policy.filter_policy()
    cheap = replace(fp, enabled=tuple(n for n in fp.enabled if n in PHASE_ONE and n not in DEDUP))
    prepared = Prepared()
    survivors = []
    for candidate in candidates:
        results = filter_rules.run_filters(_filter_input(candidate), cheap, full=full)
        prepared.before[candidate.ref] = results
        band = next((r for r in results if r.name == filters.EDIT_BAND), None)
        if band and not band.details.get("skipped"):
            candidate.char_similarity = band.details.get("char_similarity")
            candidate.word_similarity = band.details.get("word_similarity")
        if full or all(r.passed for r in results):
            survivors.append(candidate)
            prepared.after[candidate.ref] = []
            prepared.unscored[candidate.ref] = (
                candidate.toxicity,
                candidate.toxicity_scorer,
                candidate.quality,
            )
    prepared.held, toxicity = _phase_two(survivors, prepared.after, policy, fp, full=full)
    prepared.held.update(
        _phase_judge(survivors, prepared.after, prepared.held, policy, fp, full=full)
    )
    scored = next(iter(toxicity.values()), None)
    if scored is not None:
        prepared.scorer = f"{scored.scorer}@{scored.scorer_version}"
    return prepared


def candidates_decide(
    *,
    candidates: Sequence[Candidate],
    prepared: Prepared,
    policy: CurationPolicy,
    full: bool = False,
    by_commit: bool = False,
    before_recorded: bool = False,
) -> dict:
    """Dedup (in id order, against earlier candidates and the chunk's own), then store
    every decision and each candidate's status. The caller holds the candidates' dedup
    keys (`candidates.dedup_keys_claim`). `before_recorded`: the decisions before dedup
    are stored already (`decisions_before_record`). Returns counts."""
    fp = policy.filter_policy()
    dedup_only = replace(fp, enabled=tuple(n for n in fp.enabled if n in DEDUP))
    ordered = sorted(candidates, key=lambda c: c.pk)
    earlier = _EarlierCandidates(
        ordered,
        exact=filters.DEDUP_EXACT in fp.enabled,
        near=filters.DEDUP_NEAR in fp.enabled,
        by_commit=by_commit,
    )
    outcome: dict[int, list[filters.FilterResult]] = {}
    held: dict[int, str] = {}
    for candidate in ordered:
        results = list(prepared.before[candidate.ref])
        if full or all(r.passed for r in results):
            results += filter_rules.run_filters(
                _filter_input(candidate),
                dedup_only,
                full=full,
                extra=_dedup_steps(candidate, earlier),
            )
        # Later candidates in this chunk must see this one's verdict for dedup.
        earlier.verdicts[candidate.pk] = not all(r.passed for r in results)
        if candidate.ref in prepared.after and (full or all(r.passed for r in results)):
            results += prepared.after[candidate.ref]
            if candidate.ref in prepared.held:
                held[candidate.pk] = prepared.held[candidate.ref]
        elif candidate.ref in prepared.unscored:
            # Scored before dedup failed it: stored as it was before, as if never scored.
            candidate.toxicity, candidate.toxicity_scorer, candidate.quality = prepared.unscored[
                candidate.ref
            ]
        outcome[candidate.pk] = results
    stored = {c.pk: len(prepared.before[c.ref]) if before_recorded else 0 for c in ordered}
    counts = _outcome_record(ordered, outcome, held, stored, policy=policy, now=timezone.now())
    if prepared.scorer:
        counts["scorer"] = prepared.scorer
    return counts


def candidates_evaluate(
    *, candidates: Sequence[Candidate], policy: CurationPolicy, full: bool = False
) -> dict:
    """Run the policy's filters on existing candidates (re-curation), inside the
    caller's transaction; their dedup keys are held from after the model ran to the
    end of that transaction. Returns counts."""
    resigned = [c for c in candidates if c.minhash is None]
    for candidate in resigned:
        signatures_set(candidate)
    prepared = candidates_prepare(candidates=candidates, policy=policy, full=full)
    dedup_keys_claim(candidates)
    counts = candidates_decide(candidates=candidates, prepared=prepared, policy=policy, full=full)
    if resigned:
        Candidate.objects.bulk_update(resigned, ["exact_key", "minhash", "lsh_bands"])
    return counts


def _phase_two(
    survivors: Sequence[Candidate],
    outcome: dict[tuple, list[filters.FilterResult]],
    policy: CurationPolicy,
    fp: filters.FilterPolicy,
    *,
    full: bool,
) -> tuple[dict[tuple, str], dict[tuple, filters.FilterResult]]:
    """Toxicity (one model call for the survivors) then quality, appended to
    each survivor's results. Returns the held candidates' reasons (the model
    was unavailable) and the toxicity results."""
    held: dict[tuple, str] = {}
    toxicity: dict[tuple, filters.FilterResult] = {}
    if filters.TOXICITY in fp.enabled and survivors:
        try:
            toxicity = _toxicity_results(survivors, policy)
        except ToxicityUnavailable as error:
            held = {c.ref: HELD_REASON.format(error=error) for c in survivors}
    for candidate in survivors:
        if candidate.ref in held:
            continue
        results = outcome[candidate.ref]
        tox = toxicity.get(candidate.ref)
        if tox is not None:
            results.append(tox)
            candidate.toxicity = tox.score
            candidate.toxicity_scorer = f"{tox.scorer}@{tox.scorer_version}"
        if filters.QUALITY in fp.enabled and (full or all(r.passed for r in results)):
            quality = filter_rules.quality_filter(_filter_input(candidate, candidate.toxicity), fp)
            results.append(quality)
            candidate.quality = quality.score
    return held, toxicity


def _phase_judge(
    survivors: Sequence[Candidate],
    outcome: dict[tuple, list[filters.FilterResult]],
    held: dict[tuple, str],
    policy: CurationPolicy,
    fp: filters.FilterPolicy,
    *,
    full: bool,
) -> dict[tuple, str]:
    """The LLM judge, last and only on what passed everything else (it is the costliest
    step). Returns the candidates it holds (no verdict) with their reasons."""
    if filters.LLM_JUDGE not in fp.enabled:
        return {}
    targets = [
        c
        for c in survivors
        if c.ref not in held and (full or all(r.passed for r in outcome[c.ref]))
    ]
    results, judge_held = judge.judge_results(targets, policy)
    for ref, result in results.items():
        outcome[ref].append(result)
    return judge_held


def _outcome_record(
    candidates: Sequence[Candidate],
    outcome: dict[int, list[filters.FilterResult]],
    held: dict[int, str],
    stored: dict[int, int],
    *,
    policy: CurationPolicy,
    now,
) -> dict:
    """Store every decision (but the first `stored[pk]`, stored already) and each
    candidate's status; returns the counts."""
    decisions = []
    counts = {"passed": 0, "failed": 0, "held": 0, "failed_by_filter": defaultdict(int)}
    for candidate in candidates:
        results = outcome[candidate.pk]
        decisions += [_decision_row(candidate, r) for r in results[stored[candidate.pk] :]]
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
    _decisions_write(decisions, policy=policy, now=now)
    _evaluation_write(candidates=candidates, policy=policy, now=now)
    counts["failed_by_filter"] = dict(counts["failed_by_filter"])
    return counts


def _decision_row(candidate: Candidate, r: filters.FilterResult) -> dict:
    score = None if r.score is None or not math.isfinite(r.score) else r.score
    return {
        "candidate_id": candidate.pk,
        "filter": r.name,
        "passed": r.passed,
        "score": score,
        "reason": r.reason,
        "details": r.details,
        "scorer": r.scorer,
        "scorer_version": r.scorer_version,
    }


def _decisions_write(decisions: list[dict], *, policy: CurationPolicy, now) -> None:
    if decisions:
        with connection.cursor() as cursor:
            cursor.execute(_WRITE_DECISIONS, [policy.pk, now, json.dumps(decisions)])


def decisions_before_record(
    *, candidates: Sequence[Candidate], prepared: Prepared, policy: CurationPolicy
) -> None:
    """Store the decisions of the filters before dedup, which its verdicts cannot change,
    before the chunk claims its dedup keys: the fewer writes after the claim, the shorter
    another worker sharing a key can wait (pair with `candidates_decide(before_recorded=)`)."""
    rows = [_decision_row(c, r) for c in candidates for r in prepared.before[c.ref]]
    _decisions_write(rows, policy=policy, now=timezone.now())
