"""The purpose lifecycle on the command line: `veil approve`, `veil revoke`, `veil projects`.

Approvals live in git next to the policy they unlock: `approve` and `revoke` append a line to the
file that declares the project, and the checker derives every purpose's state from those lines.
"""

from __future__ import annotations

import datetime as dt
import difflib
import json
import typing as t
from pathlib import Path

import click

from veil import ir, model
from veil.api import Checked, check
from veil.approvals import (
    Refusal,
    approval_record,
    approval_refusal,
    approve_line,
    format_time,
    project_digest,
    revoke_line,
)
from veil.cli_common import known_name, one_path, path_alias
from veil.loader import load

EXIT_POLICY = 1


def _fail(message: str, help_: str | None = None) -> t.NoReturn:
    click.echo(f"error: {message}", err=True)
    if help_:
        click.echo(f"  help: {help_}", err=True)
    raise SystemExit(EXIT_POLICY)


def _checked_repository(path: str) -> tuple[Checked, ir.PolicySet]:
    from veil.cli_common import emit_diagnostics

    checked = check([path])
    loaded = load([path])
    if not checked.ok or loaded.policies is None:
        emit_diagnostics(checked.diagnostics, checked.sources, "text")
        _fail("the repository has errors; fix them before changing approvals")
    return checked, loaded.policies


def _find_project(policies: ir.PolicySet, name: str) -> ir.Project:
    projects = policies.of_type(ir.Project)
    for p in projects:
        if p.name.value == name:
            return p
    known_name("project", name, [p.name.value for p in projects])  # a typo: exit 2
    raise AssertionError("unreachable")


def _parse_at(at: str | None) -> dt.datetime:
    if at is None:
        return dt.datetime.now(dt.UTC).replace(microsecond=0)
    try:
        value = dt.datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise click.BadParameter(f"`{at}` is not an ISO-8601 time", param_hint="--at") from None
    return value if value.tzinfo else value.replace(tzinfo=dt.UTC)


def _append(path: Path, text: str) -> None:
    """Append `approve`/`revoke` lines so that the file stays as `veil fmt` wants it: a blank
    line before them unless the file already ends in an approval, and a file that was
    formatted comes out formatted (approve, revoke and fmt agree byte for byte)."""
    from veil.cli_common import write_atomic
    from veil.formatter import FormatError, format_source

    old = path.read_text(encoding="utf-8")
    body = old.rstrip("\n")
    statements = [] if not body else list(_statements_of(body, str(path)))
    after_approval = bool(statements) and isinstance(statements[-1], ir.Approve | ir.Revoke)
    new = body + ("\n" if after_approval else "\n\n") + text if body else text
    try:
        if format_source(old, str(path)) == old:
            new = format_source(new, str(path))
    except FormatError:  # the repository was checked, so this cannot happen; append as is
        pass
    write_atomic(path, new)


def _statements_of(text: str, path: str) -> t.Sequence[ir.Statement]:
    from veil.parser import parse_file

    source_file, _ = parse_file(text, path)
    return () if source_file is None else source_file.statements


def _selected_purposes(project: ir.Project, purpose: str | None) -> list[str]:
    names = [p.value for p in project.purposes]
    if purpose is None:
        if not names:
            _fail(f"project `{project.name.value}` has no purposes to approve")
        return sorted(set(names))
    if purpose not in names:  # a typo on the command line: a usage error, exit 2
        close = difflib.get_close_matches(purpose, names, n=1)
        raise click.UsageError(
            f"project `{project.name.value}` has no purpose `{purpose}`; "
            + (
                f"did you mean `{close[0]}`?"
                if close
                else f"its purposes: {', '.join(f'`{n}`' for n in sorted(names))}"
            )
        )
    return [purpose]


PATH_ARGUMENT = click.argument("path", required=False, type=click.Path())
AT_OPTION = click.option("--at", "at", help="The time to record (ISO-8601; default: now, UTC).")


@click.command("approve")
@click.argument("project")
@PATH_ARGUMENT
@click.option("--by", "by", required=True, help="Who approves (a declared approver).")
@click.option("--purpose", help="Approve only this purpose (default: all of the project's).")
@path_alias()
@AT_OPTION
def approve_cmd(
    project: str,
    path: str | None,
    by: str,
    purpose: str | None,
    path_option: str | None,
    at: str | None,
) -> None:
    """Approve PROJECT's purposes in the repository at PATH (default: here): append `approve`
    lines to the file that declares the project.

    The line records a digest of the project's purposes, members, sources and acknowledgement
    texts, and what they were; any later change makes the approval stale. Refuses (exit 1)
    anyone who is not an approver, and an approver who is a member of the project.
    """
    checked, policies = _checked_repository(one_path(path, path_option))
    assert checked.program is not None
    proj = _find_project(policies, project)
    approvers = policies.of_type(ir.Approvers)
    selected = _selected_purposes(proj, purpose)
    for p in selected:
        refusal = approval_refusal(approvers, proj, p, by)
        if refusal is not None:
            _fail(
                f"`{by}` may not approve `{p}` in project `{project}`: {refusal[1]}",
                "approvers are declared with `approvers NAME, …` "
                "[`for purpose P`]; a project's members may not approve it",
            )
    if not approvers:
        click.echo("warning: the repository declares no `approvers`; anyone may approve", err=True)
    infos = {p.name: p for p in checked.program.purposes}
    digest = project_digest(proj, infos)
    record = approval_record(proj, infos)
    when = _parse_at(at)
    text = "".join(approve_line(project, p, by, when, digest, record) for p in selected)
    target = Path(proj.span.file)
    _append(target, text)
    for p in selected:
        click.echo(
            f"approved `{p}` in project `{project}` by `{by}` at {format_time(when)} ({target})"
        )


@click.command("revoke")
@click.argument("project")
@PATH_ARGUMENT
@click.option("--by", "by", required=True, help="Who revokes (a declared approver).")
@click.option("--purpose", help="Revoke only this purpose (default: all approved ones).")
@path_alias()
@AT_OPTION
def revoke_cmd(
    project: str,
    path: str | None,
    by: str,
    purpose: str | None,
    path_option: str | None,
    at: str | None,
) -> None:
    """Revoke approvals of PROJECT's purposes in the repository at PATH (default: here):
    append `revoke` lines.

    A revoked purpose grants nothing until it is approved again.
    """
    checked, policies = _checked_repository(one_path(path, path_option))
    assert checked.program is not None
    proj = _find_project(policies, project)
    info = checked.program.project(project)
    assert info is not None
    live = {
        pp.purpose
        for pp in info.purposes
        if pp.state in (model.PurposeState.APPROVED, model.PurposeState.STALE)
    }
    selected = _selected_purposes(proj, purpose)
    if purpose is None:
        selected = [p for p in selected if p in live]
    elif purpose not in live:
        _fail(f"`{purpose}` in project `{project}` is not approved; nothing to revoke")
    if not selected:
        _fail(f"project `{project}` has no approved purpose to revoke")
    approvers = policies.of_type(ir.Approvers)
    for p in selected:
        refusal = approval_refusal(approvers, proj, p, by)
        if refusal is not None and refusal[0] is Refusal.NOT_AN_APPROVER:
            _fail(f"`{by}` may not revoke `{p}` in project `{project}`: {refusal[1]}")
    when = _parse_at(at)
    target = Path(proj.span.file)
    _append(target, "".join(revoke_line(project, p, by, when) for p in selected))
    for p in selected:
        click.echo(
            f"revoked `{p}` in project `{project}` by `{by}` at {format_time(when)} ({target})"
        )


def project_rows(program: model.Program) -> list[dict[str, object]]:
    rows: list[dict[str, object]] = []
    for p in program.projects:
        for pp in p.purposes:
            rows.append(
                {
                    "project": p.name,
                    "purpose": pp.purpose,
                    "state": pp.state.value,
                    "approver": pp.approved_by,
                    "time": pp.approved_at,
                    "members": list(p.members),
                    "sources": [model.table_str(s) for s in p.sources],
                    "changes": list(pp.changes),
                }
            )
    return rows


@click.command("projects")
@click.argument("path", type=click.Path(), default=".")
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
def projects_cmd(path: str, fmt: str) -> None:
    """List every project purpose with its state (approved, pending, stale, revoked), who
    approved it and when, the members and the sources."""
    from veil.cli_common import emit_diagnostics

    checked = check([path])
    if checked.program is None:
        emit_diagnostics(checked.diagnostics, checked.sources, "text")
        raise SystemExit(EXIT_POLICY)
    rows = project_rows(checked.program)
    if fmt == "json":
        click.echo(json.dumps(rows, indent=2, sort_keys=True, ensure_ascii=False))
        return
    header = ("PROJECT", "PURPOSE", "STATE", "APPROVER", "TIME", "MEMBERS", "SOURCES")
    table = [header] + [
        (
            str(r["project"]),
            str(r["purpose"]),
            str(r["state"]),
            str(r["approver"] or "-"),
            str(r["time"] or "-"),
            ", ".join(t.cast(list[str], r["members"])) or "-",
            ", ".join(t.cast(list[str], r["sources"])) or "-",
        )
        for r in rows
    ]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo("  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    for r in rows:
        if r["changes"]:
            click.echo(
                f"\n{r['project']} / {r['purpose']}: stale — "
                + "; ".join(t.cast(list[str], r["changes"]))
            )


def register(main: click.Group) -> None:
    for cmd in (approve_cmd, revoke_cmd, projects_cmd):
        main.add_command(cmd)
