"""Docs cannot drift from the code: every diagnostic code and every command is documented."""

from __future__ import annotations

import re
from pathlib import Path

import click

from veil.cli import main

ROOT = Path(__file__).resolve().parent.parent
SRC = ROOT / "src" / "veil"
CODE = re.compile(r"""["']([PLEWT]\d{4})["']""")


def codes_in_source() -> set[str]:
    found: set[str] = set()
    for path in SRC.rglob("*.py"):
        found.update(CODE.findall(path.read_text(encoding="utf-8")))
    return found


def documented(doc: Path, pattern: str) -> set[str]:
    return set(re.findall(pattern, doc.read_text(encoding="utf-8"), flags=re.MULTILINE))


def test_the_scan_finds_codes() -> None:
    # guards the test below against a pattern that silently matches nothing
    assert {"P0001", "L0001"} <= codes_in_source()


def test_every_diagnostic_code_is_documented() -> None:
    docs = documented(ROOT / "docs" / "errors.md", r"^## ([PLEWT]\d{4})\b")
    missing = sorted(codes_in_source() - docs)
    assert not missing, f"codes without a `## CODE: …` section in docs/errors.md: {missing}"


def test_no_stale_codes_in_the_docs() -> None:
    docs = documented(ROOT / "docs" / "errors.md", r"^## ([PLEWT]\d{4})\b")
    stale = sorted(docs - codes_in_source())
    assert not stale, f"docs/errors.md documents codes the compiler never emits: {stale}"


def _commands(group: click.Group, prefix: str = "veil") -> list[str]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        full = f"{prefix} {name}"
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, full))
        else:
            out.append(full)
    return out


def test_every_command_is_documented() -> None:
    text = (ROOT / "docs" / "cli.md").read_text(encoding="utf-8")
    headings = set(re.findall(r"^## `(veil [a-z ]+?)`", text, flags=re.MULTILINE))
    missing = [c for c in _commands(main) if c not in headings]
    assert not missing, f"commands without a section in docs/cli.md: {missing}"
