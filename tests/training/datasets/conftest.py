"""Fixtures the dataset tests share."""

import pytest

from training.datasets import services


@pytest.fixture
def dataset(admin):
    """Dataset "support", which takes gold pairs once they are 14 days old (modules whose
    tests need other options define their own)."""
    return services.dataset_create(name="support", user=admin, lag_days=14)
