"""Golden cases: a directory per case under tests/cases/ with its policies, the expected
diagnostics, and the expected script of every target. The parts of a script that no policy
changes (veil's routines, pre-flight checks, grants: `Target.layout_parts`) are pinned once per
target in tests/cases/_runtime/, and each case's script pins the rest, with a marker line where
each of those parts goes (tests/goldens.py). `pytest --update-goldens` rewrites them; review the
diff like code before committing it."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.goldens import RUNTIME, full_script, runtime_text
from veil import config
from veil.api import check, compile_program, target_options
from veil.diagnostics import render_text
from veil.targets import TARGETS, get_target
from veil.targets.base import join_parts

ROOT = Path(__file__).resolve().parent.parent
CASES = sorted(p for p in (ROOT / "tests" / "cases").iterdir() if p.is_dir() and p.name[0] != "_")
EXAMPLE = ROOT / "examples" / "payments"
#: No generated line is longer than this, string literals aside.
MAX_LINE = 300
#: A `--` comment, a string literal (quote doubled, or backslash escapes), a quoted name, the rest.
_PIECES = {
    False: re.compile(r"--[^\n]*|'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|[^'\"-]+|.", re.S),
    True: re.compile(r"--[^\n]*|'(?:[^'\\]|\\.)*'|\"(?:[^\"]|\"\")*\"|`[^`]*`|[^'\"`-]+|.", re.S),
}


def without_literals(sql: str, backslash: bool) -> str:
    """`sql` with the content of every string literal removed (`'…'` -> `''`)."""
    return "".join(
        "''" if m.group().startswith("'") and len(m.group()) > 1 else m.group()
        for m in _PIECES[backslash].finditer(sql)
    )


def long_lines(sql: str, target: str) -> list[str]:
    backslash = get_target(target).backslash_literals
    return [
        f"line {n}: {len(line)} characters"
        for n, line in enumerate(without_literals(sql, backslash).split("\n"), 1)
        if len(line) > MAX_LINE
    ]


def _compare(golden: Path, text: str, update: bool) -> None:
    if update:
        golden.write_text(text, encoding="utf-8")
    assert golden.exists(), f"missing golden {golden}: run pytest --update-goldens and review it"
    assert text == golden.read_text(encoding="utf-8"), f"{golden} differs"


def test_cases_exist() -> None:
    assert len(CASES) >= 5


@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_diagnostics(case: Path, update_goldens: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    checked = check([case.relative_to(ROOT)])
    text = "".join(render_text(d, checked.sources) + "\n\n" for d in checked.diagnostics)
    _compare(case / "expected.diagnostics", text, update_goldens)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_runtime(target: str, update_goldens: bool, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parts of the script that no policy changes are the same in every case (and the
    example), and pinned once."""
    monkeypatch.chdir(ROOT)
    tgt = get_target(target)
    seen: dict[str, tuple[str, str]] = {}
    for source in [*CASES, EXAMPLE]:
        program = check([source.relative_to(ROOT)]).program
        if program is None or compile_program(program, target)[0] is None:
            continue
        _, parts = tgt.layout_parts(tgt.lower(program))
        for name, part in parts.items():
            first, text = seen.setdefault(name, (source.name, part))
            assert text == part, f"runtime part {name!r} differs in {first} and {source.name}"
    assert seen, "no case compiles"
    RUNTIME.mkdir(exist_ok=True)
    _compare(
        RUNTIME / f"expected.{target}.sql",
        runtime_text({n: text for n, (_, text) in seen.items()}),
        update_goldens,
    )


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("case", CASES, ids=lambda p: p.name)
def test_script(
    case: Path, target: str, update_goldens: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The case's part of the script (the runtime parts are `test_runtime`'s)."""
    monkeypatch.chdir(ROOT)
    checked = check([case.relative_to(ROOT)])
    golden = case / f"expected.{target}.sql"
    if checked.program is None:
        assert not golden.exists(), f"{case.name} has errors but a golden script"
        return
    options = target_options(config.load([case])[0], target)  # the case's veil.toml, if any
    sql, diags = compile_program(checked.program, target, options)
    if sql is None:
        text = "".join(render_text(d, checked.sources) + "\n\n" for d in diags)
        _compare(case / f"expected.{target}.diagnostics", text, update_goldens)
        return
    tgt = get_target(target, options)
    own, parts = tgt.layout_parts(tgt.lower(checked.program))
    assert join_parts(own, parts) == sql, "the parts do not make up the script"
    _compare(golden, own, update_goldens)
    assert full_script(golden) == sql
    again, _ = compile_program(checked.program, target, options)
    assert again == sql, "output is not deterministic"


def test_without_literals() -> None:
    assert without_literals("a = 'x''y' -- it's\nb = 'z'", False) == "a = '' -- it's\nb = ''"
    assert without_literals("a = 'x\\'y' OR `q'`", True) == "a = '' OR `q'`"


@pytest.mark.parametrize("target", sorted(TARGETS))
@pytest.mark.parametrize("source", [EXAMPLE, *CASES], ids=lambda p: p.name)
def test_no_long_lines(source: Path, target: str) -> None:
    """A reviewer reads every line of a script: policy bodies are laid out one condition per
    line and long lists one item per line, so no line (string literals aside) is very long."""
    program = check([source]).program
    if program is None:
        return
    sql, _ = compile_program(program, target, target_options(config.load([source])[0], target))
    if sql is not None:
        assert long_lines(sql, target) == []


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_output_does_not_depend_on_hash_seeds(target: str) -> None:
    """Byte-identical output whatever PYTHONHASHSEED is: nothing comes from set/dict order."""
    example = ROOT / "examples" / "payments"
    code = (
        "import sys; from veil.api import check, compile_program; "
        "sql, _ = compile_program(check([sys.argv[1]]).program, sys.argv[2]); "
        "sys.stdout.write(sql)"
    )
    outputs = {
        subprocess.run(
            [sys.executable, "-c", code, str(example), target],
            check=True,
            capture_output=True,
            text=True,
            env={**os.environ, "PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2", "3")
    }
    program = check([example]).program
    assert program is not None
    assert outputs == {compile_program(program, target)[0]}
