"""Pass `check_predicates`: row predicates (`filter … where`, `mask … when`) name columns of their
table and compare values of compatible types.

Type classes: numbers (integer, decimal, float) compare with numbers, strings with strings,
dates and timestamps with each other (and with a string literal that is an ISO-8601 date or
timestamp), booleans with booleans; `null` compares with anything (and a warning says that
`= null` is never true). `user.<attr>` and `user.groups` are sets: only on the right of `in`.
"""

from __future__ import annotations

import datetime as dt
import enum
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass, field
from decimal import Decimal

from veil import ir, model
from veil.checker import codes
from veil.checker.common import did_you_mean, dotted, listing
from veil.checker.facts import Facts
from veil.checker.names import Names
from veil.diagnostics import Diagnostic, Span, error, warning
from veil.printer import expr_to_source


class Cls(enum.Enum):
    NUMBER = "number"
    STRING = "string"
    BOOLEAN = "boolean"
    TEMPORAL = "date/time"
    BINARY = "binary"
    JSON = "json"
    INTERVAL = "interval"
    NULL = "null"
    SET = "set"
    UNKNOWN = "unknown"  # after an error: compatible with anything, so errors do not cascade


_FAMILY_CLASS: dict[model.Family, Cls] = {
    model.Family.STRING: Cls.STRING,
    model.Family.INTEGER: Cls.NUMBER,
    model.Family.DECIMAL: Cls.NUMBER,
    model.Family.FLOAT: Cls.NUMBER,
    model.Family.BOOLEAN: Cls.BOOLEAN,
    model.Family.DATE: Cls.TEMPORAL,
    model.Family.TIMESTAMP: Cls.TEMPORAL,
    model.Family.BINARY: Cls.BINARY,
    model.Family.JSON: Cls.JSON,
}


@dataclass(frozen=True, slots=True)
class Ty:
    cls: Cls
    text: str  # the expression in source form, for messages
    kind: str = ""  # how to show its type; defaults to the class
    integer: bool = False  # an integer number (for `date + n`)
    date: bool = False  # a date (not a timestamp)
    string_literal: str | None = None

    def shown(self) -> str:
        return f"`{self.text}` ({self.kind or self.cls.value})"


def is_iso_datetime(text: str) -> bool:
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return False
    return True


_CONDITIONS = (
    ir.Compare,
    ir.InList,
    ir.InUser,
    ir.Between,
    ir.IsNull,
    ir.BoolAnd,
    ir.BoolOr,
    ir.BoolNot,
)


def expr_text(e: ir.Expr) -> str:
    """Short source form of an operand, for messages (a whole condition is `the condition`)."""
    return "the condition" if isinstance(e, _CONDITIONS) else expr_to_source(e)


@dataclass(slots=True)
class Typer:
    """Types the expressions of one predicate against the columns of one table."""

    table: model.CatalogTable
    names: Names
    note: str | None = None  # extra help (which tables a multi-table mask reaches)
    diags: list[Diagnostic] = field(default_factory=list)

    def _err(self, code: str, message: str, span: Span, help_: str | None) -> None:
        if self.note:
            help_ = f"{self.note}; {help_}" if help_ else self.note
        self.diags.append(error(code, message, span, help=help_))

    # ------------------------------------------------------------------ entry points
    def predicate(self, e: ir.Expr) -> None:
        self.condition(e, "a row predicate")

    def condition(self, e: ir.Expr, where: str) -> None:
        ty = self.value(e)
        if ty.cls not in (Cls.BOOLEAN, Cls.NULL, Cls.UNKNOWN):
            self._err(
                codes.WRONG_EXPR_TYPE,
                f"{where} must be a condition, not {ty.shown()}",
                e.span,
                "compare it with a value, e.g. `x = 1`, `x in (…)`, `x is null`",
            )

    def value(self, e: ir.Expr) -> Ty:
        """An expression used as a value: sets are not values."""
        ty = self.expr(e)
        if ty.cls is Cls.SET:
            self._err(
                codes.USER_SET_AS_VALUE,
                f"`{ty.text}` is a set of values and can only follow `in` or `not in`",
                e.span,
                f"write `x in {ty.text}`",
            )
            return Ty(Cls.UNKNOWN, ty.text)
        return ty

    # ------------------------------------------------------------------ expressions
    def expr(self, e: ir.Expr) -> Ty:
        match e:
            case ir.Literal(value=v):
                return literal_type(v, expr_text(e))
            case ir.ColumnRef(name=name):
                return self.column(name)
            case ir.UserRef(attr=attr):
                if attr == "name":
                    return Ty(Cls.STRING, "user.name")
                if attr != "groups":
                    self.diags.extend(self.names.attribute(attr, e.span))
                return Ty(Cls.SET, f"user.{attr}")
            case ir.Now():
                return Ty(Cls.TEMPORAL, "now()", kind="timestamp")
            case ir.Today():
                return Ty(Cls.TEMPORAL, "today()", kind="date", date=True)
            case ir.Interval(unit=unit):
                if unit not in ir.INTERVAL_UNITS:
                    self._err(
                        codes.UNKNOWN_INTERVAL_UNIT,
                        f"unknown interval unit `{unit}`",
                        e.span,
                        did_you_mean(unit, ir.INTERVAL_UNITS)
                        or "units: " + ", ".join(sorted(set(ir.INTERVAL_UNITS.values()))),
                    )
                    return Ty(Cls.UNKNOWN, expr_text(e))
                return Ty(Cls.INTERVAL, expr_text(e))
            case ir.Arith():
                return self.arith(e)
            case ir.Neg(item=item):
                ty = self.value(item)
                if ty.cls in (Cls.NUMBER, Cls.INTERVAL, Cls.NULL, Cls.UNKNOWN):
                    return Ty(ty.cls, expr_text(e), integer=ty.integer)
                self._err(
                    codes.WRONG_EXPR_TYPE,
                    f"cannot negate {ty.shown()}",
                    e.span,
                    "only numbers and intervals can be negated",
                )
                return Ty(Cls.UNKNOWN, expr_text(e))
            case ir.Compare(op=op, left=left, right=right):
                a, b = self.value(left), self.value(right)
                if Cls.NULL in (a.cls, b.cls):
                    self.diags.append(
                        warning(
                            codes.NULL_COMPARISON,
                            f"`{op} null` is never true",
                            e.span,
                            help="a comparison with null is null, which hides the row or masks the "
                            "cell; write `x is null` or `x is not null`",
                        )
                    )
                self.compatible(a, b, e.span)
            case ir.InList(item=item, options=options):
                a = self.value(item)
                for o in options:
                    self.compatible(a, self.value(o), o.span)
            case ir.InUser(item=item, ref=ref):
                self.in_user(item, ref)
            case ir.Between(item=item, low=low, high=high):
                a = self.value(item)
                self.compatible(a, self.value(low), low.span)
                self.compatible(a, self.value(high), high.span)
            case ir.IsNull(item=item):
                self.value(item)
            case ir.BoolAnd(items=items) | ir.BoolOr(items=items):
                word = "`and`" if isinstance(e, ir.BoolAnd) else "`or`"
                for item in items:
                    self.condition(item, f"each side of {word}")
            case ir.BoolNot(item=item):
                self.condition(item, "the operand of `not`")
            case _:
                t.assert_never(e)
        return Ty(Cls.BOOLEAN, "the condition")

    def column(self, name: ir.ObjectName) -> Ty:
        key, qualifier, col = self.table.key, name.parts[:-1], name.parts[-1]
        if qualifier and not (
            len(qualifier) <= len(key) and key[len(key) - len(qualifier) :] == qualifier
        ):
            self._err(
                codes.UNKNOWN_COLUMN,
                f"`{name}` is not a column of table `{dotted(key)}`",
                name.span,
                f"a predicate can only use columns of its table, e.g. `{ir.quote_part(col)}`",
            )
            return Ty(Cls.UNKNOWN, str(name))
        c = self.table.column(col)
        if c is None:
            self._err(
                codes.UNKNOWN_COLUMN,
                f"table `{dotted(key)}` has no column `{ir.quote_part(col)}`",
                name.span,
                did_you_mean(col, [x.name for x in self.table.columns]),
            )
            return Ty(Cls.UNKNOWN, str(name))
        fam = c.type.family
        return Ty(
            _FAMILY_CLASS[fam],
            str(name),
            kind=str(c.type),
            integer=fam is model.Family.INTEGER,
            date=fam is model.Family.DATE,
        )

    def arith(self, e: ir.Arith) -> Ty:
        a, b = self.value(e.left), self.value(e.right)
        text = expr_text(e)
        pair = {a.cls, b.cls}
        if Cls.UNKNOWN in pair:
            return Ty(Cls.UNKNOWN, text)
        if Cls.NULL in pair:
            return Ty(Cls.NULL, text)
        if pair == {Cls.NUMBER}:
            return Ty(Cls.NUMBER, text, integer=a.integer and b.integer)
        if pair == {Cls.INTERVAL}:
            return Ty(Cls.INTERVAL, text)
        if a.cls is Cls.TEMPORAL and b.cls is Cls.INTERVAL:
            return Ty(Cls.TEMPORAL, text, kind="timestamp")
        if a.cls is Cls.INTERVAL and b.cls is Cls.TEMPORAL and e.op == "+":
            return Ty(Cls.TEMPORAL, text, kind="timestamp")
        if a.cls is Cls.TEMPORAL and a.date and b.cls is Cls.NUMBER and b.integer:
            return Ty(Cls.TEMPORAL, text, kind="date", date=True)
        self._err(
            codes.WRONG_EXPR_TYPE,
            f"cannot compute {a.shown()} {e.op} {b.shown()}",
            e.span,
            "`+` and `-` apply to numbers, and to a date or timestamp with an "
            "interval such as `90 days`",
        )
        return Ty(Cls.UNKNOWN, text)

    def in_user(self, item: ir.Expr, ref: ir.UserRef) -> None:
        a = self.value(item)
        if ref.attr == "name":
            self._err(
                codes.USER_SET_AS_VALUE,
                "`user.name` is a single value, not a set",
                ref.span,
                f"write `{a.text} = user.name`",
            )
            return
        if ref.attr != "groups":
            self.diags.extend(self.names.attribute(ref.attr, ref.span))
        if a.cls not in (Cls.STRING, Cls.NULL, Cls.UNKNOWN):
            self._err(
                codes.INCOMPARABLE,
                f"cannot look for {a.shown()} in `user.{ref.attr}`, a set of strings",
                item.span,
                "user attributes and groups are strings: use a string column",
            )

    def compatible(self, a: Ty, b: Ty, span: Span) -> None:
        if a.cls in (Cls.UNKNOWN, Cls.NULL) or b.cls in (Cls.UNKNOWN, Cls.NULL):
            return
        if a.cls is b.cls and a.cls is not Cls.INTERVAL:
            return
        for x, y in ((a, b), (b, a)):
            if x.cls is Cls.TEMPORAL and y.string_literal is not None:
                if is_iso_datetime(y.string_literal):
                    return
                self._err(
                    codes.INCOMPARABLE,
                    f"`{y.text}` is not a date or timestamp to compare with {x.shown()}",
                    span,
                    'write an ISO-8601 date or timestamp such as "2024-01-31" or '
                    '"2024-01-31T12:00:00Z"',
                )
                return
        self._err(
            codes.INCOMPARABLE,
            f"cannot compare {a.shown()} with {b.shown()}",
            span,
            _compare_help(a, b),
        )


def _compare_help(a: Ty, b: Ty) -> str:
    if Cls.INTERVAL in (a.cls, b.cls):
        return "an interval is added to a date or timestamp: `created_at >= now() - 90 days`"
    if Cls.STRING in (a.cls, b.cls) and Cls.NUMBER in (a.cls, b.cls):
        return "numbers and strings do not compare: write a number without quotes (`10`)"
    return "both sides must be of the same kind: numbers, strings, dates and times, or booleans"


def literal_type(v: ir.LiteralValue, text: str) -> Ty:
    if v is None:
        return Ty(Cls.NULL, text)
    if isinstance(v, bool):
        return Ty(Cls.BOOLEAN, text)
    if isinstance(v, str):
        return Ty(Cls.STRING, text, string_literal=v)
    if isinstance(v, int):
        return Ty(Cls.NUMBER, text, integer=True)
    assert isinstance(v, Decimal)
    return Ty(Cls.NUMBER, text)


def check_predicates(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the mask targets resolved: a `when` is checked against every table its mask
    reaches."""
    names = Names(facts)
    diags: list[Diagnostic] = []
    for i, m in enumerate(policies.of_type(ir.Mask)):
        if m.when is None:
            continue
        keys = sorted({k for k, _ in facts.reach[i]})
        note = (
            f"this mask reaches tables {listing(dotted(k) for k in keys)}, and its `when` "
            "must hold in each"
            if len(keys) > 1
            else None
        )
        for key in keys:
            diags.extend(_check(facts.tables, key, m.when, names, note))
    for f in policies.of_type(ir.Filter):
        diags.extend(_check(facts.tables, f.table.parts, f.where, names, None))
    return facts, diags


def _check(
    tables: Mapping[model.TableKey, model.CatalogTable],
    key: model.TableKey,
    pred: ir.Expr,
    names: Names,
    note: str | None,
) -> list[Diagnostic]:
    typer = Typer(tables[key], names, note)
    typer.predicate(pred)
    return typer.diags
