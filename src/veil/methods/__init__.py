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

The reference values are in `veil.methods.values`, a `constant` argument read as a column type in
`veil.methods.constant`.
"""

from __future__ import annotations

import datetime as dt
import enum
import sys
import typing as t
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal

from veil import ir, model
from veil.methods.constant import cast_constant
from veil.methods.values import (
    EXACT,
    TABLE_KEY_LENGTH,
    TEST_HASH_KEY,
    TRUNCATE_UNITS,
    EvaluationError,
    TruncateUnit,
    email_domain,
    expand_replacement,
    hash_input,
    hash_text,
    is_hash_key,
    need,
    regex_replace,
    replacement_parts,
    round_to_step,
    show,
    table_key,
    truncate,
)

__all__ = [
    "EXACT",
    "METHODS",
    "TABLE_KEY_LENGTH",
    "TEST_HASH_KEY",
    "TRUNCATE_UNITS",
    "EvaluationError",
    "Fit",
    "MaskAction",
    "Method",
    "Param",
    "TruncateUnit",
    "action_name",
    "expand_replacement",
    "hash_input",
    "hash_text",
    "is_hash_key",
    "is_word",
    "method_of",
    "regex_replace",
    "replacement_parts",
    "round_to_step",
    "show",
    "table_key",
    "truncate",
]

F = model.Family
STRINGS = frozenset({F.STRING})
NUMBERS = frozenset({F.INTEGER, F.DECIMAL, F.FLOAT})
INSTANTS = frozenset({F.DATE, F.TIMESTAMP})
#: Characters of a SHA-256 digest in hex, and the fewest a hash may be cut to.
HASH_HEX_LENGTH = 64
MIN_HASH_LENGTH = 8


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


A = t.TypeVar("A")


def _no_args(action: object) -> tuple[str, ...]:
    return ()


def _never_longer(action: object) -> int | None:
    return None


@dataclass(frozen=True, slots=True, kw_only=True)
class Method(t.Generic[A]):
    """One masking method, whose lowered form is an `A`."""

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
    action: type[A]
    #: The method (its arguments already checked by kind) fitted to a column of `table` of
    #: this type.
    lower: Callable[[Args, model.TableKey, model.SqlType], Fit]
    #: The reference value of a non-NULL cell of the column type (`masking.apply_method`),
    #: computed with a hash key.
    apply: Callable[[A, object, model.SqlType, str], object]
    #: Whether NULL stays NULL (else `apply` gets NULL too: its value does not read the cell).
    reads_value: bool = True
    #: The arguments of the lowered form as veil source (`printer.action_to_source`).
    source: Callable[[A], tuple[str, ...]] = _no_args
    #: The longest string it can give, when that can be longer than its input (None: never
    #: longer, or not a string); `sys.maxsize` when unbounded.
    longest: Callable[[A], int | None] = _never_longer

    @property
    def arity(self) -> int:
        return len(self.params)


def method_of(action: MaskAction) -> Method[t.Any]:
    """The registry entry of a lowered method."""
    return METHODS[action.method]


def is_word(name: str, position: int) -> bool:
    """Is the argument at `position` of method `name` a bare word (`truncate(month)`)?"""
    spec = METHODS.get(name)
    return spec is not None and position < spec.arity and spec.params[position] is Param.UNIT


# --------------------------------------------------------------------------------------------
# Lowering for one column


def _lower_constant(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    value, problem = cast_constant(args[0], ty)
    return Fit(problem=problem) if value is None else Fit(action=MaskConstant(value=value))


def _lower_hash(args: Args, table: model.TableKey, ty: model.SqlType) -> Fit:
    salt = model.table_id(table)
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


def _show(side: t.Literal["first", "last"]) -> Method[MaskShow]:
    name = f"show_{side}"
    return Method(
        name=name,
        usage=f"{name}(n)",
        params=(Param.COUNT,),
        families=STRINGS,
        misfit=f"`{name}` masks string columns",
        action=MaskShow,
        lower=_lower_show(side),
        apply=lambda a, v, ty, key: show(need(v, str, a.method), a.side, a.count),
        source=lambda a: (str(a.count),),
    )


METHODS: dict[str, Method[t.Any]] = {
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
            apply=lambda a, v, ty, key: hash_text(a.salt, need(v, str, "hash"), a.length, key),
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
                need(v, str, "regex"), a.pattern, a.replacement, a.length
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
                need(v, (int, Decimal, float), "round"), a.step, ty
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
            apply=lambda a, v, ty, key: truncate(need(v, dt.date, "truncate"), a.unit),
            source=lambda a: (a.unit,),
        ),
        Method(
            name="email_domain",
            usage="email_domain",
            families=STRINGS,
            misfit="`email_domain` masks string columns",
            action=MaskEmailDomain,
            lower=lambda args, table, ty: Fit(action=MaskEmailDomain()),
            apply=lambda a, v, ty, key: email_domain(need(v, str, "email_domain")),
        ),
    )
}
