"""Manifests, exports and verification of frozen dataset versions.

Rows are streamed from PostgreSQL through a server-side cursor (a named cursor, fetched in
chunks) inside one transaction, serialised one line at a time and written and hashed as they
go: memory stays flat whatever the size of the version. The order (pair id) and the JSON
serialisation (gold.JSON_OPTIONS) are fixed, so exporting a version twice gives the same
bytes, which is what lets the manifest record each file's sha256.

Layout of a version's export directory, one folder per format so that each is a directory
`training.runs.trainer.train(export_dir=...)` accepts as is:

    manifest.json
    <format>/train.jsonl
    <format>/eval.jsonl
    <format>/{train,eval}.parquet, openai_sft/, openai_preference/   (layout 2, formats/)
    README.md, croissant.json                                        (layout 2, cards/)
"""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from django.conf import settings
from django.db import connection, transaction

from curation.models import CurationPolicy
from training.datasets import canonical as gold
from training.datasets import cards, formats
from training.datasets.formats import SPLIT_FILES
from training.datasets.models import DatasetVersion, Membership
from training.datasets.pii_scan import ExportPiiFound, export_row_check
from training.errors import TrainingError

log = logging.getLogger(__name__)

MANIFEST_FILE = "manifest.json"
COMPLETE_MARKER = ".complete"
FETCH_ROWS = 2000

ERR_NOT_FROZEN = "{version} is a draft: only frozen versions can be exported."
ERR_EXPORT_MISMATCH = (
    "{path} does not match the manifest of {version} (sha256 {actual}, manifest {expected}): "
    "the data changed after the version was frozen. Run `manage.py verify_datasets`."
)
ERR_UNKNOWN_FILE = "{version} has no file {name!r}."

_DATA_SQL = """
SELECT g.id, g.kind, g.prompt, g.chosen, g.rejected, g.content_sha256
FROM training_membership m JOIN training_goldpair g ON g.id = m.pair_id
WHERE m.version_id = %s AND m.split = %s
ORDER BY m.pair_id
"""
_META_SQL = """
SELECT m.pair_id, m.split, m.reason, m.detail, g.kind, g.task_type, g.policy_id, g.model,
       g.reviewer_ids, g.source_id, g.content_sha256
FROM training_membership m JOIN training_goldpair g ON g.id = m.pair_id
WHERE m.version_id = %s
ORDER BY m.pair_id
"""


class ExportMismatch(Exception):
    """An exported file's bytes differ from what the manifest recorded."""


def _json(value: Any) -> Any:
    # Django loads jsonb as text on psycopg 3 and leaves decoding to JSONField.
    return orjson.loads(value) if isinstance(value, str) else value


def _stream(sql: str, params: list) -> Iterator[tuple]:
    """Rows from a server-side cursor, FETCH_ROWS at a time. Call inside a transaction so the
    cursor is not WITH HOLD (which would materialise the whole result on the server first)."""
    with connection.chunked_cursor() as cursor:
        cursor.execute(sql, params)
        while rows := cursor.fetchmany(FETCH_ROWS):
            yield from rows


def data_rows(*, version: DatasetVersion, split: str) -> Iterator[tuple]:
    """(prompt, chosen, rejected) of one split, in export order, prompt decoded: what every
    data file is made from. Call inside a transaction (see _stream)."""
    for _, _, prompt, chosen, rejected, _ in _stream(_DATA_SQL, [version.pk, split]):
        yield _json(prompt), chosen, rejected


def file_names(version: DatasetVersion) -> list[str]:
    """Relative paths of the version's files, manifest last."""
    names = [f.name for f in formats.data_files(version)]
    if formats.layout_of(version) >= 2:
        names += cards.CARD_FILES
    return [*names, MANIFEST_FILE]


CONTENT_TYPES = {
    ".json": "application/json",
    ".parquet": "application/vnd.apache.parquet",
    ".md": "text/markdown; charset=utf-8",
}


def content_type(name: str) -> str:
    return CONTENT_TYPES.get(Path(name).suffix, "application/jsonl")


def manifest_bytes(manifest: dict) -> bytes:
    """manifest.json exactly: its sha256 is the version's manifest_sha256."""
    return (gold.canonical_json(manifest) + "\n").encode("utf-8")


# --- data pass ----------------------------------------------------------------------------


@dataclass
class _DataResult:
    files: dict[str, dict]
    content_mismatches: list[int]


def _data_pass(
    *,
    version: DatasetVersion,
    directory: Path | None,
    check_content: bool = False,
    progress: Callable[[int], None] | None = None,
    file_format: str = formats.ALL,
) -> _DataResult:
    """Serialise every split in every format: hash always, write when given a directory.
    One database pass per split feeds all formats."""
    files: dict[str, dict] = {}
    mismatches: list[int] = []
    every_file = formats.selected(formats.data_files(version), file_format)
    for split in SPLIT_FILES:
        sinks: dict[str, formats.Sink] = {}
        try:
            for data_file in every_file:
                if data_file.split == split:
                    sinks[data_file.name] = formats.sink_open(data_file, directory)
            done = 0
            for pair_id, kind, prompt, chosen, rejected, content in _stream(
                _DATA_SQL, [version.pk, split]
            ):
                prompt = _json(prompt)
                if directory is not None:
                    export_row_check(
                        files=list(sinks),
                        row=done + 1,
                        values=(prompt, chosen, rejected),
                    )
                if check_content and content != gold.content_sha256(
                    kind=kind, prompt=prompt, chosen=chosen, rejected=rejected
                ):
                    mismatches.append(pair_id)
                for sink in sinks.values():
                    sink.add(prompt=prompt, chosen=chosen, rejected=rejected)
                done += 1
                if progress is not None and done % FETCH_ROWS == 0:
                    progress(FETCH_ROWS)
            if progress is not None and done % FETCH_ROWS:
                progress(done % FETCH_ROWS)
        finally:
            for sink in sinks.values():
                sink.close()
        for name, sink in sinks.items():
            files[name] = sink.stats()
    return _DataResult(files=files, content_mismatches=mismatches)


# --- manifest -----------------------------------------------------------------------------


def _counts(version: DatasetVersion) -> dict:
    splits: Counter = Counter()
    excluded: Counter = Counter()
    by_kind: dict[str, Counter] = defaultdict(Counter)
    by_task: dict[str, Counter] = defaultdict(Counter)
    policies: set[int] = set()
    models: set[str] = set()
    reviewers: set[int] = set()
    sources: set[int] = set()
    quarantines: set[int] = set()
    members = hashlib.sha256()
    for (
        pair_id,
        split,
        reason,
        detail,
        kind,
        task_type,
        policy_id,
        model,
        reviewer_ids,
        source_id,
        content,
    ) in _stream(_META_SQL, [version.pk]):
        members.update(f"{pair_id}\t{split}\t{reason}\t{content}\n".encode())
        if split == Membership.Split.EXCLUDED:
            excluded[reason] += 1
            if reason == Membership.Reason.QUARANTINED:
                quarantines.add(int(_json(detail)["quarantine"]))
            continue
        splits[split] += 1
        by_kind[split][kind] += 1
        by_task[split][task_type or "(none)"] += 1
        if policy_id is not None:
            policies.add(policy_id)
        models.add(model)
        reviewers.update(reviewer_ids or [])
        sources.add(source_id)
    policy_versions = sorted(
        CurationPolicy.objects.filter(pk__in=policies).values_list("version", flat=True)
    )
    return {
        "counts": {
            "train": splits[Membership.Split.TRAIN],
            "eval": splits[Membership.Split.EVAL],
            "excluded": dict(sorted(excluded.items())),
            "by_kind": {s: dict(sorted(c.items())) for s, c in sorted(by_kind.items())},
            "by_task_type": {s: dict(sorted(c.items())) for s, c in sorted(by_task.items())},
        },
        "members_sha256": members.hexdigest(),
        "policy_versions": policy_versions,
        "models": sorted(models),
        "reviewers": sorted(reviewers),
        "sources": sorted(sources),
        "quarantines": sorted(quarantines),
    }


def _manifest(version: DatasetVersion, counts: dict, files: dict) -> dict:
    return {
        "manifest_format": formats.layout_of(version),
        "dataset": version.dataset.name,
        "version": version.number,
        "kind": version.kind,
        "formats": list(version.formats),
        "rules": {
            "lag_days": version.lag_days,
            "eval_fraction": version.eval_fraction,
            "near_dup_threshold": version.near_dup_threshold,
            "task_types": list(version.task_types),
        },
        "cutoff": version.cutoff.isoformat(),
        "frozen_at": version.frozen_at.isoformat() if version.frozen_at else None,
        "code_version": version.code_version,
        "previous_manifest_sha256": version.previous_manifest_sha256 or None,
        **counts,
        "files": dict(sorted(files.items())),
    }


def manifest_build(*, version: DatasetVersion) -> dict:
    """The manifest of a version from its membership and gold rows (streams everything)."""
    with transaction.atomic():
        counts = _counts(version)
        files = _data_pass(version=version, directory=None).files
    return _manifest(version, counts, files)


# --- export -------------------------------------------------------------------------------


def export_root() -> Path:
    return Path(settings.FLYWHEEL_EXPORT_DIR)


def version_dir(version: DatasetVersion) -> Path:
    # The manifest hash in the name: a directory can only ever hold one version's bytes,
    # even if a database is rebuilt and numbers are reused.
    return (
        export_root() / version.dataset.name / f"v{version.number}-{version.manifest_sha256[:12]}"
    )


def check_frozen(version: DatasetVersion) -> None:
    if version.status == DatasetVersion.Status.DRAFT or not version.manifest_sha256:
        raise TrainingError(ERR_NOT_FROZEN.format(version=version))


def dataset_version_write(
    *,
    version: DatasetVersion,
    directory: Path,
    progress: Callable[[int], None] | None = None,
    file_format: str = formats.ALL,
) -> dict[str, dict]:
    """Write the version's files (those of `file_format`, formats.CHOICES) and its cards into
    `directory`, and check each data file against the manifest before it takes its final name
    (files are written as `.partial` and renamed). Reads only."""
    check_frozen(version)
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with transaction.atomic():
        try:
            result = _data_pass(
                version=version, directory=directory, progress=progress, file_format=file_format
            )
        except ExportPiiFound:
            for partial in directory.rglob("*.partial"):
                partial.unlink()
            raise
    expected = version.manifest.get("files", {})
    for name, stats in result.files.items():
        partial = directory / (name + ".partial")
        if expected.get(name, {}).get("sha256") != stats["sha256"]:
            partial.unlink(missing_ok=True)
            raise ExportMismatch(
                ERR_EXPORT_MISMATCH.format(
                    path=name,
                    version=version,
                    actual=stats["sha256"],
                    expected=expected.get(name, {}).get("sha256"),
                )
            )
    for name in result.files:
        os.replace(directory / (name + ".partial"), directory / name)
    written = dict(result.files)
    if formats.layout_of(version) >= 2:
        written.update(cards.cards_write(version=version, directory=directory))
    (directory / MANIFEST_FILE).write_bytes(manifest_bytes(version.manifest))
    return written


def dataset_version_materialize(
    *, version: DatasetVersion, progress: Callable[[int], None] | None = None
) -> Path:
    """The version's export directory, written on first use and never again. Concurrent
    callers each write a private temporary directory; the first rename wins."""
    check_frozen(version)
    final = version_dir(version)
    if (final / COMPLETE_MARKER).is_file():
        return final
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.parent / f".{final.name}.tmp-{uuid.uuid4().hex}"
    try:
        dataset_version_write(version=version, directory=tmp, progress=progress)
        (tmp / COMPLETE_MARKER).write_text(version.manifest_sha256 + "\n")
        if final.exists():
            # A half-written directory cannot exist (we rename whole ones), so this is
            # either a finished copy from a concurrent caller or debris to replace.
            if (final / COMPLETE_MARKER).is_file():
                return final
            shutil.rmtree(final)
        try:
            os.rename(tmp, final)
        except OSError:
            if not (final / COMPLETE_MARKER).is_file():
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)
    return final


def dataset_version_materialize_quietly(*, version_id: int) -> None:
    try:
        version = DatasetVersion.objects.select_related("dataset").get(pk=version_id)
        dataset_version_materialize(version=version)
    except Exception:  # the first download retries, and reports the error to its caller
        log.exception("writing the export of dataset version %s failed", version_id)


def version_files(*, version: DatasetVersion, file_format: str = formats.ALL) -> list[dict]:
    """The version's files with size and sha256: data files from the manifest, the cards from
    the export directory once written (no figures before), and the manifest itself."""
    stats = version.manifest.get("files", {})
    out = [
        {"name": f.name, "format": f.file_format, **stats.get(f.name, {})}
        for f in formats.selected(formats.data_files(version), file_format)
    ]
    if formats.layout_of(version) >= 2:
        directory = version_dir(version)
        written = (directory / COMPLETE_MARKER).is_file()
        for name in cards.CARD_FILES:
            path = directory / name
            figures = (
                {"bytes": path.stat().st_size, "sha256": _file_sha256(path)} if written else {}
            )
            out.append({"name": name, "format": "card", **figures})
    out.append(
        {
            "name": MANIFEST_FILE,
            "format": "manifest",
            "bytes": len(manifest_bytes(version.manifest)),
            "sha256": version.manifest_sha256,
        }
    )
    return out


# --- verification -------------------------------------------------------------------------


def _diff(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        out = []
        for key in sorted(set(expected) | set(actual)):
            out += _diff(expected.get(key), actual.get(key), f"{path}.{key}" if path else key)
        return out
    return [] if expected == actual else [path]


def dataset_version_verify(*, version: DatasetVersion, check_files: bool = True) -> list[str]:
    """Everything that no longer matches in one frozen version; an empty list when intact."""
    problems = []
    name = str(version)
    if gold.sha256_hex(manifest_bytes(version.manifest)) != version.manifest_sha256:
        problems.append(f"{name}: the stored manifest does not hash to manifest_sha256")
    previous_sha = version.previous.manifest_sha256 if version.previous_id else ""
    if version.previous_manifest_sha256 != previous_sha:
        problems.append(f"{name}: the hash chain is broken (previous manifest sha256 differs)")
    with transaction.atomic():
        counts = _counts(version)
        data = _data_pass(version=version, directory=None, check_content=True)
    if data.content_mismatches:
        shown = ", ".join(f"#{i}" for i in data.content_mismatches[:10])
        problems.append(
            f"{name}: {len(data.content_mismatches)} gold pair(s) no longer match their "
            f"content hash: {shown}"
        )
    recomputed = _manifest(version, counts, data.files)
    for key in _diff(version.manifest, recomputed):
        problems.append(f"{name}: manifest field {key} differs from the data")
    directory = version_dir(version)
    if check_files and (directory / COMPLETE_MARKER).is_file():
        for file_name, stats in version.manifest.get("files", {}).items():
            path = directory / file_name
            if not path.is_file() or _file_sha256(path) != stats["sha256"]:
                problems.append(f"{name}: exported file {path} does not match the manifest")
        manifest_path = directory / MANIFEST_FILE
        if not manifest_path.is_file() or _file_sha256(manifest_path) != version.manifest_sha256:
            problems.append(f"{name}: exported {manifest_path} does not match manifest_sha256")
    return problems


def _file_sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def datasets_verify(*, dataset_names: list[str] | None = None) -> tuple[int, list[str]]:
    """(versions checked, problems) over every frozen or quarantined version."""
    versions = (
        DatasetVersion.objects.exclude(status=DatasetVersion.Status.DRAFT)
        .select_related("dataset", "previous")
        .order_by("dataset__name", "number")
    )
    if dataset_names:
        versions = versions.filter(dataset__name__in=dataset_names)
    problems: list[str] = []
    checked = 0
    for version in versions:
        checked += 1
        problems += dataset_version_verify(version=version)
    return checked, problems
