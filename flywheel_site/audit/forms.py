"""The erasure page's form: it bounds the user id; what makes one valid (not blank) is
`user_erase`'s to say."""

from django import forms

USER_ID_MAX = 1000


class EraseForm(forms.Form):
    # As the application sent it: not stripped, so it hashes as ingest hashed it.
    user_id = forms.CharField(
        required=False,
        strip=False,
        max_length=USER_ID_MAX,
        error_messages={"max_length": f"A user id has at most {USER_ID_MAX} characters."},
        widget=forms.TextInput(attrs={"required": True, "autocomplete": "off"}),
    )
