from django import forms


class WebhookEndpointForm(forms.Form):
    """Shapes and bounds only; training.webhooks.services checks the URL (SSRF guard) and
    the secret."""

    url = forms.CharField(max_length=2000, label="URL")
    description = forms.CharField(max_length=200, required=False)
    event_types = forms.MultipleChoiceField(
        choices=[], widget=forms.CheckboxSelectMultiple, label="Events"
    )
    secret = forms.CharField(
        max_length=100,
        required=False,
        help_text="Leave empty to generate one (whsec_ + base64).",
    )

    def __init__(self, *args, event_types: dict[str, str], with_secret: bool = True, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["event_types"].choices = [(k, f"{k}: {v}") for k, v in event_types.items()]
        if not with_secret:
            del self.fields["secret"]
