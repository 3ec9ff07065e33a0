"""`veil verify`: the deployed database against the repository (exit 0 same, 1 different,
2 unreadable database)."""

from __future__ import annotations

import json
import typing as t
from pathlib import Path

import click

from veil.cli_common import (
    EXIT_POLICY,
    EXIT_USAGE,
    PATHS,
    STRICT,
    Suggesting,
    checked_or_exit,
    emit_diagnostics,
    repository_config,
    write_atomic,
)

DSN = click.option(
    "--dsn",
    envvar="VEIL_DSN",
    help="libpq connection string or URI of the database (or the VEIL_DSN variable).",
)


@click.command("verify")
@PATHS
@DSN
@click.option(
    "--format", "fmt", type=Suggesting(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--sensitive",
    "sensitive",
    multiple=True,
    metavar="LABEL=REGEX",
    help="Add or replace a sensitive-column pattern (LABEL= drops one); see docs/cli.md.",
)
@click.option(
    "--target",
    "-t",
    type=Suggesting(["postgres", "snowflake", "databricks"]),
    default="postgres",
    show_default=True,
    help="The platform. Snowflake and Databricks: only with --emit-sql.",
)
@click.option(
    "--emit-sql",
    is_flag=True,
    help="Write the read-only query that lists the differences, for a DBA to run (Snowflake, "
    "Databricks).",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="With --emit-sql: write the query here (atomically) instead of standard output.",
)
@STRICT
def verify_cmd(
    paths: tuple[str, ...],
    dsn: str | None,
    fmt: str,
    sensitive: tuple[str, ...],
    target: str,
    emit_sql: bool,
    output: str | None,
    strict: bool,
) -> None:
    """Compare the deployed PostgreSQL database with what the repository compiles to.

    Reads in one read-only transaction: governance rows, roles and their members, protected
    views and their definitions, row policies, grants, ownership. Exits 0 when identical,
    1 with one line per difference, 2 when the database cannot be read.
    """
    from veil.coverage import coverage_findings, parse_patterns
    from veil.targets.postgres import PostgresTarget
    from veil.verify import (
        Finding,
        NotApplied,
        Query,
        Report,
        VerifyError,
        render_json,
        render_text,
        verify_postgres,
    )

    if emit_sql:
        _emit_sql(paths, target, output)
        return
    if target != "postgres":
        raise click.UsageError(
            f"veil cannot connect to {target}: use --emit-sql and run the query on the account"
        )
    if not dsn:
        raise click.UsageError("--dsn (or VEIL_DSN) is required")
    try:
        patterns = parse_patterns(sensitive)
    except ValueError as e:
        raise click.BadParameter(str(e), param_hint="--sensitive") from None
    checked = checked_or_exit(paths, strict=False, fmt=fmt)
    program = checked.program
    assert program is not None

    def coverage(query: Query, report: Report) -> None:
        for kind, obj, message in coverage_findings(program, query, patterns):
            severity: t.Literal["error", "warning"] = "error" if strict else "warning"
            report.findings.append(
                Finding(kind=kind, object=obj, message=message, severity=severity)
            )

    try:
        report = verify_postgres(dsn, program, PostgresTarget(), coverage)
    except VerifyError as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(EXIT_USAGE) from None
    except NotApplied as e:
        if fmt == "json":
            click.echo(json.dumps({"applied": False, "ok": False, "message": str(e)}, indent=2))
        else:
            click.echo(str(e))
        raise SystemExit(EXIT_POLICY) from None
    click.echo(
        render_json(report, strict=strict) if fmt == "json" else render_text(report, strict=strict)
    )
    if report.differences or (strict and report.warnings):
        raise SystemExit(EXIT_POLICY)


def _emit_sql(paths: tuple[str, ...], target_name: str, output: str | None) -> None:
    from veil.api import target_options
    from veil.targets import get_target
    from veil.targets.drift import drift_script
    from veil.targets.lookup import LookupTarget

    conf = repository_config(list(paths))
    target = get_target(target_name, target_options(conf, target_name))
    if not isinstance(target, LookupTarget):
        raise click.UsageError(
            "--emit-sql is for snowflake and databricks; on postgres run veil verify --dsn"
        )
    checked = checked_or_exit(paths, strict=False)
    assert checked.program is not None
    problems = [d for d in target.check(checked.program) if d.is_error]
    if problems:
        emit_diagnostics(problems, checked.sources, "text")
        raise SystemExit(EXIT_POLICY)
    sql = drift_script(target, checked.program)
    if output:
        write_atomic(Path(output), sql)
    else:
        click.echo(sql, nl=False)


def register(main: click.Group) -> None:
    main.add_command(verify_cmd)
