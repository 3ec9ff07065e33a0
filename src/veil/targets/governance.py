"""The governance schema: every table veil keeps in its schema (`veil` by default), declared once.

Targets render their DDL from here, the plan compares the rows a script recorded by these names,
and `tests/targets/test_governance.py` fails when a compiled script's tables disagree with this
declaration. Adding a table is one entry below (`both(...)` when it is the same on every target).

Two families of targets keep the schema:

* `postgres`: the functions of the script read the tables (SECURITY DEFINER), so their names
  are PostgreSQL's usual lower-case words;
* `lookup` (Snowflake, Databricks): policy bodies read the tables themselves, so no column may
  share a name with a column of a protected table a body also reads (`project_name`,
  `principal`, …).

Each table says who writes it and who may read it:

* `repository` rows are exactly the repository's: every script synchronises them;
* `runtime` rows are written only by veil's routines for the calling user (project switches,
  acknowledgements, the audit log): never synchronised, never deleted by a script;
* `record` rows are what the last script applied, so that the next one can undo what it no
  longer produces.

Only veil's owning role reads or writes a table, and the roles in `readers` may read it too.
Types are veil's type names, plus `text[]`, `name`, `bytea` and an identity `bigint` on
PostgreSQL; a target maps them (`timestamptz` is an instant).
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

TargetFamily: t.TypeAlias = t.Literal["postgres", "lookup"]
Writer: t.TypeAlias = t.Literal["repository", "runtime", "record"]
#: `views`: the owner of the masking views (PostgreSQL), which reads the hash key inside them.
Reader: t.TypeAlias = t.Literal["auditors", "public", "views"]


@dataclass(frozen=True, slots=True, kw_only=True)
class Column:
    name: str
    type: str
    nullable: bool = False
    #: Added after the first scripts: a newer script adds it to an older schema.
    added_later: bool = False
    #: PostgreSQL: the table whose key this column references (rows go with that row).
    references: str | None = None
    #: PostgreSQL: what follows the type and NOT NULL (a default, a check, an identity).
    pg_extra: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class Table:
    name: str
    columns: tuple[Column, ...]
    #: The columns that form the key (none: no key, every row is kept).
    key: tuple[str, ...]
    writer: Writer
    readers: tuple[Reader, ...] = ()
    families: tuple[TargetFamily, ...]
    #: PostgreSQL: table-level CHECK constraints.
    pg_checks: tuple[str, ...] = ()
    #: What the table holds, for the script's comments (`{auditors}`: the auditors' role).
    doc: str = ""

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def key_columns(self) -> tuple[Column, ...]:
        return tuple(self.column(k) for k in self.key)

    @property
    def key_positions(self) -> tuple[int, ...]:
        """Where the key columns are in a row of the table."""
        return tuple(self.column_names.index(k) for k in self.key)

    @property
    def other_columns(self) -> tuple[Column, ...]:
        return tuple(c for c in self.columns if c.name not in self.key)

    def column(self, name: str) -> Column:
        return next(c for c in self.columns if c.name == name)


def _c(name: str, type_: str = "text", **kw: t.Any) -> Column:
    return Column(name=name, type=type_, **kw)


def _null(name: str, type_: str = "text", **kw: t.Any) -> Column:
    return Column(name=name, type=type_, nullable=True, **kw)


def postgres(
    name: str, columns: tuple[Column, ...], key: int | tuple[str, ...], writer: Writer, **kw: t.Any
) -> Table:
    return _table(name, columns, key, writer, families=("postgres",), **kw)


def lookup(
    name: str, columns: tuple[Column, ...], key: int | tuple[str, ...], writer: Writer, **kw: t.Any
) -> Table:
    return _table(name, columns, key, writer, families=("lookup",), **kw)


def both(
    name: str, columns: tuple[Column, ...], key: int | tuple[str, ...], writer: Writer, **kw: t.Any
) -> Table:
    """A table that is the same on every target."""
    return _table(name, columns, key, writer, families=("postgres", "lookup"), **kw)


def _table(
    name: str, columns: tuple[Column, ...], key: int | tuple[str, ...], writer: Writer, **kw: t.Any
) -> Table:
    """`key`: the key columns, or how many leading columns form it."""
    names = key if isinstance(key, tuple) else tuple(c.name for c in columns[:key])
    return Table(name=name, columns=columns, key=names, writer=writer, **kw)


_CASCADE = "project"  # the rows of a project's purposes, members and sources go with it

#: In the order the scripts create them.
TABLES: tuple[Table, ...] = (
    # ------------------------------------------------------------------ PostgreSQL
    postgres(
        "managed_role",
        (
            _c("role_name"),
            _c(
                "kind",
                pg_extra="\n    CONSTRAINT managed_role_kind_check "
                "CHECK (kind IN ('owner', 'views', 'auditors', 'group'))",
            ),
        ),
        1,
        "repository",
    ),
    postgres("project", (_c("project"), _null("documentation")), 1, "repository"),
    postgres(
        "project_purpose",
        (
            _c("project", references=_CASCADE),
            _c("purpose"),
            _c("approved", "boolean"),
            _c("state"),
            _null("approved_by"),
            _null("approved_at", "timestamptz"),
            # the effective text (own or inherited) a member must have acknowledged, or NULL
            _null("acknowledgement", added_later=True),
        ),
        2,
        "repository",
    ),
    postgres("project_member", (_c("project", references=_CASCADE), _c("member")), 2, "repository"),
    postgres("project_source", (_c("project", references=_CASCADE), _c("source")), 2, "repository"),
    postgres("user_attribute", (_c("user_name"), _c("key"), _c("value")), 3, "repository"),
    postgres("user_group", (_c("user_name"), _c("group_name")), 2, "repository"),
    postgres(
        "protected_table",
        (
            _c("table_schema"),
            _c("table_name"),
            _c("view_schema"),
            _c("view_name"),
            _c("policies", "text[]"),
            _c("columns", "text[]"),
        ),
        2,
        "repository",
    ),
    postgres(
        "audit_log",
        (
            _c("id", "bigint", pg_extra=" GENERATED ALWAYS AS IDENTITY"),
            _c("at", "timestamptz", pg_extra=" DEFAULT pg_catalog.now()"),
            _c("who", "name", pg_extra=" DEFAULT session_user"),
            _c("event", pg_extra=" CHECK (event IN ('switch', 'acknowledge'))"),
            _null("project"),
            _null("purpose"),
            _null("acknowledgement"),
        ),
        1,
        "runtime",
        readers=("auditors",),
        pg_checks=(
            "(event = 'acknowledge') = (purpose IS NOT NULL AND acknowledgement IS NOT NULL)",
        ),
        doc="The audit log: one row per project switch (use_project) and per purpose "
        "acknowledged (acknowledge), with the exact text. Append-only: users hold no privilege "
        "on it, and a trigger refuses UPDATE, DELETE and TRUNCATE even by its owner. {auditors} "
        "may read it.",
    ),
    postgres(
        "member_acknowledgement",
        (
            _c("member"),
            _c("project"),
            _c("purpose"),
            _c("acknowledgement"),
            _c("digest", "bytea"),
            _c("at", "timestamptz", pg_extra=" DEFAULT pg_catalog.now()"),
        ),
        ("member", "project", "purpose", "digest"),
        "runtime",
        doc="What each member acknowledged, per project purpose and text (the digest, SHA-256 "
        "of the text, keeps the key small whatever the text's length); has_purpose reads it.",
    ),
    postgres(
        "role_binding",
        (
            _c("role_name"),
            _c("role_oid", "oid"),
            _c("bound_at", "timestamptz", pg_extra=" DEFAULT pg_catalog.now()"),
        ),
        1,
        "runtime",
        doc="Which role each repository user was when veil first saw it (its OID): a role "
        "created later under the same name is not that user.",
    ),
    postgres(
        "applied_definition",
        (
            _c("kind", pg_extra=" CHECK (kind IN ('view', 'policy', 'function'))"),
            _c("schema_name"),
            _c("relation_name"),
            _c("object_name"),
            _null("source_digest"),
            _c("definition"),
        ),
        4,
        "record",
        readers=("public",),
        doc="How PostgreSQL prints back each view, row policy and function veil created, "
        "recorded by this script right after creating them, with a digest of the compiled "
        "text: `veil verify` compares the digest with what the repository compiles to now and "
        "the text with the live catalog, so a view or policy replaced by hand after the apply "
        "is named. Rewritten by every apply; readable by everyone (the same texts are in "
        "pg_views, pg_policies and pg_proc).",
    ),
    postgres(
        "hash_key",
        (
            _c("one", "boolean", pg_extra=" DEFAULT TRUE CONSTRAINT hash_key_one CHECK (one)"),
            _c(
                "key_hex", pg_extra=" CONSTRAINT hash_key_format CHECK (key_hex ~ '^[0-9a-f]{64}$')"
            ),
        ),
        1,
        "runtime",
        readers=("views",),
        doc="The secret key of the `hash` method: one row, 64 lowercase hex characters, drawn at "
        "random on the first apply and kept by every later one; set_hash_key sets or rotates it. "
        "Only the owner role reads and writes it, and the owner of the masking views reads it "
        "inside the views: no reader can hash a guessed value to compare it.",
    ),
    # ------------------------------------------------------------------ Snowflake, Databricks
    lookup("project", (_c("project_name"), _null("documentation")), 1, "repository"),
    lookup(
        "project_purpose",
        (
            _c("project_name"),
            _c("purpose_name"),
            _null("approved", "boolean"),
            _null("state"),
            _null("approved_by"),
            _null("approved_at"),
            # the effective text (own or inherited) a member must have acknowledged, or NULL
            _null("acknowledgement", added_later=True),
        ),
        2,
        "repository",
    ),
    lookup("project_member", (_c("project_name"), _c("principal")), 2, "repository"),
    lookup("project_source", (_c("project_name"), _c("source_table")), 2, "repository"),
    lookup(
        "user_attribute",
        (_c("principal"), _c("attribute_name"), _c("attribute_value")),
        3,
        "repository",
    ),
    lookup("user_group", (_c("principal"), _c("group_name")), 2, "repository"),
    # The project each user selected (use_project).
    lookup(
        "active_project",
        (_c("principal"), _c("project_name"), _c("set_at", "timestamptz")),
        1,
        "runtime",
    ),
    # One row per member, project purpose and text acknowledged (kept when the text changes).
    lookup(
        "member_acknowledgement",
        (
            _c("principal"),
            _c("project_name"),
            _c("purpose_name"),
            _c("acknowledgement"),
            _c("acknowledged_at", "timestamptz"),
        ),
        0,
        "runtime",
    ),
    # Project switches and acknowledgements (`event` 'switch' or 'acknowledge'; `outcome` says
    # whether it was refused).
    lookup(
        "audit_log",
        (
            _c("event_at", "timestamptz"),
            _c("principal"),
            _c("event"),
            _null("project_name"),
            _null("purpose_name"),
            _null("acknowledgement"),
            _c("outcome"),
        ),
        0,
        "runtime",
        readers=("auditors",),
    ),
    # The secret key of the `hash` method (one row), read by the policy bodies as their owner.
    lookup("hash_key", (_c("key_hex"),), 0, "runtime"),
    # One row per policy or function a script attached, with the statements that detach and
    # drop it, written by the script that created it.
    lookup(
        "applied_object",
        (
            _c("object_name"),
            _c("object_kind"),
            _c("target"),
            _c("detach_sql"),
            _c("drop_sql"),
        ),
        1,
        "record",
    ),
)


def tables(family: TargetFamily, writer: Writer | None = None) -> tuple[Table, ...]:
    """The tables of a family of targets (only those `writer` writes, when given), in order."""
    return tuple(
        tb for tb in TABLES if family in tb.families and (writer is None or tb.writer == writer)
    )


def table(family: TargetFamily, name: str) -> Table:
    return next(tb for tb in tables(family) if tb.name == name)
