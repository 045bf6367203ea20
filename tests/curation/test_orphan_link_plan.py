"""Linking a batch's orphans must cost what the batch holds, not what the table holds,
whatever the planner's statistics say. They lag: autovacuum analyzes a table at most once a
minute, so a burst of orphans (feedback sent ahead of interactions that never come) is
invisible to it for a while. With a full index on feedback.interaction_id, such a stale
planner read every unlinked row to link a batch's; the index holds linked rows only now."""

import json

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from curation.models import Feedback
from tests.support import factories
from tests.support.curation import ingest, source

pytestmark = pytest.mark.django_db

ORPHANS = 3000


def _scans(plan: dict):
    yield plan
    for child in plan.get("Plans", []):
        yield from _scans(child)


def test_a_batch_links_its_orphans_through_their_index_when_statistics_are_stale():
    ingest(interactions=[factories.interaction("seen")])
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE curation_feedback")  # the statistics: no orphans at all
        cursor.execute(
            """
            INSERT INTO curation_feedback (source_id, event_id, interaction_event_id, kind,
                comment, occurred_at, received_at, user_hash, metadata, pii)
            SELECT %s, 'orphan-' || g, 'never-sent-' || g, 'thumbs_up', '', now(), now(), '',
                   '{}', '{}'
            FROM generate_series(1, %s) g
            """,
            [source().pk, ORPHANS],
        )
    early = factories.feedback("late", "early-fb", kind="thumbs_up")
    ingest(feedback=[early])

    with CaptureQueriesContext(connection) as queries:
        ingest(interactions=[factories.interaction(f"new-{i}") for i in range(40)]
               + [factories.interaction("late")])  # fmt: skip
    statements = [
        q["sql"]
        for q in queries.captured_queries
        if "interaction_event_id = n.event_id" in q["sql"] or "SET interaction_id" in q["sql"]
    ]
    assert len(statements) == 2  # the orphans found, then linked
    scans = [scan for sql in statements for scan in _feedback_scans(sql)]
    # Explained after the fact (the orphan is linked by then): what counts is the way in.
    assert [(n["Index Name"], n["Actual Loops"]) for n in scans] == [
        ("feedback_unlinked_event_idx", 41),  # one probe per interaction of the batch
        ("curation_feedback_pkey", 1),  # the one orphan found, linked by its id
    ]
    assert "interaction_event_id" in scans[0]["Index Cond"]
    assert scans[0].get("Rows Removed by Filter", 0) == 0  # no other source's rows read
    assert Feedback.objects.get(event_id="early-fb").interaction.event_id == "late"
    assert Feedback.objects.filter(interaction__isnull=True).count() == ORPHANS


def _feedback_scans(sql: str) -> list[dict]:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("EXPLAIN (ANALYZE, FORMAT JSON) " + sql)
        raw = cursor.fetchone()[0]  # json, or text if the column type is not adapted
        transaction.set_rollback(True)
    plan = (json.loads(raw) if isinstance(raw, str) else raw)[0]["Plan"]
    return [
        n
        for n in _scans(plan)
        if n.get("Relation Name") == "curation_feedback" and "Scan" in n["Node Type"]
    ]
