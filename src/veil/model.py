"""The checked program: what the checker hands to the evaluator and to every target.

Everything here is resolved: each mask names one catalog column and carries its whole decision
(first matching arm wins, the last arm is `otherwise`), each row rule names one table, purpose
names are declared, project states are computed. The evaluator gives this its meaning; the
targets render the same structure as SQL (one lowering, three renderings).
"""

from __future__ import annotations

import enum
import typing as t
from dataclasses import dataclass, field

from veil import ir
from veil.diagnostics import NO_SPAN, Span

if t.TYPE_CHECKING:
    # The lowered masking methods are declared with their registry entries.
    from veil.methods import MaskAction

TableKey: t.TypeAlias = tuple[str, ...]
"""A table's qualified name as written in its `table` block, e.g. ("sales", "transactions")."""


def table_str(key: TableKey) -> str:
    return ".".join(key)


def table_id(key: TableKey) -> str:
    """A table's name as one text no other table has: its parts joined by `.`, a part that
    contains `.` or `"` double-quoted with each inner `"` doubled (`"a.b".c` is not `a."b.c"`,
    which `table_str` would confuse), every other part as it is. It salts the table's `hash`,
    and on Snowflake and Databricks it names the table in the project sources and in the value
    a native tag policy is told its table by (which salts the policy's `hash` too)."""
    return ".".join(_id_part(part) for part in key)


def _id_part(part: str) -> str:
    if "." not in part and '"' not in part:
        return part
    return '"' + part.replace('"', '""') + '"'


class Family(enum.Enum):
    STRING = "string"
    INTEGER = "integer"
    DECIMAL = "decimal"
    FLOAT = "float"
    BOOLEAN = "boolean"
    DATE = "date"
    TIMESTAMP = "timestamp"
    BINARY = "binary"
    JSON = "json"


#: veil type name -> family
TYPE_FAMILIES: dict[str, Family] = {
    "boolean": Family.BOOLEAN,
    "smallint": Family.INTEGER,
    "integer": Family.INTEGER,
    "bigint": Family.INTEGER,
    "decimal": Family.DECIMAL,
    "real": Family.FLOAT,
    "double": Family.FLOAT,
    "varchar": Family.STRING,
    "char": Family.STRING,
    "text": Family.STRING,
    "date": Family.DATE,
    "timestamp": Family.TIMESTAMP,
    "timestamptz": Family.TIMESTAMP,
    "binary": Family.BINARY,
    "json": Family.JSON,
}


@dataclass(frozen=True, slots=True, kw_only=True)
class SqlType:
    """A checked column type. `length` for varchar/char; `precision`/`scale` for decimal."""

    name: str
    length: int | None = None
    precision: int | None = None
    scale: int | None = None

    @property
    def family(self) -> Family:
        return TYPE_FAMILIES[self.name]

    def __str__(self) -> str:
        if self.name == "decimal" and self.precision is not None:
            return f"decimal({self.precision},{self.scale or 0})"
        if self.length is not None:
            return f"{self.name}({self.length})"
        return self.name


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogColumn:
    name: str
    type: SqlType
    tags: tuple[ir.TagPath, ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class CatalogTable:
    key: TableKey
    columns: tuple[CatalogColumn, ...]
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def column(self, name: str) -> CatalogColumn | None:
        for c in self.columns:
            if c.name == name:
                return c
        return None

    @property
    def name(self) -> str:
        return table_str(self.key)


@dataclass(frozen=True, slots=True, kw_only=True)
class MaskArm:
    """`action` None = reveal (clear value); `cond` None = otherwise (always the last arm)."""

    action: MaskAction | None
    cond: ir.Condition | None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnMask:
    """The whole masking decision for one column.

    Value shown = clear when `when` is FALSE for the row (a NULL `when` counts as true);
    otherwise the first arm whose condition holds decides (the last arm has no condition).
    """

    table: TableKey
    column: str
    type: SqlType
    arms: tuple[MaskArm, ...]
    when: ir.Expr | None = None
    policies: tuple[Span, ...] = field(default=(), compare=False)


#: The table a native tag policy is evaluated on (Snowflake tag-based masking, Unity Catalog ABAC):
#: a platform policy bound to a tag does not know its table, so its purpose checks name the table
#: by the tag the script sets on it, and its `hash` salt is that name (`targets/lookup.py`).
TAGGED_TABLE: TableKey = ("\x00tagged",)

#: The column types a native tag policy is written for, one policy per type (as the platform
#: matches a tag's policies to a column by data type): a column tagged on the platform is masked
#: as a column of its type's entry here (no length, precision or scale: the policy cannot know
#: them).
TAG_POLICY_TYPES: tuple[str, ...] = (
    "text",
    "decimal",
    "double",
    "boolean",
    "date",
    "timestamp",
    "timestamptz",
    "binary",
    "json",
)


@dataclass(frozen=True, slots=True, kw_only=True)
class TagMask:
    """The decision of `mask tagged T` for a column the repository does not know but the
    platform tags `T` (or a tag under it): per type of `TAG_POLICY_TYPES`, the arms lowered
    for a column of that type on `TAGGED_TABLE` (a method that does not fit falls back to
    `null`, as for a column selected by tag). `when` is not kept: a column the repository does
    not know is masked in every row (fail closed). `tied` masks of equal specificity that do
    not merge have no arms: a native tag policy cannot be written for them."""

    tag: ir.TagPath
    arms: tuple[tuple[str, tuple[MaskArm, ...]], ...]
    tied: bool = False
    policies: tuple[Span, ...] = field(default=(), compare=False)

    def arms_for(self, type_name: str) -> tuple[MaskArm, ...]:
        return next(a for n, a in self.arms if n == type_name)


def tag_mask_for(masks: t.Iterable[TagMask], tag: str | None) -> TagMask | None:
    """The mask that decides a column the platform tags `tag`: the deepest `mask tagged` that
    covers it (a column carries one such tag, so two masks of one depth never both cover it)."""
    if tag is None:
        return None
    path = ir.TagPath(parts=tuple(tag.split(".")))
    found = [m for m in masks if m.tag.covers(path)]
    return max(found, key=lambda m: len(m.tag.parts), default=None)


@dataclass(frozen=True, slots=True, kw_only=True)
class RowRule:
    """One row rule on one table: a row is visible iff `allow` holds for the user, or `where`
    is TRUE for the row (NULL hides). Rules of a table are AND-ed.

    filter T where P unless C  -> allow=C (or FALSE), where=P
    restrict T to A, B unless C -> allow=A or B or C, where=None
    """

    table: TableKey
    kind: t.Literal["filter", "restrict"]
    allow: ir.Condition
    where: ir.Expr | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


# --------------------------------------------------------------------------------------------
# Purposes, people, projects


@dataclass(frozen=True, slots=True, kw_only=True)
class PurposeInfo:
    name: str
    description: str | None = None
    acknowledgement: str | None = None  # own text, or the nearest ancestor's
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def parent(self) -> str | None:
        return self.name.rsplit(".", 1)[0] if "." in self.name else None


def purpose_satisfies(acting: str, required: str) -> bool:
    """A sub-purpose satisfies its ancestors: `A.B` satisfies `A`; `A` does not satisfy `A.B`."""
    return acting == required or acting.startswith(required + ".")


@dataclass(frozen=True, slots=True, kw_only=True)
class UserInfo:
    name: str
    groups: tuple[str, ...] = ()
    attributes: tuple[tuple[str, tuple[str, ...]], ...] = ()
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    def values(self, key: str) -> tuple[str, ...]:
        for k, vs in self.attributes:
            if k == key:
                return vs
        return ()


class PurposeState(enum.Enum):
    APPROVED = "approved"
    PENDING = "pending"
    STALE = "stale"
    REVOKED = "revoked"


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectPurpose:
    purpose: str
    state: PurposeState
    approved_by: str | None = None
    approved_at: str | None = None  # ISO-8601 UTC
    changes: tuple[str, ...] = ()  # for a stale approval: what changed since, in words
    span: Span = field(default=NO_SPAN, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class ProjectInfo:
    name: str
    purposes: tuple[ProjectPurpose, ...]
    members: tuple[str, ...]
    sources: tuple[TableKey, ...]
    documentation: str | None = None
    span: Span = field(default=NO_SPAN, compare=False, repr=False)

    @property
    def active_purposes(self) -> tuple[str, ...]:
        return tuple(p.purpose for p in self.purposes if p.state is PurposeState.APPROVED)


@dataclass(frozen=True, slots=True, kw_only=True)
class ExpectTarget:
    """What one `expect` line of a test names, resolved by the checker so that `veil test`
    resolves nothing itself: the table; for a column expectation the column, and for
    `masked with M(args)` the method as lowered for that column (None when it does not fit)."""

    table: TableKey
    column: str | None = None
    method: MaskAction | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Program:
    """A checked repository. All tuples are sorted, so output never depends on file order."""

    tables: tuple[CatalogTable, ...]
    purposes: tuple[PurposeInfo, ...]
    groups: tuple[str, ...]
    users: tuple[UserInfo, ...]
    projects: tuple[ProjectInfo, ...]
    masks: tuple[ColumnMask, ...]
    row_rules: tuple[RowRule, ...]
    tests: tuple[ir.TestCase, ...] = ()
    approvers: tuple[ir.Approvers, ...] = ()
    #: The span of each `expect` line of `tests` -> what it names.
    expect_targets: tuple[tuple[Span, ExpectTarget], ...] = ()
    #: One per tag that a `mask tagged` names, by tag (native tag policies).
    tag_masks: tuple[TagMask, ...] = ()

    #: Lookups by name, built on first use (a lowering asks once per table and per mask, so a
    #: scan per lookup made compiling quadratic). A memo: it never changes an answer, and
    #: `dataclasses.replace` starts the copy with an empty one.
    _index: dict[str, t.Any] = field(
        default_factory=dict, init=False, compare=False, repr=False, hash=False
    )

    def _by(self, what: str) -> t.Any:
        found = self._index.get(what)
        if found is None:
            found = self._index[what] = self._build(what)
        return found

    def _build(self, what: str) -> t.Any:
        if what == "expect":
            return _first(self.expect_targets)
        if what == "table":
            return _first((tb.key, tb) for tb in self.tables)
        if what == "user":
            return _first((u.name, u) for u in self.users)
        if what == "project":
            return _first((p.name, p) for p in self.projects)
        if what == "purpose":
            return _first((p.name, p) for p in self.purposes)
        if what == "masks":
            return _grouped((m.table, m) for m in self.masks)
        if what == "rules":
            return _grouped((r.table, r) for r in self.row_rules)
        assert what == "protected", what
        keys = {m.table for m in self.masks} | {r.table for r in self.row_rules}
        return tuple(tb for tb in self.tables if tb.key in keys)

    def expect_target(self, expectation: ir.Expectation) -> ExpectTarget:
        target: ExpectTarget | None = self._by("expect").get(expectation.span)
        if target is None:
            raise KeyError(f"`{expectation}` was not resolved by the checker")
        return target

    def table(self, key: TableKey) -> CatalogTable | None:
        found: CatalogTable | None = self._by("table").get(key)
        return found

    def user(self, name: str) -> UserInfo | None:
        found: UserInfo | None = self._by("user").get(name)
        return found

    def project(self, name: str) -> ProjectInfo | None:
        found: ProjectInfo | None = self._by("project").get(name)
        return found

    def purpose(self, name: str) -> PurposeInfo | None:
        found: PurposeInfo | None = self._by("purpose").get(name)
        return found

    def masks_of(self, key: TableKey) -> tuple[ColumnMask, ...]:
        found: tuple[ColumnMask, ...] = self._by("masks").get(key, ())
        return found

    def rules_of(self, key: TableKey) -> tuple[RowRule, ...]:
        found: tuple[RowRule, ...] = self._by("rules").get(key, ())
        return found

    @property
    def protected_tables(self) -> tuple[CatalogTable, ...]:
        """Tables with at least one mask or row rule, in name order."""
        found: tuple[CatalogTable, ...] = self._by("protected")
        return found


_K = t.TypeVar("_K")
_V = t.TypeVar("_V")


def _first(pairs: t.Iterable[tuple[_K, _V]]) -> dict[_K, _V]:
    """Key -> the first value with that key (what a scan in order would find)."""
    out: dict[_K, _V] = {}
    for k, v in pairs:
        out.setdefault(k, v)
    return out


def _grouped(pairs: t.Iterable[tuple[_K, _V]]) -> dict[_K, tuple[_V, ...]]:
    """Key -> every value with that key, in order."""
    out: dict[_K, list[_V]] = {}
    for k, v in pairs:
        out.setdefault(k, []).append(v)
    return {k: tuple(v) for k, v in out.items()}
