"""Parquet beside the JSON Lines: the same rows, and the same bytes on every export.

Determinism comes from fixed writer options (below) and fixed row groups: rows are buffered
and written ROW_GROUP_ROWS at a time, so group boundaries depend only on the row order.
Nothing time-dependent goes into the file's metadata (the footer holds the schema and the
writer's name and version, `parquet-cpp-arrow version X`): pyarrow is pinned in
requirements.txt because another version writes other bytes, and the manifest recorded these.
"""

from __future__ import annotations

import functools
from typing import Any

from training.datasets.formats import openai
from training.datasets.models import ExportFormat

# Small enough to keep memory flat while streaming, large enough for readers to skip well.
ROW_GROUP_ROWS = 2000
WRITER_OPTIONS = {
    "version": "2.6",
    "compression": "zstd",
    "compression_level": 3,
    "use_dictionary": True,
    "write_statistics": True,
    "data_page_version": "1.0",
    "store_schema": True,
    "write_page_index": False,
    "write_page_checksum": False,
    "use_compliant_nested_type": True,
}

TEXT = "text"
MESSAGES = "messages"  # a list of {role, content}
COLUMNS = {
    ExportFormat.DPO_STANDARD.value: (("prompt", TEXT), ("chosen", TEXT), ("rejected", TEXT)),
    ExportFormat.DPO_CONVERSATIONAL.value: (
        ("prompt", MESSAGES),
        ("chosen", MESSAGES),
        ("rejected", MESSAGES),
    ),
    ExportFormat.SFT_CONVERSATIONAL.value: (("messages", MESSAGES),),
    openai.SFT: (("messages", MESSAGES),),
}


@functools.cache
def schema(row_format: str):
    # pyarrow is imported here, not at the top: every web process imports the export module
    # and would carry pyarrow (about 30 MB) without ever writing a Parquet file.
    import pyarrow as pa

    message = pa.struct([("role", pa.string()), ("content", pa.string())])
    types = {TEXT: pa.string(), MESSAGES: pa.list_(message)}
    return pa.schema([(name, types[kind]) for name, kind in COLUMNS[row_format]])


class TableWriter:
    """Rows in, row groups of ROW_GROUP_ROWS out, into `sink` (any binary file object)."""

    def __init__(self, sink: Any, *, row_format: str) -> None:
        import pyarrow.parquet as pq

        self.schema = schema(row_format)
        self.buffer: list[dict] = []
        self.writer = pq.ParquetWriter(sink, self.schema, **WRITER_OPTIONS)

    def add(self, row: dict) -> None:
        self.buffer.append(row)
        if len(self.buffer) >= ROW_GROUP_ROWS:
            self._flush()

    def _flush(self) -> None:
        import pyarrow as pa

        if self.buffer:
            table = pa.Table.from_pylist(self.buffer, schema=self.schema)
            self.writer.write_table(table, row_group_size=ROW_GROUP_ROWS)
            self.buffer = []

    def close(self) -> None:
        self._flush()
        self.writer.close()
