"""The package's import graph: no cycles between modules, and the layers of docs/design.md.

The graph is read from the source with `ast`: an edge ``a -> b`` for every ``import`` or
``from ... import`` that runs when module ``a`` is imported (the module body, including
``if``/``try``/``with``/class bodies, but not function bodies and not ``if TYPE_CHECKING:``),
resolved to a module of the package: relative imports against the importing module's package,
``from pkg import name`` to ``pkg.name`` when that is a submodule, else to ``pkg``.
Function-level imports cannot form an import-time cycle, so the cycle check ignores them;
the layer checks below count them too (an import is an import, wherever it is written).
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator, Mapping
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = "jaxopt_lab"


def package_modules(src: Path, package: str) -> dict[str, Path]:
    """Every module of `package` under `src` (the folder holding the package), by dotted name."""
    modules = {}
    for path in sorted((src / package).rglob("*.py")):
        parts = list(path.relative_to(src).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        modules[".".join(parts)] = path
    return modules


def _import_time_statements(body: list[ast.stmt]) -> Iterator[ast.Import | ast.ImportFrom]:
    """The import statements of `body` that run when the module is imported."""
    for node in body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            yield node
            continue
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            yield from _import_time_statements(node.orelse)
            continue
        for field in ("body", "orelse", "finalbody", "handlers"):
            block = getattr(node, field, None)
            if isinstance(block, list):
                yield from _import_time_statements(block)


def _all_statements(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement of the module, function bodies included."""
    return (node for node in ast.walk(tree) if isinstance(node, (ast.Import, ast.ImportFrom)))


def _targets(node: ast.Import | ast.ImportFrom, module: str, is_package: bool, modules: Mapping[str, Path]) -> set[str]:
    """The package modules one import statement of `module` names."""
    if isinstance(node, ast.Import):
        return {alias.name for alias in node.names if alias.name in modules}
    if node.level:
        parent = (module if is_package else module.rpartition(".")[0]).split(".")
        parent = parent[: len(parent) - (node.level - 1)]
        source = ".".join(parent + ([node.module] if node.module else []))
    else:
        source = node.module or ""
    found = set()
    for alias in node.names:
        submodule = f"{source}.{alias.name}"
        if submodule in modules:
            found.add(submodule)
        elif source in modules:
            found.add(source)
    return found


def import_graph(src: Path, package: str, *, import_time_only: bool = True) -> dict[str, set[str]]:
    """Module -> the package modules it imports (at import time, or anywhere)."""
    modules = package_modules(src, package)
    graph = {}
    for module, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        statements = _import_time_statements(tree.body) if import_time_only else _all_statements(tree)
        is_package = path.name == "__init__.py"
        edges = set()
        for node in statements:
            edges |= _targets(node, module, is_package, modules)
        edges.discard(module)
        graph[module] = edges
    return graph


def find_cycle(graph: Mapping[str, set[str]]) -> list[str] | None:
    """One cycle of `graph` as ``[a, b, ..., a]``, or None (iterative depth-first search)."""
    done: set[str] = set()
    for start in sorted(graph):
        if start in done:
            continue
        path, on_path = [start], {start}
        stack = [iter(sorted(graph[start]))]
        while stack:
            nxt = next(stack[-1], None)
            if nxt is None:
                stack.pop()
                done.add(path[-1])
                on_path.discard(path.pop())
            elif nxt in on_path:
                return path[path.index(nxt) :] + [nxt]
            elif nxt not in done:
                path.append(nxt)
                on_path.add(nxt)
                stack.append(iter(sorted(graph.get(nxt, ()))))
    return None


def _imports_from(graph: Mapping[str, set[str]], importers: list[str], forbidden: str) -> list[str]:
    return [
        f"{module} -> {target}"
        for module in importers
        for target in sorted(graph[module])
        if target == forbidden or target.startswith(forbidden + ".")
    ]


# --------------------------------------------------------------------------- the checker itself


def test_find_cycle_finds_a_cycle_and_accepts_a_dag():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": set()}) is None
    assert find_cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None  # a diamond is no cycle
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"x": {"y"}, "y": {"y2"}, "y2": {"y"}}) == ["y", "y2", "y"]


def test_graph_resolves_relative_and_submodule_imports(tmp_path):
    pkg = tmp_path / "toy"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("from toy import a\n")
    (pkg / "a.py").write_text("from . import b\nimport toy.sub.c\n\ndef f():\n    from toy import d\n")
    (pkg / "b.py").write_text("from .a import something\n")
    (pkg / "d.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from toy import a\n")
    (pkg / "sub" / "__init__.py").write_text("from .c import name\n")
    c_source = "from ..b import x\ntry:\n    from toy.sub import e\nexcept ImportError:\n    pass\n"
    (pkg / "sub" / "c.py").write_text(c_source)
    (pkg / "sub" / "e.py").write_text("import numpy\n")
    graph = import_graph(tmp_path, "toy")
    assert graph == {
        "toy": {"toy.a"},
        "toy.a": {"toy.b", "toy.sub.c"},
        "toy.b": {"toy.a"},
        "toy.d": set(),
        "toy.sub": {"toy.sub.c"},
        "toy.sub.c": {"toy.b", "toy.sub.e"},
        "toy.sub.e": set(),
    }
    assert find_cycle(graph) == ["toy.a", "toy.b", "toy.a"]
    assert "toy.d" in import_graph(tmp_path, "toy", import_time_only=False)["toy.a"]


# --------------------------------------------------------------------------- the package


def test_package_has_no_import_cycles():
    graph = import_graph(ROOT, PACKAGE)
    assert len(graph) > 50 and graph["jaxopt_lab.optim.base"] == {"jaxopt_lab._checks"}
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle)


def test_models_losses_and_schedules_import_nothing_from_the_optimizers():
    graph = import_graph(ROOT, PACKAGE, import_time_only=False)
    below = [m for m in graph if m.startswith("jaxopt_lab.nn")] + ["jaxopt_lab.losses", "jaxopt_lab.schedules"]
    assert len(below) >= 6
    assert _imports_from(graph, below, "jaxopt_lab.optim") == []


def test_report_imports_nothing_from_the_sweep():
    graph = import_graph(ROOT, PACKAGE, import_time_only=False)
    assert _imports_from(graph, ["jaxopt_lab.report_page"], "jaxopt_lab.sweep") == []


def test_importing_the_models_runs_no_optimizer_module():
    """The same promise at run time: what Python actually loads, independent of the ast reading."""
    code = (
        "import sys, jaxopt_lab.nn, jaxopt_lab.losses, jaxopt_lab.schedules\n"
        "print(sorted(m for m in sys.modules if m.startswith('jaxopt_lab.optim')))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT, check=True)
    assert out.stdout.strip() == "[]"


#: Optional libraries (extras): imported where they are used, so the base install works without them.
OPTIONAL_LIBRARIES = ("flax", "equinox", "optuna", "pandas", "xarray", "scipy", "sklearn", "tensorboard", "mlflow",
                      "PIL", "torch", "cmaes", "optax.contrib")


def _function_level_imports(tree: ast.Module) -> Iterator[ast.Import | ast.ImportFrom]:
    for fn in ast.walk(tree):
        if isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            for node in fn.body if False else ast.walk(fn):
                if isinstance(node, (ast.Import, ast.ImportFrom)):
                    yield node


def test_function_level_imports_are_optional_libraries_or_say_why():
    """An import inside a function is there for a reason a reader must see: an optional library,
    the command line fixing JAX's settings before anything computes (cli.py says so at the top),
    or an import cycle / start-up cost, said in a comment on the line or the line above."""
    unexplained = []
    for name, path in package_modules(ROOT, PACKAGE).items():
        if name in (f"{PACKAGE}.cli", f"{PACKAGE}.__main__"):
            continue
        lines = path.read_text().splitlines()
        for node in set(_function_level_imports(ast.parse(path.read_text()))):
            module = node.module if isinstance(node, ast.ImportFrom) and node.module else node.names[0].name
            if module.startswith(OPTIONAL_LIBRARIES):
                continue
            here, above = lines[node.lineno - 1], lines[node.lineno - 2]
            if "#" in here or above.strip().startswith("#"):
                continue
            unexplained.append(f"{path.relative_to(ROOT)}:{node.lineno}: {here.strip()}")
    assert not unexplained, "function-level imports without a reason:\n" + "\n".join(sorted(unexplained))
