"""Review's forms. The decision form turns the posted fields into the services'
keyword arguments. It parses and refuses what cannot be stored (a NUL byte);
the rules of a valid decision (rubric complete, reason given, text length)
stay in ``review.services``, which phrases them for the annotator."""

from django import forms
from django.urls import reverse_lazy

from flywheel_site.http import int_param
from review.models import Decision


class ScoreField(forms.IntegerField):
    """A rubric score. Anything that is not a number counts as not given, so
    the service asks for the rubric in its own words rather than the form
    answering with a generic 'enter a whole number'."""

    def to_python(self, value):
        return int_param(value)


def _text(**kwargs) -> forms.CharField:
    # Posted text goes to the service as typed: it strips and normalises.
    return forms.CharField(required=False, strip=False, **kwargs)


class ReviewForm(forms.Form):
    def first_error(self) -> str:
        """The message a refusal shows: review's pages show one reason at a time."""
        return next(iter(self.errors.values()))[0]


class DecisionForm(ReviewForm):
    decision = _text()
    accuracy = ScoreField(required=False)
    helpfulness = ScoreField(required=False)
    safety = ScoreField(required=False)
    final_text = _text(empty_value=None)
    reject_reason = _text()
    # Free text beats the short list when both are sent.
    reject_reason_other = forms.CharField(required=False)
    note = _text()

    def verdict(self) -> dict:
        """Keyword arguments shared by review_submit and outcome_adjudicate."""
        data = self.cleaned_data
        return {
            "decision": data["decision"],
            # The text box is always posted; it only counts for an edit.
            "final_text": data["final_text"] if data["decision"] == Decision.APPROVE_EDIT else None,
            "reject_reason": data["reject_reason_other"] or data["reject_reason"],
            "note": data["note"],
        }

    def rubric(self) -> dict:
        return {name: self.cleaned_data[name] for name in ("accuracy", "helpfulness", "safety")}

    def posted(self) -> dict:
        """What to show again in the form after a refusal: the valid fields as
        parsed, the edit exactly as typed."""
        data = getattr(self, "cleaned_data", {})
        shown = {
            "decision": data.get("decision", ""),
            "reject_reason": data.get("reject_reason_other") or data.get("reject_reason", ""),
            "note": data.get("note", ""),
            "final_text": self.data.get("final_text"),
        }
        shown.update({name: data.get(name) for name in ("accuracy", "helpfulness", "safety")})
        return shown


class QueueForm(ReviewForm):
    """The queue picker. Which kinds, task types and sources exist is the service's
    to check (`queue_choose`); the form only parses."""

    kind = _text()
    task_type = _text()
    source = forms.IntegerField(required=False)


class GuidelineForm(ReviewForm):
    """A new guidelines version, or its preview. The body's rules (not empty, a length
    limit) are `guideline_update`'s."""

    body = _text(
        label="Guidelines",
        # The preview follows the typing (htmx); without JavaScript, a Preview button.
        widget=forms.Textarea(
            attrs={
                "rows": 18,
                "hx-post": reverse_lazy("review:guidelines_preview"),
                "hx-trigger": "input changed delay:500ms",
                "hx-target": "#preview",
                "hx-swap": "outerHTML",
            }
        ),
    )
    note = _text(label="What changed", max_length=200)


class CalibrationApplyForm(ReviewForm):
    """A suggested threshold to apply. `policy_threshold_apply` checks the filter and
    the threshold's range and phrases its refusals; the form only parses."""

    filter = _text(widget=forms.HiddenInput)
    threshold = _text(widget=forms.HiddenInput)
    reason = _text(
        label="Why (recorded with the new policy version)",
        widget=forms.TextInput(attrs={"required": True, "maxlength": 5000}),
    )
