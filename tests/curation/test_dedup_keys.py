"""The dedup key table (`curation_dedupclaim`): every candidate listed under each of its
keys, which is all dedup reads to find a chunk's earlier matches; and the migration that
filled it from the candidates already stored lists them the same way."""

import importlib

import pytest
from django.db import connection

from curation import pipeline
from curation.candidates import dedup_keys
from curation.models import Candidate, DedupClaim
from tests.support.curation import GOOD_EDIT, edited, no_toxicity

pytestmark = pytest.mark.django_db

FILL_MIGRATION = "curation.migrations.0017_dedupclaim_candidate_ids_replaces_lsh_gin"


def key_table() -> dict[int, list[int]]:
    return dict(DedupClaim.objects.values_list("key", "candidate_ids"))


def curated_duplicates() -> list[Candidate]:
    no_toxicity()
    same = [{"role": "user", "content": "How do I reset my password?"}]
    rows = [
        edited("k1", messages=same),
        edited("k2", messages=same),
        edited("k3", messages=same, final=GOOD_EDIT.replace("spam first", "spam folder first")),
    ]
    pipeline.interactions_curate(interaction_ids=[i.pk for i in rows])
    return list(Candidate.objects.order_by("pk"))


def test_every_candidate_is_listed_under_each_of_its_keys_and_nowhere_else():
    candidates = curated_duplicates()
    table = key_table()
    expected: dict[int, set[int]] = {}
    for candidate in candidates:
        assert len(dedup_keys(candidate)) == 22
        for key in dedup_keys(candidate):
            expected.setdefault(key, set()).add(candidate.pk)
    assert {key: set(ids) for key, ids in table.items()} == expected
    # The exact copy shares all 22 keys with the first: one row per key, not per candidate.
    first, exact = candidates[0], candidates[1]
    assert all({first.pk, exact.pk} <= set(table[key]) for key in dedup_keys(first))
    assert [c.failed_filter for c in candidates] == ["", "dedup_exact", "dedup_near"]


def test_curating_again_lists_nothing_twice():
    candidates = curated_duplicates()
    before = key_table()
    pipeline.candidates_recurate(policy=candidates[0].policy)
    assert key_table() == before


def test_the_migration_lists_stored_candidates_as_curation_does():
    curated_duplicates()
    listed = key_table()
    fill = importlib.import_module(FILL_MIGRATION).FILL
    with connection.cursor() as cursor:
        cursor.execute("TRUNCATE curation_dedupclaim")
        cursor.execute(fill)
    assert key_table() == listed
