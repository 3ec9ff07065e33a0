"""Pass `check_tests`: what a `test` block names must exist; records what each `expect` line
names (`Facts.expect_targets`) so that `veil test` resolves nothing itself."""

from __future__ import annotations

import typing as t
from dataclasses import replace

from veil import ir, model
from veil.checker import codes
from veil.checker.columns import resolve_columns, resolve_table
from veil.checker.common import did_you_mean, literal_text, name_span
from veil.checker.facts import Facts
from veil.checker.methods import check_method, fit_method
from veil.checker.names import Names
from veil.checker.predicates import Typer, literal_type
from veil.diagnostics import Diagnostic, Span, error
from veil.methods import METHODS


def check_tests(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the catalog, users and projects."""
    names = Names(facts)
    diags: list[Diagnostic] = []
    targets: list[tuple[Span, model.ExpectTarget]] = []
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
            target, found = _expectation(e, facts, names)
            diags.extend(found)
            if target is not None:
                targets.append((e.span, target))
    return replace(facts, expect_targets=tuple(targets)), diags


def _expectation(
    e: ir.Expectation, facts: Facts, names: Names
) -> tuple[model.ExpectTarget | None, list[Diagnostic]]:
    match e:
        case ir.ExpectColumn(column=column, method=method):
            keys, diags = resolve_columns(facts.tables, column, every=False)
            target = _column_target(keys[0], method, facts) if len(keys) == 1 else None
            return target, diags + _method(method)
        case ir.ExpectRow(table=table, row=row):
            key, diags = resolve_table(facts.tables, table)
            if key is None:
                return None, diags
            return model.ExpectTarget(table=key), diags + _row(Typer(facts.tables[key], names), row)
        case ir.ExpectCell(column=column, row=row, outcome=outcome, value=value, method=method):
            keys, diags = resolve_columns(facts.tables, column, every=False)
            if len(keys) != 1:
                return None, diags
            (key, name), typer = keys[0], Typer(facts.tables[keys[0][0]], names)
            if outcome == "is":  # a masked cell keeps its column's type
                cell = typer.column(ir.ObjectName(parts=(name,), span=column.span))
                typer.compatible(cell, literal_type(value, literal_text(value)), e.span)
            target = _column_target(keys[0], method, facts)
            return target, diags + _method(method) + _row(typer, row)
        case _:
            t.assert_never(e)


def _method(method: ir.Method | None) -> list[Diagnostic]:
    if method is None or method.name in METHODS:
        return []
    return [
        error(
            codes.UNKNOWN_METHOD,
            f"unknown masking method `{method.name}`",
            method.span,
            help=did_you_mean(method.name, METHODS),
        )
    ]


def _row(typer: Typer, row: t.Sequence[ir.RowField]) -> list[Diagnostic]:
    """Every field names a column of the table, with a value of its type."""
    for f in row:
        span = name_span(f.span, ir.quote_part(f.column))
        col = typer.column(ir.ObjectName(parts=(f.column,), span=span))
        typer.compatible(col, literal_type(f.value, literal_text(f.value)), f.span)
    return typer.diags


def _column_target(
    key: tuple[model.TableKey, str], method: ir.Method | None, facts: Facts
) -> model.ExpectTarget:
    """The column, and `masked with M(args)` lowered for it as a mask would be (a method with
    wrong arguments, or one that does not fit the column, lowers to nothing: the test fails)."""
    table, column = key
    action = None
    if method is not None and method.args and not any(d.is_error for d in check_method(method)):
        action = fit_method(method, table, facts.column(key)).action
    return model.ExpectTarget(table=table, column=column, method=action)
