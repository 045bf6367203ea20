"""README.md: the Hugging Face dataset card (YAML header, then a body from the facts)."""

from __future__ import annotations

from typing import Any

import yaml

from training.datasets.cards import text
from training.datasets.formats import PARQUET

README_FILE = "README.md"
# The Hub's size buckets, upper bounds exclusive.
SIZE_CATEGORIES = [
    (1_000, "n<1K"),
    (10_000, "1K<n<10K"),
    (100_000, "10K<n<100K"),
    (1_000_000, "100K<n<1M"),
    (10_000_000, "1M<n<10M"),
    (100_000_000, "10M<n<100M"),
]
TAGS = {"preference": ["dpo", "preference", "rlhf"], "sft": ["sft"]}


def size_category(rows: int) -> str:
    for bound, label in SIZE_CATEGORIES:
        if rows < bound:
            return label
    return "n>100M"


def _configs(files: list) -> list[dict]:
    """One config per Parquet row format. The Hub and `datasets` pick one loader for a whole
    directory from its files' extensions, so configs never mix Parquet and JSON Lines: the
    OpenAI JSONL files are for other tools and stay out of them."""
    by_format: dict[str, dict[str, str]] = {}
    for f in files:
        if f.file_format == PARQUET:
            by_format.setdefault(f.row_format, {})[f.split] = f.name
    configs = [
        {
            "config_name": fmt,
            "data_files": [{"split": split, "path": path} for split, path in paths.items()],
        }
        for fmt, paths in by_format.items()
    ]
    if configs:
        configs[0]["default"] = True
    return configs


def header(facts: dict[str, Any], files: list) -> dict:
    counts = facts["counts"]
    return {
        "pretty_name": f"{facts['name']} v{facts['version']}",
        "license": facts["license"],
        "task_categories": ["text-generation"],
        "tags": ["flywheel", *TAGS.get(facts["kind"], [])],
        "size_categories": [size_category(counts.get("train", 0) + counts.get("eval", 0))],
        "configs": _configs(files),
    }


def _bullets(lines: list[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def body(facts: dict[str, Any], files: list) -> str:
    counts = facts["counts"]
    rows = "\n".join(
        f"| `{name}` | {s['rows']} | {s['bytes']} | `{s['sha256']}` |"
        for name, s in sorted(facts["files"].items())
    )
    configs = _configs(files)
    default = configs[0]["data_files"] if configs else []
    data_files = ", ".join(f'"{d["split"]}": "{d["path"]}"' for d in default)
    sections = [
        f"# {facts['name']} v{facts['version']}",
        facts["description"] or f"A {facts['kind']} dataset curated and reviewed with Flywheel.",
        f"{counts.get('train', 0)} train and {counts.get('eval', 0)} eval pairs, frozen "
        f"{facts['frozen_at']}, reviewed by {facts['reviewers']} reviewer(s). The manifest "
        f"(`manifest.json`, sha256 `{facts['manifest_sha256']}`) records every file's hash.",
        "## Load it",
        "```python\nfrom datasets import load_dataset\n\n"
        f'ds = load_dataset("parquet", data_files={{{data_files}}})\n```',
        "## Files\n\n| file | rows | bytes | sha256 |\n|---|---|---|---|\n" + rows,
        "## Data collection\n\n" + text.data_collection(facts),
        "## Annotation\n\n"
        + _bullets(text.annotation_protocol(facts))
        + f"\n- Reviews per pair: {text.annotations_per_item(facts)}."
        + "\n- Agreement:\n"
        + "\n".join(f"  - {line}" for line in text.annotation_analysis(facts)),
        "## Machine filters\n\n" + _bullets(text.machine_annotation_tools(facts)),
        "## Personal data\n\n" + _bullets(text.personal_information(facts)),
        "## Preprocessing\n\n" + _bullets(text.preprocessing(facts)),
        "## Limitations\n\n" + _bullets(text.LIMITATIONS),
    ]
    return "\n\n".join(sections) + "\n"


def readme_bytes(facts: dict[str, Any], files: list) -> bytes:
    front = yaml.safe_dump(header(facts, files), sort_keys=False, allow_unicode=True)
    return f"---\n{front}---\n\n{body(facts, files)}".encode()
