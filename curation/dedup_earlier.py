"""Dedup against earlier candidates: which stored candidates a chunk's candidates can
match, read by key from the dedup listing, and the exact and near-duplicate steps that
judge them.

The read is valid while the chunk holds the dedup lock (`candidates.dedup_keys_lock`):
a chunk that reads before it locks (so that it holds the lock only for a re-check and its
commit, not for its writes) reads after locking what was listed under its keys since
(`EarlierCandidates.unchanged`); if that changes any of its dedup verdicts, it decides
again (`evaluation.candidates_redecide`) and checks again."""

import bisect
from collections import defaultdict
from collections.abc import Sequence

import numpy as np
from django.db import connection

from curation import dedup, filters
from curation.candidates import dedup_keys, dedup_listed_since, dedup_matches
from curation.models import Candidate, CurationPolicy

EXACT_DUPLICATE = "Exact duplicate of candidate #{other}."
NEAR_DUPLICATE = "Near duplicate of candidate #{other} (estimated Jaccard {jaccard:.3f})."
NOT_DUPLICATE = "No earlier candidate matches."

_EARLIER_READ = (
    "SELECT id, kind, status, exact_key, minhash, lsh_bands FROM curation_candidate "
    "WHERE id = ANY(%s) AND kind = ANY(%s) AND id < %s"
)


class EarlierCandidates:
    """The earlier candidates a chunk's dedup steps can match, read in two
    queries for the whole chunk instead of two per candidate (plus a status
    UPDATE per candidate so the next lookup saw it). Answers what
    "candidates of the same kind with a smaller id, not failed" gave per
    candidate: rows outside the chunk by their stored status, the chunk's own
    by the verdicts recorded here as they are made."""

    def __init__(
        self, candidates: Sequence[Candidate], *, policy: filters.FilterPolicy, by_commit: bool
    ):
        # by_commit: every other committed candidate is earlier, whatever its id. A new
        # chunk takes its ids before it locks its dedup keys, so a worker that committed
        # after that (and could not see them) may hold higher ids.
        self.by_commit = by_commit
        self.policy = policy
        self.own = {c.pk for c in candidates}
        self.verdicts: dict[int, bool] = {}  # pk -> failed, for the chunk's candidates
        # pk -> {filter: the dedup step's result}, for the chunk's candidates it judged.
        self.decided: dict[int, dict[str, filters.FilterResult]] = defaultdict(dict)
        self.status: dict[int, str] = {}  # pk -> stored status, for the others
        self.by_key: dict[tuple[str, str], list[int]] = defaultdict(list)
        self.by_band: dict[tuple[str, int], list[int]] = defaultdict(list)
        self.minhash: dict[int, bytes] = {}
        self._known: set[int] = set()
        self._exact = filters.DEDUP_EXACT in policy.enabled
        self._near = filters.DEDUP_NEAR in policy.enabled
        self._candidates = sorted(candidates, key=lambda c: c.pk)
        self._kinds = sorted({c.kind for c in candidates})
        self._bound = 2**63 - 1 if by_commit or not candidates else max(self.own)
        self._keys: list[int] = []
        self._snapshot = ""
        if not candidates or not (self._exact or self._near):
            return
        # The candidates listed under the chunk's keys (an exact key's prefix, the LSH
        # bands) are all it can match: read by key from the listing, not by a scan or an
        # array-overlap search of the candidates (whose cost grew with the table). The
        # chunk's own come from memory: the pipeline stores them with their verdicts.
        self._keys = sorted({key for c in candidates for key in dedup_keys(c)})
        listed = dedup_matches(self._keys)
        self._snapshot = listed.snapshot
        own = [(c.pk, c.kind, None, c.exact_key, c.minhash, c.lsh_bands) for c in candidates]
        self._take(own + self._rows(listed.ids - self.own))

    @classmethod
    def of_policy(
        cls, candidates: Sequence[Candidate], *, policy: CurationPolicy, by_commit: bool
    ) -> "EarlierCandidates":
        return cls(candidates, policy=policy.filter_policy(), by_commit=by_commit)

    def _rows(self, ids: set[int]) -> list[tuple]:
        if not ids:
            return []
        with connection.cursor() as cursor:
            cursor.execute(_EARLIER_READ, [sorted(ids), self._kinds, self._bound])
            return cursor.fetchall()

    def _take(self, rows: Sequence[tuple]) -> None:
        for pk, kind, status, key, blob, bands in rows:
            if status is not None:
                self.status[pk] = status
            if pk in self._known:
                continue  # listed again because its status changed
            self._known.add(pk)
            if self._exact:
                bisect.insort(self.by_key[(kind, key)], pk)
            if self._near and blob is not None:
                self.minhash[pk] = bytes(blob)
                for band in bands:
                    bisect.insort(self.by_band[(kind, band)], pk)

    def unchanged(self) -> bool:
        """Whether the chunk's dedup verdicts stand with what was listed under its keys
        since they were last read (the first read, or the last check): candidates other
        workers committed, and re-curated ones whose status changed. The dedup steps run
        again for the chunk's candidates that share a key with any of those; a verdict
        that differs means the chunk must be decided again (with all that was read: the
        next check reads only what was listed since this one). Its answer holds to the
        commit when called holding the dedup lock: then nothing more can be listed."""
        touched = self.catch_up()
        if not touched:
            return True
        for candidate in self._candidates:
            if touched.isdisjoint(dedup_keys(candidate)):
                continue
            steps = _steps(candidate, self)
            for name, result in self.decided[candidate.pk].items():
                if steps[name](None, self.policy) != result:
                    return False
        return True

    def catch_up(self) -> set[int]:
        """Take in the other candidates listed under the chunk's keys since they were
        last read (`candidates.dedup_listed_since`); returns the keys they are listed
        under."""
        if not self._keys:
            return set()
        since = dedup_listed_since(keys=self._keys, snapshot=self._snapshot)
        self._snapshot = since.snapshot
        fresh = {pk for _, pk in since.pairs} - self.own
        if fresh:
            self._take(self._rows(fresh))
        return {key for key, pk in since.pairs if pk in fresh}

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


def dedup_steps(candidate: Candidate, earlier: EarlierCandidates) -> dict:
    """The exact and near-duplicate filters of `candidate` against `earlier`, each result
    recorded in `earlier.decided` for its re-check (`EarlierCandidates.unchanged`), in
    place of what an earlier decision recorded (a step a failed step before it skips now
    must not be compared again)."""
    earlier.decided.pop(candidate.pk, None)

    def recorded(name, step):
        def run(item, policy):
            result = step(item, policy)
            earlier.decided[candidate.pk][name] = result
            return result

        return run

    return {name: recorded(name, step) for name, step in _steps(candidate, earlier).items()}


def _steps(candidate: Candidate, earlier: EarlierCandidates) -> dict:
    """The dedup filters of `candidate`, by name, as `filter_rules.run_filters` calls them."""

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
