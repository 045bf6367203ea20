"""Architecture is checked one way: the import-linter contracts in pyproject.toml, which
`make lint` runs (apps depend one way: training -> review -> curation; apps never import the
site's wiring; no cycles inside a package). This is the test of a contract: a wrong-way
import makes `lint-imports` fail. import-linter reads the code without importing it, so the
test needs no database."""

import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

from tests.support import ROOT

# The packages the contracts cover, read from the contracts themselves so a new one is copied.
PACKAGES = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"][
    "root_packages"
]
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(cwd: Path) -> subprocess.CompletedProcess:
    # --no-cache: the temporary copy must not be answered from the repository's cache.
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_a_wrong_way_import_breaks_the_layers_contract(tmp_path):
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for package in PACKAGES:
        shutil.copytree(ROOT / package, tmp_path / package, ignore=ignore)
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    # curation is upstream of training: it may not import it.
    with (tmp_path / "curation" / "selectors.py").open("a") as module:
        module.write("\nfrom training import models  # noqa\n")

    result = lint_imports(tmp_path)

    assert result.returncode == 1, result.stdout + result.stderr
    assert "Apps depend one way: training -> review -> curation BROKEN" in result.stdout
    assert "curation is not allowed to import training" in result.stdout
    assert "curation.selectors -> training.models" in result.stdout
