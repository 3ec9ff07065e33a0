"""`veil report PATH... -o access.html`: who sees what, as one self-contained HTML page."""

from __future__ import annotations

from pathlib import Path

import click

from veil.cli_common import PATHS, checked_or_exit, emit_diagnostics, write_atomic


@click.command("report")
@PATHS
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the page here (atomically) instead of standard output.",
)
def report_cmd(paths: tuple[str, ...], output: str | None) -> None:
    """Write an HTML page of who sees what: per user, under no project and under each of their
    projects, every protected table's rows and columns (clear, masked with which method,
    hidden), and the approval state of every project purpose.

    The page needs no network and has no script; computed with the reference evaluator.
    """
    from veil.report import render_report

    checked = checked_or_exit(paths, strict=False)
    assert checked.program is not None
    if checked.diagnostics:
        emit_diagnostics(checked.diagnostics, checked.sources, "text")
    page = render_report(checked.program, title=" ".join(paths))
    if output:
        write_atomic(Path(output), page)
        click.echo(f"wrote {output}", err=True)
    else:
        click.echo(page, nl=False)


def register(main: click.Group) -> None:
    main.add_command(report_cmd)
