"""Exports: streamed through a server-side cursor, byte-identical every time, written once per
version, exactly what TRL loads (proved by loading them with datasets and training on them),
and exporting a past version changes nothing."""

import hashlib
import json
from datetime import timedelta
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from tests.support import training as th
from training.datasets import export, services
from training.errors import TrainingError
from training.models import DatasetVersion, GoldPair, Membership

pytestmark = pytest.mark.django_db

ALL_FORMATS = ["dpo_standard", "dpo_conversational", "sft_conversational"]


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(admin, *, name="support", n=30, formats=ALL_FORMATS, eval_fraction=0.2):
    dataset = services.dataset_create(
        name=name, user=admin, formats=formats, eval_fraction=eval_fraction
    )
    for _ in range(n):
        th.approved(occurred_at=timezone.now() - timedelta(days=30))
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    return dataset, version


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def test_a_re_export_is_byte_identical_and_matches_the_manifest(admin, tmp_path):
    _, version = build(admin)
    first = export.dataset_version_write(version=version, directory=tmp_path / "a")
    second = export.dataset_version_write(version=version, directory=tmp_path / "b")
    assert first == second
    for name, stats in version.manifest["files"].items():
        assert sha(tmp_path / "a" / name) == sha(tmp_path / "b" / name) == stats["sha256"]
    assert sha(tmp_path / "a" / "manifest.json") == version.manifest_sha256


def test_each_format_has_one_file_per_split_plus_the_manifest(admin, tmp_path):
    _, version = build(admin)
    export.dataset_version_write(version=version, directory=tmp_path)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    per_split = [
        f"{fmt}/{split}.{ext}"
        for fmt in ALL_FORMATS
        for split in ("train", "eval")
        for ext in ("jsonl", "parquet")
    ]
    openai = [
        f"openai_{shape}/{s}.jsonl" for shape in ("sft", "preference") for s in ("train", "eval")
    ]
    cards = ["README.md", "croissant.json"]
    assert written == sorted([*per_split, *openai, *cards, "manifest.json"])
    counts = version.manifest["counts"]
    for fmt in ALL_FORMATS:
        assert len(rows(tmp_path / fmt / "train.jsonl")) == counts["train"]
        assert len(rows(tmp_path / fmt / "eval.jsonl")) == counts["eval"]


def test_lines_are_exactly_the_trl_formats(admin, tmp_path):
    _, version = build(admin, n=3, eval_fraction=0.0)
    export.dataset_version_write(version=version, directory=tmp_path)
    pair = GoldPair.objects.filter(
        memberships__version=version, memberships__split="train"
    ).order_by("pk")[0]
    user = pair.prompt[0]["content"]
    standard = rows(tmp_path / "dpo_standard/train.jsonl")[0]
    assert standard == {"prompt": user + "\n", "chosen": pair.chosen, "rejected": pair.rejected}
    conversational = rows(tmp_path / "dpo_conversational/train.jsonl")[0]
    assert conversational == {
        "prompt": [{"role": "user", "content": user}],
        "chosen": [{"role": "assistant", "content": pair.chosen}],
        "rejected": [{"role": "assistant", "content": pair.rejected}],
    }
    sft = rows(tmp_path / "sft_conversational/train.jsonl")[0]
    assert sft == {
        "messages": [
            {"role": "user", "content": user},
            {"role": "assistant", "content": pair.chosen},
        ]
    }


def test_json_is_canonical_utf8_with_sorted_keys(admin, tmp_path):
    dataset = services.dataset_create(name="intl", user=admin, eval_fraction=0.0)
    th.approved(
        occurred_at=timezone.now() - timedelta(days=30),
        prompt="Grüße aus Köln 日本",
        chosen="Danke — 東京",
        rejected="nein",
    )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    export.dataset_version_write(version=version, directory=tmp_path)
    raw = (tmp_path / "dpo_conversational/train.jsonl").read_bytes()
    assert (
        raw
        == (
            '{"chosen":[{"content":"Danke — 東京","role":"assistant"}],'
            '"prompt":[{"content":"Grüße aus Köln 日本","role":"user"}],'
            '"rejected":[{"content":"nein","role":"assistant"}]}\n'
        ).encode()
    )


def test_a_multi_turn_prompt_keeps_its_roles_in_the_standard_format():
    from training.datasets import canonical as gold

    prompt = gold.standard_prompt(
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi?"}]
    )
    assert prompt == "system: Be brief.\nuser: Hi?\nassistant:\n"


def test_rows_are_streamed_through_a_server_side_cursor(admin, tmp_path, monkeypatch):
    _, version = build(admin, n=12)
    monkeypatch.setattr(export, "FETCH_ROWS", 4)
    seen = []
    original = connection.chunked_cursor

    def spy():
        cursor = original()
        seen.append(cursor.cursor)
        return cursor

    monkeypatch.setattr(connection, "chunked_cursor", spy)
    export.dataset_version_write(version=version, directory=tmp_path)
    assert seen
    import psycopg

    assert all(isinstance(c, psycopg.ServerCursor) for c in seen)


def test_the_export_directory_is_written_once(admin, export_dir):
    _, version = build(admin, n=5)
    first = export.dataset_version_materialize(version=version)
    stamp = {p: p.stat().st_mtime_ns for p in first.rglob("*") if p.is_file()}
    again = export.dataset_version_materialize(version=version)
    assert again == first
    assert {p: p.stat().st_mtime_ns for p in again.rglob("*") if p.is_file()} == stamp
    assert first.parent.parent == export_dir
    assert first.name == f"v1-{version.manifest_sha256[:12]}"


def test_a_past_version_exports_exactly_as_it_was_without_side_effects(admin, tmp_path):
    dataset, v1 = build(admin, n=10)
    before = export.dataset_version_write(version=v1, directory=tmp_path / "then")
    # The world moves on: more gold, a correction, a new version.
    for _ in range(5):
        th.approved(occurred_at=timezone.now() - timedelta(days=30))
    pair = GoldPair.objects.filter(memberships__version=v1, memberships__split="train").first()
    services.gold_pair_correct(pair=pair, chosen="Changed later.", user=admin, reason="fix")
    v2, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert v2.manifest_sha256 != v1.manifest_sha256
    counts = {m: m.objects.count() for m in (DatasetVersion, Membership, GoldPair)}
    v1 = DatasetVersion.objects.get(pk=v1.pk)
    with CaptureQueriesContext(connection) as queries:
        after = export.dataset_version_write(version=v1, directory=tmp_path / "now")
    assert after == before
    writes = [
        q["sql"]
        for q in queries
        if q["sql"].lstrip().upper().startswith(("INSERT", "UPDATE", "DELETE"))
    ]
    assert writes == []
    assert {m: m.objects.count() for m in counts} == counts


def test_a_draft_cannot_be_exported(admin, tmp_path):
    dataset = services.dataset_create(name="d", user=admin)
    draft = DatasetVersion.objects.create(
        dataset=dataset,
        number=1,
        kind="preference",
        lag_days=14,
        eval_fraction=0.1,
        near_dup_threshold=0.9,
        cutoff=timezone.now(),
    )
    with pytest.raises(TrainingError) as error:
        export.dataset_version_write(version=draft, directory=tmp_path)
    assert str(error.value) == export.ERR_NOT_FROZEN.format(version=draft)


def test_an_export_that_no_longer_matches_the_manifest_is_refused(admin, tmp_path):
    import pgtrigger

    _, version = build(admin, n=5)
    with pgtrigger.ignore("training.GoldPair:gold_append_only"):
        GoldPair.objects.filter(memberships__version=version).update(chosen="tampered")
    with pytest.raises(export.ExportMismatch, match="does not match the manifest"):
        export.dataset_version_write(version=version, directory=tmp_path)
    assert not list(tmp_path.rglob("*.jsonl"))


def test_the_export_dataset_command_writes_a_version_to_a_directory(admin, tmp_path):
    _, version = build(admin, n=6)
    out, err = StringIO(), StringIO()
    call_command("export_dataset", "support", "1", str(tmp_path / "out"), stdout=out, stderr=err)
    assert out.getvalue().strip() == f"Wrote 19 file(s) of support v1 to {tmp_path / 'out'}."
    assert "pairs" in err.getvalue()  # the tqdm progress bar
    assert sha(tmp_path / "out" / "manifest.json") == version.manifest_sha256


def test_the_export_dataset_command_names_a_missing_version(admin, tmp_path):
    build(admin, n=2)
    with pytest.raises(CommandError) as error:
        call_command("export_dataset", "support", "9", str(tmp_path))
    assert str(error.value) == "No frozen version 9 of dataset 'support'."


# --- the consumer: datasets and TRL ---------------------------------------------------------


@pytest.fixture
def exported(admin, tmp_path):
    _, version = build(admin, n=40)
    export.dataset_version_write(version=version, directory=tmp_path / "export")
    return tmp_path / "export", version


@pytest.mark.slow  # loads Hugging Face datasets (seconds of imports)
@pytest.mark.parametrize("fmt", ALL_FORMATS)
def test_every_format_loads_with_datasets_load_dataset(exported, fmt, tmp_path):
    from datasets import load_dataset
    from trl.data_utils import is_conversational

    directory, version = exported
    loaded = load_dataset(
        "json",
        data_files={
            "train": str(directory / fmt / "train.jsonl"),
            "eval": str(directory / fmt / "eval.jsonl"),
        },
        cache_dir=str(tmp_path / "cache"),
    )
    assert loaded["train"].num_rows == version.manifest["counts"]["train"]
    assert loaded["eval"].num_rows == version.manifest["counts"]["eval"]
    first = loaded["train"][0]
    assert is_conversational(first) is (fmt != "dpo_standard")
    expected = {"messages"} if fmt.startswith("sft") else {"prompt", "chosen", "rejected"}
    assert set(loaded["train"].column_names) == expected


@pytest.fixture(scope="module")
def tiny_lm(tmp_path_factory):
    from flywheel_site.demo.tinylm import build_tiny_lm

    return build_tiny_lm(tmp_path_factory.mktemp("tiny-lm"))


@pytest.mark.slow
@pytest.mark.parametrize(
    ("fmt", "method"),
    [("dpo_standard", "dpo"), ("dpo_conversational", "dpo"), ("sft_conversational", "sft")],
)
def test_trl_trains_on_every_exported_format(exported, tiny_lm, fmt, method, tmp_path):
    from training.runs.trainer import TrainConfig, train

    directory, version = exported
    result = train(
        export_dir=directory / fmt,
        config=TrainConfig(
            method=method,
            base_model_dir=tiny_lm,
            output_dir=tmp_path / "adapter",
            steps=4,
            batch_size=4,
            # The exported answers run past 96 tokens: a pair whose answer alone fills
            # max_length carries no signal and is skipped (training.runs.trainer.pair_fit).
            max_length=256,
        ),
    )
    assert result.n_train == version.manifest["counts"]["train"]
    assert result.steps == 4
    assert result.conversational is (fmt != "dpo_standard")
    assert (tmp_path / "adapter" / "adapter_config.json").is_file()
