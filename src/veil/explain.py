"""`veil explain`: what one user sees under one project, without any row data.

For each protected table (or the one asked): each masked column is `clear`, `masked` (with the
method) or `depends` (masked where the mask's `when` predicate is TRUE or NULL, clear elsewhere),
with the span of the policy that decided; each row rule lets `all` rows, `none` or the rows
`where` its predicate is TRUE. The decisions come from the evaluator (`decide_arm`,
`eval_condition`), so explain can never disagree with it. Output order is deterministic:
tables and columns in catalog order, rules in program order.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from dataclasses import dataclass

from veil import methods, model
from veil.access import (
    Access,
    ColumnState,
    RowAccess,
    access_of,
    column_access,
    projects_of,
    render_matrix_text,
    row_access,
    rule_predicate,
)
from veil.diagnostics import Span
from veil.evaluator import (
    Context,
    NoPurpose,
    check_purposes,
    decide_arm,
    mask_of,
    policy_span,
)
from veil.masking import HASH_KEY_NOTE
from veil.printer import action_to_source, cond_to_source, expr_to_source, name_to_source

RuleOutcome: t.TypeAlias = t.Literal["all", "none", "where"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnDecision:
    """`method` is `methods.action_name` (`reveal` when clear); `method_source` as written."""

    column: str
    type: str
    outcome: ColumnState
    method: str
    method_source: str
    when: str | None
    decided_by: Span | None
    policies: tuple[Span, ...]
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class RuleDecision:
    """`predicate`: what the rows are filtered by, with the user's values (`region in
    ("AMER")`); `where`: the rule's predicate as written (`region in user.region`)."""

    kind: t.Literal["filter", "restrict"]
    outcome: RuleOutcome
    predicate: str | None
    where: str | None
    allow: str
    span: Span
    summary: str


@dataclass(frozen=True, slots=True, kw_only=True)
class TableExplanation:
    """`purposes`: the approved purposes acting on this table; `note`: why none, if none."""

    table: str
    key: model.TableKey
    purposes: tuple[str, ...]
    note: str | None
    columns: tuple[ColumnDecision, ...]
    rules: tuple[RuleDecision, ...]
    rows: str


@dataclass(frozen=True, slots=True, kw_only=True)
class Explanation:
    user: str
    user_declared: bool
    groups: tuple[str, ...]
    attributes: tuple[tuple[str, tuple[str, ...]], ...]
    project: str | None
    project_state: str
    active_purposes: tuple[str, ...]
    project_purposes: tuple[model.ProjectPurpose, ...]
    context: tuple[str, ...]
    tables: tuple[TableExplanation, ...]
    #: the same tables seen by the user under no project, under each of their projects, and
    #: under the project asked for (`veil explain --format text` prints it as a matrix)
    matrix: tuple[Access, ...] = ()


def _q(name: str) -> str:
    return f"`{name}`"


_STATE_WORDS = {
    model.PurposeState.PENDING: "is pending approval",
    model.PurposeState.STALE: "has a stale approval (re-approval required)",
    model.PurposeState.REVOKED: "was revoked",
}


def _acknowledgement_lines(
    program: model.Program, active: tuple[str, ...], project: str | None
) -> list[str]:
    """Purposes that grant only after the member acknowledged their current text."""
    needs = [p for p in active if (info := program.purpose(p)) and info.acknowledgement]
    if not needs or project is None:
        return []
    names = ", ".join(_q(p) for p in needs)
    sql_project = project.replace("'", "''")
    return [
        f"assuming the user acknowledged the current text of {names} "
        "(at runtime a member acknowledges once per text: "
        f"SELECT veil.acknowledge('{sql_project}') on PostgreSQL)"
    ]


def _project_lines(
    user: str, project: str | None, check: NoPurpose | None, info: model.ProjectInfo | None
) -> list[str]:
    if check is NoPurpose.NO_PROJECT or project is None:
        return ["no active project: no purpose applies"]
    if check is NoPurpose.UNKNOWN_PROJECT or info is None:
        return [f"{_q(project)} is not a project: no purpose applies"]
    if check is NoPurpose.NOT_MEMBER:
        return [f"{_q(user)} is not a member of {_q(project)}: no purpose applies"]
    lines = []
    if check is NoPurpose.NOT_APPROVED:
        lines.append(f"project {_q(project)} is not approved for any purpose: no purpose applies")
    else:
        active = ", ".join(_q(p) for p in info.active_purposes)
        lines.append(f"project {_q(project)} is active for {active}")
    for p in info.purposes:
        if p.state is not model.PurposeState.APPROVED:
            changed = f" ({'; '.join(p.changes)})" if p.changes else ""
            lines.append(f"purpose {_q(p.purpose)} {_STATE_WORDS[p.state]}{changed}")
    return lines


def _user_line(user: str, info: model.UserInfo | None) -> str:
    if info is None:
        return f"{_q(user)} is not a declared user: no groups, no attributes"
    groups = ", ".join(name_to_source(g) for g in info.groups) or "none"
    attrs = "; ".join(f"{k} = {', '.join(vs)}" for k, vs in info.attributes)
    return f"{_q(user)}: groups {groups}" + (f"; attributes {attrs}" if attrs else "")


def _column(
    program: model.Program, table: model.CatalogTable, mask: model.ColumnMask, ctx: Context
) -> ColumnDecision:
    arm = decide_arm(program, mask, ctx)
    source = action_to_source(arm.action)
    col = table.column(mask.column)
    assert col is not None  # the checker resolved every mask to a catalog column
    seen = column_access(program, col, mask, ctx)  # `when` with the user's values
    when = seen.when
    if seen.state == "clear":
        summary = "clear"
    elif seen.state == "masked":
        summary = f"masked with {source}"
    else:
        summary = f"masked with {source} where {when} (NULL too), clear elsewhere"
    return ColumnDecision(
        column=mask.column,
        type=str(mask.type),
        outcome=seen.state,
        method=methods.action_name(arm.action) if seen.state != "clear" else "reveal",
        method_source=source if seen.state != "clear" else "reveal",
        when=when,
        decided_by=policy_span(mask, arm),
        policies=mask.policies,
        summary=summary,
    )


def _rule(program: model.Program, rule: model.RowRule, ctx: Context) -> RuleDecision:
    allow = cond_to_source(rule.allow)
    got = rule_predicate(program, rule, ctx)  # `where` with the user's values
    if got is True:
        outcome: RuleOutcome = "all"
        predicate, summary = None, "all rows"
    elif got is False:
        outcome, predicate, summary = "none", None, "no rows"
    else:
        outcome, predicate = "where", expr_to_source(got)
        summary = f"rows where {predicate}"
    return RuleDecision(
        kind=rule.kind,
        outcome=outcome,
        predicate=predicate,
        where=expr_to_source(rule.where) if rule.where is not None else None,
        allow=allow,
        span=rule.span,
        summary=summary,
    )


def _rows_summary(rows: RowAccess) -> str:
    if rows.state == "hidden":
        return "no rows"
    if rows.state == "all":
        return "all rows"
    return f"rows where {rows.predicate}"


def _table(program: model.Program, table: model.CatalogTable, ctx: Context) -> TableExplanation:
    check = check_purposes(program, ctx.user, ctx.project, table.key)
    note = None
    if check.reason is NoPurpose.NOT_SOURCE and ctx.project is not None:
        note = f"{_q(table.name)} is not a source of {_q(ctx.project)}: no purpose applies to it"
    columns = tuple(
        _column(program, table, mask, ctx)
        for col in table.columns
        if (mask := mask_of(program, table.key, col.name)) is not None
    )
    rules = program.rules_of(table.key)
    decisions = tuple(_rule(program, r, ctx) for r in rules)
    if not columns and not decisions:
        note = "no veil policy protects this table: every row and column is clear"
    return TableExplanation(
        table=table.name,
        key=table.key,
        purposes=check.purposes,
        note=note,
        columns=columns,
        rules=decisions,
        rows=_rows_summary(row_access(program, table.key, ctx)),
    )


def explain(
    program: model.Program, user: str, project: str | None, table: model.TableKey | None
) -> Explanation:
    """What `user` sees with `project` active, for every protected table or only `table`.

    Raises ValueError when `table` is not a table of the catalog.
    """
    if table is not None:
        info = program.table(table)
        if info is None:
            raise ValueError(f"`{model.table_str(table)}` is not a table of the catalog")
        tables: tuple[model.CatalogTable, ...] = (info,)
    else:
        tables = program.protected_tables
    ctx = Context(user=user, project=project)
    check = check_purposes(program, user, project, None)
    projects = projects_of(program, user)
    if project is not None and project not in projects:
        projects = (*projects, project)
    matrix = tuple(access_of(program, user, p, tables) for p in (None, *projects))
    user_info = program.user(user)
    context = (
        _user_line(user, user_info),
        *_project_lines(user, project, check.reason, check.project),
        *_acknowledgement_lines(program, check.purposes, project),
    )
    return Explanation(
        user=user,
        user_declared=user_info is not None,
        groups=user_info.groups if user_info else (),
        attributes=user_info.attributes if user_info else (),
        project=project,
        project_state=check.reason.value if check.reason else "active",
        active_purposes=check.purposes,
        project_purposes=check.project.purposes if check.project else (),
        context=context,
        tables=tuple(_table(program, tb, ctx) for tb in tables),
        matrix=matrix,
    )


# --------------------------------------------------------------------------------------------
# Rendering


def _where(span: Span | None) -> str:
    return f"{span.file}:{span.line}" if span is not None else "-"


def _grid(rows: Sequence[tuple[str, ...]], indent: str = "  ") -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]) - 1)]
    out = []
    for r in rows:
        cells = [c.ljust(w) for c, w in zip(r, widths, strict=False)] + [r[-1]]
        out.append((indent + "  ".join(cells)).rstrip())
    return out


def render_explanation_text(expl: Explanation) -> str:
    """A plain-text report: the context lines, then one block per table (no colour codes)."""
    head = f"user {_q(expl.user)}, " + (
        f"project {_q(expl.project)}" if expl.project is not None else "no project"
    )
    lines = [head, *(f"  {c}" for c in expl.context)]
    if not expl.tables:
        lines += ["", "no table is protected by a veil policy"]
    for tb in expl.tables:
        lines += ["", tb.table]
        if tb.note:
            lines.append(f"  {tb.note}")
        if tb.columns:
            grid = [("column", "sees", "decided by")]
            grid += [(c.column, c.summary, _where(c.decided_by)) for c in tb.columns]
            lines += _grid(grid)
        if tb.rules:
            grid = [("row rule", "sees", "policy")]
            grid += [(r.kind, r.summary, _where(r.span)) for r in tb.rules]
            lines += _grid(grid)
            lines.append(f"  => {tb.rows}")
    if expl.tables and expl.matrix:
        lines += [
            "",
            f"access matrix: {_q(expl.user)} under no project and under each project "
            "(rows: all / hidden / filtered; columns: clear or the masking method)",
            *(f"  {x}".rstrip() for x in render_matrix_text(expl.matrix)),
        ]
    if any(c.method == "hash" for tb in expl.tables for c in tb.columns):
        lines += ["", f"note: {HASH_KEY_NOTE}"]
    return "\n".join(lines) + "\n"


def _span_json(span: Span | None) -> dict[str, object] | None:
    if span is None:
        return None
    return {"file": span.file, "line": span.line, "column": span.col}


def explanation_to_json(expl: Explanation) -> dict[str, object]:
    """A JSON-ready dict with stable keys (see docs: `veil explain --format json`)."""
    return {
        "user": {
            "name": expl.user,
            "declared": expl.user_declared,
            "groups": list(expl.groups),
            "attributes": {k: list(vs) for k, vs in expl.attributes},
        },
        "project": {
            "name": expl.project,
            "state": expl.project_state,
            "active_purposes": list(expl.active_purposes),
            "purposes": [
                {"purpose": p.purpose, "state": p.state.value, "changes": list(p.changes)}
                for p in expl.project_purposes
            ],
        },
        "context": list(expl.context),
        "tables": [
            {
                "table": tb.table,
                "purposes": list(tb.purposes),
                "note": tb.note,
                "columns": [
                    {
                        "column": c.column,
                        "type": c.type,
                        "outcome": c.outcome,
                        "method": c.method,
                        "method_source": c.method_source,
                        "when": c.when,
                        "decided_by": _span_json(c.decided_by),
                        "policies": [_span_json(s) for s in c.policies],
                        "summary": c.summary,
                    }
                    for c in tb.columns
                ],
                "row_rules": [
                    {
                        "kind": r.kind,
                        "outcome": r.outcome,
                        "predicate": r.predicate,
                        "where": r.where,
                        "allow": r.allow,
                        "policy": _span_json(r.span),
                        "summary": r.summary,
                    }
                    for r in tb.rules
                ],
                "rows": tb.rows,
            }
            for tb in expl.tables
        ],
    }
