"""An underscored name is private to its module: no module of the apps or the site imports
one from another module, or reaches one through a module it imported (`registry._promote`).
import-linter sees modules, not names, so this scan covers what it cannot."""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("flywheel_site", "curation", "review", "training")
# Django's documented model API (Model._meta), underscored to stay clear of field names.
PUBLIC_BY_CONTRACT = {"_meta"}


def _is_private(name: str) -> bool:
    return name.startswith("_") and not name.startswith("__") and name not in PUBLIC_BY_CONTRACT


def private_uses(source: str, *, module: str) -> list[str]:
    """`module`'s uses of another project module's underscored names, as "line: what"."""
    tree = ast.parse(source)
    found = []
    imported_modules: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module.split(".")[0] not in PACKAGES or node.module == module:
                continue
            for alias in node.names:
                if _is_private(alias.name):
                    found.append(f"{node.lineno}: from {node.module} import {alias.name}")
                else:
                    # `from training.registry import services as registry` binds a module.
                    imported_modules.add(alias.asname or alias.name)
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name.split(".")[0] in PACKAGES:
                    imported_modules.add(alias.asname or alias.name.split(".")[0])
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and _is_private(node.attr)
            and isinstance(node.value, ast.Name)
            and node.value.id in imported_modules
        ):
            found.append(f"{node.lineno}: {node.value.id}.{node.attr}")
    return found


def project_modules():
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            relative = path.relative_to(ROOT).with_suffix("")
            yield path, ".".join(relative.parts).removesuffix(".__init__")


def test_no_module_uses_another_modules_private_names():
    offences = [
        f"{path.relative_to(ROOT)}:{use}"
        for path, module in project_modules()
        for use in private_uses(path.read_text(), module=module)
    ]
    assert not offences, "private names used across modules:\n" + "\n".join(offences)


def test_the_scan_finds_both_kinds_of_private_use():
    source = (
        "from training.datasets.models import GoldPair\n"
        "from training.registry import services as registry\n"
        "from training.registry.services import _registry_lock\n"
        "from training.datasets.models import _VERSION_CONTENT as content\n"
        "registry._promote(model=None)\n"
        "registry.model_version_promote(model=None)\n"
        "self._cache = {}\n"
        "GoldPair._meta.db_table\n"
    )
    assert private_uses(source, module="training.runs.execute") == [
        "3: from training.registry.services import _registry_lock",
        "4: from training.datasets.models import _VERSION_CONTENT",
        "5: registry._promote",
    ]
