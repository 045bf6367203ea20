"""Every input on every page is bounded (issue 18, row 5): dates, integers, control
characters and full-text queries that used to reach PostgreSQL or Python's date arithmetic
are a 4xx now, and a property test puts hostile values into every form field and query
string of every page but logout and reauth, as an admin (every role's pages): no server
error."""

import pytest
from django import forms as django_forms
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation.models import CurationPolicy
from curation.selectors import websearch_text
from review.models import Guideline
from tests.support.access import URLS, path_of
from tests.support.explorer import candidate

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("export_dir")]

NUL = "reason with a NUL\x00 byte"
BIG = "2147483648"
SCORES = ["accuracy", "helpfulness", "safety"]
HOSTILE = [
    "",
    " ",
    "0001-01-01",
    "9999-12-31",
    "0000-00-00",
    "2026-02-30",
    "1e12",
    "2147483648",
    "-2147483649",
    "9" * 30,
    "-1",
    "0",
    "NaN",
    "inf",
    "-" * 50,
    "- " * 50,
    '"' * 7 + "-" * 20,
    "a -b --c ---d",
    NUL,
    "\x00",
    "\x1b[31mred",
    "\ufffd",
    "<script>alert(1)</script>",
    "' OR 1=1 --",
    "http://[2002:7f00:1::]/",
    "x" * 5000,
]


# Names views read straight from the request rather than through a form.
READ_BY_VIEWS = {"before", "after", "confirm", "days", "decision", "enabled", "endpoint", "next"}
READ_BY_VIEWS |= {"number", "password", "preset", "v", "cursor", "page", "kind", "max_id"}
# Values a field accepts, so a hostile value in one field can get past the others' checks
# to the service behind the form.
ACCEPTED = ["1", "3", "length", "all", "complete", "support", "a reason", "2026-11-01", "on"]
# Sends the walking admin out (logout) or asks for the admin's password (reauth): walked by
# their own tests (test_hostile_sessions.py).
NOT_WALKED = {"logout", "reauth"}
PROJECT = ("curation", "review", "training", "flywheel_site")


def project_forms() -> list[type]:
    """Every Django form the project defines: the URLconf, read by tests.support.access, has
    imported each view and so each form."""
    found, todo = [], [django_forms.BaseForm]
    while todo:
        for sub in todo.pop().__subclasses__():
            todo.append(sub)
            if sub.__module__.startswith(PROJECT):
                found.append(sub)
    return found


FIELDS = sorted(READ_BY_VIEWS.union(*(form.base_fields for form in project_forms())))
WALKED = sorted(set(URLS) - NOT_WALKED)
values = st.sampled_from(HOSTILE) | st.sampled_from(ACCEPTED) | st.text(max_size=40)
# A few fields, or every field at once: each view then reads a hostile value in every name it
# reads, whatever its form calls them.
query = st.dictionaries(st.sampled_from(FIELDS), values, max_size=6) | st.fixed_dictionaries(
    dict.fromkeys(FIELDS, values)
)


@pytest.fixture
def admin_client(admin):
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    return client


def test_the_walk_covers_every_page_and_every_form_field():
    assert len(WALKED) == len(URLS) - len(NOT_WALKED) > 60
    named = {form.__name__ for form in project_forms()}
    assert {"CandidateSearchForm", "ModelDecisionForm", "AuditLogForm", "EraseForm"} <= named
    assert {"margin_kind", "user_id", "object_type", "threshold", "task_type"} <= set(FIELDS)


@pytest.mark.slow
@settings(
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_hostile_form_or_query_string_makes_a_server_error(data, objects, admin_client):
    """Each example sends hostile fields to every page (curator and admin pages included), by
    GET as a query string or by POST as a form, as an admin, whose role opens them all."""
    for name in WALKED:
        path = path_of(name, objects)
        fields = data.draw(query, label=name)
        method = data.draw(st.sampled_from(["get", "post"]), label=f"{name} method")
        response = getattr(admin_client, method)(path, fields)
        assert response.status_code < 500, (method, path, fields)


# The rows of issue 18's table, one by one (each a 500 before).


def test_a_dashboard_window_ending_in_year_1_is_a_400(admin_client):
    response = admin_client.get("/?end=0001-01-01")
    assert response.status_code == 400


def test_an_explorer_range_over_all_of_time_is_a_400(admin_client):
    response = admin_client.get(
        "/curation/candidates/?created_from=0001-01-01&created_to=9999-12-31"
    )
    assert response.status_code == 400


@pytest.mark.parametrize("query", ["q=%00", "task_type=a%00b", "created_from=%00"])
def test_a_nul_in_the_explorer_s_query_string_is_the_form_s_400(admin_client, query):
    assert admin_client.get(f"/curation/candidates/?{query}").status_code == 400


@pytest.mark.parametrize("q", ["-" * 50, "- " * 50, "--a ---b", '"-----"', "a " * 300])
def test_a_search_of_dashes_finds_nothing_and_does_not_fail(admin_client, q):
    candidate(chosen="An answer about invoices")
    response = admin_client.get("/curation/candidates/", {"q": q[:200]})
    assert response.status_code in (200, 400)


def test_the_search_text_keeps_words_phrases_and_one_minus():
    assert websearch_text('refund --"exact phrase" ---spam - -- or x') == (
        'refund -"exact phrase" -spam or x'
    )
    assert websearch_text("-" * 50) == ""
    assert len(websearch_text("w " * 100).split()) == 32


@pytest.mark.parametrize("threshold", ["1e12", "2147483648"])
def test_a_calibration_threshold_past_an_integer_is_refused(admin_client, threshold):
    before = CurationPolicy.objects.count()
    response = admin_client.post(
        "/review/calibration/apply/",
        {"filter": "length", "threshold": threshold, "reason": "calibrated"},
    )
    assert response.status_code == 422
    assert CurationPolicy.objects.count() == before


@pytest.mark.parametrize(
    ("field", "value"), [("lag_days", "2147483648"), ("lag_days", "3651"), ("train_threshold", BIG)]
)
def test_a_dataset_lag_or_threshold_past_its_column_is_the_form_s_refusal(
    admin_client, field, value
):
    from training.models import Dataset

    fields = {"name": "hostile", "kind": "preference", "formats": ["dpo_standard"]}
    fields |= {"lag_days": "1", "eval_fraction": "0.1", "near_dup_threshold": "0.9"}
    response = admin_client.post("/datasets/", {**fields, "train_threshold": "10", field: value})
    assert response.status_code == 422
    assert "Ensure this value is less than or equal to" in response.content.decode()
    assert not Dataset.objects.exists()


# What a number or date field must refuse itself: past bigint, or a day whose arithmetic
# overflows. A field that takes them is listed with what refuses them further on.
OUT_OF_RANGE = {
    django_forms.IntegerField: ["9" * 30, "-" + "9" * 30],
    django_forms.DateField: ["0001-01-01", "9999-12-31"],
    django_forms.DateTimeField: ["0001-01-01T00:00", "9999-12-31T23:59"],
}
REFUSED_FURTHER_ON = {
    ("QueueForm", "source"): "queue_choose looks it up: 422",
    **{("DecisionForm", s): "not a score: review_submit asks for 1-5, 422" for s in SCORES},
    # Stored as given (timestamptz holds years 1-9999) and compared, never added to.
    ("QuarantineForm", "window_start"): "stored",
    ("QuarantineForm", "window_end"): "stored",
}


def test_every_number_and_date_field_refuses_what_would_overflow():
    """Model forms are left out: the model field's validators bound them (full_clean)."""
    taken = set()
    for form in project_forms():
        if issubclass(form, django_forms.BaseModelForm):
            continue
        for name, field in form.base_fields.items():
            hostile = next((v for k, v in OUT_OF_RANGE.items() if isinstance(field, k)), [])
            if any(name not in form(data={name: value}).errors for value in hostile):
                taken.add((form.__name__, name))
    assert taken == set(REFUSED_FURTHER_ON)


@pytest.mark.parametrize("value", OUT_OF_RANGE[django_forms.IntegerField])
def test_what_the_forms_take_is_refused_further_on(admin_client, admin, value):
    from review.services import item_claim_next
    from tests.support.review import make_items

    make_items(1)
    item = item_claim_next(user=admin)
    scores = dict.fromkeys(SCORES, value)
    submitted = admin_client.post(
        f"/review/items/{item.pk}/submit/", {"decision": "approve", **scores}
    )
    queue = admin_client.post("/review/queue/", {"kind": "all", "source": value})
    window = {"kind": "window", "reason": "r", "confirm": "1"}
    first, last = OUT_OF_RANGE[django_forms.DateTimeField]
    window |= {"window_start": first, "window_end": last}
    quarantined = admin_client.post("/datasets/quarantines/", window)
    assert (submitted.status_code, queue.status_code, quarantined.status_code) == (422, 422, 302)
    assert "from 1 to 5" in submitted.content.decode()


def _state() -> list:
    from review.models import QueueChoice
    from training.models import Experiment, ModelVersion

    return [
        Guideline.objects.count(),
        CurationPolicy.objects.count(),
        list(QueueChoice.objects.values_list("user_id", "task_type")),
        sorted(ModelVersion.objects.values_list("pk", "status")),
        sorted(Experiment.objects.values_list("pk", "state", "deadline")),
    ]


# The canary actions refuse like any refused action there: back to the model with a message.
@pytest.mark.parametrize(
    ("name", "fields", "status"),
    [
        ("review:calibration_apply", {"filter": "length", "threshold": "3", "reason": NUL}, 422),
        ("review:queue", {"kind": "all", "task_type": NUL}, 422),
        ("review:guidelines_edit", {"body": NUL, "note": "x"}, 422),
        ("review:guidelines_edit", {"body": "ok", "note": "\x1b[2J"}, 422),
        ("runs:promote", {"reason": NUL}, 422),
        ("runs:reject", {"reason": NUL}, 422),
        ("registry:experiment_stop", {"reason": NUL}, 302),
        ("registry:experiment_extend", {"reason": NUL, "hours": "1"}, 302),
        ("registry:experiment_decide", {"reason": NUL, "decision": "complete"}, 302),
        ("registry:alert_rollback", {"reason": NUL}, 302),
    ],
)
def test_a_control_character_in_any_reason_is_refused_and_changes_nothing(
    admin_client,
    objects,
    name,
    fields,
    status,
):
    before = _state()
    response = admin_client.post(path_of(name, objects), fields, follow=status == 302)
    if status == 302:
        assert response.redirect_chain and response.status_code == 200
    else:
        assert response.status_code == status
    if status == 302:  # the review forms refuse a NUL with their own words
        assert "control characters" in response.content.decode()
    assert _state() == before
