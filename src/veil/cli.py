"""`veil` on the command line: a thin click layer over the public API.

Exit codes: 0 ok, 1 policy errors (or failed tests), 2 usage errors, 3 internal errors.
"""

from __future__ import annotations

import difflib
import json
import os
import sys
import tempfile
import traceback
import typing as t
from pathlib import Path

import click

from veil import __version__
from veil.api import Checked, check, compile_program
from veil.diagnostics import Diagnostic, SourceMap, render_github, render_json, render_text
from veil.targets import TARGETS

EXIT_OK, EXIT_POLICY, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class Suggesting(click.Choice[str]):
    """A choice that says "did you mean" for a near miss (`--target postgress`)."""

    def convert(
        self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        if value in self.choices:
            return str(value)
        close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        self.fail(
            f"unknown {param.name if param else 'value'} `{value}` "
            f"(choose from {', '.join(map(str, self.choices))}){hint}",
            param,
            ctx,
        )


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory, then rename: a failure leaves
    the old file (or nothing) in place, never half a script. Mode 0644 like any other file."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit_diagnostics(diags: t.Sequence[Diagnostic], sources: SourceMap, fmt: str) -> None:
    if fmt == "json":
        click.echo(render_json(diags))
        return
    if fmt == "github":
        if diags:
            click.echo(render_github(diags))
        return
    if fmt == "sarif":
        from veil.sarif import render_sarif

        click.echo(render_sarif(diags))
        return
    for d in diags:
        click.echo(render_text(d, sources), err=True)
        click.echo("", err=True)
    errors = sum(1 for d in diags if d.is_error)
    warnings = len(diags) - errors
    if diags:
        click.echo(
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}",
            err=True,
        )


def known_name(kind: str, value: str, names: t.Sequence[str]) -> None:
    """A `--user`, `--project` or `--table` must name a declared one: a typo is a usage error
    (exit 2) with "did you mean", never a silent answer about nobody."""
    if value in names:
        return
    close = difflib.get_close_matches(value, sorted(names), n=1)
    raise click.UsageError(
        f"unknown {kind} `{value}`; "
        + (f"did you mean `{close[0]}`?" if close else f"{len(names)} {kind}s are declared")
    )


def _checked_or_exit(paths: t.Sequence[str], strict: bool, fmt: str = "text") -> Checked:
    checked = check(paths, strict=strict)
    if not checked.ok:
        emit_diagnostics(checked.diagnostics, checked.sources, fmt)
        raise SystemExit(EXIT_POLICY)
    return checked


PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())


def path_alias(help_: str = "Same as PATH (the older spelling).") -> t.Callable[[t.Any], t.Any]:
    """`--path DIR`, kept working for the commands that took the repository that way before
    every command took it as a positional PATH."""
    return click.option("--path", "path_option", metavar="DIR", help=help_)


def one_path(positional: str | None, option: str | None, default: str = ".") -> str:
    """PATH, or its `--path` alias; both at once must agree."""
    if positional is not None and option is not None and positional != option:
        raise click.UsageError(f"PATH `{positional}` and `--path {option}` disagree; give one")
    return positional or option or default


STRICT = click.option("--strict", is_flag=True, help="Treat warnings as errors.")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="veil")
def main() -> None:
    """veil: purpose-based access control policies, checked and compiled to SQL.

    Exit codes: 0 ok, 1 policy errors, 2 usage errors, 3 internal errors.
    """


@main.command("check")
@PATHS
@STRICT
@click.option(
    "--format",
    "fmt",
    type=Suggesting(["text", "json", "github", "sarif"]),
    default="text",
    show_default=True,
    help="How to print diagnostics.",
)
def check_cmd(paths: tuple[str, ...], strict: bool, fmt: str) -> None:
    """Check policy files: names, types, conflicts and approvals.

    Prints every diagnostic with file:line:col; exits 1 when there is an error.
    """
    checked = check(paths, strict=strict)
    emit_diagnostics(checked.diagnostics, checked.sources, fmt)
    if not checked.ok:
        raise SystemExit(EXIT_POLICY)
    if fmt == "text":
        n = len(checked.files)
        click.echo(f"ok: {n} file{'s' * (n != 1)} checked", err=True)


@main.command("compile")
@PATHS
@click.option(
    "--target",
    "-t",
    type=Suggesting(sorted(TARGETS)),
    required=True,
    help="The platform to compile for.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the script here (atomically) instead of standard output.",
)
@STRICT
def compile_cmd(paths: tuple[str, ...], target: str, output: str | None, strict: bool) -> None:
    """Compile policies into the DDL script of a target.

    Nothing is written when there is any error.
    """
    checked = _checked_or_exit(paths, strict)
    assert checked.program is not None
    sql, diags = compile_program(checked.program, target)
    if strict:
        diags = [d.as_error() for d in diags]
    if diags:
        emit_diagnostics(list(checked.diagnostics) + diags, checked.sources, "text")
    elif checked.diagnostics:
        emit_diagnostics(checked.diagnostics, checked.sources, "text")
    if sql is None or any(d.is_error for d in diags):
        raise SystemExit(EXIT_POLICY)
    if output:
        write_atomic(Path(output), sql)
    else:
        click.echo(sql, nl=False)


@main.command("explain")
@PATHS
@click.option("--user", "-u", required=True, help="The querying user.")
@click.option("--project", "-p", help="The user's active project (none if omitted).")
@click.option("--table", help="Only this table (as written in its `table` block).")
@click.option(
    "--format", "fmt", type=Suggesting(["text", "json"]), default="text", show_default=True
)
def explain_cmd(
    paths: tuple[str, ...], user: str, project: str | None, table: str | None, fmt: str
) -> None:
    """Show what USER sees, with no database: for each protected column clear or masked
    (method, and the policy that decided), and which row rules apply."""
    from veil.explain import explain, explanation_to_json, render_explanation_text

    checked = _checked_or_exit(paths, strict=False)
    program = checked.program
    assert program is not None
    known_name("user", user, [u.name for u in program.users])
    if project is not None:
        known_name("project", project, [p.name for p in program.projects])
    key: tuple[str, ...] | None = None
    if table is not None:
        known_name("table", table, [tb.name for tb in program.tables])
        key = next(tb.key for tb in program.tables if tb.name == table)
    expl = explain(program, user, project, key)
    if fmt == "json":
        click.echo(json.dumps(explanation_to_json(expl), indent=2, sort_keys=True))
    else:
        click.echo(render_explanation_text(expl))


def run() -> None:
    """Console entry point: maps every unexpected exception to exit code 3."""
    try:
        result = main.main(standalone_mode=False)
        if isinstance(result, int) and result != 0:
            sys.exit(result)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(EXIT_USAGE)
    except click.ClickException as e:
        e.show()
        sys.exit(EXIT_USAGE)
    except SystemExit as e:
        sys.exit(e.code)
    except Exception:  # internal error: say so, with the trace for a bug report
        click.echo("veil: internal error — please report this with the trace below", err=True)
        click.echo(traceback.format_exc(), err=True)
        sys.exit(EXIT_INTERNAL)
    sys.exit(EXIT_OK)


def _register_extensions() -> None:
    """Commands that live in their own modules (authoring workflow, lifecycle)."""
    import importlib

    for module in ("veil.cli_lifecycle", "veil.cli_authoring", "veil.cli_tools", "veil.cli_plan"):
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as e:
            if e.name != module:
                raise
            continue
        mod.register(main)


_register_extensions()
