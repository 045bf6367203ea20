from django import forms

from flywheel_site.http import day_field


class DashboardForm(forms.Form):
    """The dashboard's window and filters, read from the URL (a GET form)."""

    days = forms.IntegerField(min_value=1, max_value=366, required=False, initial=30)
    # The last day shown (UTC); today when empty. With `days`, a custom window.
    end = day_field(required=False, input_formats=["%Y-%m-%d"])
    source = forms.CharField(max_length=100, required=False)
    task_type = forms.CharField(max_length=100, required=False)
    model = forms.CharField(max_length=200, required=False)

    def query(self) -> dict:
        """The validated window and filters; the defaults when the form is invalid."""
        data = self.cleaned_data if self.is_valid() else {}
        return {
            "days": data.get("days") or 30,
            "today": data.get("end"),
            "source": data.get("source") or "",
            "task_type": data.get("task_type") or "",
            "model": data.get("model") or "",
        }
