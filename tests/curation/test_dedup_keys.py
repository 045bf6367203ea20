"""The dedup keys: every candidate listed under each of its keys
(`curation_deduplisting`), which is all dedup reads to find a chunk's earlier matches,
from the listing's primary key alone, held by one lock (`candidates.dedup_keys_lock`);
the migrations that moved the lists of the claim rows' arrays into the listing (and back,
and the lock rows back);
and a chunk overtaken on a key between reading and checking it, which decides again (and
checks again) only when what overtook it changes one of its verdicts, and stores again only
the rows that differ; each check reads only what was listed since the one before."""

import importlib
import threading

import psycopg
import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext

from curation import dedup_earlier, pipeline
from curation.candidates import dedup_keys, dedup_listed_since, dedup_matches
from curation.models import Candidate, DedupListing, FilterDecision, Interaction
from curation.rollups import CURATION_TABLE, curation_metrics_rebuild
from review.models import ReviewItem
from tests.support.curation import GOOD_EDIT, edited, no_toxicity, rollup_sums

pytestmark = pytest.mark.django_db

OLD_FILL = "curation.migrations.0018_dedupclaim_candidate_ids_replaces_lsh_gin"
LISTING_FILL = "curation.migrations.0019_deduplisting"
ARRAYS_REFILL = "curation.migrations.0020_dedupclaim_lock_rows_only"
LOCK_ROWS_BACK = "curation.migrations.0021_dedup_one_lock_no_exact_key_index"
SAME = [{"role": "user", "content": "How do I reset my password?"}]


def key_table() -> dict[int, list[int]]:
    table: dict[int, list[int]] = {}
    for key, pk in DedupListing.objects.order_by("key", "candidate_id").values_list(
        "key", "candidate_id"
    ):
        table.setdefault(key, []).append(pk)
    return table


def curated_duplicates() -> list[Candidate]:
    no_toxicity()
    rows = [
        edited("k1", messages=SAME),
        edited("k2", messages=SAME),
        edited("k3", messages=SAME, final=GOOD_EDIT.replace("spam first", "spam folder first")),
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


def test_the_migrations_list_stored_candidates_as_curation_does_and_back():
    curated_duplicates()
    listed = key_table()
    with connection.cursor() as cursor:
        # 0021 undone: a lock row for every key listed.
        cursor.execute("CREATE TABLE curation_dedupclaim (key bigint PRIMARY KEY)")
        cursor.execute(importlib.import_module(LOCK_ROWS_BACK).REGISTER)
        cursor.execute("SELECT key FROM curation_dedupclaim")
        assert {row[0] for row in cursor.fetchall()} == set(listed)
        # The claim rows' arrays as they were before 0019, filled as 0018 did.
        cursor.execute("ALTER TABLE curation_dedupclaim ADD COLUMN candidate_ids bigint[]")
        cursor.execute(importlib.import_module(OLD_FILL).FILL)
        cursor.execute("TRUNCATE curation_deduplisting")
        cursor.execute(importlib.import_module(LISTING_FILL).FILL)
        assert key_table() == listed
        # 0020 undone: the arrays from the listing again.
        cursor.execute("UPDATE curation_dedupclaim SET candidate_ids = NULL")
        cursor.execute(importlib.import_module(ARRAYS_REFILL).REFILL)
        cursor.execute("SELECT key, candidate_ids FROM curation_dedupclaim")
        assert dict(cursor.fetchall()) == listed


def test_matches_are_read_from_the_listing_index_alone():
    candidates = curated_duplicates()
    keys = sorted({key for c in candidates for key in dedup_keys(c)})
    with CaptureQueriesContext(connection) as queries:
        listed = dedup_matches(keys)
    assert listed.ids == {c.pk for c in candidates}
    with connection.cursor() as cursor:
        # A table this small is read whole; the plan with scans off shows the index covers it.
        cursor.execute("SET LOCAL enable_seqscan = off")
        cursor.execute("SET LOCAL enable_bitmapscan = off")
        cursor.execute("EXPLAIN " + queries.captured_queries[0]["sql"])
        plan = "\n".join(row[0] for row in cursor.fetchall())
    assert "Index Only Scan using curation_deduplisting_pkey" in plan, plan


def _in_another_connection(work) -> None:
    try:
        work()
    finally:
        connection.close()


def _overtaken(monkeypatch, work) -> list[tuple[str, list[int]]]:
    """Patches the pipeline so that `work` runs in another connection and commits after
    the first chunk has read its keys' candidates and written its rows, before it locks
    the keys; returns the lock calls (whose candidates), made as the pipeline makes them."""
    lock, calls = pipeline.dedup_keys_lock, []

    def overtaken_lock(*, candidates):
        calls.append(("lock", [c.interaction_id for c in candidates]))
        if len(calls) == 1:
            worker = threading.Thread(target=_in_another_connection, args=[work])
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive()
        return lock(candidates=candidates)

    monkeypatch.setattr(pipeline, "dedup_keys_lock", overtaken_lock)
    return calls


def _curator(interaction_id: int):
    return lambda: pipeline.interactions_curate(interaction_ids=[interaction_id])


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("attempts", [3, 1], ids=["decides-again-and-checks", "then-locked"])
def test_a_chunk_overtaken_by_a_copy_decides_again(monkeypatch, settings, attempts):
    """With attempts to spare, the chunk decides again without the lock and checks again;
    with one, it has decided again once and then decides holding the lock (comparing with
    what that first redecision stored): either way one write each and the same rows."""
    monkeypatch.setattr(pipeline, "RACE_ATTEMPTS", attempts)
    # Rollup rows are shared by writers of one shard: off, so the other writer cannot
    # wait on this one's rollup rows while this one waits for it to finish.
    settings.FLYWHEEL_METRICS_ROLLUPS = False
    # Every passed candidate sampled (a stratum's first five are), no audit draws.
    no_toxicity(audit_rate=0, audit_rates={})
    mine, other = edited("race-1", messages=SAME), edited("race-2", messages=SAME)
    calls = _overtaken(monkeypatch, _curator(other.pk))
    counts = pipeline.interactions_curate(interaction_ids=[mine.pk])

    # One write each: the overtaken chunk rolled its sampling back (and its lock with it),
    # decided again, stored again what changed and locked again.
    assert calls == [("lock", [mine.pk]), ("lock", [other.pk]), ("lock", [mine.pk])]
    assert (counts["candidates"], counts["passed"], counts["failed"]) == (1, 0, 1)
    first = Candidate.objects.get(interaction=other)
    copy = Candidate.objects.get(interaction=mine)
    assert first.status == Candidate.Status.PASSED
    assert copy.failed_filter == "dedup_exact"
    assert copy.status_reason == dedup_earlier.EXACT_DUPLICATE.format(other=first.pk)
    assert set(Interaction.objects.values_list("curation_state", flat=True)) == {"done"}
    # Sampled on the verdicts as stored: the copy, drawn while it passed, is not queued.
    assert list(ReviewItem.objects.values_list("candidate_id", flat=True)) == [first.pk]
    # The first decisions were replaced: one set, and only stored candidates listed.
    assert FilterDecision.objects.filter(candidate=copy, filter="dedup_exact").count() == 1
    assert not FilterDecision.objects.filter(candidate=copy, passed=False).exclude(
        filter="dedup_exact"
    )
    assert {pk for ids in key_table().values() for pk in ids} == {first.pk, copy.pk}


def _reworded(text: str, words: int) -> str:
    # Every third word replaced: an estimated Jaccard of about 0.7 for 5 words, which
    # still shares LSH bands (tuned for 0.8) but is no near duplicate at 0.9.
    out = text.split()
    for i in range(words):
        out[i * 3] = f"also{i}"
    return " ".join(out)


@pytest.mark.django_db(transaction=True)
def test_a_chunk_overtaken_on_a_key_by_no_duplicate_keeps_its_write(monkeypatch, settings):
    settings.FLYWHEEL_METRICS_ROLLUPS = False
    no_toxicity()
    mine = edited("race-1", messages=SAME)
    other = edited("race-2", messages=SAME, final=_reworded(GOOD_EDIT, 5))
    calls = _overtaken(monkeypatch, _curator(other.pk))
    pipeline.interactions_curate(interaction_ids=[mine.pk])

    assert calls == [("lock", [mine.pk]), ("lock", [other.pk])]  # no second write
    first = Candidate.objects.get(interaction=other)
    second = Candidate.objects.get(interaction=mine)
    assert set(dedup_keys(first)) & set(dedup_keys(second))  # they do share a key
    assert (first.status, second.status) == ("passed", "passed")
    assert {pk for ids in key_table().values() for pk in ids} == {first.pk, second.pk}


@pytest.mark.django_db(transaction=True)
def test_a_chunk_overtaken_by_a_recuration_of_a_status_decides_again(monkeypatch, settings):
    """A candidate failed by a policy's length rule, re-curated under a policy that passes
    it between a chunk's read and its lock: the chunk, which read it failed, sees it again
    and fails its copy as a duplicate."""
    settings.FLYWHEEL_METRICS_ROLLUPS = False
    no_toxicity(min_words=100)
    earlier = edited("early", messages=SAME)
    pipeline.interactions_curate(interaction_ids=[earlier.pk])
    stored = Candidate.objects.get(interaction=earlier)
    assert stored.failed_filter == "length"
    policy = no_toxicity(min_words=5)
    mine = edited("late", messages=SAME)
    calls = _overtaken(
        monkeypatch,
        lambda: pipeline.candidates_recurate(policy=policy, candidate_ids=[stored.pk]),
    )
    pipeline.interactions_curate(interaction_ids=[mine.pk])

    assert calls == [("lock", [mine.pk]), ("lock", [mine.pk])]
    stored.refresh_from_db()
    assert stored.status == Candidate.Status.PASSED
    copy = Candidate.objects.get(interaction=mine)
    assert copy.status_reason == dedup_earlier.EXACT_DUPLICATE.format(other=stored.pk)


@pytest.mark.django_db(transaction=True)
def test_a_chunk_decided_again_stores_again_only_what_the_race_changed(monkeypatch, settings):
    settings.FLYWHEEL_METRICS_ROLLUPS = False
    no_toxicity()
    mine = edited("race-1", messages=SAME)
    apart = edited("apart", messages=[{"role": "user", "content": "Where is my invoice?"}])
    other = edited("race-2", messages=SAME)
    _overtaken(monkeypatch, _curator(other.pk))
    pipeline.interactions_curate(interaction_ids=[mine.pk, apart.pk])

    copy = Candidate.objects.get(interaction=mine)
    kept = Candidate.objects.get(interaction=apart)
    assert (copy.failed_filter, kept.status) == ("dedup_exact", Candidate.Status.PASSED)
    # The candidate no race touched keeps the decisions first written, in order before
    # the ones stored again for its copy.
    kept_ids = FilterDecision.objects.filter(candidate=kept).values_list("pk", flat=True)
    again = FilterDecision.objects.get(candidate=copy, filter="dedup_exact").pk
    assert max(kept_ids) < again


@pytest.mark.django_db(transaction=True)
def test_a_race_found_before_the_lock_costs_no_hold_and_keeps_the_rollup_exact(monkeypatch):
    """Another worker commits a copy after the chunk wrote its rows and its rollup, before
    it checks: the check without the lock finds it, the chunk decides again (its rollup
    with it) and takes the lock once, to find nothing new. The other copy has its own
    model, so the two writers share no rollup row (the other must not wait on this one
    while this one waits for it, in this test's one thread)."""
    no_toxicity(audit_rate=0, audit_rates={})
    mine = edited("race-1", messages=SAME)
    other = edited("race-2", messages=SAME, model="other-bot")
    check, lock, calls = pipeline._foreign_keys_check, pipeline.dedup_keys_lock, []

    def overtaken_check():
        if not calls:
            calls.append(("checked", None))
            worker = threading.Thread(target=_in_another_connection, args=[_curator(other.pk)])
            worker.start()
            worker.join(timeout=60)
            assert not worker.is_alive()
        return check()

    def counted_lock(*, candidates):
        calls.append(("lock", [c.interaction_id for c in candidates]))
        return lock(candidates=candidates)

    monkeypatch.setattr(pipeline, "_foreign_keys_check", overtaken_check)
    monkeypatch.setattr(pipeline, "dedup_keys_lock", counted_lock)
    pipeline.interactions_curate(interaction_ids=[mine.pk])

    assert calls == [("checked", None), ("lock", [other.pk]), ("lock", [mine.pk])]
    first = Candidate.objects.get(interaction=other)
    copy = Candidate.objects.get(interaction=mine)
    assert copy.status_reason == dedup_earlier.EXACT_DUPLICATE.format(other=first.pk)
    assert FilterDecision.objects.filter(candidate=copy, filter="dedup_exact").count() == 1
    incremental = rollup_sums(CURATION_TABLE)
    assert incremental[next(k for k in incremental if k[4] == "failed")] == 1
    curation_metrics_rebuild()
    assert rollup_sums(CURATION_TABLE) == incremental


_LIST_ONE = (
    "INSERT INTO curation_deduplisting (key, candidate_id, xid) "
    "VALUES (%s, %s, pg_current_xact_id()::text::bigint)"
)


@pytest.mark.django_db(transaction=True)
def test_each_check_reads_only_what_was_listed_since_the_read_before():
    """A transaction with a higher id than the chunk's that committed before the chunk's
    first read was seen by it: no later check reads it again (each check would otherwise
    re-read every chunk other workers committed since this one began, under the lock)."""
    params = connection.get_connection_params()
    params.pop("cursor_factory", None)
    params.pop("context", None)
    key = 4242
    with psycopg.connect(**params, autocommit=True) as other, transaction.atomic():
        with connection.cursor() as cursor:
            cursor.execute(_LIST_ONE, [key, 1])  # the chunk's own row: it has an id now
        other.execute(_LIST_ONE, [key, 2])  # a later transaction, committed
        listed = dedup_matches([key])
        assert listed.ids == {1, 2}
        first = dedup_listed_since(keys=[key], snapshot=listed.snapshot)
        assert first.pairs == []
        other.execute(_LIST_ONE, [key, 3])
        second = dedup_listed_since(keys=[key], snapshot=first.snapshot)
        assert second.pairs == [(key, 3)]
        assert dedup_listed_since(keys=[key], snapshot=second.snapshot).pairs == []
