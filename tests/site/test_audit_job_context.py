"""A row changed by a worker is attributable: its audit events name the RQ job."""

import django_rq
import pytest

from curation.models import CurationRun
from review.models import ReviewItem
from tests.support.curation import edits, no_toxicity
from tests.support.jobs import run_jobs

pytestmark = pytest.mark.django_db(transaction=True)


def test_rows_written_by_a_real_worker_carry_its_job_id():
    no_toxicity()
    edits(4)
    (job_id,) = django_rq.get_queue("curation").job_ids
    run_jobs("curation")
    events = ReviewItem.pgh_event_model.objects.select_related("pgh_context")
    assert events.exists()
    run = CurationRun.objects.get()
    contexts = {
        (m["job"], m["queue"], m["curation_run"]) for m in (e.pgh_context.metadata for e in events)
    }
    assert contexts == {(job_id, "curation", run.pk)}
