"""The PII scan every export runs on each row before a file is written (and so before it
can be served): the detector ingest redacts with (`curation.pii.find_pii`). Ingest strips
PII from what users send, but a reviewer's edit or a correction is typed later; this is
the last door. It fails closed: the first row holding PII stops the export, naming the
file, the row and the kind of PII, never the text.

Export code calls `export_row_check` once per row, whatever the file format."""

from collections.abc import Iterable, Iterator

from curation.pii import find_pii
from training.errors import TrainingError

ERR_PII = (
    "Export refused: {files} row {row} holds PII ({kinds}). Nothing was written. Correct "
    "or quarantine that pair, then export again."
)


class ExportPiiFound(TrainingError):
    """An export stopped by the PII scan. Its message names no text."""


def _strings(value: object) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from _strings(item)


def export_row_check(*, files: Iterable[str], row: int, values: Iterable[object]) -> None:
    """Raise ExportPiiFound if any string in `values` (one exported row: prompt, chosen,
    rejected, in any nesting of lists and dicts) holds PII. `row` counts from 1 in each
    of `files`."""
    kinds = sorted({match.kind for text in _strings(list(values)) for match in find_pii(text)})
    if kinds:
        raise ExportPiiFound(
            ERR_PII.format(files=", ".join(files), row=row, kinds=", ".join(kinds))
        )
