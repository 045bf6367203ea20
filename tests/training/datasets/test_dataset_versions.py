"""Freezing dataset versions: the lag, the stable split, the contamination guard, frozen
membership enforced by the database, idempotent and concurrent freezes, the manifest hash
chain and verify_datasets."""

import threading
from datetime import timedelta
from io import StringIO

import pghistory
import pgtrigger
import pytest
from django.core.management import call_command
from django.db import DatabaseError, connection, connections, transaction
from django.utils import timezone

from tests.support import training as th
from tests.support.training import days_ago
from training.datasets import canonical as gold
from training.datasets import export, services
from training.models import DatasetVersion, GoldPair, Membership

pytestmark = pytest.mark.django_db


def members(version, split=None):
    rows = version.members.all()
    if split:
        rows = rows.filter(split=split)
    return set(rows.values_list("pair_id", flat=True))


def test_freeze_takes_only_pairs_older_than_the_lag(dataset, admin):
    old = [th.approved(occurred_at=days_ago(20)) for _ in range(3)]
    th.approved(occurred_at=days_ago(3))  # inside the lag: not yet
    version, created = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert created
    assert version.number == 1
    assert version.status == DatasetVersion.Status.FROZEN
    selected = GoldPair.objects.filter(pk__in=members(version))
    assert {p.outcome_id for p in selected} == {o.pk for o in old}
    assert version.cutoff <= timezone.now() - timedelta(days=14)
    assert version.manifest["counts"]["train"] + version.manifest["counts"]["eval"] == 3


def test_a_zero_lag_takes_everything_up_to_now(admin):
    dataset = services.dataset_create(name="fresh", user=admin, lag_days=0)
    th.approved(occurred_at=timezone.now() - timedelta(minutes=1))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert len(members(version)) == 1


def test_the_lag_is_per_dataset(admin):
    th.approved(occurred_at=days_ago(5))
    week = services.dataset_create(name="week", user=admin, lag_days=7)
    three = services.dataset_create(name="three", user=admin, lag_days=3)
    assert len(members(services.dataset_version_freeze(dataset=week, user=admin)[0])) == 0
    assert len(members(services.dataset_version_freeze(dataset=three, user=admin)[0])) == 1


def test_the_split_is_a_deterministic_function_of_the_pair(dataset, admin):
    for _ in range(60):
        th.approved(occurred_at=days_ago(30))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    for pair in GoldPair.objects.all():
        expected = "eval" if gold.split_bucket(pair.lineage_key) < 0.10 else "train"
        membership = version.members.get(pair=pair)
        assert membership.split in (expected, "excluded")


def test_a_pair_never_moves_from_eval_to_train_in_a_later_version(dataset, admin):
    for _ in range(80):
        th.approved(occurred_at=days_ago(30))
    first, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    eval_first = members(first, "eval")
    assert eval_first  # 80 pairs at 10%: some land in eval
    # Lower the eval fraction and add data: the old eval pairs must stay in eval.
    dataset.eval_fraction = 0.0
    dataset.save()
    for _ in range(10):
        th.approved(occurred_at=days_ago(30))
    second, created = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert created and second.number == 2
    assert eval_first <= members(second, "eval")
    assert not eval_first & members(second, "train")
    assert len(members(second)) == 90


def test_a_corrected_pair_stays_in_its_split_and_the_old_one_leaves(dataset, admin):
    for _ in range(40):
        th.approved(occurred_at=days_ago(30))
    first, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    old = GoldPair.objects.get(pk=sorted(members(first, "eval"))[0])
    fixed = services.gold_pair_correct(pair=old, chosen="Corrected answer.", user=admin, reason="x")
    second, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert fixed.pk in members(second, "eval")
    left = second.members.get(pair=old)
    assert (left.split, left.reason, left.detail) == ("excluded", "superseded", {"by": fixed.pk})


def test_exact_copies_of_a_pair_share_one_split(admin):
    dataset = services.dataset_create(name="copies", user=admin, eval_fraction=0.5)
    prompt, answer, bad = th.text(1, 40), th.text(2, 60), th.text(3, 60)
    for _ in range(8):
        th.approved(occurred_at=days_ago(30), prompt=prompt, chosen=answer, rejected=bad)
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    # One content hash, one lineage key, one bucket: copies cannot straddle the split.
    splits = set(version.members.values_list("split", flat=True))
    assert splits in ({"train"}, {"eval"})


def test_the_contamination_guard_removes_near_duplicates_of_eval_pairs(admin):
    dataset = services.dataset_create(name="guarded", user=admin, eval_fraction=0.5)
    answer = th.text(7, 80)
    outcomes = [
        # Near duplicates: the same long answer with one word changed each time.
        th.approved(occurred_at=days_ago(30), prompt="same question", chosen=f"{answer} v{i}")
        for i in range(16)
    ]
    assert len(outcomes) == 16
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    eval_ids, train_ids = members(version, "eval"), members(version, "train")
    contaminated = version.members.filter(reason="contaminated")
    assert eval_ids  # half go to eval
    assert not train_ids  # every train copy was a near duplicate of an eval one
    assert contaminated.count() == 16 - len(eval_ids)
    detail = contaminated.first().detail
    assert detail["eval_pair"] in eval_ids and detail["jaccard"] >= 0.9
    assert version.manifest["counts"]["excluded"]["contaminated"] == contaminated.count()


def test_unrelated_train_pairs_pass_the_guard(dataset, admin):
    for _ in range(30):
        th.approved(occurred_at=days_ago(30))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert not version.members.filter(reason="contaminated").exists()


# --- immutability ---------------------------------------------------------------------------


@pytest.fixture
def frozen(dataset, admin):
    for _ in range(5):
        th.approved(occurred_at=days_ago(30))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    return version


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE training_membership SET split = 'eval'",
        "DELETE FROM training_membership",
        "INSERT INTO training_membership (version_id, pair_id, split, reason) "
        "SELECT {version}, id, 'train', '' FROM training_goldpair LIMIT 1",
    ],
)
def test_the_database_refuses_any_change_to_a_frozen_membership(frozen, sql):
    th.approved(occurred_at=days_ago(30))
    services.gold_pairs_sync()
    before = members(frozen)
    with (
        pytest.raises(DatabaseError, match="membership of a frozen dataset version"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql.format(version=frozen.pk))
    assert members(frozen) == before


@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE training_datasetversion SET manifest_sha256 = repeat('0', 64)",
        "UPDATE training_datasetversion SET cutoff = now()",
        "UPDATE training_datasetversion SET status = 'draft'",
        "DELETE FROM training_datasetversion",
    ],
)
def test_the_database_refuses_to_rewrite_or_delete_a_frozen_version(frozen, sql):
    with (
        pytest.raises(DatabaseError, match=r"Cannot (update|delete) rows"),
        transaction.atomic(),
        connection.cursor() as cursor,
    ):
        cursor.execute(sql)
    assert DatasetVersion.objects.get().manifest_sha256 == frozen.manifest_sha256


# --- idempotency and concurrency ------------------------------------------------------------


def test_freezing_again_with_nothing_new_returns_the_same_version(frozen, dataset, admin):
    again, created = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert (again.pk, created) == (frozen.pk, False)
    assert DatasetVersion.objects.count() == 1


def test_a_freeze_naming_a_number_already_frozen_returns_it(frozen, dataset, admin):
    th.approved(occurred_at=days_ago(30))
    again, created = services.dataset_version_freeze(dataset=dataset, user=admin, number=1)
    assert (again.pk, created) == (frozen.pk, False)


@pytest.mark.django_db(transaction=True)
def test_two_admins_freezing_at_once_get_one_version(admin, export_dir):
    dataset = services.dataset_create(name="race", user=admin)
    for _ in range(20):
        th.approved(occurred_at=days_ago(30))
    barrier = threading.Barrier(2)
    results, errors = [], []

    def click():
        try:
            barrier.wait()
            results.append(services.dataset_version_freeze(dataset=dataset, user=admin, number=1))
        except Exception as error:  # surfaced by the assertion below
            errors.append(error)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=click) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert DatasetVersion.objects.filter(dataset=dataset).count() == 1
    assert sorted(created for _, created in results) == [False, True]
    assert len({version.pk for version, _ in results}) == 1


# --- manifest and hash chain ----------------------------------------------------------------


def test_the_manifest_records_counts_files_provenance_and_the_previous_hash(frozen, dataset, admin):
    manifest = frozen.manifest
    assert manifest["dataset"] == "support" and manifest["version"] == 1
    assert manifest["previous_manifest_sha256"] is None
    assert manifest["counts"]["train"] + manifest["counts"]["eval"] == 5
    assert manifest["counts"]["by_task_type"]
    assert (
        manifest["policy_versions"] and manifest["reviewers"] and manifest["models"] == ["bot-v1"]
    )
    assert set(manifest["files"]) == {
        f"{folder}/{split}.{ext}"
        for folder, exts in (
            ("dpo_conversational", ("jsonl", "parquet")),
            ("dpo_standard", ("jsonl", "parquet")),
            ("openai_sft", ("jsonl",)),
            ("openai_preference", ("jsonl",)),
        )
        for split in ("train", "eval")
        for ext in exts
    }
    assert manifest["cutoff"] == frozen.cutoff.isoformat()
    assert frozen.manifest_sha256 == gold.sha256_hex(export.manifest_bytes(manifest))
    th.approved(occurred_at=days_ago(30))
    second, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert second.previous == frozen
    assert second.previous_manifest_sha256 == frozen.manifest_sha256
    assert second.manifest["previous_manifest_sha256"] == frozen.manifest_sha256


def test_verify_datasets_passes_on_intact_data(frozen):
    out = StringIO()
    call_command("verify_datasets", stdout=out)
    assert "1 version(s) verified, no mismatch" in out.getvalue()


def _verify() -> tuple[int, str]:
    out, err = StringIO(), StringIO()
    with pytest.raises(SystemExit) as exit_info:
        call_command("verify_datasets", stdout=out, stderr=err)
    return exit_info.value.code, out.getvalue() + err.getvalue()


def test_verify_datasets_catches_an_edited_gold_row(frozen):
    pair_id = min(members(frozen, "train") | members(frozen, "eval"))
    # Someone with database rights goes around the trigger.
    with pgtrigger.ignore("training.GoldPair:gold_append_only"), connection.cursor() as cursor:
        cursor.execute("UPDATE training_goldpair SET chosen = 'poisoned' WHERE id = %s", [pair_id])
    code, output = _verify()
    assert code == 1
    assert f"#{pair_id}" in output
    assert "no longer match their content hash" in output
    assert "files." in output  # the file hashes in the manifest no longer match


def test_verify_datasets_catches_a_rewritten_manifest_and_the_broken_chain(frozen, dataset, admin):
    th.approved(occurred_at=days_ago(30))
    services.dataset_version_freeze(dataset=dataset, user=admin)
    forged = dict(frozen.manifest, code_version="forged")
    with (
        pgtrigger.ignore("training.DatasetVersion:version_frozen_read_only"),
        pghistory.context(reason="test"),
    ):
        DatasetVersion.objects.filter(pk=frozen.pk).update(
            manifest=forged, manifest_sha256=gold.sha256_hex(export.manifest_bytes(forged))
        )
    code, output = _verify()
    assert code == 1
    assert "support v2: the hash chain is broken" in output
    assert "support v1: manifest field code_version differs from the data" in output


def test_verify_datasets_catches_a_removed_member(frozen):
    with (
        pgtrigger.ignore("training.Membership:membership_frozen"),
        connection.cursor() as cursor,
    ):
        cursor.execute(
            "DELETE FROM training_membership WHERE id = (SELECT min(id) FROM training_membership)"
        )
    code, output = _verify()
    assert code == 1
    assert "manifest field members_sha256 differs" in output
    assert "manifest field counts." in output


def test_membership_of_a_frozen_version_has_one_row_per_selected_pair(frozen):
    assert Membership.objects.filter(version=frozen).count() == 5


def test_verify_catches_an_exported_file_edited_on_disk(frozen):
    directory = export.dataset_version_materialize(version=frozen)
    assert export.dataset_version_verify(version=frozen) == []
    edited = directory / frozen.formats[0] / "train.jsonl"
    edited.write_bytes(edited.read_bytes() + b'{"prompt": "smuggled"}\n')

    problems = export.dataset_version_verify(version=frozen)

    assert problems == [f"{frozen}: exported file {edited} does not match the manifest"]
