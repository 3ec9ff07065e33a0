"""Every example policy file and every ```veil block of docs/language.md parses.

The deliberately broken example (examples/broken/) is excluded, except `syntax.veil`, which must
stop with exactly one syntax diagnostic. Doc snippets that are meant to be rejected are fenced
```veil-invalid (or any info string other than exactly `veil`) and are not parsed here.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from veil import ir
from veil.parser import parse_file

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
BROKEN = EXAMPLES / "broken"
LANGUAGE_DOC = ROOT / "docs" / "language.md"


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def _example_files() -> list[Path]:
    return sorted(p for p in EXAMPLES.rglob("*.veil") if BROKEN not in p.parents)


_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)```(?P<info>[^\n`]*)\n(?P<body>.*?)^(?P=indent)```[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def _doc_blocks(info: str) -> list[tuple[int, str]]:
    """(line number, code) of every fenced block of docs/language.md with this info string."""
    text = LANGUAGE_DOC.read_text(encoding="utf-8")
    blocks = []
    for m in _FENCE.finditer(text):
        if m.group("info").strip() != info:
            continue
        indent = m.group("indent")
        body = "".join(
            line[len(indent) :] if line.startswith(indent) else line
            for line in m.group("body").splitlines(keepends=True)
        )
        blocks.append((text.count("\n", 0, m.start()) + 1, body))
    return blocks


def test_there_are_examples() -> None:
    files = _example_files()
    assert len(files) >= 5, files
    assert (BROKEN / "syntax.veil").is_file()


@pytest.mark.parametrize("path", _example_files(), ids=_rel)
def test_example_parses(path: Path) -> None:
    source, diagnostics = parse_file(path.read_text(encoding="utf-8"), _rel(path))
    assert diagnostics == []
    assert source is not None and source.statements


@pytest.mark.parametrize("name", ["names", "types", "conflict"])
def test_broken_policy_is_syntactically_valid(name: str) -> None:
    """These hold semantic mistakes only: the checker, not the parser, must find them."""
    path = BROKEN / f"{name}.veil"
    source, diagnostics = parse_file(path.read_text(encoding="utf-8"), _rel(path))
    assert diagnostics == []
    assert source is not None


def test_syntax_example_has_exactly_one_syntax_error() -> None:
    path = BROKEN / "syntax.veil"
    source, diagnostics = parse_file(path.read_text(encoding="utf-8"), _rel(path))
    assert source is None
    assert len(diagnostics) == 1, diagnostics
    assert re.fullmatch(r"P\d{4}", diagnostics[0].code), diagnostics[0]
    assert diagnostics[0].span.file == _rel(path)


def test_doc_has_veil_blocks() -> None:
    assert len(_doc_blocks("veil")) >= 20


@pytest.mark.parametrize(
    ("line", "code"),
    [pytest.param(line, code, id=f"line{line}") for line, code in _doc_blocks("veil")],
)
def test_doc_block_parses(line: int, code: str) -> None:
    source, diagnostics = parse_file(code, f"docs/language.md:{line}")
    assert diagnostics == [], f"```veil block at docs/language.md line {line}"
    assert source is not None


def test_doc_lists_every_keyword() -> None:
    """The keyword table of docs/language.md is ir.KEYWORDS, no more, no less."""
    text = LANGUAGE_DOC.read_text(encoding="utf-8")
    section = text.split("### Keywords", 1)[1].split("###", 1)[0]
    table = section.split("```text", 1)[1].split("```", 1)[0]
    assert set(table.split()) == set(ir.KEYWORDS)
