"""Exact and near-duplicate detection for curation candidates.

Exact duplicates share `exact_key`: a SHA-256 of the normalised prompt and chosen text, so
copies that differ only in case, Unicode form, spacing or punctuation collapse together.

Near duplicates are found with MinHash over character 5-shingles of the normalised text,
indexed with locality-sensitive hashing (datasketch). Character shingles rather than word
shingles because:
- text in scripts written without spaces (Chinese, Japanese) has no word boundaries that a
  `\\w+` tokenizer can see, so word shingles would make a whole sentence one token;
- changing one word removes only about len(word) + k - 1 character shingles out of hundreds,
  whereas it removes k word shingles out of a few dozen. Measured: three words changed in a
  700-character answer leave a Jaccard of 0.91 with character 5-shingles (the same change
  gives 0.77 with word 5-shingles), and 0.95 in a 1,400-character one. So a 0.9
  threshold means "a few words changed in a paragraph or more"; short answers with a word
  changed fall below it.
k = 5 is the usual size for short documents (emails, answers): small enough to be robust to
edits, large enough that unrelated English texts share few shingles (Jaccard well below 0.3).

Signatures are persisted as their raw hash values (`minhash_to_bytes`), little-endian
uint32, 4 bytes per permutation (512 bytes at the default 128). The permutation scheme and
seed are fixed here: hash values carry no trace of either, so a signature is only comparable
with signatures built by the same scheme and seed. Changing MINHASH_SCHEME or the seed means
recomputing every stored signature.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Hashable, Iterable
from functools import lru_cache

import numpy as np
from datasketch import MinHash, MinHashLSH

SHINGLE_SIZE = 5
NUM_PERM = 128
SEED = 1
# Pinned rather than left to datasketch's default so that an upgrade that changes the
# default cannot silently make stored signatures incomparable with new ones. affine32 is
# datasketch's own default since 2.0: its permutations are bijections (no collision bias
# on large sets, unlike "legacy"), and it sketches about twice as fast as affine64 with
# half the storage; 32-bit shingle hashes collide too rarely to matter at answer sizes.
MINHASH_SCHEME = "affine32"
_DTYPE = np.dtype("<u4")
DEFAULT_NEAR_DUP_THRESHOLD = 0.9
LSH_RECALL_AT_THRESHOLD = 0.99
KEY_SEPARATOR = "\x1f"

BAD_SIGNATURE_BYTES = "A MinHash signature must be a non-empty multiple of {size} bytes."
WRONG_SCHEME = "MinHash uses scheme {scheme!r}; signatures here use {expected!r}."
WRONG_NUM_PERM = "MinHash has {got} permutations; this index uses {expected}."
BAD_THRESHOLD = "The near-duplicate threshold must be between 0 and 1."
BAD_SHINGLE_SIZE = "The shingle size must be at least 1."

# Runs of characters that are neither word characters nor whitespace: punctuation,
# symbols and emoji. Only the punctuation (Unicode category P*) inside a run is dropped:
# emoji and other symbols can carry meaning ("I ❤ it" vs "I 👎 it").
_NON_WORD_RUN = re.compile(r"[^\w\s]+")
_WHITESPACE = re.compile(r"\s+")


def _strip_punctuation(match: re.Match[str]) -> str:
    return "".join(" " if unicodedata.category(ch).startswith("P") else ch for ch in match[0])


def normalise(text: str) -> str:
    """NFKC, casefold, punctuation runs replaced by a space, whitespace collapsed."""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _NON_WORD_RUN.sub(_strip_punctuation, text)
    return _WHITESPACE.sub(" ", text).strip()


def exact_key(*, prompt_text: str, chosen: str | None) -> str:
    """SHA-256 hex of the normalised prompt and chosen text.

    A missing chosen text (a candidate that still needs an answer) keys as the empty string,
    so two such candidates for the same prompt are duplicates of each other.
    """
    payload = normalise(prompt_text) + KEY_SEPARATOR + normalise(chosen or "")
    return hashlib.sha256(payload.encode("utf-8")).hexdigest()


def shingles(text: str, *, k: int = SHINGLE_SIZE) -> set[str]:
    """The set of character k-grams of the normalised text.

    A text shorter than k is its own single shingle, so short texts still compare; the
    empty text has no shingles.
    """
    if k < 1:
        raise ValueError(BAD_SHINGLE_SIZE)
    norm = normalise(text)
    if len(norm) <= k:
        return {norm} if norm else set()
    return {norm[i : i + k] for i in range(len(norm) - k + 1)}


@lru_cache(maxsize=8)
def _permutations(num_perm: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    # Generating the permutations costs about 15 times more than building a MinHash from
    # them; every signature with the same (num_perm, seed) shares them.
    return MinHash(num_perm=num_perm, seed=seed, scheme=MINHASH_SCHEME).permutations


def _empty_minhash(num_perm: int, seed: int, hashvalues: np.ndarray | None = None) -> MinHash:
    return MinHash(
        num_perm=num_perm,
        seed=seed,
        scheme=MINHASH_SCHEME,
        permutations=_permutations(num_perm, seed),
        hashvalues=hashvalues,
    )


def minhash(text: str, *, num_perm: int = NUM_PERM, seed: int = SEED) -> MinHash:
    """MinHash signature of the text's character shingles (see the module docstring)."""
    sketch = _empty_minhash(num_perm, seed)
    grams = shingles(text)
    if grams:
        sketch.update_batch([g.encode("utf-8") for g in grams])
    return sketch


def minhash_to_bytes(sketch: MinHash) -> bytes:
    """The signature's hash values as little-endian uint32, for a bytea column."""
    if getattr(sketch, "scheme", None) != MINHASH_SCHEME:
        raise ValueError(
            WRONG_SCHEME.format(scheme=getattr(sketch, "scheme", None), expected=MINHASH_SCHEME)
        )
    return np.asarray(sketch.hashvalues, dtype=_DTYPE).tobytes()


def minhash_from_bytes(data: bytes, *, seed: int = SEED) -> MinHash:
    """Rebuild a signature stored by `minhash_to_bytes`; num_perm follows from the length."""
    data = bytes(data)  # psycopg returns memoryview for bytea
    if not data or len(data) % _DTYPE.itemsize:
        raise ValueError(BAD_SIGNATURE_BYTES.format(size=_DTYPE.itemsize))
    values = np.frombuffer(data, dtype=_DTYPE).astype(np.uint32)
    return _empty_minhash(len(values), seed, hashvalues=values)


def lsh_params(threshold: float, num_perm: int) -> tuple[int, int]:
    """(bands, rows) with the most rows per band whose candidate probability at the threshold,
    1 - (1 - t**r)**b, is at least LSH_RECALL_AT_THRESHOLD.

    datasketch's own choice balances false positives against false negatives; at a 0.9
    threshold with 128 permutations it picks 5 bands of 25 rows, which makes only 31% of the
    pairs at Jaccard 0.9 (and 80% at 0.95) candidates. best_match verifies every candidate, so
    extra candidates cost a vector comparison each while missed ones are lost: favour recall.
    At 0.9 and 128 permutations this gives 12 bands of 10 rows (99.4% at 0.9, 29% at 0.7).
    """
    for rows in range(num_perm, 0, -1):
        bands = num_perm // rows
        if 1.0 - (1.0 - threshold**rows) ** bands >= LSH_RECALL_AT_THRESHOLD:
            return bands, rows
    return num_perm, 1


class NearDupIndex:
    """Keys of indexed signatures whose estimated Jaccard with a query is >= threshold.

    LSH returns candidates that share at least one band with the query: tuned for recall
    (`lsh_params`), they include many below the threshold, so `best_match` checks each
    candidate's estimated Jaccard and callers only see pairs that clear the threshold.

    The estimate itself has a standard error of sqrt(J(1 - J) / num_perm), about 0.027 at
    J = 0.9 with 128 permutations: pairs within a few hundredths of the threshold land on
    either side of it.
    """

    def __init__(
        self, *, threshold: float = DEFAULT_NEAR_DUP_THRESHOLD, num_perm: int = NUM_PERM
    ) -> None:
        if not 0.0 < threshold <= 1.0:
            raise ValueError(BAD_THRESHOLD)
        self.threshold = threshold
        self.num_perm = num_perm
        self._lsh = MinHashLSH(
            threshold=threshold, num_perm=num_perm, params=lsh_params(threshold, num_perm)
        )
        # Hash values only, not MinHash objects: a query needs nothing else, and a
        # 100k-signature index should not carry 100k Python wrappers.
        self._values: dict[Hashable, np.ndarray] = {}
        # Insertion order breaks ties in best_match, so its answer does not depend on the
        # iteration order of LSH buckets.
        self._order: dict[Hashable, int] = {}
        self._counter = 0

    def __len__(self) -> int:
        return len(self._values)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._values

    def _check(self, sketch: MinHash) -> None:
        if getattr(sketch, "scheme", None) != MINHASH_SCHEME:
            raise ValueError(
                WRONG_SCHEME.format(scheme=getattr(sketch, "scheme", None), expected=MINHASH_SCHEME)
            )
        if len(sketch) != self.num_perm:
            raise ValueError(WRONG_NUM_PERM.format(got=len(sketch), expected=self.num_perm))

    def add(self, key: Hashable, sketch: MinHash) -> None:
        """Index a signature under key. Adding a key again replaces its signature, so a
        retried job that re-adds the same candidate does not fail."""
        self._check(sketch)
        if key in self._values:
            self._lsh.remove(key)
        else:
            self._order[key] = self._counter
            self._counter += 1
        self._lsh.insert(key, sketch, check_duplication=False)
        self._values[key] = np.array(sketch.hashvalues, copy=True)

    def add_many(self, items: Iterable[tuple[Hashable, MinHash]]) -> None:
        """Index many signatures, e.g. when rebuilding from stored ones."""
        for key, sketch in items:
            self.add(key, sketch)

    def remove(self, key: Hashable) -> None:
        if key in self._values:
            self._lsh.remove(key)
            del self._values[key]
            del self._order[key]

    def query(self, sketch: MinHash) -> list[Hashable]:
        """LSH candidates, unverified (may include pairs below the threshold)."""
        self._check(sketch)
        return sorted(self._lsh.query(sketch), key=self._order.__getitem__)

    def best_match(self, sketch: MinHash) -> tuple[Hashable, float] | None:
        """The indexed key with the highest estimated Jaccard >= threshold, or None."""
        return best_match(
            sketch.hashvalues,
            ((key, self._values[key]) for key in self.query(sketch)),
            threshold=self.threshold,
        )


def best_match(
    values: np.ndarray, others: Iterable[tuple[Hashable, np.ndarray]], *, threshold: float
) -> tuple[Hashable, float] | None:
    """Of `others` (key, MinHash values), the one with the highest estimated
    Jaccard with `values` that is >= threshold (the first on a tie), or None.
    The estimate is the share of equal MinHash values."""
    best: tuple[Hashable, float] | None = None
    for key, theirs in others:
        jaccard = float(np.count_nonzero(theirs == values)) / len(values)
        if jaccard >= threshold and (best is None or jaccard > best[1]):
            best = (key, jaccard)
    return best
