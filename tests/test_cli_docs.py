"""docs/cli.md cannot drift from the commands: every command's section has examples, and they run.

An example is a ```console block in a command's section:

    $ veil check examples/payments
    ok: 11 files checked

Each `$ veil …` line runs (in-process, through click) in a scratch copy of `examples/`, the
commands of one section in order, so a section can approve and then revoke. The lines after it
are its output (standard output and error, as a terminal shows them): each must match in order,
where `…` alone skips any number of lines and `…` inside a line stands for any text. A command
that exits non-zero says so at the end of its line: `# exit 1`. `$VEIL_DSN` is a throwaway
database on the test server, and `$ psql "$VEIL_DSN" -c "SQL"` runs SQL there.
"""

from __future__ import annotations

import re
import shlex
import shutil
import typing as t
from dataclasses import dataclass, field
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from veil.cli import main

ROOT = Path(__file__).resolve().parent.parent
CLI_DOC = ROOT / "docs" / "cli.md"
SECTION = re.compile(r"^## `(veil [a-z ]+?)`\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
CONSOLE = re.compile(r"^```console\n(.*?)^```", re.MULTILINE | re.DOTALL)
EXIT = re.compile(r"\s+# exit (\d+)$")


@dataclass
class Example:
    command: str
    exit_code: int
    output: list[str] = field(default_factory=list)


def _commands(group: click.Group, prefix: str = "veil") -> list[str]:
    out = []
    for name, cmd in sorted(group.commands.items()):
        if isinstance(cmd, click.Group):
            out.extend(_commands(cmd, f"{prefix} {name}"))
        else:
            out.append(f"{prefix} {name}")
    return out


def sections() -> dict[str, list[Example]]:
    out: dict[str, list[Example]] = {}
    for m in SECTION.finditer(CLI_DOC.read_text(encoding="utf-8")):
        examples: list[Example] = []
        for block in CONSOLE.findall(m.group(2)):
            for line in block.splitlines():
                if line.startswith("$ "):
                    code = EXIT.search(line)
                    command = EXIT.sub("", line[2:]) if code else line[2:]
                    examples.append(Example(command, int(code.group(1)) if code else 0))
                elif examples:
                    examples[-1].output.append(line.rstrip())
        out[m.group(1)] = examples
    return out


def test_every_command_has_examples() -> None:
    found = sections()
    missing = [c for c in _commands(main) if not any(e.command.startswith(c) for e in found[c])]
    assert not missing, f"commands without a ```console example in docs/cli.md: {missing}"


def matches(expected: list[str], actual: list[str]) -> bool:
    """`expected` lines in order; `…` alone skips lines, `…` in a line matches any text."""
    if not expected:
        return not actual
    head, rest = expected[0], expected[1:]
    if head == "…":
        return any(matches(rest, actual[i:]) for i in range(len(actual) + 1))
    if not actual:
        return False
    pattern = ".*".join(re.escape(part) for part in head.split("…"))
    return re.fullmatch(pattern, actual[0]) is not None and matches(rest, actual[1:])


def test_matches() -> None:
    assert matches(["a", "…", "d"], ["a", "b", "c", "d"])
    assert matches(["a…z"], ["a to z"])
    assert not matches(["a"], ["a", "b"])
    assert not matches(["…", "x"], ["a", "b"])


def _run(example: Example, dsn: str | None) -> None:
    args = shlex.split(example.command.replace("$VEIL_DSN", dsn or "$VEIL_DSN"))
    if args[0] == "psql":
        import psycopg

        assert args[1:3] == [dsn, "-c"], example.command
        with psycopg.connect(args[1], autocommit=True) as conn:
            conn.execute(args[3])
        return
    assert args[0] == "veil", example.command
    result = CliRunner().invoke(main, args[1:])
    shown = result.output.rstrip("\n").split("\n") if result.output else []
    assert result.exit_code == example.exit_code, (example.command, result.output)
    assert matches(example.output, [x.rstrip() for x in shown]), (
        f"`{example.command}` printed\n{result.output}\nbut docs/cli.md shows\n"
        + "\n".join(example.output)
    )


def _cases() -> list[t.Any]:
    """One case per documented command with examples; those needing the server are marked
    `postgres`, like every test that uses it."""
    return [
        pytest.param(
            c, marks=[pytest.mark.postgres] if any("$VEIL_DSN" in e.command for e in es) else []
        )
        for c, es in sorted(sections().items())
        if es
    ]


@pytest.mark.parametrize("command", _cases())
def test_the_examples_of_a_command_run(
    command: str,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
) -> None:
    examples = sections()[command]
    dsn = None
    if any("$VEIL_DSN" in e.command for e in examples):
        dsn = request.getfixturevalue("pg_db").dsn
    if any(e.command.startswith("veil sandbox") and e.exit_code == 0 for e in examples):
        pytest.importorskip("pgserver")
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("COLUMNS", "100")
    for example in examples:
        _run(example, dsn)
