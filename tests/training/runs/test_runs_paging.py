"""The runs list pages by keyset like every other list (flywheel_site.keyset): one page
size, and the older page starts after the last run shown."""

from datetime import UTC, datetime

import pytest

from flywheel_site.keyset import PAGE_SIZE
from tests.support import factories
from training.runs.models import TrainingRun

pytestmark = pytest.mark.django_db

FINISHED = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)


def test_the_runs_list_links_to_the_older_page_and_that_page_ends_the_list(as_user, admin, version):
    runs = TrainingRun.objects.bulk_create(
        [
            TrainingRun(
                **factories.training_run_fields(version, status="failed", finished_at=FINISHED)
            )
            for _ in range(PAGE_SIZE + 1)
        ]
    )
    oldest = min(run.pk for run in runs)
    client = as_user(admin)
    first = client.get("/training/runs/")
    assert [run.pk for run in first.context["runs"]] == sorted(
        (run.pk for run in runs), reverse=True
    )[:PAGE_SIZE]
    assert first.context["next_before"] == oldest + 1
    older = client.get(f"/training/runs/?before={oldest + 1}")
    assert [run.pk for run in older.context["runs"]] == [oldest]
    assert older.context["next_before"] is None
