from django import forms

from curation import blocklist, filters
from curation.models import Candidate, CandidateAction, CandidateKind, CurationPolicy
from curation.policies import POLICY_FIELDS
from flywheel_site.http import day_field


class PolicyForm(forms.ModelForm):
    """Edits become a new version; this form only validates the values."""

    enabled_filters = forms.MultipleChoiceField(
        choices=[(name, name) for name in filters.KNOWN_FILTERS],
        widget=forms.CheckboxSelectMultiple,
        required=False,
        help_text="The filters that run; the others record nothing.",
    )
    blocklist_terms = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 4}), required=False, help_text="One term per line."
    )
    blocklist_patterns = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3}),
        required=False,
        help_text="One regular expression per line (case-insensitive).",
    )
    toxicity_per_label = forms.JSONField(required=False, help_text='e.g. {"threat": 0.05}')
    judge_rubric = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 10}),
        help_text="The LLM judge's system prompt (filter llm_judge), versioned with the policy.",
    )
    audit_rates = forms.JSONField(
        required=False,
        help_text='Audit share per filter, overriding the audit rate, e.g. {"toxicity": 0.05}.',
    )

    class Meta:
        model = CurationPolicy
        fields = ["note", *POLICY_FIELDS]
        # Every share on this page is a fraction from 0 to 1 (one unit, as stored and as the
        # API and the warnings state it); the help says what each value decides.
        labels = {
            "band_low": "Edit band: lowest similarity",
            "band_high": "Edit band: highest similarity",
            "sft_rate": "SFT sample rate",
            "min_per_stratum": "Minimum per stratum",
        }
        help_texts = {
            "note": "Why this version: shown in the version list.",
            "min_words": "Fewest words an answer may have (non-Latin scripts count runs).",
            "band_low": "A fraction, 0-1: an edited pair whose similarity to the model's "
            "output is below this is a rewrite, not a correction, and fails.",
            "band_high": "A fraction, 0-1: above this the edit is a typo fix that teaches "
            "nothing, and fails.",
            "band_measure": "Whether the edit band measures similarity over characters or words.",
            "toxicity_threshold": "A fraction, 0-1: a toxicity score above this fails.",
            "quality_min": "A fraction, 0-1: a quality score below this fails.",
            "near_dup_threshold": "A fraction, 0-1: a prompt this similar to an earlier "
            "candidate's is a near duplicate and fails.",
            "sample_rate": "A fraction, 0-1, of passed preference candidates sent to review; "
            "0.05-0.10 is recommended.",
            "needs_answer_rate": "A fraction, 0-1, of needs-answer candidates sent to review.",
            "sft_rate": "A fraction, 0-1, of approved answers kept as SFT candidates.",
            "min_per_stratum": "A stratum smaller than the rate would sample still sends at "
            "least this many items.",
            "reviews_required": "Reviews each item needs before it has an outcome.",
            "audit_rate": "A fraction, 0-1, of each filter's rejections reviewed blind, to "
            "calibrate the filters.",
        }

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        if self.instance and self.instance.pk and not self.is_bound:
            self.initial["blocklist_terms"] = "\n".join(self.instance.blocklist_terms)
            self.initial["blocklist_patterns"] = "\n".join(self.instance.blocklist_patterns)

    @staticmethod
    def _lines(value: str) -> list[str]:
        return [line.strip() for line in (value or "").splitlines() if line.strip()]

    def clean_blocklist_terms(self):
        return self._lines(self.cleaned_data["blocklist_terms"])

    def clean_blocklist_patterns(self):
        patterns = self._lines(self.cleaned_data["blocklist_patterns"])
        errors = blocklist.validate_blocklist(patterns)
        if errors:
            raise forms.ValidationError(errors)
        return patterns

    def clean_toxicity_per_label(self):
        value = self.cleaned_data["toxicity_per_label"] or {}
        if not isinstance(value, dict) or not all(
            isinstance(v, int | float) and 0 <= v <= 1 for v in value.values()
        ):
            raise forms.ValidationError("A JSON object of label: threshold between 0 and 1.")
        return value

    def clean_audit_rates(self):
        # Checked against the filter names by policy_create; None means no overrides.
        return self.cleaned_data["audit_rates"] or {}

    def changes(self) -> dict:
        data = dict(self.cleaned_data)
        data.pop("note", None)
        return data


SCORE_FIELDS = ("toxicity", "quality", "char_similarity")
CURATOR_REJECTED = "curator"  # the failed_filter a curator's reject records


SCORE_STEPS = [f"{step / 10:g}" for step in range(11)]
ANY = [("", "any")]


def _score(label: str) -> forms.FloatField:
    # Django's FloatField refuses NaN and infinities; scores live in [0, 1]. A select of
    # tenths; the empty choice is named by its end of the range ("from", "to").
    return forms.FloatField(
        required=False,
        min_value=0,
        max_value=1,
        label=label,
        widget=forms.Select(attrs={"aria-label": label.capitalize()}),
    )


def _select(**kwargs):
    return forms.Select(choices=ANY, **kwargs)


class CandidateSearchForm(forms.Form):
    """The explorer's query string. Anything it refuses is a 400: a URL is
    either a view someone can share or an error, never silently another view."""

    q = forms.CharField(
        required=False,
        max_length=200,
        strip=True,
        widget=forms.SearchInput(
            attrs={"id": "q", "class": "wide", "placeholder": 'words, "a phrase", -not'}
        ),
    )
    status = forms.ChoiceField(required=False, choices=[*ANY, *Candidate.Status.choices])
    kind = forms.ChoiceField(required=False, choices=[*ANY, *CandidateKind.choices])
    failed_filter = forms.ChoiceField(
        required=False,
        choices=[
            *ANY,
            *((name, name) for name in filters.KNOWN_FILTERS),
            (CURATOR_REJECTED, "rejected by a curator"),
        ],
    )
    # Free values in the URL (a bookmark may name one no longer listed); the page offers
    # the ones the data holds (`with_options`).
    task_type = forms.CharField(required=False, max_length=100, widget=_select())
    model = forms.CharField(required=False, max_length=200, widget=_select())
    source = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1, widget=_select())
    created_from = day_field(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    created_to = day_field(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    toxicity_min = _score("toxicity from")
    toxicity_max = _score("toxicity to")
    quality_min = _score("quality from")
    quality_max = _score("quality to")
    char_similarity_min = _score("similarity from")
    char_similarity_max = _score("similarity to")
    before = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)
    after = forms.IntegerField(required=False, min_value=1, max_value=2**63 - 1)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        for name in ("task_type", "model"):
            # CharField gives its widget a maxlength, which a select has no use for.
            self.fields[name].widget.attrs.pop("maxlength", None)
        for name in SCORE_FIELDS:
            for end in ("min", "max"):
                field = self.fields[f"{name}_{end}"]
                current = self.data.get(f"{name}_{end}", "")
                extra = [(current, current)] if current and current not in SCORE_STEPS else []
                empty = "from" if end == "min" else "to"
                field.widget.choices = [("", empty), *extra, *((v, v) for v in SCORE_STEPS)]

    def with_options(self, options: dict) -> "CandidateSearchForm":
        """Offer the values the data holds (`curation.selectors.explorer_options`)."""
        self.fields["task_type"].widget.choices = [*ANY, *((t, t) for t in options["task_types"])]
        self.fields["model"].widget.choices = [*ANY, *((m, m) for m in options["models"])]
        self.fields["source"].widget.choices = [*ANY, *options["sources"]]
        return self

    def clean(self):
        data = super().clean()
        if data.get("before") and data.get("after"):
            raise forms.ValidationError("Give either before or after, not both.")
        start, end = data.get("created_from"), data.get("created_to")
        if start and end and start > end:
            raise forms.ValidationError("The date range ends before it starts.")
        return data

    def filters(self) -> dict:
        """The filter alone (no cursor), without empty values."""
        return {
            name: value
            for name, value in self.cleaned_data.items()
            if name not in ("before", "after") and value not in (None, "")
        }


class CandidateActionForm(forms.Form):
    """A confirmed action: what, why, and the set as the curator saw it."""

    # Not "kind": that is the candidates' own kind in the explorer's filter.
    action = forms.ChoiceField(choices=CandidateAction.Kind.choices)
    reason = forms.CharField(
        label="Reason (recorded with the action)",
        max_length=2000,
        strip=True,
        widget=forms.Textarea(attrs={"rows": 3}),
    )
    max_id = forms.IntegerField(min_value=0, max_value=2**63 - 1)
    expected = forms.IntegerField(min_value=0, max_value=2**31 - 1)
