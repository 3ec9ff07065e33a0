"""Commands of the authoring workflow: `veil init`, `veil catalog import`, `veil sandbox`.

`veil.cli` calls `register(main)` once it has built its group. This module imports `veil.cli`
only inside the commands: it is itself imported while `veil.cli` is still being initialised.
"""

from __future__ import annotations

from pathlib import Path

import click

EXIT_POLICY = 1  # as in veil.cli: policy errors, and failures the user can fix


def _fail(message: str) -> None:
    click.echo(f"error: {message}", err=True)
    raise SystemExit(EXIT_POLICY)


# --------------------------------------------------------------------------------------------
# veil init


@click.command("init")
@click.argument(
    "directory", required=False, default=".", type=click.Path(file_okay=False, path_type=Path)
)
def init_cmd(directory: Path) -> None:
    """Start a policy repository in DIRECTORY (default: here), which must be new or empty.

    Writes a small valid repository: catalog, purpose, users and groups, a project, masks, a
    row filter, `veil test` cases, a README and a GitHub Actions workflow.
    """
    from veil.scaffold import ScaffoldError, init

    try:
        written = init(directory)
    except ScaffoldError as e:
        _fail(str(e))
    for path in written:
        click.echo(f"created {path}")
    click.echo(f"next: cd {directory} && veil check . && veil test .", err=True)


# --------------------------------------------------------------------------------------------
# veil catalog import


@click.group("catalog")
def catalog_group() -> None:
    """Work with the catalog (tables, columns, types)."""


@click.command("import")
@click.option(
    "--dsn",
    required=True,
    help='libpq connection string or URI of the database to read (`""`: the '
    "PG* environment variables).",
)
@click.option(
    "--schema",
    "schemas",
    multiple=True,
    metavar="SCHEMA",
    help="A schema to import; repeat for several. Default: every schema but the "
    "system ones and `veil`.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Write here (atomically), keeping the tags of an existing file; default: standard output.",
)
def catalog_import_cmd(dsn: str, schemas: tuple[str, ...], output: Path | None) -> None:
    """Write `table` blocks for the tables of a live PostgreSQL database.

    Types without a veil equivalent become `text` with a `# was <type>` comment. Importing into
    an existing file keeps the tags of columns that still exist and the tables of schemas not
    imported this time; dropped tables and columns disappear.
    """
    from veil.catalog_import import CatalogImportError, import_catalog
    from veil.cli_common import write_atomic

    old_text: str | None = None
    if output is not None and output.exists():
        try:
            old_text = output.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            _fail(f"cannot read `{output}`: {e}")
    try:
        text, report = import_catalog(dsn, schemas, old_text, str(output) if output else "<stdout>")
    except CatalogImportError as e:
        _fail(str(e))
    if output is None:
        click.echo(text, nl=False)
    else:
        write_atomic(output, text)
    say = click.echo
    say(
        f"imported {report.tables} table{'s' * (report.tables != 1)} ({report.columns} "
        f"columns) from database `{report.database}`, schemas: "
        f"{', '.join(report.schemas) or '(none)'}" + (f" -> {output}" if output else ""),
        err=True,
    )
    if report.kept_tags:
        say(
            f"kept {report.kept_tags} tag{'s' * (report.kept_tags != 1)} of the existing file",
            err=True,
        )
    for name in report.removed:
        say(f"removed table `{name}` (no longer in the database)", err=True)
    for name in report.fallbacks:
        say(f"note: {name} has no veil type; written as `text`", err=True)
    for name in report.skipped:
        say(f"warning: skipped {name}: a veil name cannot contain a line break", err=True)


catalog_group.add_command(catalog_import_cmd)


# --------------------------------------------------------------------------------------------
# veil sandbox


@click.command("sandbox")
@click.argument("paths", nargs=-1, required=True, type=click.Path())
@click.option(
    "--rows",
    type=click.IntRange(0, 100_000),
    default=20,
    show_default=True,
    help="Sample rows per table.",
)
@click.option(
    "--data",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="Load DATA/<schema>.<table>.csv (with a header line) instead of sample "
    "rows, where present.",
)
@click.option(
    "--keep", is_flag=True, help="Leave the server running and print how to connect to it."
)
def sandbox_cmd(paths: tuple[str, ...], rows: int, data: Path | None, keep: bool) -> None:
    """Try the policies on a throwaway PostgreSQL and show what every user sees.

    Starts an embedded PostgreSQL (pgserver), creates the catalog's tables with sample rows,
    the users and groups as roles, applies the compiled PostgreSQL script, then prints, per
    user — with no project and in each of their projects — every protected view with masked
    cells and hidden rows marked.
    """
    from veil.api import compile_program
    from veil.cli_common import checked_or_exit, emit_diagnostics
    from veil.sandbox import SandboxError, run_sandbox

    checked = checked_or_exit(paths, strict=False)
    assert checked.program is not None
    script, diags = compile_program(checked.program, "postgres")
    if diags:
        emit_diagnostics(diags, checked.sources, "text")
    if script is None:
        raise SystemExit(EXIT_POLICY)
    try:
        run_sandbox(checked.program, script, rows=rows, data=data, keep=keep, echo=click.echo)
    except SandboxError as e:
        _fail(str(e))


# --------------------------------------------------------------------------------------------


def register(main: click.Group) -> None:
    """Add this module's commands to `veil` (into an existing `catalog` group if there is one)."""
    main.add_command(init_cmd)
    main.add_command(sandbox_cmd)
    existing = main.commands.get("catalog")
    if isinstance(existing, click.Group):
        existing.add_command(catalog_import_cmd)
    else:
        main.add_command(catalog_group)
