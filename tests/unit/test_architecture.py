"""The layout's promises, checked on the source: no import cycle, a CLI that reaches neither Redis nor the models
directly, and every Redis command sent from store/ (the embedded server's own process management aside)."""

from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "vsearch"
# Calls that send a Redis command; server.py only pings, probes and shuts down its own process.
REDIS_CALLS = re.compile(r"\.(execute_command|pipeline|hset|hget|hgetall|hmget|mget|scan_iter|ft|json|unlink|"
                         r"expire|eval|evalsha|set|delete|exists|info|config_get|dbsize|module_list|ping|"
                         r"shutdown)\(")


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES = {module_name(p): p for p in PACKAGE.rglob("*.py")}


def _runtime_nodes(tree: ast.AST):
    """Every node but those under `if TYPE_CHECKING:` (imports for annotations only, never run)."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and isinstance(node.test, ast.Name) and node.test.id == "TYPE_CHECKING":
            continue
        yield node
        yield from _runtime_nodes(node)


def imports(name: str) -> set[str]:
    """The vsearch modules a module imports when it runs, anywhere in it (function-level imports count too)."""
    found = set()
    for node in _runtime_nodes(ast.parse(MODULES[name].read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names if alias.name in MODULES}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                target = f"{node.module}.{alias.name}"
                found.add(target if target in MODULES else node.module)
    return {m for m in found if m in MODULES and m != name}


def test_there_is_no_import_cycle() -> None:
    graph = {name: imports(name) for name in MODULES}
    state: dict[str, int] = {}
    path: list[str] = []

    def visit(name: str) -> None:
        state[name] = 1
        path.append(name)
        for other in sorted(graph[name]):
            if state.get(other) == 1:
                cycle = path[path.index(other):] + [other]
                pytest.fail("import cycle: " + " -> ".join(cycle))
            if other not in state:
                visit(other)
        path.pop()
        state[name] = 2

    for name in sorted(graph):
        if name not in state:
            visit(name)


def test_the_cli_imports_no_store_and_no_models_module() -> None:
    reached = {m for m in imports("vsearch.cli") if m.startswith(("vsearch.store", "vsearch.models"))}
    assert reached == set()


@pytest.mark.parametrize("name", sorted(n for n in MODULES if not n.startswith("vsearch.store")
                                        and n not in {"vsearch.server"}))
def test_no_module_outside_store_sends_a_redis_command(name: str) -> None:
    source = MODULES[name].read_text()
    tree = ast.parse(source)
    redis_imported = any(isinstance(n, (ast.Import, ast.ImportFrom)) and any(
        (a.name if isinstance(n, ast.Import) else (n.module or "")).split(".")[0] == "redis" for a in n.names)
        for n in ast.walk(tree))
    assert not redis_imported, f"{name} imports redis"
    calls = [line for line in source.splitlines() if REDIS_CALLS.search(line) and "client" in line]
    assert calls == []


@pytest.mark.parametrize("name", ["vsearch.schema", "vsearch.records", "vsearch.fields", "vsearch.filters",
                                  "vsearch.stems", "vsearch.load.diff", "vsearch.query.hybrid", "vsearch.cli"])
def test_the_pure_modules_and_the_cli_load_neither_redis_nor_a_model_library(name: str) -> None:
    heavy = ("redis", "torch", "sentence_transformers", "onnxruntime", "ray", "transformers", "vsearch.store")
    code = f"import sys, {name}; print(sorted(m for m in sys.modules if m.startswith({heavy!r})))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                         cwd=PACKAGE.parent).stdout
    assert out.strip() == "[]"
