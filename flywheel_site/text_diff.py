"""Word-level diffs for the review screen: model output vs user edit vs reviewer edit.

No character is ever dropped: the equal + delete segments join back to the old text and
equal + insert to the new one, exactly. The screen can then show what each side wrote,
newlines included (render inside an element styled ``white-space: pre-wrap``).
"""

from __future__ import annotations

import re
from bisect import bisect_left
from collections import Counter
from difflib import SequenceMatcher
from typing import Literal, NamedTuple

from django.utils.html import escape, format_html
from django.utils.safestring import SafeString, mark_safe

Op = Literal["equal", "insert", "delete"]

DEL_TEMPLATE = '<del class="diff-del">{}</del>'
INS_TEMPLATE = '<ins class="diff-ins">{}</ins>'

_LEADING_SPACE = re.compile(r"\s*")
_WORD_AND_SPACE = re.compile(r"\S+\s*")
_MAX_FOLDED_WORDS = 1
_SMALL_RANGE = 200
_ANCHOR_SIZES = (1, 2, 3, 4, 6, 8)
_MATCHER_BUDGET = 500_000
_MAX_EDITS = 500


class Segment(NamedTuple):
    # A NamedTuple rather than a dataclass so a list of segments serialises to JSON as-is.
    op: Op
    text: str


class _Change(NamedTuple):
    old: str
    new: str


_Piece = str | _Change  # a str is unchanged text


def word_diff(a: str, b: str) -> list[Segment]:
    """Segments turning ``a`` (old) into ``b`` (new); a replacement is a delete then an insert.

    Words are compared without their whitespace; each word carries the whitespace after it.
    Matching whitespace as tokens of its own goes wrong: a lone space is the most common
    token, so unrelated sentences come out as a shred of one-word edits around shared
    spaces, and marking spaces as junk stops difflib chaining matches across them, which
    makes it quadratic. A rewrapped line therefore shows as whitespace-only edits between
    unchanged words.
    """
    a_lead, a_tokens = _tokenize(a)
    b_lead, b_tokens = _tokenize(b)
    pieces: list[_Piece] = [_Change(a_lead, b_lead)]
    a_words = [t.rstrip() for t in a_tokens]
    b_words = [t.rstrip() for t in b_tokens]
    for tag, i1, i2, j1, j2 in _opcodes(a_words, b_words):
        if tag != "equal":
            pieces.append(_Change("".join(a_tokens[i1:i2]), "".join(b_tokens[j1:j2])))
            continue
        for word, a_token, b_token in zip(
            a_words[i1:i2], a_tokens[i1:i2], b_tokens[j1:j2], strict=True
        ):
            pieces.append(word)
            pieces.append(_Change(a_token[len(word) :], b_token[len(word) :]))
    return _to_segments(_fold_chaff(_merge(pieces)))


def _tokenize(text: str) -> tuple[str, list[str]]:
    lead = _LEADING_SPACE.match(text).group()
    return lead, _WORD_AND_SPACE.findall(text, len(lead))


def _opcodes(a: list[str], b: list[str]) -> list[tuple[str, int, int, int, int]]:
    """difflib-style opcodes: a patience-style split, then ``_matching_blocks`` in the gaps.

    SequenceMatcher alone took 0.3-0.7 s on 10,000-word pairs: at every position it walks
    the whole list of places a common word ("the") occurs, again at each level of its
    recursion. It also matched a repeated paragraph to the wrong copy. Words found exactly
    once on each side almost always mark the same place, so the longest in-order run of
    them cuts the pair into small gaps first (as ``git diff --patience`` does).
    ``autojunk`` is off: its popularity rule would ignore common words in long texts.
    """
    blocks: list[tuple[int, int, int]] = []
    stack = [(0, len(a), 0, len(b))]
    while stack:
        alo, ahi, blo, bhi = stack.pop()
        while alo < ahi and blo < bhi and a[alo] == b[blo]:
            blocks.append((alo, blo, 1))
            alo += 1
            blo += 1
        while alo < ahi and blo < bhi and a[ahi - 1] == b[bhi - 1]:
            ahi -= 1
            bhi -= 1
            blocks.append((ahi, bhi, 1))
        if alo == ahi or blo == bhi:
            continue
        anchors, size = _anchors(a, alo, ahi, b, blo, bhi)
        if not anchors:
            blocks.extend(
                (alo + i, blo + j, n) for i, j, n in _matching_blocks(a[alo:ahi], b[blo:bhi])
            )
            continue
        gap_a, gap_b = alo, blo
        for i, j in anchors:
            blocks.append((i, j, size))
            stack.append((gap_a, i, gap_b, j))
            gap_a, gap_b = i + size, j + size
        stack.append((gap_a, ahi, gap_b, bhi))

    opcodes: list[tuple[str, int, int, int, int]] = []
    i = j = 0
    for ai, bj, size in [*sorted(blocks), (len(a), len(b), 0)]:
        if i < ai or j < bj:
            tag = "replace" if i < ai and j < bj else "delete" if i < ai else "insert"
            opcodes.append((tag, i, ai, j, bj))
        if size and opcodes and opcodes[-1][0] == "equal":
            _, i1, _, j1, _ = opcodes[-1]
            opcodes[-1] = ("equal", i1, ai + size, j1, bj + size)
        elif size:
            opcodes.append(("equal", ai, ai + size, bj, bj + size))
        i, j = ai + size, bj + size
    return opcodes


def _matching_blocks(a: list[str], b: list[str]) -> list[tuple[int, int, int]]:
    """Matches in a range with no anchors, in bounded time.

    SequenceMatcher's cost grows with how often each word repeats on both sides; on
    repetitive text (a model stuck in a loop, "x y x y ...") it took seconds. There Myers'
    algorithm, whose cost grows with the number of edits, is used instead; if even that
    would exceed ``_MAX_EDITS`` the range is shown as replaced wholesale.
    """
    b_count = Counter(b)
    if sum(b_count[word] for word in a) <= _MATCHER_BUDGET:
        matcher = SequenceMatcher(None, a, b, autojunk=False)
        return [block for block in matcher.get_matching_blocks() if block.size]
    return _myers(a, b, max_edits=_MAX_EDITS) or []


def _myers(a: list[str], b: list[str], *, max_edits: int) -> list[tuple[int, int, int]] | None:
    """Shortest edit script (Myers 1986, greedy form) as matched pairs; None past max_edits."""
    n, m = len(a), len(b)
    furthest = {1: 0}  # diagonal k = x - y -> furthest x reached
    trace: list[dict[int, int]] = []
    for d in range(max_edits + 1):
        trace.append(furthest.copy())
        for k in range(-d, d + 1, 2):
            x = furthest[k + 1] if _from_above(furthest, k, d) else furthest[k - 1] + 1
            y = x - k
            while x < n and y < m and a[x] == b[y]:
                x += 1
                y += 1
            furthest[k] = x
            if x >= n and y >= m:
                return _myers_matches(trace, n, m)
    return None


def _from_above(furthest: dict[int, int], k: int, d: int) -> bool:
    # Step d reaches diagonal k by an insertion from k + 1 when that got further.
    return k == -d or (k != d and furthest[k - 1] < furthest[k + 1])


def _myers_matches(trace: list[dict[int, int]], n: int, m: int) -> list[tuple[int, int, int]]:
    matches: list[tuple[int, int, int]] = []
    x, y = n, m
    for d in range(len(trace) - 1, -1, -1):
        furthest = trace[d]
        k = x - y
        previous_k = k + 1 if _from_above(furthest, k, d) else k - 1
        previous_x = furthest[previous_k]
        previous_y = previous_x - previous_k
        while x > previous_x and y > previous_y:
            x -= 1
            y -= 1
            matches.append((x, y, 1))
        x, y = previous_x, previous_y
    matches.reverse()
    return matches


def _anchors(
    a: list[str], alo: int, ahi: int, b: list[str], blo: int, bhi: int
) -> tuple[list[tuple[int, int]], int]:
    """Unique anchors for a range, and their length in words.

    Text from a small vocabulary (lists, tables of numbers) may have no word that occurs
    once; runs of a few words usually do, so longer runs are tried before falling back to
    ``_matching_blocks`` over the whole range. Small ranges are cheap to match directly.
    """
    if min(ahi - alo, bhi - blo) < _SMALL_RANGE:
        return _unique_anchors(a, alo, ahi, b, blo, bhi, size=1), 1
    for size in _ANCHOR_SIZES:
        anchors = _unique_anchors(a, alo, ahi, b, blo, bhi, size=size)
        if anchors:
            return anchors, size
    return [], 0


def _unique_anchors(
    a: list[str], alo: int, ahi: int, b: list[str], blo: int, bhi: int, *, size: int
) -> list[tuple[int, int]]:
    """Longest in-order run of places (i, j) where a run of ``size`` words occurs once in each.

    Anchors never overlap, so ``a[i:i + size] == b[j:j + size]`` can be kept as it is.
    """
    a_keys = [tuple(a[i : i + size]) for i in range(alo, ahi - size + 1)]
    b_keys = [tuple(b[j : j + size]) for j in range(blo, bhi - size + 1)]
    a_count = Counter(a_keys)
    b_count = Counter(b_keys)
    b_index = {key: blo + j for j, key in enumerate(b_keys) if b_count[key] == 1}
    pairs = [
        (alo + i, b_index[key])
        for i, key in enumerate(a_keys)
        if a_count[key] == 1 and key in b_index
    ]
    # Patience sorting: tails[k] ends the best run of length k + 1 seen so far.
    tails: list[int] = []
    tail_js: list[int] = []
    previous = [-1] * len(pairs)
    for n, (_, j) in enumerate(pairs):
        k = bisect_left(tail_js, j)
        if k:
            previous[n] = tails[k - 1]
        if k == len(tails):
            tails.append(n)
            tail_js.append(j)
        else:
            tails[k] = n
            tail_js[k] = j
    run: list[tuple[int, int]] = []
    n = tails[-1] if tails else -1
    while n != -1:
        run.append(pairs[n])
        n = previous[n]
    run.reverse()
    kept: list[tuple[int, int]] = []
    for i, j in run:
        if not kept or (i >= kept[-1][0] + size and j >= kept[-1][1] + size):
            kept.append((i, j))
    return kept


def _merge(pieces: list[_Piece]) -> list[_Piece]:
    """Join neighbours of the same kind; a change with equal sides becomes plain text.

    A changed word next to changed whitespace would otherwise read del/ins/del/ins where
    the reader sees one edit. Whitespace both sides of a change end with is moved out of
    it, so a replaced word does not swallow the space before the next word.
    """
    merged: list[_Piece] = []
    for piece in pieces:
        if isinstance(piece, _Change) and piece.old == piece.new:
            piece = piece.old
        if not piece:
            continue
        if isinstance(piece, _Change):
            shared = _shared_trailing_space(piece.old, piece.new)
            if shared:
                _push(merged, _Change(piece.old[:-shared], piece.new[:-shared]))
                _push(merged, piece.old[-shared:])
                continue
        _push(merged, piece)
    return merged


def _push(merged: list[_Piece], piece: _Piece) -> None:
    last = merged[-1] if merged else None
    if isinstance(piece, _Change) and isinstance(last, _Change):
        merged[-1] = _Change(last.old + piece.old, last.new + piece.new)
    elif isinstance(piece, str) and isinstance(last, str):
        merged[-1] = last + piece
    else:
        merged.append(piece)


def _shared_trailing_space(old: str, new: str) -> int:
    shared = 0
    while (
        shared < len(old)
        and shared < len(new)
        and old[-1 - shared] == new[-1 - shared]
        and old[-1 - shared].isspace()
    ):
        shared += 1
    return shared


def _fold_chaff(pieces: list[_Piece]) -> list[_Piece]:
    """Fold a stray kept word into the changes around it.

    A rewritten sentence keeps a "the" or "on" in common with the old one; showing it as
    kept splits one rewrite into confetti. Only a single kept word (or bare whitespace)
    is folded, and only when the changes on both sides are longer than it, so a kept word
    between two one-word swaps, or a kept phrase inside a rewrite, stays visible.
    """
    folded: list[_Piece] = []
    for piece in pieces:
        folded.append(piece)
        while (
            len(folded) >= 3
            and isinstance(folded[-1], _Change)
            and isinstance(folded[-2], str)
            and isinstance(folded[-3], _Change)
            and _words(folded[-2]) <= _MAX_FOLDED_WORDS
            and _words(folded[-2]) < _change_words(folded[-3])
            and _words(folded[-2]) < _change_words(folded[-1])
        ):
            after, kept, before = folded.pop(), folded.pop(), folded.pop()
            folded.append(_Change(before.old + kept + after.old, before.new + kept + after.new))
    return folded


def _words(text: str) -> int:
    return len(text.split())


def _change_words(change: _Change) -> int:
    return max(_words(change.old), _words(change.new))


def _to_segments(pieces: list[_Piece]) -> list[Segment]:
    segments: list[Segment] = []
    for piece in pieces:
        if isinstance(piece, str):
            segments.append(Segment("equal", piece))
            continue
        if piece.old:
            segments.append(Segment("delete", piece.old))
        if piece.new:
            segments.append(Segment("insert", piece.new))
    return segments


def old_text(segments: list[Segment]) -> str:
    return "".join(s.text for s in segments if s.op != "insert")


def new_text(segments: list[Segment]) -> str:
    return "".join(s.text for s in segments if s.op != "delete")


def count_words(segments: list[Segment]) -> dict[str, int]:
    """Words (runs of non-whitespace) inserted and deleted; whitespace-only edits count zero."""
    return {
        "words_inserted": sum(_words(s.text) for s in segments if s.op == "insert"),
        "words_deleted": sum(_words(s.text) for s in segments if s.op == "delete"),
    }


def render_segments_html(segments: list[Segment]) -> SafeString:
    parts: list[str] = []
    for segment in segments:
        if segment.op == "delete":
            parts.append(format_html(DEL_TEMPLATE, segment.text))
        elif segment.op == "insert":
            parts.append(format_html(INS_TEMPLATE, segment.text))
        else:
            parts.append(escape(segment.text))
    # Every part is escaped or built by format_html, so the joined string is safe.
    return mark_safe("".join(parts))  # noqa: S308


def render_diff_html(a: str, b: str) -> SafeString:
    """Inline diff of ``a`` (old) to ``b`` (new), deletions in ``<del>``, insertions in ``<ins>``.

    Put it in an element styled ``white-space: pre-wrap`` so newlines show.
    """
    return render_segments_html(word_diff(a, b))


def render_side_by_side_html(a: str, b: str) -> dict[str, SafeString]:
    """Two panes of one diff: ``old`` is ``a`` with deletions, ``new`` is ``b`` with insertions."""
    segments = word_diff(a, b)
    return {
        "old": render_segments_html([s for s in segments if s.op != "insert"]),
        "new": render_segments_html([s for s in segments if s.op != "delete"]),
    }


def three_way(*, model: str, user: str, reviewer: str) -> dict:
    """The two edit steps of an "approve with edit": model -> user, then user -> reviewer.

    Keyword-only: the three arguments are all strings, and a swapped pair would silently
    show the edits backwards.
    """
    user_vs_model = word_diff(model, user)
    reviewer_vs_user = word_diff(user, reviewer)
    return {
        "user_vs_model": user_vs_model,
        "reviewer_vs_user": reviewer_vs_user,
        "summary": {
            "user_vs_model": count_words(user_vs_model),
            "reviewer_vs_user": count_words(reviewer_vs_user),
        },
    }


def render_three_way_html(*, model: str, user: str, reviewer: str) -> dict:
    """``three_way`` with each step rendered as safe HTML; the template lays the steps out."""
    steps = three_way(model=model, user=user, reviewer=reviewer)
    return {
        "user_vs_model": render_segments_html(steps["user_vs_model"]),
        "reviewer_vs_user": render_segments_html(steps["reviewer_vs_user"]),
        "summary": steps["summary"],
    }
