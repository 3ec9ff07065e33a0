"""Approvals of project purposes, shared by the checker and `veil approve` / `veil revoke`.

An `approve` line records a digest of the project and, beside it, what was approved (purposes,
members, sources, acknowledgement texts), so that when the project changes the checker can say
what changed: a digest alone cannot be reversed.

The digest is `sha256:` + the hex SHA-256 of the canonical JSON (sorted keys, sorted lists,
`ensure_ascii=False`, separators `,` and `:`) of

    {"project": name, "purposes": [...], "members": [...], "sources": ["sales.transactions", ...],
     "acknowledgements": {purpose: effective acknowledgement text or null}}

Sources are dotted names in source form (parts that are not plain identifiers backquoted), so
a table key is never ambiguous. Order and repetition in the project block do not matter.
"""

from __future__ import annotations

import datetime as dt
import enum
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from veil import ir, model

ProjectLike = ir.Project | model.ProjectInfo
"""A project as written (`ir.Project`) or as checked (`model.ProjectInfo`): same digest."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectContent:
    """What an approval covers, normalised: sorted, without repetitions."""

    project: str
    purposes: tuple[str, ...]
    members: tuple[str, ...]
    sources: tuple[model.TableKey, ...]  # sorted by their dotted form
    acknowledgements: tuple[tuple[str, str | None], ...]

    def to_json(self) -> str:
        return json.dumps(
            {
                "project": self.project,
                "purposes": list(self.purposes),
                "members": list(self.members),
                "sources": [ir.dotted(k) for k in self.sources],
                "acknowledgements": dict(self.acknowledgements),
            },
            sort_keys=True,
            ensure_ascii=False,
            separators=(",", ":"),
        )


def project_content(
    project: ProjectLike, purposes: Mapping[str, model.PurposeInfo]
) -> ProjectContent:
    if isinstance(project, ir.Project):
        name = project.name.value
        names = {p.value for p in project.purposes}
        members = {m.value for m in project.members}
        sources = {s.parts for s in project.sources}
    else:
        name = project.name
        names = {p.purpose for p in project.purposes}
        members = set(project.members)
        sources = set(project.sources)
    acks = {
        p: info.acknowledgement if (info := purposes.get(p)) is not None else None for p in names
    }
    return ProjectContent(
        project=name,
        purposes=tuple(sorted(names)),
        members=tuple(sorted(members)),
        sources=tuple(sorted(sources, key=ir.dotted)),
        acknowledgements=tuple(sorted(acks.items())),
    )


def project_digest(project: ProjectLike, purposes: Mapping[str, model.PurposeInfo]) -> str:
    """`sha256:<hex>` of the project's canonical content (see the module docstring)."""
    text = project_content(project, purposes).to_json()
    return "sha256:" + hashlib.sha256(text.encode("utf-8")).hexdigest()


def approval_record(
    project: ProjectLike, purposes: Mapping[str, model.PurposeInfo]
) -> ir.ApprovalRecord:
    """What an `approve` line records beside the digest (purposes, members, sources, and the
    acknowledgement text of each purpose that has one)."""
    c = project_content(project, purposes)
    return ir.ApprovalRecord(
        purposes=tuple(ir.Name(value=p) for p in c.purposes),
        members=tuple(ir.Name(value=m) for m in c.members),
        sources=tuple(ir.ObjectName(parts=k) for k in c.sources),
        acknowledgements=tuple(
            ir.Acknowledged(purpose=ir.Name(value=p), text=text)
            for p, text in c.acknowledgements
            if text is not None
        ),
    )


def approval_changes(
    record: ir.ApprovalRecord | None,
    project: ProjectLike,
    purposes: Mapping[str, model.PurposeInfo],
) -> tuple[str, ...]:
    """What changed since `record` was approved, in words (`member \\`dave\\` added`, …)."""
    if record is None:
        return ("the project changed since approval",)
    now = project_content(project, purposes)
    was_purposes = {p.value for p in record.purposes}
    was_acks = {a.purpose.value: a.text for a in record.acknowledgements}
    out: list[str] = []
    for kind, was, cur in (
        ("purpose", was_purposes, set(now.purposes)),
        ("member", {m.value for m in record.members}, set(now.members)),
        (
            "source",
            {ir.dotted(s.parts) for s in record.sources},
            {ir.dotted(k) for k in now.sources},
        ),
    ):
        out.extend(f"{kind} `{x}` added" for x in sorted(cur - was))
        out.extend(f"{kind} `{x}` removed" for x in sorted(was - cur))
    for p, text in now.acknowledgements:
        if p in was_purposes and was_acks.get(p) != text:
            out.append(f"acknowledgement of `{p}` changed")
    return tuple(out) or ("the project changed since approval",)


# ---------------------------------------------------------------------------- who may approve


class Refusal(enum.Enum):
    NOT_AN_APPROVER = "not an approver"
    MEMBER = "member of the project"


def approval_refusal(
    approvers: Sequence[ir.Approvers], project: ProjectLike, purpose: str, by: str
) -> tuple[Refusal, str] | None:
    """Why `by` may not approve `purpose` in `project`, or None.

    Only a declared approver may approve (`approvers …` for any purpose, `approvers … for
    purpose P` for P and its sub-purposes), never a member of the project (separation of
    duties). Without any `approvers` statement anyone may (the checker warns).
    """
    name = project.name.value if isinstance(project, ir.Project) else project.name
    members = (
        {m.value for m in project.members}
        if isinstance(project, ir.Project)
        else set(project.members)
    )
    if approvers:
        general = {n.value for a in approvers if a.purpose is None for n in a.names}
        scoped = sorted(
            {
                a.purpose.value
                for a in approvers
                if a.purpose is not None and by in {n.value for n in a.names}
            }
        )
        allowed = by in general or any(model.purpose_satisfies(purpose, s) for s in scoped)
        if not allowed and scoped:
            only = ", ".join(f"`{s}`" for s in scoped)
            return (Refusal.NOT_AN_APPROVER, f"`{by}` may only approve {only} and its sub-purposes")
        if not allowed:
            return Refusal.NOT_AN_APPROVER, f"`{by}` is not a declared approver"
    if by in members:
        return (
            Refusal.MEMBER,
            f"`{by}` is a member of project `{name}`, and separation of "
            "duties forbids approving one's own project",
        )
    return None


def may_approve(
    approvers: Sequence[ir.Approvers], project: ProjectLike, purpose: str, by: str
) -> str | None:
    """None when `by` may approve `purpose` in `project`; else the reason, in words."""
    refusal = approval_refusal(approvers, project, purpose, by)
    return None if refusal is None else refusal[1]


# ---------------------------------------------------------------------------- lines


def format_time(at: dt.datetime) -> str:
    """ISO-8601 UTC to the second: `2026-11-20T10:00:00Z` (a naive time is taken as UTC)."""
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def approve_line(
    project: str, purpose: str, by: str, at: dt.datetime, digest: str, record: ir.ApprovalRecord
) -> str:
    """The `approve` statement `veil approve` appends (with its record block), ending in a
    newline. It parses back to an `ir.Approve` with the same fields."""
    n = ir.name_source
    lines = [
        f"approve {n(project)} purpose {n(purpose)} by {n(by)} at {format_time(at)} "
        f"digest {ir.string_source(digest)} {{"
    ]
    if record.purposes:
        lines.append("  purposes " + ", ".join(n(p.value) for p in record.purposes))
    lines.append("  members " + (", ".join(n(m.value) for m in record.members) or "{}"))
    lines.append("  sources " + (", ".join(str(s) for s in record.sources) or "{}"))
    lines.extend(
        f"  acknowledgement {n(a.purpose.value)} {ir.string_source(a.text)}"
        for a in record.acknowledgements
    )
    lines.append("}")
    return "\n".join(lines) + "\n"


def revoke_line(project: str, purpose: str, by: str, at: dt.datetime) -> str:
    """The `revoke` statement `veil revoke` appends, ending in a newline."""
    n = ir.name_source
    return f"revoke {n(project)} purpose {n(purpose)} by {n(by)} at {format_time(at)}\n"
