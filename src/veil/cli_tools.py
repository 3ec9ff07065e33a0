"""`veil fmt` and `veil test`: commands over policy files that are not compilation."""

from __future__ import annotations

import datetime as dt
import difflib
import json
import os
import typing as t
from pathlib import Path

import click

from veil.cli_common import (
    EXIT_POLICY,
    EXIT_USAGE,
    PATHS,
    Suggesting,
    emit_diagnostics,
    repository_config,
    write_atomic,
)
from veil.diagnostics import SourceMap, Span, error

if t.TYPE_CHECKING:
    from veil import model
    from veil.testrunner import TestResult


def _parse_now(ctx: click.Context, param: click.Parameter, value: str | None) -> dt.datetime | None:
    if value is None:
        return None
    try:
        at = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(
            f"`{value}` is not an ISO-8601 time (e.g. 2026-11-20T10:00:00Z)"
        ) from None
    return at if at.tzinfo is not None else at.replace(tzinfo=dt.UTC)


def _display(path: Path) -> str:
    """A path relative to the working directory when below it (as diagnostics show it)."""
    rel = os.path.relpath(path)
    return str(path) if rel.startswith("..") else rel


@click.command("fmt")
@PATHS
@click.option(
    "--check",
    is_flag=True,
    help="Write nothing; list the files that would change and exit 1 if any.",
)
@click.option(
    "--diff",
    "show_diff",
    is_flag=True,
    help="Write nothing; print what would change as a unified diff (exit 1 if any).",
)
def fmt_cmd(paths: tuple[str, ...], check: bool, show_diff: bool) -> None:
    """Format policy files in the canonical layout (comments kept, meaning unchanged).

    A file that does not parse is never touched: its syntax error is printed and the exit code
    is 1.
    """
    from veil.formatter import FormatError, format_source
    from veil.loader import find_files

    files, diags = find_files(paths)
    failed = bool(diags)
    emit_diagnostics(diags, SourceMap(), "text")
    changed = unchanged = 0
    for path in files:
        name = _display(path)
        data = path.read_bytes()
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            where = Span.point(name, data[: e.start].count(b"\n") + 1, 1)
            bad = error("L0005", f"`{name}` is not valid UTF-8", where, help="save it as UTF-8")
            emit_diagnostics([bad], SourceMap(), "text")
            failed = True
            continue
        try:
            out = format_source(text, name)
        except FormatError as e:
            emit_diagnostics(e.diagnostics, SourceMap({name: text}), "text")
            failed = True
            continue
        if out == text:
            unchanged += 1
            continue
        changed += 1
        if show_diff:
            click.echo(
                "".join(
                    difflib.unified_diff(
                        text.splitlines(keepends=True),
                        out.splitlines(keepends=True),
                        f"a/{name}",
                        f"b/{name}",
                    )
                ),
                nl=False,
            )
        elif check:
            click.echo(f"would reformat {name}")
        else:
            write_atomic(path, out)
            click.echo(f"reformatted {name}")
    verb = "would be reformatted" if check or show_diff else "reformatted"
    click.echo(f"{changed} file{'s' * (changed != 1)} {verb}, {unchanged} unchanged", err=True)
    if failed or (changed and (check or show_diff)):
        raise SystemExit(EXIT_POLICY)


@click.command("test")
@PATHS
@click.option(
    "--format",
    "fmt",
    type=Suggesting(["text", "json"]),
    default="text",
    show_default=True,
    help="How to print the results.",
)
@click.option(
    "--now",
    callback=_parse_now,
    metavar="TIME",
    help="The time tests run at, for now() and today() (ISO-8601; default: `now` of "
    "veil.toml, else the current time, UTC).",
)
@click.option(
    "--dsn",
    help="Run the tests on this deployed PostgreSQL database instead, as each test's user "
    "(a superuser DSN, or one holding `{user}` to log in as each user).",
)
def test_cmd(paths: tuple[str, ...], fmt: str, now: dt.datetime | None, dsn: str | None) -> None:
    """Run the `test` blocks against the reference evaluator (with --dsn: a database).

    Prints PASS or FAIL for each test, with the file:line and the actual outcome of every
    failed expectation, then `N passed, M failed`. Exits 1 when a test fails or when the
    repository does not check.
    """
    if dsn is not None and now is not None:
        raise click.UsageError("--now cannot be used with --dsn: the database reads its own clock")
    from veil.api import check
    from veil.masking import HASH_KEY_NOTE, uses_hash
    from veil.testrunner import render_text, results_to_json, run_tests

    conf = repository_config(paths, "json" if fmt == "json" else "text")
    now = now or conf.now  # --now, else `now` of veil.toml, else the current time
    checked = check(paths, config=conf)
    if not checked.ok:
        emit_diagnostics(checked.diagnostics, checked.sources, "json" if fmt == "json" else "text")
        raise SystemExit(EXIT_POLICY)
    if checked.diagnostics:  # warnings
        emit_diagnostics(checked.diagnostics, checked.sources, "text")
    assert checked.program is not None
    if dsn is not None:
        results = _live(dsn, checked.program)
    else:
        results = run_tests(checked.program, now=now)
    if fmt == "json":
        click.echo(json.dumps(results_to_json(results), indent=2, sort_keys=True))
    else:
        if dsn is None and uses_hash(checked.program):
            click.echo(f"note: {HASH_KEY_NOTE}", err=True)
        click.echo(render_text(results))
    if not all(r.passed for r in results):
        raise SystemExit(EXIT_POLICY)


def _live(dsn: str, program: model.Program) -> list[TestResult]:
    """The tests on the database: exit 2 when it cannot be read, 1 when veil is not there."""
    from veil.livetest import run_live_tests
    from veil.targets.postgres import PostgresTarget
    from veil.verify import NotApplied, VerifyError

    try:
        return run_live_tests(dsn, program, PostgresTarget())
    except VerifyError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except NotApplied as e:
        click.echo(str(e), err=True)
        raise SystemExit(EXIT_POLICY) from None


def register(main: click.Group) -> None:
    main.add_command(fmt_cmd)
    main.add_command(test_cmd)
