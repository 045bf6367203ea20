"""Ingest results counted for Prometheus (`flywheel_events_ingested_total`, by kind and
status), once the transaction that stored them has committed: a rolled-back write counts
nothing."""

from collections import Counter
from functools import partial

from django.db import transaction

from flywheel_site.prometheus import events_ingested_count


def results_count(results: list[dict]) -> None:
    """Each result has `kind` (interaction, feedback, edit) and `status` (created,
    duplicate, rejected)."""
    tally = Counter((result["kind"], result["status"]) for result in results)
    transaction.on_commit(partial(_count, tally))


def _count(tally: Counter) -> None:
    for (kind, status), n in tally.items():
        events_ingested_count(kind=kind, status=status, n=n)
