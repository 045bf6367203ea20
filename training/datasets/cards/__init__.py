"""The cards written with every frozen version (layout 2 on): README.md, the Hugging Face
dataset card, and croissant.json. They are derived from the version's manifest and facts
that never change once it is frozen, plus the license setting, so they are not in the
manifest (which they describe) but come out the same on every export."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from training.datasets.cards.croissant import CROISSANT_FILE, croissant
from training.datasets.cards.facts import card_facts
from training.datasets.cards.readme import README_FILE, readme_bytes
from training.datasets.formats import data_files
from training.datasets.models import DatasetVersion

CARD_FILES = (README_FILE, CROISSANT_FILE)

__all__ = ["CARD_FILES", "CROISSANT_FILE", "README_FILE", "cards_bytes", "cards_write"]


def cards_bytes(*, version: DatasetVersion) -> dict[str, bytes]:
    facts = card_facts(version=version)
    files = data_files(version)
    metadata = croissant(facts, files)
    return {
        README_FILE: readme_bytes(facts, files),
        CROISSANT_FILE: (json.dumps(metadata, indent=2, ensure_ascii=False) + "\n").encode(),
    }


def cards_write(*, version: DatasetVersion, directory: Path) -> dict[str, dict]:
    """Write the cards into `directory`; their sizes and sha256 by name."""
    out = {}
    for name, data in cards_bytes(version=version).items():
        (directory / name).write_bytes(data)
        out[name] = {"sha256": hashlib.sha256(data).hexdigest(), "bytes": len(data)}
    return out
