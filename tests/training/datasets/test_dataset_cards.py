"""The cards written with every frozen version: README.md with the Hugging Face YAML header
(the Hub and `datasets` read its configs) and croissant.json (Croissant 1.1 with the RAI
vocabulary 1.0, validated by mlcroissant), filled from what Flywheel knows."""

import json
from datetime import timedelta

import pytest
import yaml
from django.utils import timezone

from review.guidelines import guideline_update
from review.models import Guideline
from tests.support import training as th
from training.datasets import export, services
from training.datasets.cards import readme

pytestmark = pytest.mark.django_db

RAI_FIELDS = [
    "rai:dataCollection",
    "rai:dataCollectionTimeframe",
    "rai:dataAnnotationProtocol",
    "rai:annotationsPerItem",
    "rai:dataAnnotationAnalysis",
    "rai:machineAnnotationTools",
    "rai:personalSensitiveInformation",
    "rai:dataPreprocessingProtocol",
    "rai:dataLimitations",
]


@pytest.fixture
def exported(admin, tmp_path, settings):
    settings.FLYWHEEL_DATASET_LICENSE = "cc-by-4.0"
    guideline_update(body="Prefer the answer that is correct and kind.", user=admin)
    dataset = services.dataset_create(
        name="support",
        user=admin,
        eval_fraction=0.3,
        formats=["dpo_standard", "dpo_conversational"],
        description="Support answers our reviewers preferred.",
    )
    # A pair's split is a hash of its content: fixed texts, not numbered by the helper's
    # process-wide counter, make the version the same in every run (these give both splits).
    for n in range(8):
        # Half the pairs were reviewed twice, so agreement has something to measure.
        th.approved(
            occurred_at=timezone.now() - timedelta(days=30),
            reviewers=("rita", "sam") if n % 2 else ("rita",),
            prompt=f"Support question {n}: how do I reset my password on the support site?",
            chosen=f"Card answer {n}: open Settings, choose Security, then Reset password.",
            rejected=f"Card draft {n}: I am not sure, try searching the help pages.",
        )
    version, _ = services.dataset_version_freeze(dataset=dataset, user=admin)
    assert version.manifest["counts"]["train"] > 0 and version.manifest["counts"]["eval"] > 0
    export.dataset_version_write(version=version, directory=tmp_path / "out")
    return tmp_path / "out", version


def latest_guidelines() -> int:
    # The migrations seed a first version; the fixture adds the one in force at the freeze.
    return Guideline.objects.latest("version").version


def front_matter(path):
    text = path.read_text(encoding="utf-8")
    assert text.startswith("---\n")
    header, body = text[4:].split("\n---\n", 1)
    return yaml.safe_load(header), body


def test_the_readme_has_the_hub_header(exported):
    directory, version = exported
    header, _ = front_matter(directory / "README.md")
    assert header["license"] == "cc-by-4.0"
    assert header["task_categories"] == ["text-generation"]
    assert header["size_categories"] == ["n<1K"]
    # Parquet only: the Hub picks one loader per directory, so configs never mix formats.
    assert [c["config_name"] for c in header["configs"]] == ["dpo_standard", "dpo_conversational"]
    assert header["configs"][0]["default"] is True
    for config in header["configs"]:
        splits = {d["split"]: d["path"] for d in config["data_files"]}
        assert set(splits) == {"train", "eval"}
        for path in splits.values():
            assert path in version.manifest["files"]
            assert (directory / path).is_file()
    assert header["configs"][0]["data_files"][0]["path"] == "dpo_standard/train.parquet"


@pytest.mark.slow  # loads Hugging Face datasets (seconds of imports)
def test_datasets_loads_every_config_of_the_card_offline(exported, tmp_path, monkeypatch):
    import datasets

    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    directory, version = exported
    counts = version.manifest["counts"]
    for config in ("dpo_standard", "dpo_conversational"):
        loaded = datasets.load_dataset(str(directory), config, cache_dir=str(tmp_path / "c"))
        assert {s: loaded[s].num_rows for s in loaded} == {
            "train": counts["train"],
            "eval": counts["eval"],
        }


def test_the_readme_body_says_what_flywheel_knows(exported):
    directory, version = exported
    _, body = front_matter(directory / "README.md")
    assert body.lstrip().startswith("# support v1\n\nSupport answers our reviewers preferred.")
    assert version.manifest_sha256 in body
    for name, stats in version.manifest["files"].items():
        assert f"| `{name}` | {stats['rows']} | {stats['bytes']} | `{stats['sha256']}` |" in body
    assert f"Review guidelines version {latest_guidelines()} (in force" in body
    assert "Krippendorff's alpha" in body and "over 4 item(s)" in body
    assert f"Curation policy version {version.manifest['policy_versions'][0]}" in body
    assert "only interactions older than 14 day(s)" in body


@pytest.mark.slow  # loads mlcroissant and its RDF stack (seconds of imports)
def test_croissant_validates_with_mlcroissant(exported):
    import mlcroissant as mlc

    directory, version = exported
    dataset = mlc.Dataset(jsonld=str(directory / "croissant.json"))
    metadata = dataset.metadata
    assert metadata.name == "support-v1"
    assert metadata.ctx.is_v1_1()
    files = {f.name: f for f in metadata.distribution}
    assert set(files) == set(version.manifest["files"])
    for name, stats in version.manifest["files"].items():
        assert files[name].sha256 == stats["sha256"]
    records = list(dataset.records("dpo_standard/train"))
    assert len(records) == version.manifest["counts"]["train"]
    first = json.loads((directory / "dpo_standard/train.jsonl").read_text().splitlines()[0])
    assert records[0]["dpo_standard/train/chosen"].decode() == first["chosen"]


def test_croissant_carries_every_rai_field_from_what_flywheel_knows(exported):
    directory, _ = exported
    card = json.loads((directory / "croissant.json").read_text())
    assert card["conformsTo"] == [
        "http://mlcommons.org/croissant/1.1",
        "http://mlcommons.org/croissant/RAI/1.0",
    ]
    assert card["license"] == "cc-by-4.0"
    for field in RAI_FIELDS:
        assert card[field], field
    assert card["rai:annotationsPerItem"] == (
        "mean 1.5 (1 review(s): 4 pair(s), 2 review(s): 4 pair(s))"
    )
    protocol = card["rai:dataAnnotationProtocol"][0]
    assert protocol.startswith(f"Review guidelines version {latest_guidelines()} ")
    assert "accuracy: 1-5" in card["rai:dataAnnotationProtocol"][1]
    decision = card["rai:dataAnnotationAnalysis"][0]
    assert decision.startswith("decision (nominal): Krippendorff's alpha")
    assert "toxicity threshold" in card["rai:machineAnnotationTools"][0]
    assert "email, phone, card, iban, ssn, ip" in card["rai:personalSensitiveInformation"][0]
    preprocessing = " ".join(card["rai:dataPreprocessingProtocol"])
    assert "14 day(s)" in preprocessing and "eval fraction 0.3" in preprocessing
    assert "MinHash" in preprocessing


def test_cards_are_byte_identical_on_a_second_export(exported, tmp_path):
    directory, version = exported
    again = export.dataset_version_write(version=version, directory=tmp_path / "again")
    for name in ("README.md", "croissant.json"):
        assert (tmp_path / "again" / name).read_bytes() == (directory / name).read_bytes()
        assert again[name]["bytes"] == (directory / name).stat().st_size


@pytest.mark.parametrize(
    ("rows", "label"), [(0, "n<1K"), (999, "n<1K"), (1000, "1K<n<10K"), (250_000, "100K<n<1M")]
)
def test_size_categories_follow_the_hub_buckets(rows, label):
    assert readme.size_category(rows) == label
