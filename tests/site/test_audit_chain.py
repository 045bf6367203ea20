"""The audit chain (flywheel_site.audit): every pghistory event is chained at commit by a
trigger, audit rows refuse UPDATE and DELETE, and verify_audit names the first broken
link when a superuser edits, deletes or inserts audit rows with the triggers bypassed.
Transactional tests: links are appended when the inserting transaction commits."""

import pytest
from django.core.management import CommandError, call_command
from django.db import DatabaseError, connection, transaction

from curation.models import Source
from flywheel_site.audit.models import AuditCheck, AuditLink, AuditRedaction
from flywheel_site.audit.services import AuditError, audit_event_redact, audit_verify, link_hash
from training.models import WebhookEndpoint, WebhookEvent
from training.webhooks.services import AUDIT_CHAIN_BROKEN, secret_generate

pytestmark = pytest.mark.django_db(transaction=True)

EVENTS = "curation_sourceevent"


def _sources(*names: str) -> list[int]:
    """Committed sources; returns the pgh_id of each one's insert event."""
    for name in names:
        with transaction.atomic():
            Source.objects.create(name=name)
    return list(
        Source.pgh_event_model.objects.filter(name__in=names)
        .order_by("pgh_id")
        .values_list("pgh_id", flat=True)
    )


def _as_superuser_bypassing_triggers(statement: str, params=()) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SET session_replication_role = replica")
        try:
            cursor.execute(statement, params)
        finally:
            cursor.execute("SET session_replication_role = DEFAULT")


def _link(pk: int) -> AuditLink:
    return AuditLink.objects.get(table_name=EVENTS, row_pk=pk)


def _verify_fails() -> list[str]:
    with pytest.raises(CommandError):
        call_command("verify_audit")
    check = AuditCheck.objects.latest("pk")
    assert not check.ok
    return check.problems


def test_it_chains_each_event_at_commit_and_verifies():
    first, second = _sources("a", "b")
    a, b = _link(first), _link(second)
    assert b.seq == a.seq + 1
    assert bytes(b.prev_hash) == bytes(a.hash)
    call_command("verify_audit")
    check = AuditCheck.objects.latest("pk")
    assert check.ok and check.problems == []
    assert check.links == AuditLink.objects.count() >= 2


def test_it_leaves_no_link_for_a_rolled_back_event():
    before = AuditLink.objects.count()
    with pytest.raises(RuntimeError), transaction.atomic():
        Source.objects.create(name="gone")
        raise RuntimeError
    assert AuditLink.objects.count() == before
    assert audit_verify().ok


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE curation_sourceevent SET name = 'x'",
        "DELETE FROM curation_sourceevent",
        "UPDATE audit_auditlink SET row_pk = row_pk + 1",
        "DELETE FROM audit_auditlink",
        "DELETE FROM audit_auditcheck",
    ],
)
def test_the_database_refuses_update_and_delete_of_audit_rows(statement):
    _sources("a")
    assert audit_verify().ok  # an AuditCheck row to refuse
    with pytest.raises(DatabaseError, match="append-only"), connection.cursor() as cursor:
        cursor.execute(statement)
    assert audit_verify().ok


def test_an_edited_event_row_is_caught_and_named():
    _, second = _sources("a", "b")
    _as_superuser_bypassing_triggers(
        "UPDATE curation_sourceevent SET name = 'z' WHERE pgh_id = %s", [second]
    )
    problems = _verify_fails()
    assert (
        problems[0] == f"link #{_link(second).seq} ({EVENTS} #{second}): the event row was edited"
    )


def test_a_deleted_event_row_is_caught_and_named():
    first, _ = _sources("a", "b")
    seq = _link(first).seq
    _as_superuser_bypassing_triggers("DELETE FROM curation_sourceevent WHERE pgh_id = %s", [first])
    assert _verify_fails()[0] == f"link #{seq} ({EVENTS} #{first}): the event row was deleted"


def test_an_event_row_inserted_bypassing_the_trigger_is_caught_and_named():
    _sources("a")
    _as_superuser_bypassing_triggers(
        "INSERT INTO curation_sourceevent "
        "(pgh_created_at, pgh_label, pgh_obj_id, id, name, created_at) "
        "VALUES (now(), 'insert', 999, 999, 'forged', now())"
    )
    forged = Source.pgh_event_model.objects.get(name="forged").pgh_id
    problems = _verify_fails()
    assert problems == [f"{EVENTS} #{forged}: 1 row(s) on no link (inserted bypassing the trigger)"]


def test_a_deleted_link_in_the_middle_is_caught_and_named():
    _, second, _ = _sources("a", "b", "c")
    seq = _link(second).seq
    _as_superuser_bypassing_triggers("DELETE FROM audit_auditlink WHERE seq = %s", [seq])
    problems = _verify_fails()
    assert problems[0] == f"links #{seq}..#{seq} are missing (deleted)"
    assert f"{EVENTS} #{second}: 1 row(s) on no link (inserted bypassing the trigger)" in problems


def test_a_cut_end_is_caught_by_the_head_an_earlier_check_verified():
    """Deleting the last link and its event row leaves a consistent shorter chain: the
    head the previous check recorded is what proves it was longer."""
    _, last = _sources("a", "b")
    seq = _link(last).seq
    assert audit_verify().head_seq == seq
    _as_superuser_bypassing_triggers("DELETE FROM audit_auditlink WHERE seq = %s", [seq])
    _as_superuser_bypassing_triggers("DELETE FROM curation_sourceevent WHERE pgh_id = %s", [last])
    problems = _verify_fails()
    assert problems == [
        f"link #{seq}, the head an earlier check verified, is gone or differs "
        "(the chain was cut or rewritten)"
    ]


def test_a_large_transaction_appends_in_linear_time():
    """5,000 events in one transaction: the lock row is locked, not updated per event."""
    with transaction.atomic():
        Source.objects.bulk_create([Source(name=f"bulk-{i}") for i in range(5000)])
    assert AuditLink.objects.filter(table_name=EVENTS).count() == 5000
    assert audit_verify().ok


def test_an_edited_link_is_caught_and_named():
    first, _ = _sources("a", "b")
    seq = _link(first).seq
    _as_superuser_bypassing_triggers(
        "UPDATE audit_auditlink SET content_hash = sha256('forged') WHERE seq = %s", [seq]
    )
    problems = _verify_fails()
    assert (
        problems[0]
        == f"link #{seq} ({EVENTS} #{first}): hash does not match its contents (link edited)"
    )


def test_a_rewritten_event_and_link_still_break_the_next_link():
    """Recomputing an edited row's content hash and link hash in place is not enough:
    the next link chains the old hash."""
    first, second = _sources("a", "b")
    link = _link(first)
    _as_superuser_bypassing_triggers(
        "UPDATE curation_sourceevent SET name = 'z' WHERE pgh_id = %s", [first]
    )
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT flywheel_audit_content_hash(to_jsonb(t), %s) "
            "FROM curation_sourceevent t WHERE pgh_id = %s",
            [link.columns, first],
        )
        content = bytes(cursor.fetchone()[0])
    forged = link_hash(bytes(link.prev_hash), content, EVENTS, first)
    _as_superuser_bypassing_triggers(
        "UPDATE audit_auditlink SET content_hash = %s, hash = %s WHERE seq = %s",
        [content, forged, link.seq],
    )
    problems = _verify_fails()
    assert problems[0] == (
        f"link #{link.seq + 1} ({EVENTS} #{second}): prev_hash does not match the link before it"
    )


def test_a_disabled_trigger_is_named():
    _sources("a")
    with connection.cursor() as cursor:
        cursor.execute(f"ALTER TABLE {EVENTS} DISABLE TRIGGER flywheel_audit_link")
    try:
        assert _verify_fails()[0] == f"trigger missing or disabled on {EVENTS}: flywheel_audit_link"
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE {EVENTS} ENABLE TRIGGER flywheel_audit_link")


def test_a_redaction_verifies_as_a_redaction():
    (first,) = _sources("private name")
    audit_event_redact(table=EVENTS, pk=first, columns=["name"], reason="erasure request")
    assert Source.pgh_event_model.objects.get(pgh_id=first).name == ""
    redaction = AuditRedaction.objects.get()
    assert AuditLink.objects.filter(table_name="audit_auditredaction", row_pk=redaction.pk).exists()
    check = audit_verify()
    assert check.ok and check.redactions == 1


@pytest.mark.parametrize(
    "kwargs",
    [
        {"table": EVENTS, "pk": 10**9, "columns": ["name"]},
        {"table": EVENTS, "pk": None, "columns": ["pgh_label"]},
        {"table": "curation_source", "pk": None, "columns": ["name"]},
    ],
)
def test_a_redaction_outside_the_controlled_path_is_refused(kwargs):
    (first,) = _sources("a")
    kwargs = {**kwargs, "pk": kwargs["pk"] or first}
    with pytest.raises(AuditError):
        audit_event_redact(reason="x", **kwargs)
    assert not AuditRedaction.objects.exists()
    assert Source.pgh_event_model.objects.get(pgh_id=first).name == "a"


def test_a_new_break_fires_one_webhook_event():
    WebhookEndpoint.objects.create(
        url="https://example.com/hook", event_types=[AUDIT_CHAIN_BROKEN], secret=secret_generate()
    )
    first, _ = _sources("a", "b")
    assert audit_verify().ok
    _as_superuser_bypassing_triggers(
        "UPDATE curation_sourceevent SET name = 'z' WHERE pgh_id = %s", [first]
    )
    audit_verify()
    audit_verify()
    events = WebhookEvent.objects.filter(type=AUDIT_CHAIN_BROKEN)
    assert events.count() == 1
    assert "the event row was edited" in events.get().data["first_problem"]
