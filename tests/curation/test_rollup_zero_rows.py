"""A rollup count that falls to zero leaves no row behind (issue 21 §1): the dashboard
and sampling read the rollup, so dead rows would make every read grow with history."""

import pytest

from curation import pipeline
from curation.models import Candidate, CurationMetricDay
from tests.support.curation import edited, no_toxicity

pytestmark = pytest.mark.django_db


def test_a_fact_that_moves_leaves_no_zero_row():
    no_toxicity()
    interaction = edited("z1")
    pipeline.interactions_curate(interaction_ids=[interaction.pk])
    assert CurationMetricDay.objects.get(metric="passed").n == 1
    # A stricter policy fails the candidate on re-curation: its "passed" fact goes away.
    strict = no_toxicity(band_high=0.11, band_low=0.10)
    pipeline.candidates_recurate(
        policy=strict, candidate_ids=list(Candidate.objects.values_list("pk", flat=True))
    )
    assert Candidate.objects.get().status == "failed"
    assert not CurationMetricDay.objects.filter(n=0).exists()
    assert not CurationMetricDay.objects.filter(metric="passed").exists()
    assert CurationMetricDay.objects.get(metric="failed", key="edit_band").n == 1
