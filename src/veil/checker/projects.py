"""Pass `compute_approvals`: the state of each purpose of each project.

For each (project, purpose) the last `approve` / `revoke` line in source order decides: none ->
pending; revoke -> revoked; approve with the current digest -> approved; approve with another
digest -> stale (a warning names what changed). The deciding approval must come from a declared
approver who is not a member of the project.
"""

from __future__ import annotations

import shlex
from dataclasses import replace

from veil import ir, model
from veil.approvals import (
    Refusal,
    approval_changes,
    approval_refusal,
    format_time,
    project_digest,
)
from veil.checker import codes
from veil.checker.common import did_you_mean
from veil.checker.facts import Facts
from veil.diagnostics import Diagnostic, error, warning

Line = ir.Approve | ir.Revoke


def compute_approvals(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the declarations and the project names resolved (purposes, for acknowledgements)."""
    diags: list[Diagnostic] = []
    approvers = policies.of_type(ir.Approvers)
    deciding: dict[tuple[str, str], Line] = {}
    for line in policies.statements():
        if isinstance(line, ir.Approve | ir.Revoke) and _line_ok(line, facts, diags):
            deciding[(line.project.value, line.purpose.value)] = line
    approves = policies.of_type(ir.Approve)
    if not approvers and approves:
        diags.append(
            warning(
                codes.NO_APPROVERS,
                "no `approvers` are declared, so anyone may approve a purpose",
                approves[0].by.span,
                help="declare who may approve with `approvers NAME, …` "
                "(or `approvers NAME for purpose P`)",
            )
        )
    infos = tuple(
        _project(proj, facts, deciding, approvers, diags) for proj in facts.projects.values()
    )
    return replace(facts, project_infos=infos), diags


def _line_ok(line: Line, facts: Facts, diags: list[Diagnostic]) -> bool:
    project = facts.projects.get(line.project.value)
    verb = "approve" if isinstance(line, ir.Approve) else "revoke"
    if project is None:
        diags.append(
            error(
                codes.UNKNOWN_PROJECT,
                f"unknown project `{line.project}`",
                line.project.span,
                help=did_you_mean(
                    line.project.value,
                    facts.projects,
                    otherwise=f"remove this `{verb}` line, or declare the project",
                ),
            )
        )
        return False
    listed = [p.value for p in project.purposes]
    if line.purpose.value not in listed:
        diags.append(
            error(
                codes.PURPOSE_NOT_IN_PROJECT,
                f"`{line.purpose}` is not a purpose of project `{line.project}`",
                line.purpose.span,
                help=did_you_mean(
                    line.purpose.value,
                    listed,
                    otherwise=f"add it to the project's `purposes`, or remove this `{verb}` line",
                ),
            )
        )
        return False
    return True


def _project(
    proj: ir.Project,
    facts: Facts,
    deciding: dict[tuple[str, str], Line],
    approvers: tuple[ir.Approvers, ...],
    diags: list[Diagnostic],
) -> model.ProjectInfo:
    name = proj.name.value
    digest = project_digest(proj, facts.purposes)
    spans = {p.value: p.span for p in reversed(proj.purposes)}  # first mention
    states: list[model.ProjectPurpose] = []
    for purpose in sorted(spans):
        line = deciding.get((name, purpose))
        if line is None:
            states.append(
                model.ProjectPurpose(
                    purpose=purpose, state=model.PurposeState.PENDING, span=spans[purpose]
                )
            )
        elif isinstance(line, ir.Revoke):
            states.append(
                model.ProjectPurpose(
                    purpose=purpose, state=model.PurposeState.REVOKED, span=line.span
                )
            )
        else:
            states.append(_approved(proj, line, digest, facts, approvers, diags))
    return model.ProjectInfo(
        name=name,
        purposes=tuple(states),
        members=tuple(sorted({m.value for m in proj.members})),
        sources=tuple(sorted({s.parts for s in proj.sources})),
        documentation=proj.documentation,
        span=proj.name.span,
    )


def _approved(
    proj: ir.Project,
    line: ir.Approve,
    digest: str,
    facts: Facts,
    approvers: tuple[ir.Approvers, ...],
    diags: list[Diagnostic],
) -> model.ProjectPurpose:
    purpose, by, at = line.purpose.value, line.by.value, format_time(line.at)
    refusal = approval_refusal(approvers, proj, purpose, by)
    if refusal is not None:
        kind, reason = refusal
        if kind is Refusal.NOT_AN_APPROVER:
            names = sorted({n.value for a in approvers for n in a.names})
            diags.append(
                error(
                    codes.NOT_AN_APPROVER,
                    f"`{by}` may not approve `{purpose}`",
                    line.by.span,
                    help=f"{reason}; "
                    + (
                        (by not in names and did_you_mean(by, names))
                        or "approvers: " + ", ".join(f"`{n}`" for n in names)
                    ),
                )
            )
        else:
            diags.append(
                error(
                    codes.APPROVER_IS_MEMBER,
                    f"`{by}` cannot approve project `{proj.name}`, of which they are a member",
                    line.by.span,
                    help=f"{reason}; ask an approver who is not a member",
                )
            )
    if line.digest == digest:
        return model.ProjectPurpose(
            purpose=purpose,
            state=model.PurposeState.APPROVED,
            approved_by=by,
            approved_at=at,
            span=line.span,
        )
    changes = approval_changes(line.record, proj, facts.purposes)
    diags.append(
        warning(
            codes.STALE_APPROVAL,
            f"approval of `{purpose}` in project `{proj.name}` is stale",
            line.purpose.span,
            help=f"since `{by}` approved it at {at}: {', '.join(changes)}; the purpose grants "
            f"nothing until it is approved again: re-approve with "
            f"`veil approve {shlex.quote(proj.name.value)} --by NAME`",
            related=(proj.name.span,),
        )
    )
    return model.ProjectPurpose(
        purpose=purpose,
        state=model.PurposeState.STALE,
        approved_by=by,
        approved_at=at,
        changes=changes,
        span=line.span,
    )
