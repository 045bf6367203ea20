"""The training app's modules import one another without a cycle, and reads never import
writes: a newcomer can read any module knowing only the ones below it."""

import ast
from pathlib import Path

TRAINING = Path(__file__).resolve().parent.parent / "training"
# Modules that only read: they must not import a module that writes.
READERS = {"selectors", "selectors_runs"}
WRITERS = {"services", "runs", "perform", "registry", "export", "demo"}


def import_graph() -> dict[str, set[str]]:
    """module -> training modules it imports, at module level or inside a function."""
    modules = {path.stem for path in TRAINING.glob("*.py")}
    graph = {}
    for name in modules:
        imported = set()
        for node in ast.walk(ast.parse((TRAINING / f"{name}.py").read_text())):
            if isinstance(node, ast.ImportFrom) and node.module == "training":
                imported |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("training."):
                imported.add(node.module.split(".")[1])
            elif isinstance(node, ast.Import):
                imported |= {
                    alias.name.split(".")[1]
                    for alias in node.names
                    if alias.name.startswith("training.")
                }
        graph[name] = (imported & modules) - {name}
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    done: set[str] = set()

    def visit(name: str, path: list[str]) -> list[str] | None:
        if name in path:
            return [*path[path.index(name) :], name]
        if name in done:
            return None
        for imported in sorted(graph[name]):
            if cycle := visit(imported, [*path, name]):
                return cycle
        done.add(name)
        return None

    for name in sorted(graph):
        if cycle := visit(name, []):
            return cycle
    return None


def test_the_training_modules_import_each_other_without_a_cycle():
    graph = import_graph()
    assert {"runs", "services", "registry", "perform", "gate"} <= set(graph)
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_check_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_selectors_import_no_module_that_writes():
    graph = import_graph()
    for reader in READERS:
        assert not graph[reader] & WRITERS, (reader, graph[reader] & WRITERS)
