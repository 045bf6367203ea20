"""Tiny models the tests build, kept between runs and shared by the xdist workers.

Each worker built the tiny Detoxify and the tiny base LM for itself, every run: 1 to 4.5 s
each, up to three times a run. A build is a pure function of the code that makes it and the
libraries it runs on, so it is stored under a key made of both (`.run/test-models/`, next to
the other files `make` keeps out of git) and reused while neither changes. The build happens in
its final folder (a Detoxify checkpoint names its config folder by path) under a file lock,
and a marker written last says it is whole: a build cut short is done again."""

import fcntl
import hashlib
import shutil
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from django.conf import settings

LIBRARIES = ("torch", "transformers", "tokenizers", "detoxify")


def _key(sources: tuple[Path, ...]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(source.read_bytes())
    for library in LIBRARIES:
        digest.update(f"{library}=={metadata.version(library)}".encode())
    return digest.hexdigest()[:16]


def model_built(name: str, *, sources: tuple[Path, ...], build: Callable[[Path], None]) -> Path:
    """The folder `build` fills, made once for this code (`sources`) and these libraries."""
    root = Path(settings.BASE_DIR) / ".run" / "test-models"
    root.mkdir(parents=True, exist_ok=True)
    folder = root / f"{name}-{_key(sources)}"
    whole = folder / ".whole"
    with open(root / f"{folder.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not whole.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            build(folder)
            whole.touch()
    return folder
