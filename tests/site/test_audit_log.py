"""The global audit log (admins): filters by object type, action, actor and time, keyset
pages with no count over the table, CSV and JSONL streamed with the filter applied, and a
400 for a hostile filter."""

import csv
import io
import json

import pghistory
import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext

from curation.models import Source
from flywheel_site.audit.models import AuditLink

pytestmark = pytest.mark.django_db


def chain() -> None:
    """Append the links this test's (never committed) transaction owes."""
    with connection.cursor() as cursor:
        cursor.execute("SET CONSTRAINTS ALL IMMEDIATE")
        cursor.execute("SET CONSTRAINTS ALL DEFERRED")


@pytest.fixture
def history(admin, curator):
    """A source created by the admin in a request, renamed by a curator, deleted by a job."""
    with pghistory.context(user=admin.pk, url="/admin/curation/source/add/"):
        source = Source.objects.create(name="audited")
    with pghistory.context(user=curator.pk, url="/admin/curation/source/1/change/"):
        Source.objects.filter(pk=source.pk).update(name="=renamed")
    with pghistory.context(job="job-42", func="flywheel_site.audit.jobs.x", run=7):
        Source.objects.filter(pk=source.pk).delete()
    chain()
    return source


def shown(client, **query) -> list[tuple[str, str, str]]:
    response = client.get("/audit/log/", {"object_type": "curation.source", **query})
    assert response.status_code == 200
    return [(r.action, r.actor, r.via) for r in response.context["rows"]]


def test_filters_by_object_type_action_actor_and_time(admin_client, admin, curator, history):
    assert shown(admin_client) == [
        ("delete", "job flywheel_site.audit.jobs.x", "job job-42"),
        ("update", curator.username, "/admin/curation/source/1/change/"),
        ("insert", admin.username, "/admin/curation/source/add/"),
    ]
    assert [a for a, _, _ in shown(admin_client, action="update")] == ["update"]
    assert [a for a, _, _ in shown(admin_client, actor=admin.username)] == ["insert"]
    assert [a for a, _, _ in shown(admin_client, actor="job:job-42")] == ["delete"]
    assert shown(admin_client, since="2001-01-01", until="2001-01-02") == []
    other = admin_client.get("/audit/log/", {"object_type": "review.review"}).context["rows"]
    assert all(row.object_type == "review.review" for row in other)


def test_pages_are_keyset_pages_and_nothing_counts_the_table(admin_client):
    for n in range(55):
        Source.objects.create(name=f"s{n}")
    chain()
    with CaptureQueriesContext(connection) as queries:
        first = admin_client.get("/audit/log/", {"object_type": "curation.source"})
    assert "count(" not in " ".join(q["sql"].lower() for q in queries.captured_queries)
    page = first.context["page"]
    assert len(first.context["rows"]) == 50 and page.older is not None
    second = admin_client.get(
        "/audit/log/", {"object_type": "curation.source", "before": page.older}
    )
    seqs = [r.seq for r in first.context["rows"] + second.context["rows"]]
    assert len(seqs) == 55 and seqs == sorted(seqs, reverse=True)
    assert second.context["page"].older is None


def test_csv_and_jsonl_exports_stream_the_filtered_rows(admin_client, curator, history):
    response = admin_client.get("/audit/log.csv", {"actor": curator.username})
    assert response.streaming
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert [(r["object_type"], r["action"], r["actor"]) for r in rows] == [
        ("curation.source", "update", curator.username)
    ]
    response = admin_client.get("/audit/log.jsonl", {"object_type": "curation.source"})
    assert response.streaming
    lines = [json.loads(x) for x in b"".join(response.streaming_content).splitlines()]
    assert [line["action"] for line in lines] == ["delete", "update", "insert"]
    assert lines[0]["notes"]["run"] == 7


def test_a_csv_cell_that_would_run_as_a_formula_is_quoted(admin_client, history):
    with pghistory.context(user=None, url="=HYPERLINK(1)"):
        Source.objects.create(name="x")
    chain()
    body = b"".join(admin_client.get("/audit/log.csv").streaming_content).decode()
    assert "'=HYPERLINK(1)" in body and ",=HYPERLINK" not in body


@pytest.mark.parametrize(
    "query",
    [
        {"since": "9999-01-01T00:00"},
        {"since": "2026-02-01", "until": "2026-01-01"},
        {"actor": "nobody-by-this-name"},
        {"actor": "token:abc"},
        {"actor": "job:a b"},
        {"actor": "x\x00"},
        {"object_type": "auth.user"},
        {"action": "truncate"},
        {"before": "-1"},
        {"before": "99999999999999999999999"},
    ],
)
def test_a_hostile_filter_is_a_400_and_changes_nothing(admin_client, history, query):
    links = AuditLink.objects.count()
    for url in ("/audit/log/", "/audit/log.csv", "/audit/log.jsonl"):
        assert admin_client.get(url, query).status_code == 400, (url, query)
    assert AuditLink.objects.count() == links
