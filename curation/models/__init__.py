"""Curation's models, one module per concept; Django loads the app's models here.
Every model is re-exported by name (explicitly, no star import), and so are the
functions and the expression the migrations refer to as `curation.models.<name>`."""

from curation.models.candidates import (
    Candidate,
    CandidateAction,
    CandidateActionItem,
    CandidateDocument,
    CandidateKind,
    DedupListing,
    FilterDecision,
    JudgeVerdict,
    SampleDraw,
)
from curation.models.interactions import Feedback, FeedbackKind, Interaction
from curation.models.policies import (
    CurationPolicy,
    default_audit_rates,
    default_enabled_filters,
    default_judge_rubric,
)
from curation.models.runs import CurationMetricDay, CurationRun
from curation.models.sources import ApiToken, Source, TokenScope

__all__ = [
    "ApiToken",
    "Candidate",
    "CandidateAction",
    "CandidateActionItem",
    "CandidateDocument",
    "CandidateKind",
    "CurationMetricDay",
    "CurationPolicy",
    "CurationRun",
    "DedupListing",
    "Feedback",
    "FeedbackKind",
    "FilterDecision",
    "Interaction",
    "JudgeVerdict",
    "SampleDraw",
    "Source",
    "TokenScope",
    "default_audit_rates",
    "default_enabled_filters",
    "default_judge_rubric",
]
