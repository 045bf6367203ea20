"""Export files on disk that belong to no frozen version: temporary directories a crashed
export left, and directories of versions the database no longer holds as frozen. An
erasure removes them (flywheel_site/audit/erasure.py): such files may hold an erased
user's text, and only a frozen version's export is kept as it was frozen (it is rebuilt
byte for byte from the database anyway)."""

import shutil
from pathlib import Path

from training.datasets.export import export_root, version_dir
from training.datasets.models import DatasetVersion


def exports_prune() -> list[str]:
    """Remove every entry under the export root that is not a frozen (or quarantined)
    version's export directory; returns their paths relative to the root."""
    root = export_root()
    if not root.is_dir():
        return []
    versions = (
        DatasetVersion.objects.exclude(status=DatasetVersion.Status.DRAFT)
        .exclude(manifest_sha256="")
        .select_related("dataset")
    )
    keep = {version_dir(version) for version in versions}
    removed = []
    for dataset_dir in sorted(root.iterdir()):
        children = sorted(dataset_dir.iterdir()) if dataset_dir.is_dir() else [dataset_dir]
        for entry in children:
            if entry in keep:
                continue
            _remove(entry)
            removed.append(str(entry.relative_to(root)))
        if dataset_dir.is_dir() and not any(dataset_dir.iterdir()):
            dataset_dir.rmdir()
    return removed


def _remove(entry: Path) -> None:
    if entry.is_dir() and not entry.is_symlink():
        shutil.rmtree(entry, ignore_errors=True)
    else:
        entry.unlink(missing_ok=True)
