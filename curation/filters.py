"""The filters' vocabulary: the filter and candidate-kind names, what a filter reads
(``FilterInput``), what it decides (``FilterResult``) and the thresholds it applies
(``FilterPolicy``, validated on construction). The rules themselves, and ``run_filters``,
are in ``curation.filter_rules``. Pure Python: no Django.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from curation.blocklist import validate_blocklist
from curation.pii import find_pii

SCORER_NAME = "flywheel.filters"
# Bump when a rule or the quality formula changes, so stored decisions say which one made them.
SCORER_VERSION = "1"

PREFERENCE = "preference"
SFT = "sft"
NEEDS_ANSWER = "needs_answer"
CANDIDATE_KINDS = (PREFERENCE, SFT, NEEDS_ANSWER)

USER_ACTION = "user_action"
LENGTH = "length"
BLOCKLIST = "blocklist"
EDIT_BAND = "edit_band"
PII = "pii"
DEDUP_EXACT = "dedup_exact"
DEDUP_NEAR = "dedup_near"
TOXICITY = "toxicity"
QUALITY = "quality"
# Optional and off by default: a judge model behind an HTTP endpoint (curation/judge.py).
LLM_JUDGE = "llm_judge"
FILTER_ORDER = (
    USER_ACTION,
    LENGTH,
    BLOCKLIST,
    EDIT_BAND,
    PII,
    DEDUP_EXACT,
    DEDUP_NEAR,
    TOXICITY,
    QUALITY,
)
# Every filter a policy may enable: the built-in ones, then the optional judge, which
# run_filters leaves to its caller (curation.evaluation).
KNOWN_FILTERS = (*FILTER_ORDER, LLM_JUDGE)

BAND_MEASURES = ("char", "word")
FRACTION_FIELDS = (
    "band_low",
    "band_high",
    "toxicity_threshold",
    "quality_min",
    "near_dup_threshold",
)


# Policy and input errors.
UNKNOWN_KIND = "Candidate kind must be one of: preference, sft, needs_answer."
UNKNOWN_FILTERS = "Unknown filter names: {names}."
MISSING_FILTERS = "Enabled filters have no implementation: {names}. Pass them in extra."
BAD_BAND = "The edit band needs 0 <= low <= high <= 1."
BAD_BAND_MEASURE = "The edit band measure must be 'char' or 'word'."
BAD_MIN_WORDS = "The minimum word count cannot be negative."
BAD_FRACTION = "{name} must be between 0 and 1."


@dataclass(frozen=True)
class FilterInput:
    """One candidate as plain data.

    prompt_messages: (role, content) pairs, or message dicts as stored on an Interaction
    (content may be a string, None, or a list of parts with a "text" key).
    toxicity: the chosen text's toxicity in [0, 1] if already scored; run_filters fills it
    from the toxicity step's score when it is None.
    pii_counts: what ingest redacted, by kind (recorded by the pii filter for context).
    """

    kind: str
    prompt_messages: Sequence[Any] = ()
    chosen: str | None = None
    rejected: str | None = None
    feedback_kinds: Sequence[str] = ()
    rating: int | None = None
    toxicity: float | None = None
    pii_counts: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in CANDIDATE_KINDS:
            raise ValueError(UNKNOWN_KIND)
        object.__setattr__(
            self, "prompt_messages", tuple(_message_pair(m) for m in self.prompt_messages)
        )
        kinds = self.feedback_kinds
        # A bare string would otherwise become a tuple of its letters.
        object.__setattr__(
            self, "feedback_kinds", (kinds,) if isinstance(kinds, str) else tuple(kinds)
        )


def _message_pair(message: Any) -> tuple[str, str]:
    if isinstance(message, Mapping):
        role, content = message.get("role", ""), message.get("content")
    else:
        role, content = message
    if isinstance(content, list):
        content = "\n".join(
            part["text"]
            for part in content
            if isinstance(part, Mapping) and isinstance(part.get("text"), str)
        )
    return (str(role or ""), content if isinstance(content, str) else "")


@dataclass(frozen=True)
class FilterResult:
    name: str
    passed: bool
    score: float | None
    reason: str
    details: dict[str, Any] = field(default_factory=dict)
    scorer: str = SCORER_NAME
    scorer_version: str = SCORER_VERSION
    # What ran a model filter's model ("torch", "onnx-int8"); empty for rules.
    runtime: str = ""


@dataclass(frozen=True)
class FilterPolicy:
    """Every threshold the filters use. Invalid values raise ValueError on construction,
    so a bad policy fails when it is saved, not halfway through a batch."""

    min_words: int = 20
    band_low: float = 0.10
    band_high: float = 0.95
    band_measure: str = "char"
    toxicity_threshold: float = 0.1  # for the caller's toxicity step
    quality_min: float = 0.6
    near_dup_threshold: float = 0.9  # for the caller's dedup_near step
    blocklist_terms: tuple[str, ...] = ()
    blocklist_patterns: tuple[str, ...] = ()
    pii_region: str = "US"
    enabled: tuple[str, ...] = FILTER_ORDER

    def __post_init__(self) -> None:
        # Lists arrive from JSON fields; tuples keep the policy hashable and the blocklist
        # cache keyed by value.
        for name in ("blocklist_terms", "blocklist_patterns", "enabled"):
            object.__setattr__(self, name, tuple(getattr(self, name)))
        # Decimals from a DecimalField would not survive json.dumps in the details.
        for name in FRACTION_FIELDS:
            object.__setattr__(self, name, float(getattr(self, name)))
        object.__setattr__(self, "min_words", int(self.min_words))
        if self.min_words < 0:
            raise ValueError(BAD_MIN_WORDS)
        if not 0.0 <= self.band_low <= self.band_high <= 1.0:
            raise ValueError(BAD_BAND)
        if self.band_measure not in BAND_MEASURES:
            raise ValueError(BAD_BAND_MEASURE)
        for name in FRACTION_FIELDS[2:]:
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(BAD_FRACTION.format(name=name))
        unknown = [n for n in self.enabled if n not in KNOWN_FILTERS]
        if unknown:
            raise ValueError(UNKNOWN_FILTERS.format(names=", ".join(unknown)))
        find_pii("", region=self.pii_region)  # raises curation.pii.UNKNOWN_REGION
        errors = validate_blocklist(self.blocklist_patterns, terms=self.blocklist_terms)
        if errors:
            raise ValueError(" ".join(errors))
