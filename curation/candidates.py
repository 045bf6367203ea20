"""Candidates from interactions: which kinds an interaction's feedback makes,
and the signatures (exact key, MinHash, LSH bands) dedup matches them by."""

import hashlib
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from django.db import connection, transaction

from curation import dedup, filter_rules
from curation.models import Candidate, CandidateKind, CurationPolicy, Feedback, Interaction
from curation.sampling import keyed_uniform

# Stored LSH bands are fixed (tuned for recall at Jaccard 0.8) so that a policy
# can change its near-duplicate threshold without recomputing every row; the
# estimated Jaccard is then checked against the policy's own threshold.
LSH_BANDS, LSH_ROWS = dedup.lsh_params(0.8, dedup.NUM_PERM)


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
    edits = [f for f in ordered if f.kind in filter_rules.EDIT_ACTIONS]
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
    if filter_rules.disapproves(kinds, ratings):
        return [{**common, "kind": CandidateKind.NEEDS_ANSWER, "chosen": None, "rejected": None}]
    if filter_rules.approves(kinds, ratings) and keyed_uniform("sft", interaction.pk) < sft_rate:
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


def signatures_set(candidate: Candidate) -> None:
    prompt_text = _prompt_text(candidate.prompt)
    candidate.exact_key = dedup.exact_key(prompt_text=prompt_text, chosen=candidate.chosen)
    sketch = dedup.minhash(prompt_text + "\n" + (candidate.chosen or ""))
    candidate.minhash = dedup.minhash_to_bytes(sketch)
    candidate.lsh_bands = band_hashes(sketch)


def feedback_by_interaction(interaction_ids: Sequence[int]) -> dict[int, list[Feedback]]:
    by_interaction: dict[int, list[Feedback]] = defaultdict(list)
    for fb in Feedback.objects.filter(interaction__in=list(interaction_ids)).order_by("pk"):
        by_interaction[fb.interaction_id].append(fb)
    return by_interaction


def candidates_new(
    *,
    interactions: Sequence[Interaction],
    feedback: dict[int, list[Feedback]],
    policy: CurationPolicy,
) -> list[Candidate]:
    """The candidates the interactions and their feedback call for, unsaved, with
    their signatures: pure work, done before any transaction."""
    rows = []
    for interaction in interactions:
        for spec in candidate_specs(
            interaction=interaction,
            feedback=feedback.get(interaction.pk, []),
            sft_rate=policy.sft_rate,
        ):
            candidate = Candidate(**spec)
            signatures_set(candidate)
            rows.append(candidate)
    return rows


def candidates_fresh(candidates: Sequence[Candidate]) -> list[Candidate]:
    """The candidates whose (interaction, kind) has none yet (an interaction sent back to
    curation keeps the candidates it has), each given its id but not stored: the pipeline
    inserts them once they have their verdicts (`evaluation.candidates_decide`). Inside
    the chunk's transaction, which holds its interactions' rows."""
    existing = set(
        Candidate.objects.filter(
            interaction__in={c.interaction_id for c in candidates}
        ).values_list("interaction_id", "kind")
    )
    fresh = [c for c in candidates if (c.interaction_id, c.kind) not in existing]
    if fresh:
        with connection.cursor() as cursor:
            cursor.execute(_IDS_NEXT, [len(fresh)])
            ids = sorted(row[0] for row in cursor.fetchall())
        # In list order, as an insert would number them: dedup orders a chunk by id.
        for candidate, pk in zip(fresh, ids, strict=True):
            candidate.pk = pk
    return fresh


_IDS_NEXT = (
    "SELECT nextval(pg_get_serial_sequence('curation_candidate', 'id')) FROM generate_series(1, %s)"
)


def dedup_keys(candidate: Candidate) -> list[int]:
    """The keys two candidates that dedup could match share at least one of: the exact
    key's first 8 bytes and the LSH band hashes."""
    return [int(candidate.exact_key[:16], 16) - 2**63, *candidate.lsh_bands]


# Locks the claim rows in one key order for every writer, so two chunks never lock
# crosswise, and adds the chunk's candidates to their keys. `WHERE NOT ... <@`: a key
# that already lists them (a re-curation) is locked, not rewritten (no dead tuple).
_CLAIM = """
INSERT INTO curation_dedupclaim (key, candidate_ids)
SELECT key, array_agg(id ORDER BY id) FROM unnest(%s::bigint[], %s::bigint[]) AS k(key, id)
GROUP BY key ORDER BY key
ON CONFLICT (key) DO UPDATE SET candidate_ids = ARRAY(
    SELECT DISTINCT unnest(curation_dedupclaim.candidate_ids || excluded.candidate_ids)
    ORDER BY 1
)
WHERE NOT excluded.candidate_ids <@ curation_dedupclaim.candidate_ids
RETURNING candidate_ids
"""


# A chunk's keys new to the table get their rows, listing nobody yet, in a statement of
# its own before the chunk's write transaction: the claim then updates rows that exist, in
# place (the table's fillfactor leaves room on their pages), instead of adding entries at
# random pages of a primary key that grows with every candidate, while it holds the keys.
_REGISTER = """
INSERT INTO curation_dedupclaim (key, candidate_ids)
SELECT DISTINCT key, '{}'::bigint[] FROM unnest(%s::bigint[]) AS k(key) ORDER BY key
ON CONFLICT (key) DO NOTHING
"""


def dedup_keys_register(candidates: Sequence[Candidate]) -> None:
    """Give the dedup keys of `candidates` their rows (see `_REGISTER`); outside the
    chunk's transaction. A row that lists nobody changes no dedup answer."""
    keys = sorted({key for c in candidates for key in dedup_keys(c)})
    if keys:
        # Its own transaction; a savepoint when the caller holds one, which a failure
        # here (a lock timeout) must leave usable.
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(_REGISTER, [keys])


def dedup_keys_claim(candidates: Sequence[Candidate]) -> set[int]:
    """Lock the dedup keys of `candidates` until the transaction ends, and list the
    candidates under their keys. A transaction that holds a key has committed before
    another that shares it reads the key's candidates: whichever worker writes second
    sees the first one's candidates and their verdicts, so a duplicate is found across
    workers as within one. Call once the candidates have ids, either before reading
    earlier ones (`dedup_matches`) or after, and then read again to check nothing changed
    (`dedup_earlier.EarlierCandidates.unchanged`). Returns the ids listed under the keys
    it wrote: every key of candidates new to them."""
    pairs = sorted({(key, c.pk) for c in candidates for key in dedup_keys(c)})
    if not pairs:
        return set()
    keys, ids = (list(column) for column in zip(*pairs, strict=True))
    with connection.cursor() as cursor:
        cursor.execute(_CLAIM, [keys, ids])
        return {pk for row in cursor.fetchall() for pk in row[0]}


def dedup_matches(keys: Sequence[int]) -> set[int]:
    """The ids of every candidate listed under any of `keys`: one primary-key probe per
    key, whatever the number of candidates."""
    if not keys:
        return set()
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT DISTINCT unnest(candidate_ids) FROM curation_dedupclaim WHERE key = ANY(%s)",
            [sorted(set(keys))],
        )
        return {row[0] for row in cursor.fetchall()}
