"""Parquet beside the JSON Lines (same rows, same bytes every time, in the manifest) and the
OpenAI chat SFT and preference JSON Lines, validated line by line against the documented
shapes; `export_dataset --format`, the export API's `format` and the version page's file list."""

import hashlib
import json
import os
import subprocess
import sys
from datetime import timedelta
from io import StringIO
from pathlib import Path
from typing import get_args

import pyarrow.parquet as pq
import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from curation.services import api_token_create
from tests.support import training as th
from tests.support.api import ApiClient
from training.datasets import export, formats, services
from training.datasets.api import FileFormat
from training.datasets.formats import parquet
from training.models import GoldPair

pytestmark = pytest.mark.django_db

TRL_FORMATS = ["dpo_standard", "dpo_conversational", "sft_conversational"]
SPLITS = ("train", "eval")
OPENAI_ROLES = {"system", "developer", "user", "assistant"}


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def rows(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]


def build(admin, *, n=7, kind="preference", formats=TRL_FORMATS, name="support"):
    dataset = services.dataset_create(
        name=name, user=admin, kind=kind, formats=formats, eval_fraction=0.3
    )
    for _ in range(n):
        th.approved(occurred_at=timezone.now() - timedelta(days=30))
    return services.dataset_version_freeze(dataset=dataset, user=admin)[0]


@pytest.fixture
def small_row_groups(monkeypatch):
    # Several row groups from a few rows, so group boundaries are exercised.
    monkeypatch.setattr(parquet, "ROW_GROUP_ROWS", 2)


# --- Parquet -------------------------------------------------------------------------------


def test_parquet_holds_the_jsonl_rows_in_fixed_row_groups(admin, tmp_path, small_row_groups):
    version = build(admin)
    export.dataset_version_write(version=version, directory=tmp_path)
    for fmt in TRL_FORMATS:
        for split in SPLITS:
            table = pq.read_table(tmp_path / fmt / f"{split}.parquet")
            assert table.to_pylist() == rows(tmp_path / fmt / f"{split}.jsonl")
            assert table.num_rows == version.manifest["counts"][split]
    footer = pq.ParquetFile(tmp_path / "dpo_standard" / "train.parquet").metadata
    assert footer.num_row_groups == -(-version.manifest["counts"]["train"] // 2)
    assert footer.row_group(0).column(0).compression == "ZSTD"
    # The only key-value metadata is Arrow's schema: no timestamps, no paths.
    assert set(footer.metadata) == {b"ARROW:schema"}


def test_parquet_is_byte_identical_on_a_second_export_and_in_the_manifest(
    admin, tmp_path, small_row_groups
):
    version = build(admin)
    first = export.dataset_version_write(version=version, directory=tmp_path / "a")
    second = export.dataset_version_write(version=version, directory=tmp_path / "b")
    assert first == second
    names = [n for n in version.manifest["files"] if n.endswith(".parquet")]
    assert sorted(names) == sorted(f"{f}/{s}.parquet" for f in TRL_FORMATS for s in SPLITS)
    for name in names:
        stats = version.manifest["files"][name]
        assert sha(tmp_path / "a" / name) == sha(tmp_path / "b" / name) == stats["sha256"]
        assert (tmp_path / "a" / name).stat().st_size == stats["bytes"]
    assert export.dataset_version_verify(version=version) == []


@pytest.mark.slow  # loads Hugging Face datasets (seconds of imports)
def test_parquet_loads_with_datasets_offline(admin, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    version = build(admin)
    export.dataset_version_write(version=version, directory=tmp_path / "out")
    for fmt in TRL_FORMATS:
        loaded = datasets.load_dataset(
            "parquet",
            data_files={s: str(tmp_path / "out" / fmt / f"{s}.parquet") for s in SPLITS},
            cache_dir=str(tmp_path / "cache"),
        )
        for split in SPLITS:
            assert loaded[split].num_rows == version.manifest["counts"][split]
            assert loaded[split].to_list() == rows(tmp_path / "out" / fmt / f"{split}.jsonl")


# --- OpenAI shapes -------------------------------------------------------------------------


def check_message(message, roles=OPENAI_ROLES) -> None:
    assert set(message) == {"role", "content"}
    assert message["role"] in roles
    assert isinstance(message["content"], str) and message["content"]


def check_openai_sft(line: dict) -> None:
    assert set(line) == {"messages"}
    messages = line["messages"]
    assert len(messages) >= 2
    for message in messages:
        check_message(message)
    assert any(m["role"] == "user" for m in messages[:-1])
    assert messages[-1]["role"] == "assistant"


def check_openai_preference(line: dict) -> None:
    assert set(line) == {"input", "preferred_output", "non_preferred_output"}
    assert set(line["input"]) == {"messages"}
    for message in line["input"]["messages"]:
        check_message(message)
    assert line["input"]["messages"][-1]["role"] == "user"
    for side in ("preferred_output", "non_preferred_output"):
        assert len(line[side]) == 1
        check_message(line[side][0], roles={"assistant"})
    assert line["preferred_output"] != line["non_preferred_output"]


def test_openai_lines_have_the_documented_shapes(admin, tmp_path):
    version = build(admin)
    export.dataset_version_write(version=version, directory=tmp_path)
    for split in SPLITS:
        sft = (tmp_path / "openai_sft" / f"{split}.jsonl").read_bytes().splitlines()
        preference = (tmp_path / "openai_preference" / f"{split}.jsonl").read_bytes().splitlines()
        assert len(sft) == len(preference) == version.manifest["counts"][split]
        for raw in sft:
            check_openai_sft(json.loads(raw))
        for raw in preference:
            check_openai_preference(json.loads(raw))
    pair = GoldPair.objects.filter(memberships__version=version, memberships__split="train")
    pair = pair.order_by("pk")[0]
    first = rows(tmp_path / "openai_preference" / "train.jsonl")[0]
    assert first == {
        "input": {"messages": pair.prompt},
        "preferred_output": [{"role": "assistant", "content": pair.chosen}],
        "non_preferred_output": [{"role": "assistant", "content": pair.rejected}],
    }
    for name in ("openai_sft/train.jsonl", "openai_preference/eval.jsonl"):
        assert sha(tmp_path / name) == version.manifest["files"][name]["sha256"]


def test_an_sft_dataset_has_openai_sft_but_no_preference_file(admin, tmp_path):
    version = build(admin, kind="sft", formats=["sft_conversational"])
    written = export.dataset_version_write(version=version, directory=tmp_path)
    assert "openai_sft/train.jsonl" in written
    assert not any(name.startswith("openai_preference/") for name in export.file_names(version))
    for line in rows(tmp_path / "openai_sft" / "train.jsonl"):
        check_openai_sft(line)


def test_a_version_sealed_before_parquet_keeps_its_layout(admin, tmp_path, monkeypatch):
    monkeypatch.setattr(formats, "LAYOUT", 1)
    version = build(admin, n=4)
    monkeypatch.undo()
    assert version.manifest["manifest_format"] == 1
    export.dataset_version_write(version=version, directory=tmp_path)
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    expected = [f"{f}/{s}.jsonl" for f in TRL_FORMATS for s in SPLITS]
    assert written == sorted([*expected, "manifest.json"])
    assert export.dataset_version_verify(version=version) == []


# --- choosing a format ---------------------------------------------------------------------


def test_export_dataset_format_writes_only_that_kind_of_data_file(admin, tmp_path):
    version = build(admin)
    out = StringIO()
    call_command(
        "export_dataset",
        "support",
        "1",
        str(tmp_path),
        "--format",
        "parquet",
        "--no-progress",
        stdout=out,
    )
    written = sorted(str(p.relative_to(tmp_path)) for p in tmp_path.rglob("*") if p.is_file())
    parquet_files = [f"{f}/{s}.parquet" for f in TRL_FORMATS for s in SPLITS]
    assert written == sorted([*parquet_files, "README.md", "croissant.json", "manifest.json"])
    for name in parquet_files:
        assert sha(tmp_path / name) == version.manifest["files"][name]["sha256"]
    assert out.getvalue().strip() == f"Wrote 9 file(s) of support v1 to {tmp_path}."


def test_export_dataset_refuses_an_unknown_format(admin, tmp_path):
    build(admin, n=2)
    with pytest.raises(CommandError, match="invalid choice: 'csv'"):
        call_command("export_dataset", "support", "1", str(tmp_path), "--format", "csv")
    assert not any(tmp_path.iterdir())


@pytest.fixture
def exporter():
    _, raw = api_token_create(source_name="trainer", name="ci", scopes=["export"])
    return ApiClient(raw)


def test_the_api_lists_the_files_of_one_format_and_serves_them(admin, exporter):
    version = build(admin)
    base = "/api/v1/datasets/support/versions/1"
    listing = exporter.get(f"{base}?format=openai-preference")
    assert listing.status_code == 200
    names = [f["name"] for f in listing.json()]
    assert names == [
        "openai_preference/train.jsonl",
        "openai_preference/eval.jsonl",
        "README.md",
        "croissant.json",
        "manifest.json",
    ]
    first = listing.json()[0]
    assert first["sha256"] == version.manifest["files"][first["name"]]["sha256"]
    assert first["url"] == f"{base}/openai_preference/train.jsonl"
    response = exporter.get(f"{base}/dpo_standard/train.parquet")
    assert response.status_code == 200
    assert response["Content-Type"] == "application/vnd.apache.parquet"
    digest = hashlib.sha256(b"".join(response.streaming_content)).hexdigest()
    assert digest == version.manifest["files"]["dpo_standard/train.parquet"]["sha256"]


def test_the_api_refuses_an_unknown_format_with_a_clear_4xx(admin, exporter):
    build(admin, n=2)
    response = exporter.get("/api/v1/datasets/support/versions/1?format=csv")
    assert response.status_code == 422
    body = response.json()
    assert body["error"] == "invalid"
    assert "format" in json.dumps(body["errors"])


def test_the_openapi_schema_lists_every_format(client):
    assert set(get_args(FileFormat)) == set(formats.CHOICES)
    schema = client.get("/api/v1/openapi.json").json()
    operation = schema["paths"]["/api/v1/datasets/{name}/versions/{number}"]["get"]
    (parameter,) = [p for p in operation["parameters"] if p["name"] == "format"]
    assert json.dumps(parameter["schema"]).count('"openai-sft"') == 1
    assert set(_enum(parameter["schema"], schema)) == set(formats.CHOICES)


def _enum(node, schema) -> list:
    if "$ref" in node:
        name = node["$ref"].rsplit("/", 1)[-1]
        return _enum(schema["components"]["schemas"][name], schema)
    return node.get("enum") or [v for sub in node.get("anyOf", []) for v in _enum(sub, schema)]


def test_the_version_page_lists_every_file_with_size_hash_and_link(admin, as_user):
    version = build(admin)
    export.dataset_version_materialize(version=version)
    page = as_user(admin).get("/datasets/support/v1/")
    assert page.status_code == 200
    html = page.content.decode()
    files = export.version_files(version=version)
    assert [f["name"] for f in files] == export.file_names(version)
    for f in files:
        assert f'href="/datasets/support/v1/files/{f["name"]}"' in html
        assert f["sha256"] in html
        assert f">{f['bytes']}<" in html


@pytest.mark.slow
def test_web_processes_do_not_load_pyarrow_until_a_parquet_file_is_written():
    # Every web process imports the export module through the URLconf; pyarrow (about 30 MB)
    # must wait for the first Parquet file.
    code = (
        "import sys, django; django.setup(); import flywheel_site.urls; "
        "print('pyarrow' in sys.modules)"
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "flywheel_site.settings"}
    out = subprocess.run(
        [sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip().splitlines()[-1] == "False"
