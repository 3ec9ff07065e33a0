"""The registry of masking methods: each method is declared here once, and everything else
reads it.

`METHODS` holds one `Method` per name: how it is written, its parameters and the kind of each
(the checker checks the arguments by kind), the column families it fits, its lowered form (a
frozen `Mask…` action, defined here), how it is lowered for one column (`lower`), its reference
value (`apply`, which the evaluator calls through `masking.apply_method`), how the lowered form
prints (`source`) and the longest string it can give (the lookup targets' length checks). Each
target states the SQL of every method in its `method_sql` map; `tests/test_methods.py` fails
when a target lacks one.

Nothing here imports the evaluator side: the targets import this module, never `masking.py`.

The reference values (a NULL input gives NULL for every method except `constant`, which always
gives its value; lengths and positions count Unicode code points, never bytes):

null            NULL.
constant(v)     v, read as the column type (a date column's constant is a date).
hash            a keyed hash: with K the deployment's secret key (64 lowercase hex characters),
                inner = sha256_hex(K + ":" + salt + ":" + value), hash = sha256_hex(K + ":" +
                inner) (lowercase hex of the SHA-256 of the UTF-8 bytes; nested, so no length
                extension), then the first `length` characters when the checker set a length
                (to fit the column). Without K, nobody can hash candidate values and compare.
                The evaluator, `veil test` and `veil explain` use TEST_HASH_KEY.
show_first(n)   the first n characters, every other character replaced by `*`; a value of n
show_last(n)    characters or fewer becomes all `*` of the same length ("" stays "").
regex(p, r)     every non-overlapping match of p, left to right, replaced by r, then the first
                `length` characters when set. p is matched with ASCII character classes (`\\d`,
                `\\w`, `\\s` are ASCII only, like PostgreSQL under the `C` locale); after an
                empty match the search moves on one character. In r, `\\1`…`\\9` insert a group
                ("" when it did not take part), `\\\\` inserts one backslash, and any other
                character, backslash included, stands for itself.
round(step)     the nearest multiple of step, halves away from zero, computed exactly in decimal.
                A float is first read as a decimal of 15 significant digits (6 for `real`),
                like PostgreSQL's cast to numeric. The result has the column's type: an int for
                integer columns (halves away from zero again), a Decimal with the column's
                scale for decimal(p,s) (rounded half away from zero), a float for real/double.
                Negative zero becomes zero.
truncate(unit)  date_trunc: the start of the year, quarter (January, April, July, October),
                month, day or hour. Aware timestamps are truncated in UTC; a date stays a date
                (`day` and `hour` leave it unchanged).
email_domain    the text after the last `@` ("" when `@` is last); NULL when there is no `@`.

A value of a family the method does not fit raises `EvaluationError` (the checker's type rules
never let it through).
"""

from __future__ import annotations

import datetime as dt
import decimal
import enum
import hashlib
import json
import re
import sys
import typing as t
from collections.abc import Callable
from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

from veil import ir, model

__all__ = [
    "EXACT",
    "METHODS",
    "TEST_HASH_KEY",
    "EvaluationError",
    "Fit",
    "MaskAction",
    "Method",
    "Param",
    "action_name",
    "hash_text",
    "is_hash_key",
    "method_of",
    "replacement_parts",
]

F = model.Family
STRINGS = frozenset({F.STRING})
NUMBERS = frozenset({F.INTEGER, F.DECIMAL, F.FLOAT})
INSTANTS = frozenset({F.DATE, F.TIMESTAMP})
#: Characters of a SHA-256 digest in hex, and the fewest a hash may be cut to.
HASH_HEX_LENGTH = 64
MIN_HASH_LENGTH = 8
TruncateUnit: t.TypeAlias = t.Literal["year", "quarter", "month", "day", "hour"]
TRUNCATE_UNITS: tuple[str, ...] = t.get_args(TruncateUnit)

EXACT = decimal.Context(prec=400, rounding=decimal.ROUND_HALF_UP)
"""Decimal context for exact arithmetic (PostgreSQL `numeric` is arbitrary-precision)."""


class EvaluationError(Exception):
    """A value of the wrong type reached an operation (the checker should have rejected it)."""


# --------------------------------------------------------------------------------------------
# The lowered forms (a method fitted to one column), as the checked program holds them


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskNull:
    method: t.ClassVar[str] = "null"


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskConstant:
    method: t.ClassVar[str] = "constant"
    value: str | int | Decimal | bool  # already converted to the column's family


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskHash:
    """The keyed hash of the value, salted per table; cut to `length` if set."""

    method: t.ClassVar[str] = "hash"
    salt: str
    length: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskShow:
    """show_first(n) / show_last(n): keep n characters, replace the others by `*`.

    A value of n characters or fewer is replaced entirely (fail closed).
    """

    side: t.Literal["first", "last"]
    count: int

    @property
    def method(self) -> str:
        return f"show_{self.side}"


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskRegex:
    """Replace every match of `pattern` by `replacement` (`\\1` … group references)."""

    method: t.ClassVar[str] = "regex"
    pattern: str
    replacement: str
    length: int | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskRound:
    """Round to the nearest multiple of `step`, halves away from zero."""

    method: t.ClassVar[str] = "round"
    step: Decimal


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskTruncate:
    method: t.ClassVar[str] = "truncate"
    unit: TruncateUnit


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskEmailDomain:
    """Keep what follows the last `@`; NULL when there is none."""

    method: t.ClassVar[str] = "email_domain"


MaskAction: t.TypeAlias = (
    MaskNull
    | MaskConstant
    | MaskHash
    | MaskShow
    | MaskRegex
    | MaskRound
    | MaskTruncate
    | MaskEmailDomain
)


def action_name(action: MaskAction | None) -> str:
    """The method name as a user writes it (`reveal` for None)."""
    return "reveal" if action is None else action.method


# --------------------------------------------------------------------------------------------
# The registry


class Param(enum.Enum):
    """The kinds of argument a method takes; the checker checks each kind
    (`checker/methods.py`)."""

    #: Any literal but `null`, converted to the column's type when the method is lowered.
    VALUE = "value"
    #: A whole number of characters, 0 or more.
    COUNT = "count"
    #: A number greater than 0.
    STEP = "step"
    #: A bare word among `TRUNCATE_UNITS`.
    UNIT = "unit"
    #: A regular expression in the portable subset, then its replacement string.
    PATTERN = "pattern"
    REPLACEMENT = "replacement"


@dataclass(frozen=True, slots=True)
class Fit:
    """A method lowered for one column; or `problem`, why it does not fit the column type."""

    action: MaskAction | None = None
    problem: str | None = None
    note: str | None = None  # a fitting rendering was chosen (hash shortened)


Args: t.TypeAlias = tuple[ir.LiteralValue, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    """One masking method."""

    name: str
    #: How it is written with its arguments (help lines quote it).
    usage: str
    #: The kind of each argument, in order.
    params: tuple[Param, ...] = ()
    #: The column families it fits (None: every family).
    families: frozenset[model.Family] | None
    #: What `fit_method` says when it does not fit a column's family.
    misfit: str = ""
    #: The lowered form of the method.
    action: type[MaskAction]
    #: The method (its arguments already checked by kind) fitted to a column of `table` of
    #: this type.
    lower: Callable[[Args, model.TableKey, model.SqlType], Fit]
    #: The reference value of a non-NULL cell of the column type (`masking.apply_method`),
    #: computed with a hash key.
    apply: Callable[[t.Any, object, model.SqlType, str], object]
    #: Whether NULL stays NULL (else `apply` gets NULL too: its value does not read the cell).
    reads_value: bool = True
    #: The arguments of the lowered form as veil source (`printer.action_to_source`).
    source: Callable[[t.Any], tuple[str, ...]] = lambda action: ()
    #: The longest string it can give, when that can be longer than its input (None: never
    #: longer, or not a string); `sys.maxsize` when unbounded.
    longest: Callable[[t.Any], int | None] = lambda action: None

    @property
    def arity(self) -> int:
        return len(self.params)


def method_of(action: MaskAction) -> Method:
    """The registry entry of a lowered method."""
    return METHODS[action.method]


def is_word(name: str, position: int) -> bool:
    """Is the argument at `position` of method `name` a bare word (`truncate(month)`)?"""
    spec = METHODS.get(name)
    return spec is not None and position < spec.arity and spec.params[position] is Param.UNIT


# --------------------------------------------------------------------------------------------
# Reference values


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: The fixed, public key of the `hash` method in the evaluator, `veil test` and `veil explain`
#: (and in the tests, which set a database's key to it): sha256_hex("veil test key"). A real
#: deployment draws its own secret key on the first apply (docs/targets/*.md, "The hash key").
TEST_HASH_KEY = _sha256_hex("veil test key")

_HASH_KEY = re.compile(r"[0-9a-f]{64}\Z")


def is_hash_key(key: str) -> bool:
    """A key of the `hash` method: exactly 64 lowercase hexadecimal characters."""
    return _HASH_KEY.match(key) is not None


def hash_text(salt: str, value: str, length: int | None = None, key: str = TEST_HASH_KEY) -> str:
    """The keyed hash of `value` in the table salted `salt` (see the module's docstring)."""
    if not is_hash_key(key):
        raise EvaluationError("a hash key must be 64 lowercase hexadecimal characters")
    digest = _sha256_hex(f"{key}:{_sha256_hex(f'{key}:{salt}:{value}')}")
    return digest if length is None else digest[:length]


def show(value: str, side: t.Literal["first", "last"], count: int) -> str:
    if len(value) <= count:
        return "*" * len(value)
    hidden = "*" * (len(value) - count)
    return value[:count] + hidden if side == "first" else hidden + value[len(value) - count :]


def replacement_parts(replacement: str) -> list[int | str]:
    """A regex replacement read as group numbers and literal text.

    `\\1`…`\\9` is a group, `\\\\` one backslash, any other character (a lone backslash
    included) stands for itself. Every target renders these parts in its own syntax.
    """
    parts: list[int | str] = []
    i = 0
    while i < len(replacement):
        c, nxt = replacement[i], replacement[i + 1 : i + 2]
        if c == "\\" and nxt and nxt in "123456789":
            parts.append(int(nxt))
            i += 2
            continue
        text = "\\" if c == "\\" and nxt == "\\" else c
        i += 2 if c == "\\" and nxt == "\\" else 1
        if parts and isinstance(parts[-1], str):
            parts[-1] += text
        else:
            parts.append(text)
    return parts


def expand_replacement(replacement: str, match: re.Match[str]) -> str:
    """`\\1`…`\\9` -> the group (or ""), `\\\\` -> `\\`; everything else literally."""
    groups = match.re.groups or 0
    return "".join(
        part if isinstance(part, str) else (match.group(part) if part <= groups else None) or ""
        for part in replacement_parts(replacement)
    )


def regex_replace(value: str, pattern: str, replacement: str, length: int | None = None) -> str:
    compiled = re.compile(pattern, re.ASCII)
    result = compiled.sub(lambda m: expand_replacement(replacement, m), value)
    return result if length is None else result[:length]


def _float_to_decimal(value: float, type_: model.SqlType) -> Decimal:
    digits = 6 if type_.name == "real" else 15
    return Decimal(format(value, f".{digits}g"))


def round_to_step(value: int | Decimal | float, step: Decimal, type_: model.SqlType) -> object:
    if step <= 0:
        raise EvaluationError(f"round step must be positive, got {step}")
    x = _float_to_decimal(value, type_) if isinstance(value, float) else Decimal(value)
    quotient = EXACT.divide(x, step).quantize(Decimal(1), rounding=ROUND_HALF_UP, context=EXACT)
    result = EXACT.plus(EXACT.multiply(quotient, step))
    match type_.family:
        case model.Family.INTEGER:
            return int(result.to_integral_value(rounding=ROUND_HALF_UP))
        case model.Family.FLOAT:
            return float(result)
        case model.Family.DECIMAL if type_.precision is not None:
            exp = Decimal(1).scaleb(-(type_.scale or 0))
            return EXACT.plus(result.quantize(exp, rounding=ROUND_HALF_UP, context=EXACT))
        case _:
            return result


def truncate(value: dt.date, unit: TruncateUnit) -> dt.date:
    if (
        isinstance(value, dt.datetime)
        and value.tzinfo is not None
        and value.utcoffset() is not None
    ):
        value = value.astimezone(dt.UTC)
    if unit == "year":
        month, day = 1, 1
    elif unit == "quarter":
        month, day = 3 * ((value.month - 1) // 3) + 1, 1
    elif unit == "month":
        month, day = value.month, 1
    else:
        month, day = value.month, value.day
    if not isinstance(value, dt.datetime):
        return dt.date(value.year, month, day)
    hour = value.hour if unit == "hour" else 0
    return value.replace(month=month, day=day, hour=hour, minute=0, second=0, microsecond=0)


def email_domain(value: str) -> str | None:
    _head, at, domain = value.rpartition("@")
    return domain if at else None


_V = t.TypeVar("_V")


def _need(value: object, kind: type[_V] | tuple[type, ...], method: str) -> _V:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EvaluationError(f"`{method}` cannot mask a {type(value).__name__} value")
    return t.cast(_V, value)


# --------------------------------------------------------------------------------------------
# Lowering for one column

INT_RANGES: dict[str, int] = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def cast_constant(
    v: ir.LiteralValue, ty: model.SqlType
) -> tuple[str | int | Decimal | bool | None, str | None]:
    """The constant converted to the column's family, or why it cannot be."""
    shown = ir.literal_source(v)
    nope = f"`{shown}` cannot be cast to `{ty}`"
    match ty.family:
        case F.STRING:
            s = v if isinstance(v, str) else ir.literal_source(v)
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
            return ir.literal_source(v), None
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


def _lower_constant(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    value, problem = cast_constant(args[0], ty)
    return Fit(problem=problem) if value is None else Fit(action=MaskConstant(value=value))


def _lower_hash(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    salt = model.table_str(table)
    n = ty.length
    if n is None or n >= HASH_HEX_LENGTH:
        return Fit(action=MaskHash(salt=salt))
    if n < MIN_HASH_LENGTH:
        return Fit(
            problem=f"a hash needs at least {MIN_HASH_LENGTH} characters and `{ty}` holds {n}"
        )
    return Fit(
        action=MaskHash(salt=salt, length=n),
        note=f"the {HASH_HEX_LENGTH}-character hash is cut to the {n} characters `{ty}` holds",
    )


def _lower_show(
    side: t.Literal["first", "last"],
) -> Callable[[Args, model.TableKey, model.SqlType], Fit]:
    def lower(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
        count = args[0]
        assert isinstance(count, int)
        return Fit(action=MaskShow(side=side, count=count))

    return lower


def _lower_regex(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    pattern, replacement = args
    assert isinstance(pattern, str) and isinstance(replacement, str)
    return Fit(action=MaskRegex(pattern=pattern, replacement=replacement, length=ty.length))


def _lower_round(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    step = args[0]
    assert isinstance(step, int | Decimal)
    if ty.family is F.INTEGER and not isinstance(step, int):
        return Fit(problem=f"the step of `round` on `{ty}` must be a whole number")
    return Fit(action=MaskRound(step=Decimal(step)))


def _lower_truncate(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    unit = args[0]
    if unit == "hour" and ty.family is F.DATE:
        return Fit(problem="a date has no hours to truncate")
    return Fit(action=MaskTruncate(unit=t.cast(TruncateUnit, unit)))


# --------------------------------------------------------------------------------------------
# The methods


def _show(side: t.Literal["first", "last"]) -> Method:
    name = f"show_{side}"
    return Method(
        name=name,
        usage=f"{name}(n)",
        params=(Param.COUNT,),
        families=STRINGS,
        misfit=f"`{name}` masks string columns",
        action=MaskShow,
        lower=_lower_show(side),
        apply=lambda a, v, ty, key: show(_need(v, str, a.method), a.side, a.count),
        source=lambda a: (str(a.count),),
    )


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(
            name="null",
            usage="null",
            families=None,
            action=MaskNull,
            lower=lambda args, table, ty: Fit(action=MaskNull()),
            apply=lambda a, v, ty, key: None,
        ),
        Method(
            name="constant",
            usage="constant(value)",
            params=(Param.VALUE,),
            families=None,
            action=MaskConstant,
            lower=_lower_constant,
            apply=lambda a, v, ty, key: a.value,
            reads_value=False,
            source=lambda a: (ir.literal_source(a.value),),
            longest=lambda a: len(a.value) if isinstance(a.value, str) else None,
        ),
        Method(
            name="hash",
            usage="hash",
            families=STRINGS,
            misfit="`hash` masks string columns",
            action=MaskHash,
            lower=_lower_hash,
            apply=lambda a, v, ty, key: hash_text(a.salt, _need(v, str, "hash"), a.length, key),
            longest=lambda a: HASH_HEX_LENGTH if a.length is None else a.length,
        ),
        _show("first"),
        _show("last"),
        Method(
            name="regex",
            usage='regex("pattern", "replacement")',
            params=(Param.PATTERN, Param.REPLACEMENT),
            families=STRINGS,
            misfit="`regex` masks string columns",
            action=MaskRegex,
            lower=_lower_regex,
            apply=lambda a, v, ty, key: regex_replace(
                _need(v, str, "regex"), a.pattern, a.replacement, a.length
            ),
            source=lambda a: (ir.string_source(a.pattern), ir.string_source(a.replacement)),
            longest=lambda a: sys.maxsize if a.length is None else a.length,
        ),
        Method(
            name="round",
            usage="round(step)",
            params=(Param.STEP,),
            families=NUMBERS,
            misfit="`round` masks numbers",
            action=MaskRound,
            lower=_lower_round,
            apply=lambda a, v, ty, key: round_to_step(
                _need(v, (int, Decimal, float), "round"), a.step, ty
            ),
            source=lambda a: (format(a.step, "f"),),
        ),
        Method(
            name="truncate",
            usage="truncate(year|quarter|month|day|hour)",
            params=(Param.UNIT,),
            families=INSTANTS,
            misfit="`truncate` masks dates and timestamps",
            action=MaskTruncate,
            lower=_lower_truncate,
            apply=lambda a, v, ty, key: truncate(_need(v, dt.date, "truncate"), a.unit),
            source=lambda a: (a.unit,),
        ),
        Method(
            name="email_domain",
            usage="email_domain",
            families=STRINGS,
            misfit="`email_domain` masks string columns",
            action=MaskEmailDomain,
            lower=lambda args, table, ty: Fit(action=MaskEmailDomain()),
            apply=lambda a, v, ty, key: email_domain(_need(v, str, "email_domain")),
        ),
    )
}
