"""Row expressions (`filter … where`, `mask … when`) with SQL semantics: the reference for targets.

Values are Python values; NULL is None. The rules every target must copy:

* Logic is three-valued (Kleene): `and` is FALSE if any item is FALSE, else NULL if any is NULL;
  `or` is TRUE if any item is TRUE, else NULL if any is NULL; `not NULL` is NULL. A predicate
  used where a boolean is needed must be a boolean or NULL.
* Comparisons with a NULL operand are NULL. Numbers compare across int/Decimal exactly; when
  either side is a float both are compared as floats (PostgreSQL casts numeric to float8).
  Strings compare by code point (= UTF-8 byte order: targets use a binary / `C` collation).
  Booleans compare false < true and only with booleans. Dates and timestamps compare like
  PostgreSQL: a date is promoted to midnight, and a timestamp without time zone is taken as UTC
  (the session time zone of every target is UTC).
* A string literal compared with a non-string value is read as that value's type, like an
  untyped SQL literal: `created_at >= "2024-01-01"` compares timestamps, `amount > "10"` numbers.
  A string column is never converted.
* `x in (a, b)` is `x = a or x = b`; `x not in (…)` is `not (x in (…))` (so NULL among the
  options makes `not in` NULL unless an option is equal). `x between a and b` is
  `x >= a and x <= b`; `not between` is its negation.
* `x in user.<attr>` / `user.groups`: the set of the user's values (an undeclared user has
  none). An empty set gives FALSE for `in` and TRUE for `not in`, whatever `x` (SQL
  `= ANY('{}')`); otherwise a NULL `x` gives NULL. `x` must be a string. `user.name` is the user.
* `now()` is the context's instant (UTC); `today()` its UTC date. Intervals are months, days and
  microseconds like PostgreSQL (`1 year` = 12 months, `1 week` = 7 days). Adding an interval to a
  date or timestamp adds the months first (the day of month is clamped to the month's length:
  2024-01-31 + 1 month = 2024-02-29), then the days and the time; subtracting adds the negated
  interval. A date plus an interval is a timestamp (midnight UTC); a date plus an integer is a
  date. Numbers: int with int stays int, Decimal arithmetic is exact, a float makes a float.
"""

from __future__ import annotations

import calendar
import datetime as dt
import decimal
import typing as t
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from decimal import Decimal

from veil import ir, model
from veil.methods import EXACT, EvaluationError

if t.TYPE_CHECKING:
    from veil.evaluator import Context

UTC = dt.UTC


@dataclass(frozen=True, slots=True)
class IntervalValue:
    """A PostgreSQL-style interval: months, days and microseconds, kept apart."""

    months: int = 0
    days: int = 0
    micros: int = 0

    def __neg__(self) -> IntervalValue:
        return IntervalValue(-self.months, -self.days, -self.micros)

    def __add__(self, other: IntervalValue) -> IntervalValue:
        return IntervalValue(
            self.months + other.months, self.days + other.days, self.micros + other.micros
        )


_UNIT_PARTS: dict[str, tuple[int, int, int]] = {
    "year": (12, 0, 0),
    "month": (1, 0, 0),
    "week": (0, 7, 0),
    "day": (0, 1, 0),
    "hour": (0, 0, 3_600_000_000),
    "minute": (0, 0, 60_000_000),
    "second": (0, 0, 1_000_000),
}


def interval(amount: int, unit: str) -> IntervalValue:
    """`amount unit` as an interval; `unit` as written (`days`) or normalised (`day`)."""
    parts = _UNIT_PARTS.get(ir.INTERVAL_UNITS.get(unit, unit))
    if parts is None:
        raise EvaluationError(f"unknown interval unit `{unit}`")
    months, days, micros = parts
    return IntervalValue(amount * months, amount * days, amount * micros)


# --------------------------------------------------------------------------------------------
# Values and types


def _is_number(v: object) -> t.TypeGuard[int | Decimal | float]:
    return isinstance(v, int | Decimal | float) and not isinstance(v, bool)


def _parse_date(text: str) -> dt.date:
    try:
        return dt.date.fromisoformat(text)
    except ValueError:
        pass
    try:
        return dt.datetime.fromisoformat(text).date()
    except ValueError:
        raise EvaluationError(f"`{text}` is not a date") from None


def _parse_timestamp(text: str) -> dt.datetime:
    try:
        return dt.datetime.fromisoformat(text)
    except ValueError:
        raise EvaluationError(f"`{text}` is not a timestamp") from None


def as_utc(value: dt.date) -> dt.datetime:
    """A date as midnight UTC; a naive timestamp as UTC; an aware one converted to UTC."""
    if not isinstance(value, dt.datetime):
        return dt.datetime(value.year, value.month, value.day, tzinfo=UTC)
    if value.tzinfo is None or value.utcoffset() is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def coerce_value(value: object, type_: model.SqlType) -> object:
    """A cell value as the evaluator computes with it, for a column of `type_`.

    Strings in date/timestamp columns are parsed (ISO 8601), a date in a timestamp column is
    midnight, an int in a decimal column is a Decimal, an int or Decimal in a float column is a
    float, an integral Decimal in an integer column is an int. Anything else is unchanged.
    """
    if value is None:
        return None
    family = type_.family
    if family is model.Family.DATE and isinstance(value, str):
        return _parse_date(value)
    if family is model.Family.TIMESTAMP:
        if isinstance(value, str):
            return _parse_timestamp(value)
        if isinstance(value, dt.date) and not isinstance(value, dt.datetime):
            return dt.datetime(value.year, value.month, value.day)
    if family is model.Family.DECIMAL and isinstance(value, int) and not isinstance(value, bool):
        return Decimal(value)
    if family is model.Family.FLOAT and _is_number(value):
        return float(value)
    if family is model.Family.INTEGER and isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else value
    return value


def _comparable(a: object, b: object) -> tuple[t.Any, t.Any]:
    if isinstance(a, bool) or isinstance(b, bool):
        if isinstance(a, bool) and isinstance(b, bool):
            return a, b
    elif _is_number(a) and _is_number(b):
        if isinstance(a, float) or isinstance(b, float):
            return float(a), float(b)
        return a, b
    elif (isinstance(a, str) and isinstance(b, str)) or (
        isinstance(a, bytes) and isinstance(b, bytes)
    ):
        return a, b
    elif isinstance(a, dt.date) and isinstance(b, dt.date):
        if isinstance(a, dt.datetime) or isinstance(b, dt.datetime):
            return as_utc(a), as_utc(b)
        return a, b
    raise EvaluationError(f"cannot compare {type(a).__name__} with {type(b).__name__}")


def compare_values(a: object, b: object) -> int | None:
    """-1, 0 or 1 (SQL ordering of `a` and `b`), or None when either is NULL."""
    if a is None or b is None:
        return None
    x, y = _comparable(a, b)
    return int(x > y) - int(x < y)


_COMPARE: dict[str, t.Callable[[int], bool]] = {
    "=": lambda c: c == 0,
    "!=": lambda c: c != 0,
    "<": lambda c: c < 0,
    "<=": lambda c: c <= 0,
    ">": lambda c: c > 0,
    ">=": lambda c: c >= 0,
}


def compare(op: str, a: object, b: object) -> bool | None:
    c = compare_values(a, b)
    return None if c is None else _COMPARE[op](c)


# --------------------------------------------------------------------------------------------
# Three-valued logic


def and3(values: Iterable[bool | None]) -> bool | None:
    """Kleene AND: FALSE if any is FALSE, else NULL if any is NULL, else TRUE."""
    vals = list(values)
    if any(v is False for v in vals):
        return False
    return None if any(v is None for v in vals) else True


def or3(values: Iterable[bool | None]) -> bool | None:
    """Kleene OR: TRUE if any is TRUE, else NULL if any is NULL, else FALSE."""
    vals = list(values)
    if any(v is True for v in vals):
        return True
    return None if any(v is None for v in vals) else False


def not3(value: bool | None) -> bool | None:
    return None if value is None else not value


def _truth(value: object) -> bool | None:
    if value is None or isinstance(value, bool):
        return value
    raise EvaluationError(f"expected a boolean, got {type(value).__name__} `{value}`")


# --------------------------------------------------------------------------------------------
# Arithmetic


def add_months(value: dt.datetime, months: int) -> dt.datetime:
    """Calendar month arithmetic; the day of month is clamped to the length of the month."""
    total = value.year * 12 + value.month - 1 + months
    year, month0 = divmod(total, 12)
    if not dt.MINYEAR <= year <= dt.MAXYEAR:
        raise EvaluationError("timestamp out of range")
    day = min(value.day, calendar.monthrange(year, month0 + 1)[1])
    return value.replace(year=year, month=month0 + 1, day=day)


def shift(value: dt.date, by: IntervalValue) -> dt.datetime:
    """`value + by` (PostgreSQL): months first, then days and time; the result is UTC."""
    ts = as_utc(value)
    if by.months:
        ts = add_months(ts, by.months)
    try:
        return ts + dt.timedelta(days=by.days, microseconds=by.micros)
    except OverflowError:
        raise EvaluationError("timestamp out of range") from None


def arith(op: str, a: object, b: object) -> object:
    """`a + b` / `a - b` with SQL NULL propagation and PostgreSQL's typing."""
    if a is None or b is None:
        return None
    minus = op == "-"
    if isinstance(a, dt.date) and isinstance(b, IntervalValue):
        return shift(a, -b if minus else b)
    if isinstance(a, IntervalValue) and isinstance(b, dt.date) and not minus:
        return shift(b, a)
    if isinstance(a, IntervalValue) and isinstance(b, IntervalValue):
        return a + (-b if minus else b)
    if (
        isinstance(a, dt.date)
        and not isinstance(a, dt.datetime)
        and isinstance(b, int)
        and not isinstance(b, bool)
    ):
        return a + dt.timedelta(days=-b if minus else b)
    if _is_number(a) and _is_number(b):
        if isinstance(a, float) or isinstance(b, float):
            return float(a) - float(b) if minus else float(a) + float(b)
        if isinstance(a, int) and isinstance(b, int):
            return a - b if minus else a + b
        x, y = Decimal(a), Decimal(b)
        return EXACT.subtract(x, y) if minus else EXACT.add(x, y)
    raise EvaluationError(f"cannot compute {type(a).__name__} {op} {type(b).__name__}")


def _negate(value: object) -> object:
    if value is None:
        return None
    if isinstance(value, IntervalValue):
        return -value
    if _is_number(value):
        return -value
    raise EvaluationError(f"cannot negate {type(value).__name__}")


# --------------------------------------------------------------------------------------------
# Evaluation


def _read_literal(text: str, like: object) -> object:
    """A string literal read as the type of the value it is compared with (untyped literal)."""
    if isinstance(like, dt.datetime):
        return _parse_timestamp(text)
    if isinstance(like, dt.date):
        return _parse_date(text)
    if _is_number(like):
        try:
            return Decimal(text.strip())
        except decimal.InvalidOperation:
            raise EvaluationError(f"`{text}` is not a number") from None
    return text


def _pair(env: _Env, left: ir.Expr, right: ir.Expr) -> tuple[object, object]:
    a, b = env.eval(left), env.eval(right)
    if (
        isinstance(left, ir.Literal)
        and isinstance(a, str)
        and b is not None
        and not isinstance(b, str)
    ):
        a = _read_literal(a, b)
    elif (
        isinstance(right, ir.Literal)
        and isinstance(b, str)
        and a is not None
        and not isinstance(a, str)
    ):
        b = _read_literal(b, a)
    return a, b


def user_set(program: model.Program, user: str, attr: str) -> tuple[str, ...]:
    """`user.groups` or `user.<attr>`: the user's declared values (none for an unknown user)."""
    info = program.user(user)
    if info is None:
        return ()
    return info.groups if attr == "groups" else info.values(attr)


@dataclass(frozen=True, slots=True)
class _Env:
    program: model.Program
    row: Mapping[str, object]
    ctx: Context

    def eval(self, expr: ir.Expr) -> object:
        match expr:
            case ir.Literal(value=value):
                return value
            case ir.ColumnRef(name=name):
                return self.row.get(name.parts[-1])
            case ir.UserRef(attr=attr):
                if attr == "name":
                    return self.ctx.user
                raise EvaluationError(f"`user.{attr}` is a set: use it with `in`")
            case ir.Now():
                return self.ctx.now
            case ir.Today():
                return self.ctx.today()
            case ir.Interval(amount=amount, unit=unit):
                return interval(amount, unit)
            case ir.Arith(op=op, left=left, right=right):
                return arith(op, self.eval(left), self.eval(right))
            case ir.Neg(item=item):
                return _negate(self.eval(item))
            case ir.Compare(op=op, left=left, right=right):
                return compare(op, *_pair(self, left, right))
            case ir.InList(item=item, options=options, negated=negated):
                hit = or3([compare("=", *_pair(self, item, o)) for o in options])
                return not3(hit) if negated else hit
            case ir.InUser(item=item, ref=ref, negated=negated):
                return self._in_user(item, ref, negated)
            case ir.Between(item=item, low=low, high=high, negated=negated):
                inside = and3(
                    [
                        compare(">=", *_pair(self, item, low)),
                        compare("<=", *_pair(self, item, high)),
                    ]
                )
                return not3(inside) if negated else inside
            case ir.IsNull(item=item, negated=negated):
                return (self.eval(item) is None) != negated
            case ir.BoolAnd(items=items):
                return and3([_truth(self.eval(i)) for i in items])
            case ir.BoolOr(items=items):
                return or3([_truth(self.eval(i)) for i in items])
            case ir.BoolNot(item=item):
                return not3(_truth(self.eval(item)))
            case _:  # pragma: no cover - the union is closed
                raise EvaluationError(f"unknown expression {expr!r}")

    def _in_user(self, item: ir.Expr, ref: ir.UserRef, negated: bool) -> bool | None:
        values = user_set(self.program, self.ctx.user, ref.attr)
        if ref.attr == "name":
            raise EvaluationError("`user.name` is a value: compare it with `=`")
        if not values:
            return negated
        value = self.eval(item)
        if value is None:
            return None
        if not isinstance(value, str):
            raise EvaluationError(
                f"`user.{ref.attr}` holds strings; cannot look up {type(value).__name__}"
            )
        return (value in values) != negated


def eval_expr(
    program: model.Program, expr: ir.Expr, row: Mapping[str, object], ctx: Context
) -> object:
    """The value of a row expression; column references resolve by their last name part."""
    return _Env(program, row, ctx).eval(expr)


def eval_predicate(
    program: model.Program, expr: ir.Expr, row: Mapping[str, object], ctx: Context
) -> bool | None:
    """A row predicate: TRUE, FALSE or NULL (None)."""
    return _truth(eval_expr(program, expr, row, ctx))
