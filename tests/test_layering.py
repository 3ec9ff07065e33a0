"""The import graph of `src/veil`, read from the source: the layering ARCHITECTURE.md describes
holds, and every module imports on its own."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

SRC = Path(__file__).resolve().parent.parent / "src"
PACKAGE = SRC / "veil"


def _module_name(path: Path) -> str:
    parts = path.relative_to(SRC).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


MODULES: dict[str, Path] = {_module_name(p): p for p in sorted(PACKAGE.rglob("*.py"))}


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(path: Path) -> tuple[set[str], set[str]]:
    """(modules imported at run time anywhere in the file, modules imported for types only)."""
    runtime: set[str] = set()
    typing_only: set[str] = set()

    def visit(node: ast.AST, sink: set[str]) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.If) and _is_type_checking(child):
                for stmt in child.body:
                    visit_stmt(stmt, typing_only)
                for stmt in child.orelse:
                    visit_stmt(stmt, sink)
                continue
            visit_stmt(child, sink)

    def visit_stmt(node: ast.AST, sink: set[str]) -> None:
        if isinstance(node, ast.Import):
            sink.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module is not None and node.level == 0:
            sink.add(node.module)
            for alias in node.names:  # `from veil import ir` imports the module veil.ir
                if f"{node.module}.{alias.name}" in MODULES:
                    sink.add(f"{node.module}.{alias.name}")
        visit(node, sink)

    visit(ast.parse(path.read_text(encoding="utf-8")), runtime)
    return runtime, typing_only


GRAPH: dict[str, set[str]] = {}
TYPING: dict[str, set[str]] = {}
for _name, _path in MODULES.items():
    GRAPH[_name], TYPING[_name] = _imports(_path)


def _internal(name: str) -> set[str]:
    return {m for m in GRAPH[name] | TYPING[name] if m in MODULES and m != "veil"}


def _importers(prefix: str) -> list[str]:
    return sorted(
        m
        for m in MODULES
        if any(i == prefix or i.startswith(prefix + ".") for i in GRAPH[m] | TYPING[m])
    )


def _under(module: str, *prefixes: str) -> bool:
    return any(module == p or module.startswith(p + ".") for p in prefixes)


def test_only_the_parser_imports_lark() -> None:
    assert _importers("lark") == ["veil.parser"]


def test_ir_and_diagnostics_import_nothing_above_them() -> None:
    assert _internal("veil.diagnostics") == set()
    assert _internal("veil.ir") == {"veil.diagnostics"}


def test_targets_do_not_import_the_tools_or_the_evaluator_side() -> None:
    forbidden = (
        "veil.cli",
        "veil.cli_common",
        "veil.cli_authoring",
        "veil.cli_lifecycle",
        "veil.cli_plan",
        "veil.cli_tools",
        "veil.cli_report",
        "veil.cli_verify",
        "veil.plan",
        "veil.plan_markdown",
        "veil.access",
        "veil.report",
        "veil.verify",
        "veil.livetest",
        "veil.sandbox",
        "veil.evaluator",
        "veil.rowexpr",
        "veil.masking",
        "veil.testrunner",
    )
    bad = {
        m: sorted(i for i in _internal(m) if _under(i, *forbidden))
        for m in MODULES
        if _under(m, "veil.targets")
    }
    assert {m: b for m, b in bad.items() if b} == {}


def test_the_evaluator_side_never_imports_a_target() -> None:
    for m in ("veil.evaluator", "veil.rowexpr", "veil.masking", "veil.methods"):
        assert not any(_under(i, "veil.targets") for i in _internal(m)), m


def test_the_testrunner_uses_the_checked_program_not_checker_internals() -> None:
    assert not any(_under(i, "veil.checker") for i in _internal("veil.testrunner"))


def test_command_modules_import_the_common_module_not_each_other() -> None:
    commands = {"veil.cli_authoring", "veil.cli_lifecycle", "veil.cli_plan", "veil.cli_tools"}
    for m in commands:
        assert "veil.cli" not in _internal(m), m
        assert not (_internal(m) & commands), m


def _cycles() -> list[list[str]]:
    """Every strongly connected set of more than one module, over run-time imports."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[list[str]] = []

    def edges(m: str) -> list[str]:
        # a package's own `__init__` is imported with any of its modules: not an edge back
        return sorted(i for i in GRAPH[m] if i in MODULES and not m.startswith(i + "."))

    def strong(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in edges(v):
            if w not in index:
                strong(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            group: list[str] = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                group.append(w)
                if w == v:
                    break
            if len(group) > 1:
                out.append(sorted(group))

    for m in MODULES:
        if m not in index:
            strong(m)
    return sorted(out)


def test_no_import_cycle() -> None:
    """Over every run-time import, those inside functions too (a deferred import hides a cycle
    from the interpreter, not from the design)."""
    assert _cycles() == []


def test_the_plan_is_a_method_of_the_target() -> None:
    """`veil plan` asks the target registry for a target and calls its `plan`: plan.py knows no
    platform module, the targets' plan modules know no plan.py, and the old `plan_targets`
    (which imported plan.py back) stays gone."""
    assert "veil.plan_targets" not in MODULES
    platform = {i for i in _internal("veil.plan") if _under(i, "veil.targets")}
    assert platform <= {"veil.targets", "veil.targets.script"}
    for m in ("veil.targets.postgres_plan", "veil.targets.lookup_plan"):
        assert not any(_under(i, "veil.plan") for i in _internal(m)), m
    assert not any(_under(i, "veil.plan_targets") for m in MODULES for i in GRAPH[m] | TYPING[m])


_IMPORT_EACH = """
import importlib, json, sys, traceback
failed = {}
for name in json.loads(sys.argv[1]):
    for loaded in [m for m in sys.modules if m == "veil" or m.startswith("veil.")]:
        del sys.modules[loaded]
    try:
        importlib.import_module(name)
    except Exception:
        failed[name] = traceback.format_exc(limit=3)
print(json.dumps(failed))
"""


def test_every_module_imports_on_its_own() -> None:
    """In a fresh interpreter, with every veil module forgotten before each import (two
    interpreters at once, each importing every other module: the machine has two cores)."""
    names = sorted(m for m in MODULES if m != "veil.__main__")
    runs = [
        subprocess.Popen(
            [sys.executable, "-c", _IMPORT_EACH, json.dumps(names[i::2])],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            cwd=SRC,
        )
        for i in range(2)
    ]
    failed = {}
    for run in runs:
        out, err = run.communicate(timeout=300)
        assert run.returncode == 0, err
        failed.update(json.loads(out))
    assert failed == {}
