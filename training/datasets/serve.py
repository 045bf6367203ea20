"""A frozen version's files for download, from any web node.

A node serves the version's export directory when it holds a complete copy (the worker that
materialised it after the freeze shares the disk, or FLYWHEEL_EXPORT_DIR is a shared
volume). Otherwise it streams the file from PostgreSQL on demand: exports are deterministic,
so the same rows give the same bytes, and the manifest's sha256 is checked as the bytes go.
The last chunk is held back until the whole file has hashed right, so a client never
receives a complete file that differs from the manifest: on a mismatch the response ends
short of its Content-Length, which every HTTP client reports as a broken download.
Nothing is written to the node's disk, and memory stays at one chunk."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from django.db import transaction
from django.http import FileResponse, StreamingHttpResponse
from django.utils.http import content_disposition_header

from training.datasets import cards, export, formats
from training.datasets.models import DatasetVersion
from training.datasets.pii_scan import export_row_check

CHUNK_BYTES = 1 << 20


@dataclass
class Download:
    chunks: Iterable[bytes]  # an open file (from disk) or a generator (from the database)
    size: int
    origin: str  # "disk" or "database"


def _from_disk(path: Path) -> Download:
    return Download(open(path, "rb"), path.stat().st_size, "disk")


def dataset_version_download(*, version: DatasetVersion, name: str) -> Download:
    """One file of a frozen version. `name` must be one of export.file_names(version):
    nothing from the request reaches the filesystem otherwise."""
    if name not in export.file_names(version):
        raise FileNotFoundError(export.ERR_UNKNOWN_FILE.format(version=version, name=name))
    export.check_frozen(version)
    directory = export.version_dir(version)
    path = directory / name
    if (directory / export.COMPLETE_MARKER).is_file() and path.is_file():
        return _from_disk(path)
    if name == export.MANIFEST_FILE:
        data = export.manifest_bytes(version.manifest)
        _check(version, name, hashlib.sha256(data).hexdigest(), version.manifest_sha256)
        return Download([data], len(data), "database")
    if name in cards.CARD_FILES:
        # The cards are made from the manifest and the database, not hashed in it: made
        # again here, in memory, as the export writes them.
        data = cards.cards_bytes(version=version)[name]
        return Download([data], len(data), "database")
    (data_file,) = [f for f in formats.data_files(version) if f.name == name]
    _split_pii_check(version=version, split=data_file.split, name=name)
    stats = version.manifest["files"][name]
    return Download(_verified(version, name, stats=stats), stats["bytes"], "database")


class _Chunks:
    """The write end of a data file streamed from the database: collects what a sink writes
    until the reader takes it."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []

    def write(self, data: bytes) -> int:
        self.parts.append(bytes(data))
        return len(data)

    def flush(self) -> None:
        pass

    def close(self) -> None:
        pass

    def take(self) -> bytes:
        out, self.parts = b"".join(self.parts), []
        return out


def _data_file_chunks(*, version: DatasetVersion, name: str) -> Iterator[bytes]:
    """The bytes of one data file (any format), in export order, straight from the database,
    through the same sink the export writes with. Call inside a transaction (see _stream)."""
    (data_file,) = [f for f in formats.data_files(version) if f.name == name]
    chunks = _Chunks()
    sink = formats.sink_open(data_file, None, handle=chunks)
    for prompt, chosen, rejected in export.data_rows(version=version, split=data_file.split):
        sink.add(prompt=prompt, chosen=chosen, rejected=rejected)
        if chunks.parts:
            yield chunks.take()
    sink.close()
    yield chunks.take()


def _split_pii_check(*, version: DatasetVersion, split: str, name: str) -> None:
    """The export PII scan over one split, without writing: a node that streams a file from
    the database runs it before the first byte goes out, so a refusal is a 409
    and not a download cut short."""
    with transaction.atomic():
        for row, values in enumerate(export.data_rows(version=version, split=split), start=1):
            export_row_check(files=[name], row=row, values=values)


def _check(version: DatasetVersion, name: str, actual: str, expected: str) -> None:
    if actual != expected:
        raise export.ExportMismatch(
            export.ERR_EXPORT_MISMATCH.format(
                path=name, version=version, actual=actual, expected=expected
            )
        )


def _verified(version: DatasetVersion, name: str, *, stats: dict) -> Iterator[bytes]:
    sha = hashlib.sha256()
    held = b""
    pending: list[bytes] = []
    size = 0
    # The server-side cursor needs a transaction; a client that goes away closes the
    # generator, which leaves the block and rolls the (read-only) transaction back.
    with transaction.atomic():
        for part in _data_file_chunks(version=version, name=name):
            pending.append(part)
            size += len(part)
            if size >= CHUNK_BYTES:
                chunk = b"".join(pending)
                sha.update(chunk)
                if held:
                    yield held
                held, pending, size = chunk, [], 0
    last = b"".join(pending)
    sha.update(last)
    _check(version, name, sha.hexdigest(), stats["sha256"])
    yield held + last


def download_response(
    download: Download, *, name: str, attachment_name: str | None = None
) -> StreamingHttpResponse:
    """The streamed HTTP response for a download, with its length known up front."""
    content_type = export.content_type(name)
    if download.origin == "disk":
        response = FileResponse(download.chunks, content_type=content_type)
    else:
        response = StreamingHttpResponse(download.chunks, content_type=content_type)
    response["Content-Length"] = str(download.size)
    if attachment_name:
        response["Content-Disposition"] = content_disposition_header(
            as_attachment=True, filename=attachment_name
        )
    return response
