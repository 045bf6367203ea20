"""A single interaction outside any transaction (as a web request writes it): one
statement, its own transaction, no savepoint; a failure writes nothing and leaves the
connection usable; the rollup it keeps equals a rebuild."""

import pytest
from django.db import DataError, connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone
from psycopg.pq import TransactionStatus

from curation.ingest_rows import prepare_interaction
from curation.models import Feedback, Interaction
from curation.rollups import CURATION_TABLE
from curation.schemas import InteractionIn
from curation.services import batch_ingest, rows_write
from tests.support import factories
from tests.support.curation import source
from training.datasets.rollups import metrics_rebuild

pytestmark = pytest.mark.django_db(transaction=True)


def _row(event_id: str):
    return prepare_interaction(
        InteractionIn.model_validate(factories.interaction(event_id)), now=timezone.now()
    )


def _rollup() -> dict:
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT day, metric, key, sum(n) FROM {CURATION_TABLE} "  # noqa: S608
            "GROUP BY 1, 2, 3 HAVING sum(n) <> 0"
        )
        return {tuple(row[:3]): row[3] for row in cursor.fetchall()}


def test_it_is_one_statement_in_its_own_transaction():
    assert connection.get_autocommit()
    where, row = source(), _row("one")
    with CaptureQueriesContext(connection) as queries:
        outcome = rows_write(source=where, interactions=[row], feedback=[])
    assert len(queries) == 1, [q["sql"][:40] for q in queries]
    assert "WITH new_rows AS" in queries[0]["sql"]
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert Interaction.objects.get().pk == outcome.interactions["one"]


def test_a_failing_statement_writes_nothing_and_leaves_the_connection_usable():
    row = _row("bad")
    row.messages = "{not json"
    with pytest.raises(DataError):
        rows_write(source=source(), interactions=[row], feedback=[])
    assert connection.connection.info.transaction_status == TransactionStatus.IDLE
    assert not Interaction.objects.exists()
    rows_write(source=source(), interactions=[_row("good")], feedback=[])
    assert list(Interaction.objects.values_list("event_id", flat=True)) == ["good"]


def test_the_rollup_it_keeps_equals_a_rebuild():
    feedback = [factories.feedback("late", "f1", kind="thumbs_up")]
    batch_ingest(source=source(), interactions=[], feedback=feedback, edits=[])
    rows_write(source=source(), interactions=[_row("late")], feedback=[])
    rows_write(source=source(), interactions=[_row("late")], feedback=[])  # a replay
    rows_write(source=source(), interactions=[_row("alone")], feedback=[])
    assert Feedback.objects.get().interaction.event_id == "late"
    incremental = _rollup()
    assert {(k[1], k[2]): n for k, n in incremental.items()} == {
        ("interactions", ""): 2,
        ("with_feedback", ""): 1,
        ("feedback", "thumbs_up"): 1,
    }
    metrics_rebuild()
    assert _rollup() == incremental
