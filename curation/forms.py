from django import forms

from curation import blocklist, filters
from curation.models import CurationPolicy
from curation.policies import POLICY_FIELDS


class PolicyForm(forms.ModelForm):
    """Edits become a new version; this form only validates the values."""

    enabled_filters = forms.MultipleChoiceField(
        choices=[(name, name) for name in filters.FILTER_ORDER],
        widget=forms.CheckboxSelectMultiple,
        required=False,
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
    audit_rates = forms.JSONField(
        required=False,
        help_text='Audit share per filter, overriding the audit rate, e.g. {"toxicity": 0.05}.',
    )

    class Meta:
        model = CurationPolicy
        fields = ["note", *POLICY_FIELDS]

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
