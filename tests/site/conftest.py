import pytest

from tests.support.access import objects_make


@pytest.fixture
def objects(annotator2, admin):
    """One real row per model a URL names, for its keyword arguments."""
    return objects_make(annotator2, admin)
