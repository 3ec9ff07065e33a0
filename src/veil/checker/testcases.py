"""Pass `check_tests`: what a `test` block names must exist (brief §6)."""

from __future__ import annotations

import typing as t

from veil import ir
from veil.checker import codes
from veil.checker.columns import resolve_columns, resolve_table
from veil.checker.common import did_you_mean, literal_text, name_span
from veil.checker.facts import Facts
from veil.checker.methods import ARITY
from veil.checker.names import Names
from veil.checker.predicates import Typer, literal_type
from veil.diagnostics import Diagnostic, error


def check_tests(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the catalog, users and projects."""
    names = Names(facts)
    diags: list[Diagnostic] = []
    for tc in policies.of_type(ir.TestCase):
        if tc.user is not None:
            diags.extend(names.users([tc.user]))
        if tc.project is not None and tc.project.value not in facts.projects:
            diags.append(
                error(
                    codes.UNKNOWN_PROJECT,
                    f"unknown project `{tc.project}`",
                    tc.project.span,
                    help=did_you_mean(
                        tc.project.value,
                        facts.projects,
                        otherwise="declare it with a `project` block",
                    ),
                )
            )
        for e in tc.expectations:
            diags.extend(_expectation(e, facts, names))
    return facts, diags


def _expectation(e: ir.Expectation, facts: Facts, names: Names) -> list[Diagnostic]:
    match e:
        case ir.ExpectColumn(column=column, method=method):
            diags = resolve_columns(facts.tables, column, every=False)[1]
            if method is not None and method.name not in ARITY:
                diags.append(
                    error(
                        codes.UNKNOWN_METHOD,
                        f"unknown masking method `{method.name}`",
                        method.span,
                        help=did_you_mean(method.name, ARITY),
                    )
                )
            return diags
        case ir.ExpectRow(table=table, row=row):
            key, diags = resolve_table(facts.tables, table)
            if key is None:
                return diags
            typer = Typer(facts.tables[key], names)
            for f in row:
                span = name_span(f.span, ir.quote_part(f.column))
                col = typer.column(ir.ObjectName(parts=(f.column,), span=span))
                typer.compatible(col, literal_type(f.value, literal_text(f.value)), f.span)
            return diags + typer.diags
        case _:
            t.assert_never(e)
