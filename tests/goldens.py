"""The golden scripts of tests/cases: each case's `expected.<target>.sql` pins what the case
varies, with a marker line (`-- veil runtime: <name>`) where a part that no policy changes goes;
`tests/cases/_runtime/expected.<target>.sql` pins those parts once, each after its marker line.
`full_script` puts a case's script together again."""

from __future__ import annotations

import typing as t
from pathlib import Path

from veil.targets.base import join_parts, runtime_marker

ROOT = Path(__file__).resolve().parent.parent
CASES_DIR = ROOT / "tests" / "cases"
RUNTIME = CASES_DIR / "_runtime"
_MARK = runtime_marker("")


def runtime_text(parts: t.Mapping[str, str]) -> str:
    """The runtime golden: each part after its marker line, in the script's order."""
    assert all(p.endswith("\n") for p in parts.values())
    return "".join(f"{runtime_marker(name)}\n{part}" for name, part in parts.items())


def runtime_parts(text: str) -> dict[str, str]:
    """The parts of a runtime golden (`runtime_text` read back)."""
    parts: dict[str, str] = {}
    name = None
    for line in text.splitlines(keepends=True):
        if line.startswith(_MARK):
            name = line[len(_MARK) :].rstrip("\n")
            parts[name] = ""
        else:
            assert name is not None, "a runtime golden starts with a marker line"
            parts[name] += line
    return parts


def full_script(golden: Path) -> str:
    """The whole script of a case's golden `expected.<target>.sql`."""
    runtime = RUNTIME / golden.name
    parts = runtime_parts(runtime.read_text(encoding="utf-8"))
    return join_parts(golden.read_text(encoding="utf-8"), parts)
