"""The dedup key table (`curation_dedupclaim`): every candidate listed under each of its
keys, which is all dedup reads to find a chunk's earlier matches; the migration that
filled it from the candidates already stored lists them the same way; and a chunk that
another worker overtook on a key between reading and locking it is redone."""

import importlib
import threading

import pytest
from django.db import connection

from curation import dedup_earlier, pipeline
from curation.candidates import dedup_keys
from curation.models import Candidate, DedupClaim, FilterDecision, Interaction
from tests.support.curation import GOOD_EDIT, edited, no_toxicity

pytestmark = pytest.mark.django_db

FILL_MIGRATION = "curation.migrations.0018_dedupclaim_candidate_ids_replaces_lsh_gin"


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


def _curate_in_another_connection(interaction_id: int) -> None:
    try:
        pipeline.interactions_curate(interaction_ids=[interaction_id])
    finally:
        connection.close()


@pytest.mark.django_db(transaction=True)
def test_a_chunk_overtaken_on_a_key_is_redone_holding_its_keys_and_finds_the_copy(
    monkeypatch, settings
):
    # Rollup rows are shared by writers of one shard: off, so the other writer cannot
    # wait on this one's rollup rows while this one waits for it to finish.
    settings.FLYWHEEL_METRICS_ROLLUPS = False
    no_toxicity()
    same = [{"role": "user", "content": "How do I reset my password?"}]
    mine, other = edited("race-1", messages=same), edited("race-2", messages=same)
    claim, claims = pipeline.dedup_keys_claim, []

    def overtaken_claim(candidates):
        claims.append([c.interaction_id for c in candidates])
        if len(claims) == 1:
            # This chunk has read its keys' candidates and written its rows; another
            # worker curates the exact copy and commits before this one locks the keys.
            worker = threading.Thread(target=_curate_in_another_connection, args=[other.pk])
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive()
        return claim(candidates)

    monkeypatch.setattr(pipeline, "dedup_keys_claim", overtaken_claim)
    counts = pipeline.interactions_curate(interaction_ids=[mine.pk])

    assert claims == [[mine.pk], [other.pk], [mine.pk]]
    assert counts["candidates"] == 1
    first = Candidate.objects.get(interaction=other)
    copy = Candidate.objects.get(interaction=mine)
    assert first.status == Candidate.Status.PASSED
    assert copy.failed_filter == "dedup_exact"
    assert copy.status_reason == dedup_earlier.EXACT_DUPLICATE.format(other=first.pk)
    assert set(Interaction.objects.values_list("curation_state", flat=True)) == {"done"}
    # The first try's rows were rolled back: one set of decisions, and only stored
    # candidates listed under the keys.
    assert FilterDecision.objects.filter(candidate=copy, filter="dedup_exact").count() == 1
    assert {pk for ids in key_table().values() for pk in ids} == {first.pk, copy.pk}
