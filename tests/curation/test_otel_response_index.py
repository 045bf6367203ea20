"""OTLP feedback finds the response it evaluates by gen_ai.response.id: the lookup reads
the expression index on (source, metadata #> '{otel,response_id}'), not every interaction
of the window (issue 19's notes)."""

from datetime import timedelta

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from curation.models import Interaction, Source
from curation.otel.selectors import interaction_event_id_for_response

pytestmark = pytest.mark.django_db

INDEX = "interaction_otel_response_idx"


def test_the_response_id_lookup_reads_its_expression_index():
    source = Source.objects.create(name="otel")
    now = timezone.now()
    # A busy hour: every interaction in the lookup's time window, so only the response id
    # narrows it down.
    Interaction.objects.bulk_create(
        Interaction(
            source=source,
            event_id=f"otel:{n}",
            occurred_at=now - timedelta(seconds=n),
            received_at=now,
            model="m",
            messages=[{"role": "user", "content": "hi"}],
            response="hello",
            metadata={"otel": {"response_id": f"chatcmpl-{n}"}} if n % 2 else {},
        )
        for n in range(3000)
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE curation_interaction")
    with CaptureQueriesContext(connection) as queries:
        found = interaction_event_id_for_response(
            source=source, response_id="chatcmpl-1201", around=now
        )
    assert found == "otel:1201"
    (lookup,) = queries.captured_queries
    with connection.cursor() as cursor:
        cursor.execute(f"EXPLAIN {lookup['sql']}")
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert INDEX in plan, plan
    assert "Seq Scan" not in plan, plan
