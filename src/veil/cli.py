"""`veil` on the command line: a thin click layer over the public API.

Exit codes: 0 ok, 1 policy errors (or failed tests), 2 usage errors, 3 internal errors.
"""

from __future__ import annotations

import json
import sys
import traceback
from pathlib import Path

import click

from veil import (
    __version__,
    cli_authoring,
    cli_lifecycle,
    cli_plan,
    cli_report,
    cli_tools,
    cli_verify,
)
from veil.api import check, compile_program, target_options
from veil.cli_common import (
    EXIT_INTERNAL,
    EXIT_OK,
    EXIT_POLICY,
    EXIT_USAGE,
    PATHS,
    STRICT,
    TARGET,
    Suggesting,
    checked_or_exit,
    effective_strict,
    effective_target,
    emit_diagnostics,
    known_name,
    repository_config,
    write_atomic,
)
from veil.config import accept


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
def check_cmd(paths: tuple[str, ...], strict: bool | None, fmt: str) -> None:
    """Check policy files: names, types, conflicts and approvals.

    Prints every diagnostic with file:line:col; exits 1 when there is an error. Warnings that
    veil.toml accepts are printed as accepted, with their reason, and count as neither.
    """
    conf = repository_config(paths, fmt)
    checked = check(
        paths, strict=effective_strict(strict, conf), config=conf, cache=True, program=False
    )
    emit_diagnostics(checked.diagnostics, checked.sources, fmt)
    if not checked.ok:
        raise SystemExit(EXIT_POLICY)
    if fmt == "text":
        n = len(checked.files)
        click.echo(f"ok: {n} file{'s' * (n != 1)} checked", err=True)


@main.command("compile")
@PATHS
@TARGET
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the script here (atomically) instead of standard output.",
)
@STRICT
def compile_cmd(
    paths: tuple[str, ...], target: str | None, output: str | None, strict: bool | None
) -> None:
    """Compile policies into the DDL script of a target.

    Nothing is written when there is any error.
    """
    conf = repository_config(paths)
    strict = effective_strict(strict, conf)
    target = effective_target(target, conf)
    checked = checked_or_exit(paths, strict, conf=conf)
    assert checked.program is not None
    sql, diags = compile_program(checked.program, target, target_options(conf, target))
    diags = accept(conf, diags, checked.policies, checked.sources.line, report_unused=False)
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

    checked = checked_or_exit(paths, strict=False)
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


for _module in (cli_lifecycle, cli_authoring, cli_tools, cli_plan, cli_report, cli_verify):
    _module.register(main)
