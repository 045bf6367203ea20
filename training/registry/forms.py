from django import forms

from flywheel_site.textcheck import CONTROL_REFUSED

MAX_HOURS = 24 * 366
EXTEND_HOURS = f"Extend by a whole number of hours, 1 to {MAX_HOURS}."


class ReasonForm(forms.Form):
    """The reason is checked by the service, which names what is wrong with it."""

    # Django refuses a NUL itself; its refusal says what the services say of every control
    # character.
    reason = forms.CharField(
        required=False,
        strip=False,
        error_messages={"null_characters_not_allowed": CONTROL_REFUSED},
        # The browser asks first; the service still refuses a blank one in its words.
        widget=forms.TextInput(attrs={"required": True}),
    )


class ExperimentActionForm(ReasonForm):
    """Stop, extend or decide a running experiment; the decision too is the service's
    to refuse."""

    decision = forms.CharField(
        required=False,
        widget=forms.Select(
            choices=[("complete", "complete the rollout"), ("roll_back", "roll back")]
        ),
    )
    hours = forms.IntegerField(
        required=False,
        min_value=1,
        max_value=MAX_HOURS,
        initial=24,
        error_messages={k: EXTEND_HOURS for k in ("invalid", "min_value", "max_value")},
        widget=forms.NumberInput(attrs={"required": True}),
    )
