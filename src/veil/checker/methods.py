"""Masking methods: their arguments (whatever the column) and whether they fit a column.

`check_method` finds what is wrong with a method whatever column it masks (unknown name, wrong
arguments, a regex outside the portable subset): always an error. `fit_method` lowers a method
for one column, or says why it does not fit that column's type (an error when the column was
named explicitly, a fallback to `null` with a warning when it was selected by tag).
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
import warnings
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from veil import ir, model
from veil.checker import codes
from veil.checker.common import did_you_mean, literal_text
from veil.diagnostics import Diagnostic, error
from veil.methods import HASH_HEX_LENGTH, METHODS

F = model.Family
#: How each method is written, and how many arguments it takes (from the registry).
USAGE: dict[str, str] = {name: m.usage for name, m in METHODS.items()}
ARITY: dict[str, int] = {name: m.arity for name, m in METHODS.items()}
TruncateUnit: t.TypeAlias = t.Literal["year", "quarter", "month", "day", "hour"]
TRUNCATE_UNITS: tuple[str, ...] = t.get_args(TruncateUnit)
MIN_HASH_LENGTH = 8
INT_RANGES: dict[str, int] = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def _bad(m: ir.Method, message: str, help_: str | None = None) -> list[Diagnostic]:
    return [error(codes.BAD_METHOD_ARGS, message, m.span, help=help_ or f"write `{USAGE[m.name]}`")]


def _is_int(v: ir.LiteralValue) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_method(m: ir.Method) -> list[Diagnostic]:
    """What is wrong with `m` whatever the column: always errors."""
    if m.name not in ARITY:
        return [
            error(
                codes.UNKNOWN_METHOD,
                f"unknown masking method `{m.name}`",
                m.span,
                help=did_you_mean(m.name, ARITY, otherwise="methods: " + ", ".join(ARITY)),
            )
        ]
    n = ARITY[m.name]
    if len(m.args) != n:
        takes = {0: "no arguments", 1: "one argument", 2: "two arguments"}[n]
        return _bad(m, f"`{m.name}` takes {takes}, not {len(m.args)}")
    arg = m.args[0] if m.args else None
    if m.name == "constant" and arg is None:
        return _bad(m, "`constant(null)` is not a constant", "write `with null`")
    if m.name in ("show_first", "show_last") and not (_is_int(arg) and t.cast(int, arg) >= 0):
        return _bad(
            m, f"the argument of `{m.name}` must be a whole number of characters (0 or more)"
        )
    if m.name == "round" and not (
        isinstance(arg, int | Decimal) and not isinstance(arg, bool) and arg > 0
    ):
        return _bad(
            m,
            "the step of `round` must be a number greater than 0",
            "write e.g. `round(100)` or `round(0.5)`",
        )
    if m.name == "truncate" and arg not in TRUNCATE_UNITS:
        return _bad(
            m,
            f"`truncate` cannot truncate to `{arg}`",
            did_you_mean(str(arg), TRUNCATE_UNITS, otherwise="units: " + ", ".join(TRUNCATE_UNITS)),
        )
    if m.name == "regex":
        return _check_regex(m)
    return []


# ------------------------------------------------------------------------------ regex


def _check_regex(m: ir.Method) -> list[Diagnostic]:
    pattern, replacement = m.args
    if not isinstance(pattern, str) or not isinstance(replacement, str):
        return _bad(m, "`regex` takes a pattern string and a replacement string")
    problem = non_portable(pattern)
    if problem is not None:
        return [
            error(
                codes.NON_PORTABLE_REGEX,
                f"regex `{pattern}` uses {problem}",
                m.span,
                help="veil patterns use the subset every target agrees on: no lookaround, "
                "no backreferences, no named groups, no inline flags, no atomic groups "
                "or possessive quantifiers, no \\b \\B \\A \\Z \\z \\G anchors",
            )
        ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            groups = re.compile(pattern).groups
    except (re.error, FutureWarning, DeprecationWarning) as e:
        return _bad(m, f"invalid regex `{pattern}`: {e}", "fix the pattern")
    problem = bad_replacement(replacement, groups)
    if problem is not None:
        return _bad(
            m,
            f"invalid replacement `{replacement}`: {problem}",
            'refer to groups as \\1 … \\9 (write "\\\\1" in a veil string) and write '
            "a backslash as \\\\",
        )
    return []


_GROUP_OPENERS: tuple[tuple[str, str], ...] = (
    ("?:", ""),
    ("?=", "a lookahead"),
    ("?!", "a lookahead"),
    ("?<=", "a lookbehind"),
    ("?<!", "a lookbehind"),
    ("?P<", "a named group"),
    ("?<", "a named group"),
    ("?P=", "a backreference"),
    ("?#", "a comment group"),
    ("?>", "an atomic group"),
    ("?(", "a conditional group"),
)


def non_portable(pattern: str) -> str | None:
    """The first construct outside the portable regex subset, in words (None if portable)."""
    i, in_class = 0, False
    prev_quantifier = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt.isdigit():
                return f"a backreference or octal escape `\\{nxt}`"
            if nxt and nxt in "bBAZzG":
                return f"the anchor `\\{nxt}`"
            if nxt and nxt in "gkpPN":
                return f"the escape `\\{nxt}`"
            i, prev_quantifier = i + 2, False
            continue
        if in_class:
            if c == "[" and pattern[i + 1 : i + 2] in (":", ".", "="):
                return "a POSIX class or nested set such as `[[:alpha:]]`"
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":
                i += 1  # a leading `]` is a literal
            prev_quantifier = False
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?":
            for opener, what in _GROUP_OPENERS:
                if pattern.startswith(opener, i + 1):
                    if what:
                        return what
                    break
            else:
                return "an inline flag group `(?…)`"
        if c == "+" and prev_quantifier:
            return "a possessive quantifier"
        prev_quantifier = c in "*+?}" and not (c == "+" and prev_quantifier)
        i += 1
    return None


def bad_replacement(replacement: str, groups: int) -> str | None:
    i = 0
    while i < len(replacement):
        if replacement[i] != "\\":
            i += 1
            continue
        nxt = replacement[i + 1 : i + 2]
        if nxt == "\\":
            i += 2
            continue
        if nxt.isdigit() and nxt != "0":
            if int(nxt) > groups:
                return f"`\\{nxt}` refers to group {nxt} and the pattern has {groups}"
            if replacement[i + 2 : i + 3].isdigit():
                return f"`\\{nxt}` followed by a digit (ambiguous between targets)"
            i += 2
            continue
        return f"the escape `\\{nxt}`" if nxt else "a trailing backslash"
    return None


# ------------------------------------------------------------------------------ fit


@dataclass(frozen=True, slots=True)
class Fit:
    """A method lowered for one column; or `problem`, why it does not fit the column type."""

    action: model.MaskAction | None = None
    problem: str | None = None
    note: str | None = None  # a fitting rendering was chosen (hash shortened)


def fit_method(m: ir.Method, table: model.TableKey, column: model.CatalogColumn) -> Fit:
    """`m` (already checked by `check_method`) for one column."""
    ty = column.type
    fam = ty.family
    spec = METHODS[m.name]
    if spec.families is not None and fam not in spec.families:
        return Fit(problem=spec.misfit)
    match m.name:
        case "null":
            return Fit(action=model.MaskNull())
        case "constant":
            value, problem = cast_constant(m.args[0], ty)
            return (
                Fit(problem=problem)
                if value is None
                else Fit(action=model.MaskConstant(value=value))
            )
        case "hash":
            salt = model.table_str(table)
            n = ty.length
            if n is None or n >= HASH_HEX_LENGTH:
                return Fit(action=model.MaskHash(salt=salt))
            if n < MIN_HASH_LENGTH:
                return Fit(
                    problem=f"a hash needs at least {MIN_HASH_LENGTH} characters and "
                    f"`{ty}` holds {n}"
                )
            return Fit(
                action=model.MaskHash(salt=salt, length=n),
                note=f"the {HASH_HEX_LENGTH}-character hash is cut to the {n} "
                f"characters `{ty}` holds",
            )
        case "show_first" | "show_last":
            count = m.args[0]
            assert isinstance(count, int)
            return Fit(
                action=model.MaskShow(
                    side="first" if m.name == "show_first" else "last", count=count
                )
            )
        case "regex":
            pattern, replacement = m.args
            assert isinstance(pattern, str) and isinstance(replacement, str)
            return Fit(
                action=model.MaskRegex(pattern=pattern, replacement=replacement, length=ty.length)
            )
        case "round":
            return _fit_round(m.args[0], ty)
        case "truncate":
            unit = m.args[0]
            if unit == "hour" and fam is F.DATE:
                return Fit(problem="a date has no hours to truncate")
            return Fit(action=model.MaskTruncate(unit=t.cast(TruncateUnit, unit)))
        case "email_domain":
            return Fit(action=model.MaskEmailDomain())
    raise AssertionError(f"unchecked method {m.name}")  # pragma: no cover


def _fit_round(step: ir.LiteralValue, ty: model.SqlType) -> Fit:
    assert isinstance(step, int | Decimal)
    if ty.family is F.INTEGER and not isinstance(step, int):
        return Fit(problem=f"the step of `round` on `{ty}` must be a whole number")
    return Fit(action=model.MaskRound(step=Decimal(step)))


def cast_constant(
    v: ir.LiteralValue, ty: model.SqlType
) -> tuple[str | int | Decimal | bool | None, str | None]:
    """The constant converted to the column's family, or why it cannot be."""
    shown = literal_text(v)
    nope = f"`{shown}` cannot be cast to `{ty}`"
    match ty.family:
        case F.STRING:
            s = v if isinstance(v, str) else literal_text(v)
            if ty.length is not None and len(s) > ty.length:
                return None, f"`{shown}` is {len(s)} characters long and `{ty}` holds {ty.length}"
            return s, None
        case F.INTEGER:
            i = _as_number(v)
            if i is None or i != i.to_integral_value():
                return None, nope
            bound = INT_RANGES[ty.name]
            if not -bound <= i < bound:
                return None, f"`{shown}` is out of the range of `{ty}`"
            return int(i), None
        case F.DECIMAL | F.FLOAT:
            d = _as_number(v)
            if d is None:
                return None, nope
            if ty.family is F.DECIMAL and ty.precision is not None and not _fits(d, ty):
                return None, f"`{shown}` does not fit `{ty}`"
            return d, None
        case F.BOOLEAN:
            if isinstance(v, bool):
                return v, None
            if isinstance(v, str) and v.strip().lower() in ("true", "false"):
                return v.strip().lower() == "true", None
            return None, nope
        case F.DATE | F.TIMESTAMP:
            return _as_temporal(v, ty, nope)
        case F.JSON:
            if isinstance(v, str):
                try:
                    json.loads(v)
                except ValueError:
                    return None, f"`{shown}` is not JSON text"
                return v, None
            return literal_text(v), None
        case F.BINARY:
            return None, "a binary column has no constants"
    raise AssertionError(ty)  # pragma: no cover


def _as_number(v: ir.LiteralValue) -> Decimal | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | Decimal):
        return Decimal(v)
    try:
        d = Decimal(v.strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _fits(d: Decimal, ty: model.SqlType) -> bool:
    assert ty.precision is not None
    scale = ty.scale or 0
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if -exp > scale and d != d.quantize(Decimal(1).scaleb(-scale)):
        return False
    return abs(d) < Decimal(10) ** (ty.precision - scale)


def _as_temporal(v: ir.LiteralValue, ty: model.SqlType, nope: str) -> tuple[str | None, str | None]:
    if not isinstance(v, str):
        return None, nope
    text = v.strip()
    try:
        if ty.family is F.DATE:
            return dt.date.fromisoformat(text).isoformat(), None
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        want = (
            'a date such as "2024-01-31"'
            if ty.family is F.DATE
            else 'a timestamp such as "2024-01-31T12:00:00Z"'
        )
        return None, f"{nope}: write {want}"
    if ty.name == "timestamptz" and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if ty.name == "timestamp" and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(), None
