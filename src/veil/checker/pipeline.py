"""The checker: an ordered table of named passes over the IR.

Each pass is a pure function `(policies, facts) -> (facts, diagnostics)` that reports every
problem it finds; the checker stops after the first pass that reported an error, so later passes
can rely on what earlier ones established. Ordering constraints are noted on the table.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from veil import ir, model
from veil.checker.conflicts import resolve_conflicts
from veil.checker.declarations import apply_tags, collect_declarations
from veil.checker.facts import Facts
from veil.checker.masks import check_masks
from veil.checker.names import resolve_names
from veil.checker.predicates import check_predicates
from veil.checker.projects import compute_approvals
from veil.checker.rows import check_rows
from veil.checker.testcases import check_tests
from veil.diagnostics import Diagnostic, sort_diagnostics

Pass = Callable[[ir.PolicySet, Facts], tuple[Facts, list[Diagnostic]]]

PASSES: tuple[tuple[str, Pass], ...] = (
    # tables (column types), purposes (parents, inherited acknowledgements), groups, users,
    # projects; duplicates. Everything below looks names up in what this pass collects.
    ("collect_declarations", collect_declarations),
    # `tag T on t.c`: needs the catalog; must precede resolve_names (`mask tagged T`).
    ("apply_tags", apply_tags),
    # mask targets -> columns, tables of filter/restrict, purposes/groups/users in conditions,
    # projects and approvers.
    ("resolve_names", resolve_names),
    # columns and types in `filter … where` / `mask … when`: needs the tables each mask reaches.
    ("check_predicates", check_predicates),
    # which masks decide each column: needs the resolved targets.
    ("resolve_conflicts", resolve_conflicts),
    # methods, and one ColumnMask per column: a method is checked against the columns its mask
    # decides, so this follows resolve_conflicts.
    ("check_masks", check_masks),
    # one RowRule per filter/restrict: needs the tables resolved.
    ("check_rows", check_rows),
    # purpose states, approvers, stale approvals: needs purposes (acknowledgements in digests)
    # and the project names resolved.
    ("compute_approvals", compute_approvals),
    # names in `test` blocks.
    ("check_tests", check_tests),
)

MAX_ERRORS = 50


@dataclass(frozen=True, slots=True, kw_only=True)
class CheckResult:
    """`program` is None when any error was reported."""

    program: model.Program | None
    diagnostics: tuple[Diagnostic, ...]


def check(policies: ir.PolicySet, *, partial: bool = False) -> CheckResult:
    """Run the passes in order; stop after the first that reports an error. `partial`: the
    policies are a part of the repository (see `Facts.partial`)."""
    facts = Facts(partial=partial)
    found: list[Diagnostic] = []
    failed = False
    for _name, run in PASSES:
        facts, diags = run(policies, facts)
        found.extend(diags)
        if any(d.is_error for d in diags):
            failed = True
            break
    program = None if failed else build_program(policies, facts)
    return CheckResult(program=program, diagnostics=cap(sort_diagnostics(found)))


def cap(diags: list[Diagnostic], limit: int = MAX_ERRORS) -> tuple[Diagnostic, ...]:
    """The first `limit` errors (in sorted order) and every warning."""
    out: list[Diagnostic] = []
    errors = 0
    for d in diags:
        if d.is_error:
            errors += 1
            if errors > limit:
                continue
        out.append(d)
    return tuple(out)


def build_program(policies: ir.PolicySet, facts: Facts) -> model.Program:
    """The checked program; every tuple sorted (tests and approvers keep source order)."""
    return model.Program(
        tables=tuple(facts.tables.values()),
        purposes=tuple(facts.purposes.values()),
        groups=tuple(sorted(facts.groups)),
        users=tuple(facts.users.values()),
        projects=facts.project_infos,
        masks=facts.column_masks,
        row_rules=facts.row_rules,
        tests=policies.of_type(ir.TestCase),
        approvers=policies.of_type(ir.Approvers),
        expect_targets=facts.expect_targets,
        tag_masks=facts.tag_masks,
    )
