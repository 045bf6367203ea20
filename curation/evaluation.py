"""Evaluation: the policy's filters run on candidates, every decision
recorded, and each candidate's status set. Cheapest filters first (phase one,
with dedup against earlier candidates); the toxicity model runs once per chunk
over the survivors, then the quality score."""

import json
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from django.db import connection
from django.utils import timezone

from curation import filter_rules, filters, judge
from curation.candidates import dedup_keys_claim, dedup_listing_restamp, signatures_set
from curation.dedup_earlier import EarlierCandidates, dedup_steps
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


def _toxicity_results(
    candidates: Sequence[Candidate], policy: CurationPolicy
) -> dict[tuple, filters.FilterResult]:
    """Score every chosen text in batches. Raises ToxicityUnavailable: the
    caller holds the candidates rather than pass them unscored."""
    config = toxicity_config()
    scorer = get_scorer(config)
    made_by = {"scorer": scorer.name, "scorer_version": scorer.version, "runtime": scorer.runtime}
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
                **made_by,
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
                **made_by,
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
     runtime, created_at)
SELECT candidate_id, %s, filter, passed, score, reason, coalesce(details, '{}'), scorer,
       scorer_version, runtime, %s
FROM jsonb_to_recordset(%s::jsonb) AS r(
    candidate_id bigint, filter text, passed boolean, score float8, reason text,
    details jsonb, scorer text, scorer_version text, runtime text)
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
    `candidates_decide` adds dedup's verdicts (checked under the dedup lock)."""

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
    are duplicates is only known for sure under the dedup lock, and holding it while a
    model runs would make every worker wait for it."""
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
    earlier: EarlierCandidates | None = None,
    insert: bool = False,
    decided: dict | None = None,
) -> dict:
    """Dedup (in id order, against earlier candidates and the chunk's own), then store
    every decision and each candidate's status. The caller holds the candidates' dedup
    keys (`candidates.dedup_keys_lock`), or has read `earlier` and checks it once it
    does (`EarlierCandidates.unchanged`). `insert`: the candidates have ids but are not
    stored yet; they are inserted with their status (an UPDATE of every new row would
    index each one twice, its full-text entry included). `decided`: filled with each
    candidate's decisions, for `candidates_redecide`. Returns counts."""
    ordered = sorted(candidates, key=lambda c: c.pk)
    if earlier is None:
        earlier = EarlierCandidates.of_policy(ordered, policy=policy, by_commit=by_commit)
    outcome, held = _outcomes(ordered, prepared, policy, full=full, earlier=earlier)
    if decided is not None:
        decided.update({c.pk: (outcome[c.pk], held.get(c.pk)) for c in ordered})
    now = timezone.now()
    counts = _statuses_set(ordered, outcome, held, policy=policy, now=now)
    if insert:
        Candidate.objects.bulk_create(ordered)
    else:
        _evaluation_write(candidates=ordered, policy=policy, now=now)
    _decisions_write(
        [_decision_row(c, r) for c in ordered for r in outcome[c.pk]], policy=policy, now=now
    )
    if prepared.scorer:
        counts["scorer"] = prepared.scorer
    return counts


def candidates_redecide(
    *,
    candidates: Sequence[Candidate],
    prepared: Prepared,
    policy: CurationPolicy,
    earlier: EarlierCandidates,
    decided: dict,
) -> tuple[list[Candidate], dict]:
    """Dedup the chunk's candidates again once `earlier` holds what other workers listed
    under their keys since `candidates_decide` read them (`EarlierCandidates.unchanged`),
    and store again only those whose decisions differ from `decided` (which is brought
    up to date, for a next time): their status and scores, and this policy's decisions.
    The same as deciding them now, but for the few rows a race changed. `candidates`:
    copies of the candidates as they were before `candidates_decide`. Returns them as now
    stored, and the counts."""
    ordered = sorted(candidates, key=lambda c: c.pk)
    earlier.verdicts.clear()
    outcome, held = _outcomes(ordered, prepared, policy, full=False, earlier=earlier)
    now = timezone.now()
    counts = _statuses_set(ordered, outcome, held, policy=policy, now=now)
    changed = [c for c in ordered if (outcome[c.pk], held.get(c.pk)) != decided[c.pk]]
    decided.update({c.pk: (outcome[c.pk], held.get(c.pk)) for c in changed})
    if changed:
        with connection.cursor() as cursor:
            cursor.execute(_DECISIONS_DELETE, [[c.pk for c in changed], policy.pk])
        _evaluation_write(candidates=changed, policy=policy, now=now)
        _decisions_write(
            [_decision_row(c, r) for c in changed for r in outcome[c.pk]], policy=policy, now=now
        )
    if prepared.scorer:
        counts["scorer"] = prepared.scorer
    return ordered, counts


_DECISIONS_DELETE = (
    "DELETE FROM curation_filterdecision WHERE candidate_id = ANY(%s) AND policy_id = %s"
)


def _outcomes(
    ordered: Sequence[Candidate],
    prepared: Prepared,
    policy: CurationPolicy,
    *,
    full: bool,
    earlier: EarlierCandidates,
) -> tuple[dict[int, list[filters.FilterResult]], dict[int, str]]:
    """Every candidate's decisions (the prepared ones with dedup's), and the held ones'
    reasons. A candidate that dedup fails gets back the scores it had before it was scored."""
    fp = policy.filter_policy()
    dedup_only = replace(fp, enabled=tuple(n for n in fp.enabled if n in DEDUP))
    outcome: dict[int, list[filters.FilterResult]] = {}
    held: dict[int, str] = {}
    for candidate in ordered:
        results = list(prepared.before[candidate.ref])
        if full or all(r.passed for r in results):
            results += filter_rules.run_filters(
                _filter_input(candidate),
                dedup_only,
                full=full,
                extra=dedup_steps(candidate, earlier),
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
    return outcome, held


def candidates_evaluate(
    *, candidates: Sequence[Candidate], policy: CurationPolicy, full: bool = False
) -> dict:
    """Run the policy's filters on existing candidates (re-curation), inside the
    caller's transaction; it holds the dedup lock from after the model ran to the end
    of that transaction (all of its writes: see the README's note on re-curation).
    Returns counts."""
    resigned = [c for c in candidates if c.minhash is None]
    for candidate in resigned:
        signatures_set(candidate)
    prepared = candidates_prepare(candidates=candidates, policy=policy, full=full)
    dedup_keys_claim(candidates)
    was = {c.pk: c.status for c in candidates}
    counts = candidates_decide(candidates=candidates, prepared=prepared, policy=policy, full=full)
    # A status dedup reads changed: a chunk that read it before must see it again.
    dedup_listing_restamp(candidates=[c for c in candidates if c.status != was[c.pk]])
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


def _statuses_set(
    candidates: Sequence[Candidate],
    outcome: dict[int, list[filters.FilterResult]],
    held: dict[int, str],
    *,
    policy: CurationPolicy,
    now,
) -> dict:
    """Each candidate's status from its decisions, set but not stored; returns the counts."""
    counts = {"passed": 0, "failed": 0, "held": 0, "failed_by_filter": defaultdict(int)}
    for candidate in candidates:
        results = outcome[candidate.pk]
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
        "runtime": r.runtime,
    }


def _decisions_write(decisions: list[dict], *, policy: CurationPolicy, now) -> None:
    if decisions:
        with connection.cursor() as cursor:
            cursor.execute(_WRITE_DECISIONS, [policy.pk, now, json.dumps(decisions)])
