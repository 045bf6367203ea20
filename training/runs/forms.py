import math

from django import forms

from flywheel_site.textcheck import CONTROL_REFUSED, has_control_characters
from training.registry import services as registry
from training.registry.clustered import ABSOLUTE, RELATIVE

BAD_OVERRIDE = "{field} must be {rule}, or blank for the setting."
# A typed decimal (not a spinner): a share such as 0.05 is typed, not stepped to.
DECIMAL = forms.TextInput(attrs={"inputmode": "decimal"})


def _override(field_class, name: str, rule: str, **limits):
    message = BAD_OVERRIDE.format(field=name, rule=rule)
    return field_class(
        required=False,
        error_messages={k: message for k in ("invalid", "min_value", "max_value")},
        **limits,
    )


class ModelDecisionForm(forms.Form):
    """Promote or reject a candidate: a reason, and for a promotion that starts a canary,
    per-experiment overrides of the settings (blank: the setting)."""

    reason = forms.CharField(max_length=2000, error_messages={"required": registry.ERR_REASON})
    share = _override(forms.FloatField, "share", "a number between 0 and 1", widget=DECIMAL)
    min_sample = _override(
        forms.IntegerField, "min_sample", "a positive whole number", min_value=1,
        max_value=10_000_000,
    )  # fmt: skip
    hours = _override(
        forms.IntegerField, "hours", "a whole number of hours up to a year", min_value=1,
        max_value=24 * 366,
    )  # fmt: skip
    margin = _override(
        forms.FloatField, "margin", "a number from 0 up to 1", min_value=0, widget=DECIMAL
    )
    margin_kind = forms.ChoiceField(
        required=False,
        choices=[
            ("", "setting"),
            (ABSOLUTE, "absolute (difference of rates)"),
            (RELATIVE, "relative (share of the control's rate)"),
        ],
        error_messages={"invalid_choice": BAD_OVERRIDE.format(
            field="margin_kind", rule="absolute or relative")},
    )  # fmt: skip

    @classmethod
    def shown(cls, *, current) -> "ModelDecisionForm":
        """The empty form on the model page (labels there name the settings' values)."""
        form = cls(auto_id=False)
        form.fields["reason"].widget.attrs["placeholder"] = (
            f"beats {current.name if current else 'the base model'} on held-out gold"
        )
        return form

    def clean_reason(self):
        reason = self.cleaned_data["reason"]
        if has_control_characters(reason):
            raise forms.ValidationError(CONTROL_REFUSED)
        return reason

    def clean_share(self):
        # Both ends are open: a canary of none or all of the keys compares nothing.
        share = self.cleaned_data["share"]
        if share is not None and not (math.isfinite(share) and 0 < share < 1):
            raise forms.ValidationError(self.fields["share"].error_messages["invalid"])
        return share

    def clean_margin(self):
        margin = self.cleaned_data["margin"]
        if margin is not None and not (math.isfinite(margin) and margin < 1):
            raise forms.ValidationError(self.fields["margin"].error_messages["invalid"])
        return margin

    def reason_error(self) -> str:
        return self.errors["reason"][0] if "reason" in self.errors else ""

    def override_error(self) -> str:
        return next((e[0] for f, e in self.errors.items() if f != "reason"), "")

    def overrides(self) -> dict:
        data = self.cleaned_data
        hours = data["hours"]
        return {
            "share": data["share"],
            "min_sample": data["min_sample"],
            "max_duration_s": hours * 3600 if hours else None,
            "margin": data["margin"],
            "margin_kind": data["margin_kind"] or None,
        }


class RunStartForm(forms.Form):
    """Start a run of a frozen version. Which versions may be trained is the selector's
    to say (`versions_trainable` offers them, `version_get` finds the one posted)."""

    version = forms.IntegerField(
        label="Dataset version", min_value=1, max_value=2**63 - 1, widget=forms.Select
    )

    @classmethod
    def shown(cls, versions) -> "RunStartForm":
        form = cls(auto_id=False)
        form.fields["version"].widget.choices = [
            (
                v.pk,
                f"{v.dataset.name} v{v.number} ({v.manifest['counts']['train']} train, "
                f"{v.manifest['counts']['eval']} eval)",
            )
            for v in versions
        ] or [("", "no frozen version yet")]
        return form

    def version_pk(self) -> int | None:
        return self.cleaned_data["version"] if self.is_valid() else None
