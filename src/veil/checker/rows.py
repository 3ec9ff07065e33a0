"""Pass `check_rows`: one `model.RowRule` per `filter` and `restrict`."""

from __future__ import annotations

import typing as t
from dataclasses import replace

from veil import ir, model
from veil.checker.facts import Facts
from veil.diagnostics import Diagnostic


def row_rule(stmt: ir.Filter | ir.Restrict) -> model.RowRule:
    """filter T where P unless C -> allow=C (or FALSE), where=P;
    restrict T to A, B unless C -> allow=A or B or C."""
    match stmt:
        case ir.Filter():
            allow: ir.Condition = (
                stmt.unless
                if stmt.unless is not None
                else ir.CondConst(value=False, span=stmt.span)
            )
            return model.RowRule(
                table=stmt.table.parts, kind="filter", allow=allow, where=stmt.where, span=stmt.span
            )
        case ir.Restrict():
            items = (*stmt.to, *((stmt.unless,) if stmt.unless is not None else ()))
            allow = items[0] if len(items) == 1 else ir.CondOr(items=items, span=stmt.span)
            return model.RowRule(
                table=stmt.table.parts, kind="restrict", allow=allow, span=stmt.span
            )
        case _:
            t.assert_never(stmt)


def check_rows(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the tables resolved (resolve_names): rules sorted by table, then source order."""
    rules = [
        (stmt.table.parts, i, row_rule(stmt))
        for i, stmt in enumerate(policies.statements())
        if isinstance(stmt, ir.Filter | ir.Restrict)
    ]
    rules.sort(key=lambda r: (r[0], r[1]))
    return replace(facts, row_rules=tuple(r for _, _, r in rules)), []
