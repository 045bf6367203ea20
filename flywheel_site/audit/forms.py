"""The audit pages' forms: the log's filter (every value bounded, so a hostile query string
is a 400) and the erasure page's form."""

import re
from datetime import UTC, datetime
from urllib.parse import urlencode

from django import forms
from django.contrib.auth import get_user_model

from flywheel_site.audit.log import ACTIONS, LogFilter, object_types
from flywheel_site.http import BIGINT_MAX

EARLIEST = datetime(2000, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)
_JOB_ID = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
ERR_ACTOR = "An actor is a username, token:<id> or job:<job id>."
ERR_NO_USER = "No user is named {name}."
ERR_RANGE = "Times are between 2000 and 2100."
ERR_ORDER = "“Since” must be before “until”."


class AuditLogForm(forms.Form):
    object_type = forms.ChoiceField(required=False, label="Object type")
    action = forms.ChoiceField(
        required=False, choices=[("", "any"), *[(a, a) for a in ACTIONS]], label="Action"
    )
    actor = forms.CharField(
        required=False, max_length=160, label="Actor", help_text="username, token:<id>, job:<id>"
    )
    since = forms.DateTimeField(required=False, label="Since")
    until = forms.DateTimeField(required=False, label="Until")
    before = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)
    after = forms.IntegerField(required=False, min_value=1, max_value=BIGINT_MAX)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        labels = sorted(set(object_types().values()))
        self.fields["object_type"].choices = [("", "any"), *[(label, label) for label in labels]]

    def clean_actor(self):
        raw = self.cleaned_data["actor"].strip()
        if not raw:
            return None
        kind, _, value = raw.partition(":") if ":" in raw else ("user", "", raw)
        if kind == "token" and value.isdigit() and int(value) <= BIGINT_MAX:
            return ("token", int(value))
        if kind == "job" and _JOB_ID.fullmatch(value):
            return ("job", value)
        if kind == "user" and value:
            pk = get_user_model().objects.filter(username=value).values_list("pk", flat=True)
            if not pk:
                raise forms.ValidationError(ERR_NO_USER.format(name=value))
            return ("user", pk[0])
        raise forms.ValidationError(ERR_ACTOR)

    def clean(self):
        data = super().clean()
        for name in ("since", "until"):
            if data.get(name) and not EARLIEST <= data[name] <= LATEST:
                self.add_error(name, ERR_RANGE)
        if data.get("since") and data.get("until") and data["since"] >= data["until"]:
            self.add_error("until", ERR_ORDER)
        return data

    def filters(self) -> LogFilter:
        data = self.cleaned_data
        tables = {label: table for table, label in object_types().items()}
        return LogFilter(
            table=tables.get(data["object_type"]) if data["object_type"] else None,
            action=data["action"] or None,
            actor=data["actor"],
            since=data["since"],
            until=data["until"],
        )

    def query(self) -> str:
        """The filter as a query string, for page links and exports (no cursor)."""
        keep = {k: v for k, v in self.data.items() if k not in ("before", "after") and v}
        return urlencode(keep)


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
