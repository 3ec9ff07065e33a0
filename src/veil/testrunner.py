"""`veil test`: the `test` blocks of a repository, run against the reference evaluator.

A test acts as one user (`as U`), with an active project or none (`as U in project P`), at a
fixed time (`now`, so that `now()` and `today()` in row rules are reproducible), and checks:

* `expect T.C clear` / `masked` / `masked with M`: the cell of column C, decided by
  `evaluator.evaluate_cell`. `masked with M` compares the method name, and its arguments only
  when the test wrote them (`show_last(4)`; arguments are compared after the checker's lowering
  for the column, so `round(100)` equals `round(100.0)`). A column expectation has no row: it is
  evaluated in a row whose every column is NULL, the same rule as a row expectation's left-out
  columns. So a mask with `when` counts as applying when its predicate is NULL on that row
  (fail closed, e.g. `when region = "EMEA"`), and as not applying when it is FALSE (e.g.
  `when region is not null`); the failure message says so.
* `expect T row { c: v, … } visible` / `hidden`: `evaluator.visible_row` on a row with those
  values (coerced to the column types) and NULL elsewhere.
* `expect T.C in row { c: v, … } is V` / `clear` / `masked [with M]`: the cell of C in such a
  row (`evaluator.evaluate_cell`), so a `when` mask is testable; V is coerced to the column
  type before comparing, and a failure says what the `when` was on that row.

A test passes when every expectation holds. The repository must check without errors first:
tests see it as it is, approvals included (a pending or stale purpose grants nothing).
"""

from __future__ import annotations

import datetime as dt
import typing as t
from dataclasses import dataclass, replace
from decimal import Decimal

from veil import ir, methods, model
from veil.diagnostics import Span
from veil.evaluator import (
    Context,
    EvaluationError,
    coerce_row,
    decide_arm,
    evaluate_cell,
    mask_of,
    visible_row,
)
from veil.layout import expectation_source
from veil.printer import action_to_source, expr_to_source, literal_to_source
from veil.rowexpr import coerce_value, eval_predicate

__all__ = ["ExpectationResult", "TestResult", "render_text", "results_to_json", "run_tests"]


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectationResult:
    """One `expect` line: what it expected, what the evaluator says, and which policies
    decided (`decided_by`: the mask arm for a column; for a row, the rules that hid it, or
    every rule when it is visible)."""

    span: Span
    source: str  # the line as written, e.g. `expect sales.transactions.email clear`
    expected: str  # `sales.transactions.email clear`
    actual: str  # `masked with hash`
    passed: bool
    decided_by: tuple[Span, ...] = ()
    note: str | None = None

    def message(self) -> str:
        """`file:line: expected …, got … (decided by file:line)`."""
        why = ", ".join(_where(s) for s in self.decided_by)
        verb = "decided by" if self.decided_by else ""
        if self.actual in ("hidden", "visible") and self.decided_by:
            verb = "hidden by" if self.actual == "hidden" else "let through by"
        tail = [f"{verb} {why}"] if why else []
        tail += [self.note] if self.note else []
        extra = f" ({'; '.join(tail)})" if tail else ""
        return f"{_where(self.span)}: expected {self.expected}, got {self.actual}{extra}"


@dataclass(frozen=True, slots=True, kw_only=True)
class TestResult:
    __test__ = False  # not a pytest class

    name: str
    span: Span
    user: str | None
    project: str | None
    expectations: tuple[ExpectationResult, ...]

    @property
    def passed(self) -> bool:
        return all(e.passed for e in self.expectations)


def _where(span: Span) -> str:
    return f"{span.file}:{span.line}"


def run_tests(program: model.Program, *, now: dt.datetime | None = None) -> list[TestResult]:
    """Every test of the program, in source order (file, then line)."""
    at = now or dt.datetime.now(dt.UTC)
    if at.tzinfo is None:
        at = at.replace(tzinfo=dt.UTC)
    tests = sorted(program.tests, key=lambda tc: (tc.span.file, tc.span.line, tc.span.col))
    return [_run(program, tc, at) for tc in tests]


def _run(program: model.Program, tc: ir.TestCase, now: dt.datetime) -> TestResult:
    user = tc.user.value if tc.user is not None else None
    project = tc.project.value if tc.project is not None else None
    if user is None:
        missing = ExpectationResult(
            span=tc.span,
            source=f"test {ir.string_source(tc.name)}",
            expected="an `as USER` line",
            actual="none",
            passed=False,
            note="a test acts as one user: write `as USER` or `as USER in project P`",
        )
        return TestResult(
            name=tc.name, span=tc.span, user=None, project=project, expectations=(missing,)
        )
    ctx = Context(user=user, project=project, now=now)
    results = []
    for e in tc.expectations:
        try:
            results.append(_expect(program, e, ctx))
        except EvaluationError as err:
            results.append(
                expectation_result(
                    e,
                    actual="an evaluation error",
                    passed=False,
                    note=str(err),
                )
            )
    return TestResult(
        name=tc.name, span=tc.span, user=user, project=project, expectations=tuple(results)
    )


def _expected(e: ir.Expectation, full: model.TableKey | None = None) -> str:
    """The expectation as written, without `expect`, naming the column or table in full."""
    if full is not None:
        name = ir.ObjectName(parts=full)
        e = replace(e, table=name) if isinstance(e, ir.ExpectRow) else replace(e, column=name)
    return expectation_source(e).removeprefix("expect ")


def expectation_result(
    e: ir.Expectation,
    full: model.TableKey | None = None,
    *,
    actual: str,
    passed: bool,
    decided_by: tuple[Span, ...] = (),
    note: str | None = None,
) -> ExpectationResult:
    """The result of `e`, offline or live: the line as written and, as expected, that line
    naming the column or table in full."""
    return ExpectationResult(
        span=e.span,
        source=expectation_source(e),
        expected=_expected(e, full),
        actual=actual,
        passed=passed,
        decided_by=decided_by,
        note=note,
    )


def _expect(program: model.Program, e: ir.Expectation, ctx: Context) -> ExpectationResult:
    match e:
        case ir.ExpectColumn():
            return _expect_column(program, e, ctx)
        case ir.ExpectRow():
            return _expect_row(program, e, ctx)
        case ir.ExpectCell():
            return _expect_cell(program, e, ctx)
        case _:
            t.assert_never(e)


def _expect_column(program: model.Program, e: ir.ExpectColumn, ctx: Context) -> ExpectationResult:
    target = program.expect_target(e)
    table, column = target.table, target.column
    if column is None:  # the checker resolves a column expectation to a column
        raise EvaluationError(f"`{e.column}` does not name one column")
    cell = evaluate_cell(program, table, column, {}, ctx)
    mask = mask_of(program, table, column)
    action = decide_arm(program, mask, ctx).action if mask is not None and cell.masked else None
    actual = f"masked with {action_to_source(action)}" if cell.masked else "clear"
    if e.outcome == "clear":
        passed = not cell.masked
    else:
        passed = cell.masked
        if passed and e.method is not None:
            passed = _same_method(e.method, action, target.method)
    note = None
    if mask is not None and mask.when is not None:
        note = (
            f"the mask applies only where `{expr_to_source(mask.when)}` is true or NULL; "
            "a column expectation is evaluated on a row of NULLs"
        )
    elif mask is None:
        note = "no mask reaches this column"
    return expectation_result(
        e,
        (*table, column),
        actual=actual,
        passed=passed,
        decided_by=(cell.policy,) if cell.policy is not None else (),
        note=note,
    )


def _expect_cell(program: model.Program, e: ir.ExpectCell, ctx: Context) -> ExpectationResult:
    target = program.expect_target(e)
    table, column = target.table, target.column
    info = program.table(table)
    col = info.column(column) if info is not None and column is not None else None
    if info is None or column is None or col is None:  # the checker resolved it to a column
        raise EvaluationError(f"`{e.column}` does not name one column")
    row = coerce_row(info, {f.column: f.value for f in e.row})
    cell = evaluate_cell(program, table, column, row, ctx)
    mask = mask_of(program, table, column)
    action = decide_arm(program, mask, ctx).action if mask is not None and cell.masked else None
    how = f"masked with {action_to_source(action)}" if cell.masked else "clear"
    if e.outcome == "is":
        actual = f"is {_value_source(cell.value)} ({how})"
        passed = _same_value(coerce_value(e.value, col.type), cell.value)
    elif e.outcome == "clear":
        actual, passed = how, not cell.masked
    else:
        actual, passed = how, cell.masked
        if passed and e.method is not None:
            passed = _same_method(e.method, action, target.method)
    note = None
    if mask is None:
        note = "no mask reaches this column"
    elif mask.when is not None and decide_arm(program, mask, ctx).action is not None:
        truth = eval_predicate(program, mask.when, row, ctx)
        shown = {True: "true", False: "false", None: "NULL"}[truth]
        note = f"`when {expr_to_source(mask.when)}` is {shown} on this row"
    return expectation_result(
        e,
        (*table, column),
        actual=actual,
        passed=passed,
        decided_by=(cell.policy,) if cell.policy is not None else (),
        note=note,
    )


def _same_value(expected: object, actual: object) -> bool:
    """Equal as SQL values: `1` is `1.0` in a decimal column, but `true` is never `1`."""
    if isinstance(expected, bool) or isinstance(actual, bool):
        return type(expected) is type(actual) and expected == actual
    return expected == actual


def _value_source(value: object) -> str:
    """A shown value as a test would write it: `"555-0100"`, `12.50`, `null`."""
    if value is None or isinstance(value, str | int | Decimal):
        return literal_to_source(value)
    if isinstance(value, dt.datetime | dt.date):
        return ir.string_source(value.isoformat())
    return ir.string_source(str(value))


def _same_method(
    expected: ir.Method, action: methods.MaskAction | None, lowered: methods.MaskAction | None
) -> bool:
    """Same method name; and, when the test wrote arguments, the same lowered method
    (`lowered`: the checker's lowering of the expected method for the column)."""
    if action is None or expected.name != methods.action_name(action):
        return False
    if not expected.args:
        return True
    if isinstance(action, methods.MaskHash):  # the salt and cut length are compiler choices
        return isinstance(lowered, methods.MaskHash)
    return lowered == action


def _expect_row(program: model.Program, e: ir.ExpectRow, ctx: Context) -> ExpectationResult:
    table = program.expect_target(e).table
    row = {f.column: f.value for f in e.row}
    result = visible_row(program, table, row, ctx)
    actual = "visible" if result.visible else "hidden"
    if result.visible:
        decided = tuple(rule.span for rule, _ in result.rules)
    else:
        decided = tuple(rule.span for rule, ok in result.rules if not ok)
    note = None if result.rules else f"no row rule on `{ir.dotted(table)}`"
    return expectation_result(
        e,
        table,
        actual=actual,
        passed=actual == e.outcome,
        decided_by=decided,
        note=note,
    )


# --------------------------------------------------------------------------------------------
# Reports


def render_text(results: t.Sequence[TestResult]) -> str:
    """`PASS name` / `FAIL name` (with a line per failed expectation), then `N passed, M failed`."""
    lines = []
    for r in results:
        lines.append(f"{'PASS' if r.passed else 'FAIL'} {r.name}")
        lines += [f"  {e.message()}" for e in r.expectations if not e.passed]
    passed = sum(r.passed for r in results)
    lines.append(f"{passed} passed, {len(results) - passed} failed")
    return "\n".join(lines)


def results_to_json(results: t.Sequence[TestResult]) -> dict[str, object]:
    def span(s: Span) -> dict[str, object]:
        return {"file": s.file, "line": s.line, "column": s.col}

    passed = sum(r.passed for r in results)
    return {
        "passed": passed,
        "failed": len(results) - passed,
        "tests": [
            {
                "name": r.name,
                **span(r.span),
                "user": r.user,
                "project": r.project,
                "passed": r.passed,
                "expectations": [
                    {
                        **span(e.span),
                        "source": e.source,
                        "expected": e.expected,
                        "actual": e.actual,
                        "passed": e.passed,
                        "decided_by": [span(s) for s in e.decided_by],
                        "note": e.note,
                        "message": None if e.passed else e.message(),
                    }
                    for e in r.expectations
                ],
            }
            for r in results
        ],
    }
