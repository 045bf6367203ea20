"""Every input on every page is bounded (issue 18, row 5): dates, integers, control
characters and full-text queries that used to reach PostgreSQL or Python's date arithmetic
are a 4xx now, and a property test puts hostile values into every form field and query
string of every page, as an admin (every role's pages): no server error."""

import inspect

import pytest
from django import forms as django_forms
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from curation import forms as curation_forms
from curation.models import CurationPolicy
from curation.selectors import websearch_text
from review import forms as review_forms
from review.models import Guideline
from tests.support.access import URLS, path_of
from tests.support.explorer import candidate
from training.datasets import forms as dataset_forms
from training.metrics import forms as metrics_forms
from training.webhooks import forms as webhook_forms

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("export_dir")]

NUL = "reason with a NUL\x00 byte"
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


def _field_names() -> list[str]:
    """Every field of every Django form the apps define, and the names pages' templates and
    views read straight from the request."""
    names = set(
        [
            "reason",
            "note",
            "body",
            "threshold",
            "filter",
            "decision",
            "hours",
            "before",
            "after",
            "v",
            "endpoint",
            "version",
            "number",
            "confirm",
            "enabled",
            "final_text",
            "reject_reason",
            "reject_reason_other",
            "share",
            "min_sample",
            "next",
            "days",
        ]
    )
    for module in (curation_forms, review_forms, dataset_forms, metrics_forms, webhook_forms):
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, django_forms.BaseForm) and cls.__module__ == module.__name__:
                names.update(cls.base_fields)
    return sorted(names)


FIELDS = _field_names()
values = st.sampled_from(HOSTILE) | st.text(max_size=40)


@pytest.fixture
def admin_client(admin):
    client = Client(raise_request_exception=False)
    client.force_login(admin)
    return client


@pytest.mark.slow
@settings(
    max_examples=300,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(data=st.data())
def test_no_hostile_form_or_query_string_makes_a_server_error(data, objects, admin_client):
    name = data.draw(st.sampled_from(sorted(URLS)), label="url")
    if name == "logout":
        return
    path = path_of(name, objects)
    fields = data.draw(st.dictionaries(st.sampled_from(FIELDS), values, max_size=6))
    method = data.draw(st.sampled_from(["get", "post"]))
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
