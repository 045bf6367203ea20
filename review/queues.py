"""The queues an annotator can pick, and the order the "all" queue serves them in.

``KINDS`` is the one list of queue kinds: the picker, the claim query, the mix
setting's check and the labels all read it, so a new kind of item (an audit
sample marked on the item, say) is one more line here. Each kind is a condition
on ``ReviewItem``; the claim query adds it to the queued-items query, so a kind
needs an index that starts with its column (see ``ReviewItem.Meta.indexes``).

Picking a queue changes only the order items are served in, never which
candidates were sampled: inclusion rates stay what the curation policy says.
"""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.db.models import Q

ALL = "all"


@dataclass(frozen=True)
class QueueKind:
    name: str
    label: str
    condition: Q


KINDS: tuple[QueueKind, ...] = (
    QueueKind("preference", "Preference pairs", Q(kind="preference")),
    QueueKind("needs_answer", "Needs an answer", Q(kind="needs_answer")),
    QueueKind("sft", "Approved answers", Q(kind="sft")),
)
BY_NAME = {kind.name: kind for kind in KINDS}
UNKNOWN_KIND = "FLYWHEEL_REVIEW_MIX names {names}; the queue kinds are {known}."


def choices() -> list[tuple[str, str]]:
    """The picker's options: the mix of every kind first."""
    return [(ALL, "All (mixed)"), *((kind.name, kind.label) for kind in KINDS)]


def label(name: str) -> str:
    return dict(choices()).get(name, name)


def check_mix(weights: dict[str, int]) -> None:
    unknown = sorted(set(weights) - set(BY_NAME))
    if unknown:
        raise ImproperlyConfigured(
            UNKNOWN_KIND.format(names=", ".join(unknown), known=", ".join(BY_NAME))
        )


def mix_sequence(weights: dict[str, int]) -> list[str]:
    """One cycle of kinds in proportion to ``weights``, spread evenly (smooth
    weighted round robin): preference:3,needs_answer:1 gives
    preference, preference, needs_answer, preference."""
    check_mix(weights)
    current = dict.fromkeys(weights, 0)
    total = sum(weights.values())
    sequence = []
    for _ in range(total):
        for name, weight in weights.items():
            current[name] += weight
        best = max(current, key=lambda name: current[name])
        current[best] -= total
        sequence.append(best)
    return sequence


def serving_order(kind: str, position: int) -> list[Q]:
    """The conditions to try, in turn, for the next item of queue ``kind``.

    One kind: just its condition. All: the kind due at ``position`` in the mix,
    then the other kinds in the mix's order, then any queued item (a kind left
    out of the mix is still served once the mixed kinds run dry)."""
    if kind in BY_NAME:
        return [BY_NAME[kind].condition]
    # ALL, or a kind no longer in the list: the mix.
    sequence = mix_sequence(settings.FLYWHEEL_REVIEW_MIX)
    start = position % len(sequence)
    due = list(dict.fromkeys(sequence[start:] + sequence[:start]))
    return [BY_NAME[name].condition for name in due] + [Q()]
