from django import forms

from curation.models import CurationPolicy, Source
from training.datasets.models import Dataset, ExportFormat, Quarantine


class DatasetForm(forms.Form):
    name = forms.SlugField(max_length=100)
    description = forms.CharField(required=False, widget=forms.Textarea(attrs={"rows": 2}))
    kind = forms.ChoiceField(choices=Dataset.Kind.choices, initial=Dataset.Kind.PREFERENCE)
    formats = forms.MultipleChoiceField(
        choices=ExportFormat.choices,
        widget=forms.CheckboxSelectMultiple,
        initial=[ExportFormat.DPO_CONVERSATIONAL, ExportFormat.DPO_STANDARD],
        help_text="SFT datasets export the SFT format only.",
    )
    # Bounded for the columns (integer) and the date arithmetic a lag goes into: past either,
    # a 500 instead of the form's refusal (issue 18, row 5).
    lag_days = forms.IntegerField(
        min_value=0, max_value=3650, initial=14, help_text="0 turns the lag off."
    )
    eval_fraction = forms.FloatField(min_value=0, max_value=0.99, initial=0.10)
    near_dup_threshold = forms.FloatField(min_value=0.01, max_value=1, initial=0.9)
    train_threshold = forms.IntegerField(min_value=1, max_value=2**31 - 1, initial=5000)

    def clean_name(self):
        name = self.cleaned_data["name"]
        if Dataset.objects.filter(name=name).exists():
            raise forms.ValidationError("A dataset with this name exists.")
        return name


class QuarantineForm(forms.Form):
    """Quarantine of a window, a source or a policy version (versions are quarantined from
    their own page)."""

    kind = forms.ChoiceField(
        choices=[
            (Quarantine.Kind.WINDOW, "Ingest time window"),
            (Quarantine.Kind.SOURCE, "Source"),
            (Quarantine.Kind.POLICY, "Policy version"),
        ]
    )
    window_start = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    window_end = forms.DateTimeField(
        required=False, widget=forms.DateTimeInput(attrs={"type": "datetime-local"})
    )
    source = forms.ModelChoiceField(queryset=Source.objects.order_by("name"), required=False)
    policy = forms.ModelChoiceField(
        queryset=CurationPolicy.objects.order_by("-version"), required=False
    )
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 2}))


REASON_REQUIRED = "Say why: the reason is recorded with your name."


class ReasonForm(forms.Form):
    """The reason a consequential action needs: recorded with who did it."""

    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2, "required": True}),
        error_messages={"required": REASON_REQUIRED},
    )


class PairCorrectionForm(forms.Form):
    chosen = forms.CharField(widget=forms.Textarea(attrs={"rows": 5}), strip=True)
    rejected = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 3}),
        help_text="Leave empty to make it an SFT example (no rejected answer).",
    )
    reason = forms.CharField(
        max_length=2000,
        widget=forms.Textarea(attrs={"rows": 2}),
        error_messages={"required": REASON_REQUIRED},
    )


class VersionQuarantineForm(ReasonForm):
    pass
