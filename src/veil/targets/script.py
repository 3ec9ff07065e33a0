"""What a target lowers a checked program to: a `Script`, a frozen value that the templates only
lay out, and that `veil plan`, the sandbox and the tests read instead of the SQL text.

A script has sections, in the order it applies them:

* `governance`: every governance table (`targets/governance.py`) with its DDL and, for the
  tables the script writes, exactly the rows it leaves there;
* `routines` and the other settings of `layout`: what the platform's template needs to write
  veil's routines (names of roles and functions, statements shared by several routines);
* `tables`: one entry per protected table, with its column policies, its row policies and,
  where the platform reads masks through a view, the view;
* the clean-up that removes what earlier scripts applied and this one does not (written by the
  template from `tables` and the `record` governance table).
"""

from __future__ import annotations

import typing as t
from collections.abc import Mapping
from dataclasses import dataclass, field

from veil.model import TableKey
from veil.targets.governance import Reader, Writer

#: A value of a governance row, as the target's `literal` writes it.
Value: t.TypeAlias = t.Any


@dataclass(frozen=True, slots=True, kw_only=True)
class GovernanceTable:
    """One governance table: its CREATE TABLE and, unless its rows are written at run time, the
    rows the script leaves in it."""

    name: str  # as declared (`project_member`)
    qualified: str  # as the script writes it (`VEIL.PROJECT_MEMBER`)
    writer: Writer
    ddl: str
    columns: tuple[str, ...]  # identifiers, as the script writes them
    key: tuple[str, ...]  # identifiers of the key columns
    rows: tuple[tuple[Value, ...], ...] = ()
    readers: tuple[Reader, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class Policy:
    """A column mask or a row policy the script creates and attaches.

    `kind` is the platform's word for it (`masking policy`, `row filter`, `row policy`), `name`
    the name the script gives it, `target` what it protects in words (`column a.b.c`,
    `table a.b`). `params`, `returns` and `body` define it; `columns` are the columns the
    attaching statement passes. `detach` and `drop` undo it, where a later script must.
    """

    kind: str
    name: str
    target: str
    table: str  # the protected table, as the script writes it
    column: str | None = None  # the masked column, as the script writes it
    params: tuple[tuple[str, str], ...] = ()
    returns: str = ""
    body: str
    columns: tuple[str, ...] = ()
    detach: str = ""
    drop: str = ""
    #: The name without its schema, as the platform stores it (`veil verify --emit-sql` and
    #: Snowflake's pre-flight compare catalog names with it), and the masked column as declared.
    bare: str = ""
    column_name: str | None = None
    #: Snowflake: its database's INFORMATION_SCHEMA, and whether a mask may read columns that
    #: other policies protect (EXEMPT_OTHER_POLICIES).
    info_schema: str = ""
    exempt: bool = False


@dataclass(frozen=True, slots=True, kw_only=True)
class ViewColumn:
    name: str
    sql: str  # the column itself, or its mask


@dataclass(frozen=True, slots=True, kw_only=True)
class View:
    """PostgreSQL: the view consumers read instead of the table, with every column masked."""

    schema: str
    name: str
    qualified: str
    columns: tuple[ViewColumn, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class ProtectedTable:
    key: TableKey
    name: str  # dotted, as policies name it (`sales.orders`)
    sql: str  # as the script writes it
    masks: tuple[Policy, ...] = ()
    rows: tuple[Policy, ...] = ()
    view: View | None = None

    @property
    def policies(self) -> tuple[Policy, ...]:
        return (*self.masks, *self.rows)


@dataclass(frozen=True, slots=True, kw_only=True)
class TagAssignment:
    """A tag value the script sets on a table (`column` None) or on a column."""

    table: str  # as the script writes it
    column: str | None
    tag: str  # the tag, as the script writes it
    value: str


@dataclass(frozen=True, slots=True, kw_only=True)
class NativeTags:
    """Native tag policies (Snowflake tag-based masking): the tags the script creates (name,
    comment), the masking policies bound to the classification tag, one per data type
    (`Policy.table` is the tag), and the tag values it sets on the repository's tables and
    columns."""

    tags: tuple[tuple[str, str], ...]
    policies: tuple[Policy, ...]
    assignments: tuple[TagAssignment, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Script:
    target: str
    governance: tuple[GovernanceTable, ...]
    tables: tuple[ProtectedTable, ...]
    #: Settings and routine statements the platform's template needs (names of roles,
    #: functions and schemas; SQL shared by several routines). Strings and tuples only.
    layout: Mapping[str, t.Any] = field(default_factory=dict)
    #: Snowflake with `native_tags`: the tag-based masking policies and the tags they read.
    native: NativeTags | None = None

    def table(self, name: str) -> GovernanceTable:
        """A governance table by its declared name."""
        return next(g for g in self.governance if g.name == name)

    def tables_written(self, writer: Writer) -> tuple[GovernanceTable, ...]:
        return tuple(g for g in self.governance if g.writer == writer)

    @property
    def policies(self) -> tuple[Policy, ...]:
        """Every policy of every protected table, masks first, in the order they are applied."""
        return tuple(p for tb in self.tables for p in tb.masks) + tuple(
            p for tb in self.tables for p in tb.rows
        )

    def protected(self, key: TableKey) -> ProtectedTable | None:
        return next((tb for tb in self.tables if tb.key == key), None)


class PlanUnsupported(Exception):
    """`veil plan` cannot write a script for this target (yet)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanNotes:
    """What a target's plan says besides the two scripts: the labels of OLD and NEW, and the
    governance rows NEW's synchronisation deletes, in words (`project p (…)`)."""

    old_label: str = "OLD"
    removed_rows: tuple[str, ...] = ()
