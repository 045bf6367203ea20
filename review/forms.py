"""Review's forms. The decision form turns the posted fields into the services'
keyword arguments. It parses and refuses what cannot be stored (a NUL byte);
the rules of a valid decision (rubric complete, reason given, text length)
stay in ``review.services``, which phrases them for the annotator."""

from django import forms
from django.urls import reverse, reverse_lazy

from flywheel_site.http import int_param
from review.models import REJECT_REASONS, Decision


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


def _score() -> ScoreField:
    return ScoreField(
        required=False, widget=forms.RadioSelect(choices=[(n, str(n)) for n in range(1, 6)])
    )


class DecisionForm(ReviewForm):
    # The decision is the submit button pressed (approve, reject, approve_edit).
    decision = _text()
    accuracy = _score()
    helpfulness = _score()
    safety = _score()
    final_text = _text(
        empty_value=None,
        widget=forms.Textarea(
            attrs={
                "rows": 9,
                "aria-label": "Final text",
                "hx-trigger": "input changed delay:400ms",
                "hx-target": "#three-way",
                "hx-swap": "outerHTML",
            }
        ),
    )
    reject_reason = _text(widget=forms.Select(choices=[(r, r) for r in REJECT_REASONS]))
    # Free text beats the short list when both are sent.
    reject_reason_other = forms.CharField(
        required=False,
        widget=forms.TextInput(attrs={"maxlength": 200, "autocomplete": "off"}),
    )
    note = _text(widget=forms.Textarea(attrs={"rows": 2}))

    @classmethod
    def shown(cls, *, item_pk: int, posted: dict, edit_text: str) -> "DecisionForm":
        """The form as the review screen shows it: what a refused post sent (`posted`)
        and the text to edit; the edit box asks for its diff as it is typed."""
        form = cls(
            initial={**posted, "final_text": edit_text, "reject_reason_other": ""},
            auto_id=False,
        )
        form.fields["final_text"].widget.attrs["hx-post"] = reverse("review:diff", args=[item_pk])
        return form

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

    kind = _text(widget=forms.Select(attrs={"id": "queue-kind"}))
    task_type = _text(widget=forms.Select(attrs={"id": "queue-task-type"}))
    source = forms.IntegerField(required=False, widget=forms.Select(attrs={"id": "queue-source"}))

    @classmethod
    def shown(cls, *, choice, kinds, task_types, sources) -> "QueueForm":
        """The picker as the home page shows it: the saved choice among what exists
        (`review.selectors.queue_picker`)."""
        form = cls(
            initial={"kind": choice.kind, "task_type": choice.task_type, "source": choice.source_id}
        )
        form.fields["kind"].widget.choices = list(kinds)
        form.fields["task_type"].widget.choices = [("", "Any"), *((t, t) for t in task_types)]
        form.fields["source"].widget.choices = [("", "Any"), *sources]
        return form


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
