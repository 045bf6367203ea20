"""Fixtures the metrics tests share."""

import pytest

from tests.support.metrics import flywheel_loop


@pytest.fixture
def loop(api, annotator, admin):
    """One turn of the flywheel over fixed days: ingest, curation, review, a frozen version,
    a gated and promoted model."""
    return flywheel_loop(api, annotator, admin)
