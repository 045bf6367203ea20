"""The files a frozen version is exported as, by layout.

Layout 1 (versions frozen before Parquet and the OpenAI shapes existed) is the TRL JSON Lines
only; layout 2 adds, in the manifest with their sha256, a Parquet file beside every JSONL file
(the same rows) and the OpenAI chat SFT and preference JSONL. A version keeps the layout its
manifest was sealed with, so re-exporting or verifying an old version gives its old bytes.

Every data file is written through a sink fed one row at a time (prompt, chosen, rejected)
by export's single database pass per split; each sink hashes what it writes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from training.datasets import canonical as gold
from training.datasets.files import EVAL_FILE, TRAIN_FILE
from training.datasets.formats import openai, parquet
from training.datasets.models import DatasetVersion, Membership

LAYOUT = 2
SPLIT_FILES = {Membership.Split.TRAIN.value: TRAIN_FILE, Membership.Split.EVAL.value: EVAL_FILE}
SPLIT_STEMS = {split: name.removesuffix(".jsonl") for split, name in SPLIT_FILES.items()}

# What `export_dataset --format` and the export API's `format` accept.
JSONL = "jsonl"
PARQUET = "parquet"
OPENAI_SFT = "openai-sft"
OPENAI_PREFERENCE = "openai-preference"
ALL = "all"
FILE_FORMATS = (JSONL, PARQUET, OPENAI_SFT, OPENAI_PREFERENCE)
CHOICES = (*FILE_FORMATS, ALL)
ERR_UNKNOWN_FORMAT = "unknown format {value!r}: choose one of " + ", ".join(CHOICES)


@dataclass(frozen=True)
class DataFile:
    name: str  # relative path, e.g. "dpo_standard/train.parquet"
    file_format: str  # one of FILE_FORMATS
    split: str
    row_format: str  # a TRL ExportFormat value, or openai.SFT / openai.PREFERENCE


def layout_of(version: DatasetVersion) -> int:
    """The layout a version was sealed with; a draft being frozen gets the current one."""
    return int(version.manifest.get("manifest_format", LAYOUT)) if version.manifest else LAYOUT


def data_files(version: DatasetVersion) -> list[DataFile]:
    """Every data file of the version, in a fixed order: by format, then kind, then split."""
    layout = layout_of(version)
    kinds = [(JSONL, ".jsonl"), (PARQUET, ".parquet")] if layout >= 2 else [(JSONL, ".jsonl")]
    out = [
        DataFile(f"{fmt}/{stem}{suffix}", kind, split, fmt)
        for fmt in version.formats
        for kind, suffix in kinds
        for split, stem in SPLIT_STEMS.items()
    ]
    if layout >= 2:
        shapes = [(OPENAI_SFT, openai.SFT)]
        if version.kind == "preference":
            shapes.append((OPENAI_PREFERENCE, openai.PREFERENCE))
        out += [
            DataFile(f"{folder}/{stem}.jsonl", kind, split, folder)
            for kind, folder in shapes
            for split, stem in SPLIT_STEMS.items()
        ]
    return out


def file_format_check(value: str) -> str:
    if value not in CHOICES:
        raise ValueError(ERR_UNKNOWN_FORMAT.format(value=value))
    return value


def selected(files: list[DataFile], file_format: str) -> list[DataFile]:
    return [f for f in files if file_format_check(file_format) in (ALL, f.file_format)]


# --- sinks --------------------------------------------------------------------------------


class HashingFile:
    """A write-only binary file that hashes and counts what passes through it, writing it on
    to `handle` when there is one (None: hash only, for the manifest and verification)."""

    def __init__(self, handle: BinaryIO | None) -> None:
        self.handle = handle
        self.sha = hashlib.sha256()
        self.size = 0
        self.closed = False

    def write(self, data: bytes) -> int:
        data = bytes(data)
        self.sha.update(data)
        self.size += len(data)
        if self.handle is not None:
            self.handle.write(data)
        return len(data)

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        if self.handle is not None:
            self.handle.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        if not self.closed and self.handle is not None:
            self.handle.close()
        self.closed = True


@dataclass
class Sink:
    file: HashingFile
    fmt: str
    table: parquet.TableWriter | None = None
    rows: int = 0
    row: Callable[..., dict] = field(default=gold.example)

    def add(self, *, prompt: list[dict], chosen: str, rejected: str | None) -> None:
        example = self.row(fmt=self.fmt, prompt=prompt, chosen=chosen, rejected=rejected)
        self.rows += 1
        if self.table is not None:
            self.table.add(example)
        else:
            self.file.write((gold.canonical_json(example) + "\n").encode("utf-8"))

    def close(self) -> None:
        if self.table is not None:
            self.table.close()
        self.file.close()

    def stats(self) -> dict:
        return {"sha256": self.file.sha.hexdigest(), "rows": self.rows, "bytes": self.file.size}


def sink_open(
    data_file: DataFile, directory: Path | None, *, handle: BinaryIO | None = None
) -> Sink:
    """A sink for one data file, writing `<name>.partial` under `directory` if given, else
    to `handle` if given (a download streamed from the database), else hashing only."""
    if directory is not None:
        path = directory / (data_file.name + ".partial")
        path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(path, "wb", buffering=1 << 20)  # noqa: SIM115 (Sink.close closes it)
    sink = Sink(file=HashingFile(handle), fmt=data_file.row_format)
    if data_file.row_format in (openai.SFT, openai.PREFERENCE):
        sink.row = openai.example
    if data_file.file_format == PARQUET:
        sink.table = parquet.TableWriter(sink.file, row_format=data_file.row_format)
    return sink
