"""The IR: what the transformer builds from the parse tree, before any name is resolved.

Every node is a frozen, slotted, keyword-only dataclass; spans are excluded from equality so tests
can compare parsed IR with hand-built IR. Unions are closed: passes `match` on them and end with
`assert_never`, so mypy lists every place a new node must reach.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass, field
from decimal import Decimal

from veil.diagnostics import NO_SPAN, Span


def _span() -> t.Any:
    return field(default=NO_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# Names


@dataclass(frozen=True, slots=True, kw_only=True)
class ObjectName:
    """A dotted name: `column`, `table.column`, `schema.table`, `db.schema.table.column`."""

    parts: tuple[str, ...]
    span: Span = _span()

    def __str__(self) -> str:
        return dotted(self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class TagPath:
    """A dotted tag path; `pii` covers `pii.card` (path segments, never string prefix)."""

    parts: tuple[str, ...]
    span: Span = _span()

    def covers(self, other: TagPath) -> bool:
        return other.parts[: len(self.parts)] == self.parts

    def __str__(self) -> str:
        return dotted(self.parts)


@dataclass(frozen=True, slots=True, kw_only=True)
class Name:
    """A name of a purpose, group, user or project: a string or bare words."""

    value: str
    span: Span = _span()

    def __str__(self) -> str:
        return self.value


# --------------------------------------------------------------------------------------------
# Catalog


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnType:
    """`varchar(19)`, `decimal(12,2)`, `timestamp` … as written; the checker validates `name`."""

    name: str
    params: tuple[int, ...] = ()
    span: Span = _span()

    def __str__(self) -> str:
        return self.name + (f"({','.join(map(str, self.params))})" if self.params else "")


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    name: str
    type: ColumnType
    tags: tuple[TagPath, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    name: ObjectName
    columns: tuple[Column, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class TagOn:
    """`tag pii.card on payments.cards.pan`: tags added outside the table block."""

    tags: tuple[TagPath, ...]
    target: ObjectName
    span: Span = _span()


# --------------------------------------------------------------------------------------------
# Purposes, people, projects, approvals


@dataclass(frozen=True, slots=True, kw_only=True)
class Purpose:
    name: Name
    description: str | None = None
    acknowledgement: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Group:
    name: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Attribute:
    key: str
    values: tuple[str, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class User:
    name: Name
    groups: tuple[Name, ...] = ()
    attributes: tuple[Attribute, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Project:
    name: Name
    purposes: tuple[Name, ...] = ()
    members: tuple[Name, ...] = ()
    sources: tuple[ObjectName, ...] = ()
    documentation: str | None = None
    description: str | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Approvers:
    """`approvers carol, dan` or `approvers erin for purpose "Fraud Detection"`."""

    names: tuple[Name, ...]
    purpose: Name | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Acknowledged:
    """An acknowledgement text recorded in an approval: `acknowledgement "P" "text"`."""

    purpose: Name
    text: str
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class ApprovalRecord:
    """What was approved, so that a stale approval can name what changed."""

    purposes: tuple[Name, ...] = ()
    members: tuple[Name, ...] = ()
    sources: tuple[ObjectName, ...] = ()
    acknowledgements: tuple[Acknowledged, ...] = ()
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Approve:
    """`approve P purpose X by NAME at TIME digest "sha256:…" { record }` (written by the CLI)."""

    project: Name
    purpose: Name
    by: Name
    at: dt.datetime
    digest: str
    record: ApprovalRecord | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoke:
    """`revoke P purpose X by NAME at TIME` (written by the CLI)."""

    project: Name
    purpose: Name
    by: Name
    at: dt.datetime
    span: Span = _span()


# --------------------------------------------------------------------------------------------
# Conditions: who (a boolean formula over the querying user's context)


@dataclass(frozen=True, slots=True, kw_only=True)
class PurposeIs:
    purpose: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class AnyPurpose:
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class InGroup:
    group: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class IsUser:
    user: Name
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class HasAttribute:
    key: str
    value: str
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class CondAnd:
    items: tuple[Condition, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class CondOr:
    items: tuple[Condition, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class CondNot:
    item: Condition
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class CondConst:
    """Constant truth value; produced by desugaring (never written by users)."""

    value: bool
    span: Span = _span()


Condition: t.TypeAlias = (
    PurposeIs
    | AnyPurpose
    | InGroup
    | IsUser
    | HasAttribute
    | CondAnd
    | CondOr
    | CondNot
    | CondConst
)


# --------------------------------------------------------------------------------------------
# Row expressions (predicates of `filter … where`, `mask … when`)

LiteralValue: t.TypeAlias = str | int | Decimal | bool | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Literal:
    value: LiteralValue
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnRef:
    name: ObjectName
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class UserRef:
    """`user.name` (a value), `user.groups` or `user.<attribute>` (sets: use with `in`)."""

    attr: str
    span: Span = _span()

    @property
    def is_set(self) -> bool:
        return self.attr != "name"


@dataclass(frozen=True, slots=True, kw_only=True)
class Now:
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Today:
    span: Span = _span()


INTERVAL_UNITS: dict[str, str] = {
    "second": "second",
    "seconds": "second",
    "minute": "minute",
    "minutes": "minute",
    "hour": "hour",
    "hours": "hour",
    "day": "day",
    "days": "day",
    "week": "week",
    "weeks": "week",
    "month": "month",
    "months": "month",
    "year": "year",
    "years": "year",
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Interval:
    """`90 days`; `unit` is as written, the checker normalises it with INTERVAL_UNITS."""

    amount: int
    unit: str
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Arith:
    op: t.Literal["+", "-"]
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Neg:
    item: Expr
    span: Span = _span()


CompareOp: t.TypeAlias = t.Literal["=", "!=", "<", "<=", ">", ">="]


@dataclass(frozen=True, slots=True, kw_only=True)
class Compare:
    op: CompareOp
    left: Expr
    right: Expr
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class InList:
    """`x in (a, b)` / `x not in (…)`."""

    item: Expr
    options: tuple[Expr, ...]
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class InUser:
    """`x in user.region` / `x not in user.groups`."""

    item: Expr
    ref: UserRef
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Between:
    item: Expr
    low: Expr
    high: Expr
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class IsNull:
    item: Expr
    negated: bool = False
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class BoolAnd:
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class BoolOr:
    items: tuple[Expr, ...]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class BoolNot:
    item: Expr
    span: Span = _span()


Expr: t.TypeAlias = (
    Literal
    | ColumnRef
    | UserRef
    | Now
    | Today
    | Interval
    | Arith
    | Neg
    | Compare
    | InList
    | InUser
    | Between
    | IsNull
    | BoolAnd
    | BoolOr
    | BoolNot
)


# --------------------------------------------------------------------------------------------
# Policies


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    """A masking method as written: `hash`, `show_last(4)`, `truncate(month)` …

    Arguments are literals, or bare words (`truncate(month)`) kept as `str` in `words`.
    """

    name: str
    args: tuple[LiteralValue, ...] = ()
    span: Span = _span()

    def __str__(self) -> str:
        return method_text(self)


def method_text(
    m: Method,
    *,
    literal: t.Callable[[LiteralValue], str] | None = None,
    word: t.Callable[[int, str], bool] | None = None,
) -> str:
    """The one rendering of a method: `hash`, `show_last(4)`, `constant("x")`.

    The callers differ only in these choices: `literal` writes an argument (default: double
    quotes, backslash escapes); a string argument for which `word(position, value)` is true
    prints as a bare word (`truncate(month)`). A method without arguments prints as its name.
    """
    if not m.args:
        return m.name
    write = literal or _render_arg
    args = (
        a if word is not None and isinstance(a, str) and word(i, a) else write(a)
        for i, a in enumerate(m.args)
    )
    return f"{m.name}({', '.join(args)})"


def _render_arg(v: LiteralValue) -> str:
    if isinstance(v, str):
        return '"' + v.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "true" if v else "false"
    return str(v)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnTarget:
    name: ObjectName
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class TagTarget:
    tag: TagPath
    span: Span = _span()


MaskTarget: t.TypeAlias = ColumnTarget | TagTarget


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskClause:
    """One arm of a mask: `method` None means reveal; `cond` None means `otherwise`."""

    method: Method | None
    cond: Condition | None
    span: Span = _span()


MaskForm: t.TypeAlias = t.Literal["unless", "for", "always", "block"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Mask:
    """Every mask in its general (block) form; `form` records how it was written.

    `with M unless C` -> clauses (reveal for C; with M otherwise), form "unless".
    """

    target: MaskTarget
    clauses: tuple[MaskClause, ...]
    when: Expr | None = None
    form: MaskForm = "block"
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Filter:
    table: ObjectName
    where: Expr
    unless: Condition | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class Restrict:
    """`restrict T to purpose A, purpose B [unless C]`; `to` holds PurposeIs/AnyPurpose atoms."""

    table: ObjectName
    to: tuple[Condition, ...]
    unless: Condition | None = None
    span: Span = _span()


# --------------------------------------------------------------------------------------------
# Tests


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectColumn:
    column: ObjectName
    outcome: t.Literal["clear", "masked"]
    method: Method | None = None
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class RowField:
    column: str
    value: LiteralValue
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectRow:
    table: ObjectName
    row: tuple[RowField, ...]
    outcome: t.Literal["visible", "hidden"]
    span: Span = _span()


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectCell:
    """`expect T.C in row { … } is V` / `clear` / `masked [with M]`: one cell of one row."""

    column: ObjectName
    row: tuple[RowField, ...]
    outcome: t.Literal["is", "clear", "masked"]
    value: LiteralValue = None  # what the cell shows, for `is`
    method: Method | None = None  # for `masked with M`
    span: Span = _span()


Expectation: t.TypeAlias = ExpectColumn | ExpectRow | ExpectCell


@dataclass(frozen=True, slots=True, kw_only=True)
class TestCase:
    __test__ = False  # not a pytest class

    name: str
    user: Name | None
    project: Name | None
    expectations: tuple[Expectation, ...]
    span: Span = _span()


# --------------------------------------------------------------------------------------------
# A file and a repository

Statement: t.TypeAlias = (
    Table
    | TagOn
    | Purpose
    | Group
    | User
    | Project
    | Approvers
    | Approve
    | Revoke
    | Mask
    | Filter
    | Restrict
    | TestCase
)


@dataclass(frozen=True, slots=True, kw_only=True)
class SourceFile:
    path: str
    statements: tuple[Statement, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class PolicySet:
    """All files of a repository, in sorted path order: one namespace."""

    files: tuple[SourceFile, ...]

    def statements(self) -> t.Iterator[Statement]:
        for f in self.files:
            yield from f.statements

    def of_type(self, cls: type[_S]) -> tuple[_S, ...]:
        return tuple(s for s in self.statements() if isinstance(s, cls))


_S = t.TypeVar("_S")


# --------------------------------------------------------------------------------------------
# Quoting names back into source form

KEYWORDS: frozenset[str] = frozenset(
    [
        "table",
        "tag",
        "tags",
        "on",
        "purpose",
        "purposes",
        "description",
        "acknowledgement",
        "group",
        "groups",
        "user",
        "project",
        "members",
        "sources",
        "documentation",
        "approvers",
        "approve",
        "revoke",
        "by",
        "at",
        "digest",
        "mask",
        "tagged",
        "with",
        "unless",
        "for",
        "when",
        "reveal",
        "otherwise",
        "filter",
        "where",
        "restrict",
        "to",
        "any",
        "and",
        "or",
        "not",
        "in",
        "is",
        "null",
        "true",
        "false",
        "between",
        "now",
        "today",
        "attribute",
        "test",
        "as",
        "expect",
        "clear",
        "masked",
        "row",
        "visible",
        "hidden",
    ]
)

_PLAIN_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")


def is_plain_ident(s: str) -> bool:
    return _PLAIN_IDENT.fullmatch(s) is not None and s not in KEYWORDS


def quote_part(s: str) -> str:
    """One part of a dotted name, backquoted when it is not a plain identifier."""
    return s if is_plain_ident(s) else "`" + s.replace("`", "``") + "`"


def dotted(parts: t.Iterable[str]) -> str:
    """A dotted name in source form: `a.b`, a part that is not a plain identifier backquoted (so
    `a.b`.`c` and `a`.`b.c` differ)."""
    return ".".join(quote_part(p) for p in parts)


def name_source(value: str) -> str:
    """A purpose/user/group/project name in source form: bare words when they read back the
    same, else a double-quoted string."""
    words = value.split(" ")
    if words and all(is_plain_ident(w) for w in words):
        return value
    return string_source(value)


def literal_source(value: LiteralValue) -> str:
    """A literal in source form: `null`, `true`, `false`, a number, or a double-quoted string.

    A Decimal always prints with a decimal point (`5.0`), so it reads back as a Decimal.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, Decimal):
        text = format(value, "f")
        return text if "." in text else text + ".0"
    return string_source(value)


def string_source(value: str) -> str:
    """A string literal in source form (double quotes, backslash escapes)."""
    out = []
    for ch in value:
        if ch == "\\":
            out.append("\\\\")
        elif ch == '"':
            out.append('\\"')
        elif ch == "\n":
            out.append("\\n")
        elif ch == "\t":
            out.append("\\t")
        elif ch == "\r":
            out.append("\\r")
        elif ch == "\0":
            out.append("\\0")
        elif ord(ch) < 0x20 or ord(ch) == 0x7F:
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return '"' + "".join(out) + '"'
