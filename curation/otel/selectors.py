"""Reads for OTLP ingest."""

from datetime import datetime, timedelta

from curation.models import Interaction, Source

# How far before its feedback an evaluated response is looked for: the lookup reads
# the occurred_at index over this window only, never the whole table.
RESPONSE_WINDOW = timedelta(days=1)


def interaction_event_id_for_response(
    *, source: Source, response_id: str, around: datetime
) -> str | None:
    """The event id of the interaction that recorded gen_ai.response.id `response_id`.
    Reads the expression index interaction_otel_response_idx; no ORDER BY (any match is the
    one: a response id is recorded once), which would tempt the planner to walk the
    primary key instead."""
    found = Interaction.objects.filter(
        source=source,
        occurred_at__gte=around - RESPONSE_WINDOW,
        occurred_at__lte=around + timedelta(hours=1),
        metadata__otel__response_id=response_id,
    ).values_list("event_id", flat=True)[:1]
    return next(iter(found), None)
