"""Candidates from interactions: which kinds an interaction's feedback makes,
and the signatures (exact key, MinHash, LSH bands) dedup matches them by."""

import hashlib
from collections import defaultdict
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from django.db import connection

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


def _bigints(values: Sequence[int]) -> str:
    """`values` as an array literal, for a `%s::bigint[]` parameter: psycopg adapts a list
    element by element, about 5 ms for a chunk's 4,400 keys against 1 ms for the text."""
    return "{" + ",".join(map(str, values)) + "}"


def _pairs(candidates: Sequence[Candidate]) -> list[str]:
    pairs = sorted({(key, c.pk) for c in candidates for key in dedup_keys(c)})
    return [_bigints(column) for column in zip(*pairs, strict=True)] if pairs else []


# `xid`: this transaction's id (see `DedupListing`). A re-curated candidate is listed
# already: DO NOTHING, or, when its verdict changed, its rows take this transaction's id
# so that a chunk that read them before sees them as new (`dedup_listing_restamp`).
_LIST = """
INSERT INTO curation_deduplisting (key, candidate_id, xid)
SELECT key, id, pg_current_xact_id()::text::bigint
FROM unnest(%s::bigint[], %s::bigint[]) AS k(key, id) ORDER BY key, id
ON CONFLICT (key, candidate_id) DO {conflict}
"""


def dedup_listing_add(*, candidates: Sequence[Candidate]) -> None:
    """List `candidates` (with ids) under their dedup keys, in the caller's transaction:
    other workers see them once it commits. Needs no lock: call it before
    `dedup_keys_lock`, so the keys are held for the lock and the re-check alone."""
    pairs = _pairs(candidates)
    if pairs:
        with connection.cursor() as cursor:
            cursor.execute(_LIST.format(conflict="NOTHING"), pairs)


def dedup_listing_restamp(*, candidates: Sequence[Candidate]) -> None:
    """List `candidates` again as written by this transaction: re-curation calls it,
    holding the dedup lock, for candidates whose status changed, which a chunk that read them before
    must see again before it commits (`dedup_earlier.EarlierCandidates.unchanged`)."""
    pairs = _pairs(candidates)
    if pairs:
        with connection.cursor() as cursor:
            cursor.execute(_LIST.format(conflict="UPDATE SET xid = excluded.xid"), pairs)


# One lock for every chunk's dedup keys, held from the re-check to the commit. Per-key
# lock rows (one per exact key and LSH band, 22 a candidate) were random writes into a
# primary key that grew with every candidate: at a million candidates registering and
# locking them cost a quarter of a chunk. The lock is global but short: a chunk takes it
# after its writes (`dedup_earlier.EarlierCandidates.unchanged`), so it is held for the
# re-check and the commit (issue 21 asks that any global lock hold <= 5% of a chunk; see
# bench/RESULTS.md for the share measured and the Amdahl bound it sets).
DEDUP_LOCK = 7_201_003


def dedup_keys_lock(*, candidates: Sequence[Candidate]) -> None:
    """Hold the dedup keys (all of them: one lock, `DEDUP_LOCK`) until the transaction
    ends. A transaction that holds them has committed before another reads what changed
    under its keys: whichever worker writes second sees the first one's candidates and
    verdicts, so a duplicate is found across workers as within one. Either lock before
    reading the keys' candidates (`dedup_matches`), or after, and then check what was
    listed since (`dedup_earlier.EarlierCandidates.unchanged`). PostgreSQL releases a
    transaction's locks only once its commit is visible, so the next holder's re-check,
    a statement begun after it took the lock, sees every candidate committed under it."""
    if not candidates:
        return
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_advisory_xact_lock(%s)", [DEDUP_LOCK])


def dedup_keys_claim(candidates: Sequence[Candidate]) -> None:
    """List `candidates` under their dedup keys and lock the keys (the two steps above),
    for a caller that reads the keys' candidates after this."""
    dedup_listing_add(candidates=candidates)
    dedup_keys_lock(candidates=candidates)


class Listed(NamedTuple):
    """The ids listed under some keys, and the snapshot they were read in: what
    `dedup_listed_since` reads from."""

    ids: set[int]
    snapshot: str


# The statement's own snapshot (read committed: one per statement) beside what it read.
_MATCHES = """
SELECT pg_current_snapshot()::text, ARRAY(
    SELECT DISTINCT candidate_id FROM curation_deduplisting WHERE key = ANY(%s::bigint[])
)
"""


def dedup_matches(keys: Sequence[int]) -> Listed:
    """The ids of every candidate listed under any of `keys`: one probe of the listing's
    primary key per key (index-only), whatever the number of candidates."""
    with connection.cursor() as cursor:
        cursor.execute(_MATCHES, [_bigints(sorted(set(keys)))])
        snapshot, ids = cursor.fetchone()
    return Listed(set(ids), snapshot)


# Rows of transactions the snapshot did not see: those running when it was taken (its xip
# list; not the caller's own) and those begun since (from its xmax up to this statement's),
# but the caller's own, which it knows. All are `xid` index scans that read only rows
# written since the snapshot by others: not the keys' whole listing, nor, as a bound at
# the snapshot's xmin would, everything written since the oldest transaction then running
# anywhere on the server. With them, the statement's own snapshot: the next read starts
# from it.
_SINCE = """
SELECT pg_current_snapshot()::text, array_agg(key), array_agg(candidate_id)
FROM curation_deduplisting
WHERE key = ANY(%s::bigint[]) AND (
    xid = ANY(%s::bigint[])
    OR (xid >= %s AND xid <> pg_current_xact_id()::text::bigint
        AND xid < pg_snapshot_xmax(pg_current_snapshot())::text::bigint)
)
"""


class ListedSince(NamedTuple):
    """The (key, candidate id) pairs listed since a snapshot, and the snapshot they were
    read in, which covers them: what the next `dedup_listed_since` reads from."""

    pairs: list[tuple[int, int]]
    snapshot: str


def dedup_listed_since(*, keys: Sequence[int], snapshot: str) -> ListedSince:
    """The (key, candidate id) pairs under `keys` written by transactions that `snapshot`
    (`Listed.snapshot` or `ListedSince.snapshot`, as PostgreSQL writes one:
    `xmin:xmax:xip,...`) did not see: committed since, or the caller's own if it wrote
    its first row after the snapshot."""
    _, xmax, running = snapshot.split(":")
    running_ids = [int(xid) for xid in running.split(",") if xid]
    with connection.cursor() as cursor:
        cursor.execute(_SINCE, [_bigints(sorted(set(keys))), _bigints(running_ids), int(xmax)])
        now, keys_since, ids = cursor.fetchone()
    return ListedSince(list(zip(keys_since or [], ids or [], strict=True)), now)
