"""PostgreSQL 15+: row security, masking views (flattened, no barrier) and SECURITY DEFINER checks.

The script (templates/postgres/script.sql.j2) is applied with `psql -X -v ON_ERROR_STOP=1 -1 -f`.
It creates the governance schema, synchronises its rows with the repository, defines the helper
functions, puts a permissive policy and (with row rules) one RESTRICTIVE policy on each
protected table, one masking view per protected table (owned by a dedicated role, never the table
owner), and moves the readers of each base table to its view. `docs/targets/postgres.md` explains
it to DBAs.

Runtime data — the audit log (`use_project` switches, `acknowledge` calls) and the members'
acknowledgements — is written only by the SECURITY DEFINER functions; no script ever deletes it.
A purpose whose effective acknowledgement text is not NULL grants only once the member
acknowledged exactly that text in that project (the evaluator's `Context.acknowledged`).

Every atom that reads the governance tables is a scalar sub-select, `(SELECT veil.f(...))`, so
PostgreSQL evaluates it once per query (an InitPlan), not once per row.

Quoting: every name goes through `ident`, every value through `literal` (doubled single quotes;
the script sets `standard_conforming_strings = on`). The DO blocks and function bodies are
constant text that reads what it needs from the governance tables; the only name written inside
a dollar-quoted body is the governance schema's, which `check` restricts to `[a-z_][a-z0-9_]*`.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import math
import re
import textwrap
import typing as t
from collections.abc import Mapping
from decimal import Decimal

from veil import ir, methods, model
from veil.diagnostics import NO_SPAN, Diagnostic, Span, error, warning
from veil.methods import replacement_parts
from veil.model import SqlType, TableKey
from veil.targets import governance
from veil.targets.base import MethodSql, Options, SqlValue, Target
from veil.targets.script import (
    PlanNotes,
    Policy,
    ProtectedTable,
    Script,
    View,
    ViewColumn,
)

#: Diagnostic codes of this target (docs/errors.md).
IDENT_TOO_LONG = "T0301"
TABLE_NEEDS_SCHEMA = "T0302"
RESERVED_ROLE = "T0303"
BAD_OPTION = "T0304"
PREDEFINED_ROLE = "T0305"
NAME_CLASH = "T0306"

#: The zone of every time in a row predicate, by name: never the abbreviation 'UTC', which a
#: POSIX-style session TimeZone ('UTC+12') redefines.
UTC_ZONE = "'Etc/UTC'"
#: The session setting that carries the user's active project (a selector, never trusted).
ACTIVE_PROJECT_SETTING = "veil.active_project"
#: Prefix of every row policy veil creates; veil drops stale policies with this prefix.
POLICY_PREFIX = "veil_"
BASE_POLICY = "veil_base"
#: Prefix of a protected table's one RESTRICTIVE policy (`row_policy`).
ROW_POLICY_PREFIX = POLICY_PREFIX + "rows_"
#: The USING of the permissive base policy (the RESTRICTIVE ones do the filtering).
BASE_USING = "TRUE"

_PLAIN = re.compile(r"[a-z_][a-z0-9_]*\Z")
_SUFFIX = re.compile(r"[a-z0-9_]+\Z")
_RESERVED_ROLES = frozenset({"public", "none", "current_user", "session_user", "current_role"})

#: Governance tables synchronised from the repository: columns in order, and how many leading
#: columns form the key (from `governance.TABLES`).
GOVERNANCE_TABLES: dict[str, tuple[tuple[str, ...], int]] = {
    tb.name: (tb.column_names, len(tb.key)) for tb in governance.tables("postgres", "repository")
}
#: Every table of the governance schema, in the order the script creates them.
ALL_GOVERNANCE_TABLES = tuple(tb.name for tb in governance.tables("postgres"))
#: Tables an older script created that this one upgrades from (upgrade.sql.j2).
LEGACY_TABLES = ("switch_log",)
#: Every function of the governance schema: `name(argument types)`, as the pre-flight check
#: compares them with what exists (anything else in the schema stops the script).
FUNCTIONS = (
    "acknowledge(text)",
    "acknowledgement_texts(text)",
    "audit_append(text, text, text, text)",
    "audit_log_is_append_only()",
    "has_attribute(name, text, text)",
    "has_purpose(name, text, text)",
    "require_member(text)",
    "set_hash_key(text)",
    "use_project(text)",
    "user_groups(name)",
    "user_values(name, text)",
)
#: Row policies of the governance tables.
GOVERNANCE_POLICIES = (
    "veil_auditors_read",
    "veil_granted_read",
    "hash_key_views",
    "veil_owner_all",
    "veil_public_read",
)

Row: t.TypeAlias = tuple[SqlValue | tuple[str, ...], ...]


def veil_version() -> str:
    try:
        return importlib.metadata.version("veil")
    except importlib.metadata.PackageNotFoundError:  # pragma: no cover - not installed
        return "unknown"


def source_key(key: TableKey) -> str:
    """A table as `veil.project_source` and `has_purpose` name it: dotted, each part quoted
    as in policy files when it is not a plain identifier (so `a.b`.`c` and `a`.`b.c` differ)."""
    return ir.dotted(key)


def pg_replacement(replacement: str) -> str:
    """A regex replacement in veil's rules written for PostgreSQL's regexp_replace: groups as
    `\\N`, and every literal backslash doubled (PostgreSQL would read `\\&` as the whole
    match)."""
    return "".join(
        f"\\{part}" if isinstance(part, int) else part.replace("\\", "\\\\")
        for part in replacement_parts(replacement)
    )


def dollar_quote(body: str) -> str:
    """`$veil$` + newline + body + `$veil$`, with a tag that does not occur in `body` (bodies
    hold no user text; this only guarantees that the quoting can never be broken)."""
    n = 0
    while (tag := f"$veil{n or ''}$") in body:
        n += 1
    return f"{tag}\n{body}{tag}"


def digest(text: str) -> str:
    """SHA-256 (hex) of compiled SQL: recorded by the script beside what PostgreSQL made of it,
    compared by `veil verify` with what the repository compiles to now."""
    return hashlib.sha256(text.encode()).hexdigest()


def typed(method: MethodSql) -> MethodSql:
    """`method`'s SQL cast to the column's type."""
    return lambda tg, a, c, ty: tg.cast(method(tg, a, c, ty), ty)


def view_body(table_sql: str, columns: t.Sequence[tuple[str, str]]) -> str:
    """The SELECT of a masking view, from (name, sql) of each column, as its digest sees it."""
    return "\n".join(f"{sql} AS {name}" for name, sql in columns) + f"\nFROM {table_sql} AS t"


def _groups_in(c: ir.Condition | None) -> set[str]:
    match c:
        case (
            None
            | ir.PurposeIs()
            | ir.AnyPurpose()
            | ir.IsUser()
            | ir.HasAttribute()
            | ir.CondConst()
        ):
            return set()
        case ir.InGroup(group=g):
            return {g.value}
        case ir.CondAnd(items=items) | ir.CondOr(items=items):
            return set().union(*(_groups_in(i) for i in items))
        case ir.CondNot(item=item):
            return _groups_in(item)
        case _:
            t.assert_never(c)


class PostgresTarget(Target):
    name = "postgres"
    #: veil's type names are PostgreSQL's, in lower case, but for these.
    type_names: t.ClassVar[dict[str, str]] = dict(
        decimal="numeric", double="double precision", binary="bytea", json="jsonb"
    )
    type_case = "lower"
    max_identifier = 63
    current_user = "current_user"
    decimal_work_type = "numeric"
    checks_before_when = True  # every check is an uncorrelated sub-select: an InitPlan
    base_policy = BASE_POLICY
    dollar_quote = staticmethod(dollar_quote)

    def __init__(self, options: Options | None = None) -> None:
        super().__init__(options)
        self._env.filters["dollar_quote"] = dollar_quote
        self._env.filters["comment"] = self.comment

    # ------------------------------------------------------------------ quoting
    def ident(self, name: str) -> str:
        if not name or "\0" in name:
            raise ValueError(f"{name!r} cannot be a PostgreSQL identifier")
        return super().ident(name)

    def literal(self, value: SqlValue | tuple[str, ...]) -> str:
        """Adds arrays of text (`ARRAY['a', 'b']::text[]`) and non-finite numbers."""
        if isinstance(value, tuple):
            items = ", ".join(self.string_literal(v) for v in value)
            return f"ARRAY[{items}]::text[]" if value else "'{}'::text[]"
        if isinstance(value, float) and not math.isfinite(value):
            return f"CAST({self.string_literal(str(value))} AS double precision)"
        if isinstance(value, Decimal) and not value.is_finite():
            return f"CAST({self.string_literal(str(value))} AS numeric)"
        return super().literal(value)

    # ------------------------------------------------------------------ names
    @property
    def owner_role(self) -> str:
        """Owns the governance schema, its tables and the SECURITY DEFINER functions."""
        return f"{self.options.governance_schema}_owner"

    @property
    def view_role(self) -> str:
        """Owns the masking views (never the table owner: owners bypass row security)."""
        return f"{self.options.governance_schema}_views"

    @property
    def auditor_role(self) -> str:
        """May read the audit log; DBAs grant it to auditors."""
        return f"{self.options.governance_schema}_auditors"

    @property
    def own_roles(self) -> tuple[str, ...]:
        return (self.owner_role, self.view_role, self.auditor_role)

    def fn(self, name: str) -> str:
        return self.gov(name)

    def schema_and_name(self, key: TableKey) -> tuple[str, str]:
        if len(key) < 2:
            raise ValueError(f"table `{model.table_str(key)}` needs a schema on PostgreSQL")
        return key[-2], key[-1]

    def view_of(self, key: TableKey) -> tuple[str, str]:
        schema, table = self.schema_and_name(key)
        return schema + self.options.view_schema_suffix, table

    # ------------------------------------------------------------------ conditions
    def purpose_sql(self, purpose: str | None, table: TableKey) -> str:
        p = "NULL::text" if purpose is None else self.literal(purpose)
        return (
            f"(SELECT {self.fn('has_purpose')}(current_user, {p}, "
            f"{self.literal(source_key(table))}))"
        )

    def group_sql(self, group: str) -> str:
        return f"(SELECT pg_catalog.pg_has_role(current_user, {self.literal(group)}, 'MEMBER'))"

    def attribute_sql(self, key: str, value: str) -> str:
        return (
            f"(SELECT {self.fn('has_attribute')}(current_user, {self.literal(key)}, "
            f"{self.literal(value)}))"
        )

    def in_user_sql(self, item: str, attr: str, negated: bool) -> str:
        """`= ANY` of the user's sorted values: FALSE (`in`) / TRUE (`not in`) for an empty set
        whatever the item, else NULL for a NULL item: exactly the evaluator's rule."""
        if attr == "groups":
            values = f"(SELECT {self.fn('user_groups')}(current_user))"
        else:
            values = f"(SELECT {self.fn('user_values')}(current_user, {self.literal(attr)}))"
        test = f"CAST({item} AS text) = ANY ({values}::text[])"
        return f"(NOT ({test}))" if negated else f"({test})"

    # Time in row predicates is UTC wall-clock time (`timestamp`), whatever the session's
    # TimeZone: `now()` and `timestamptz` columns are converted with the zone *name* 'Etc/UTC'
    # (a POSIX TimeZone such as 'UTC+12' redefines the abbreviation 'UTC' for the session, not
    # the name), so a `timestamp` column, a date or a literal is compared without any zone.
    def now_sql(self) -> str:
        return f"(CURRENT_TIMESTAMP AT TIME ZONE {UTC_ZONE})"

    def today_sql(self) -> str:
        return f"CAST({self.now_sql()} AS date)"

    def predicate_columns(
        self, program: model.Program, key: TableKey, col: t.Callable[[str], str]
    ) -> t.Callable[[str], str]:
        """`col` for row predicates: a `timestamptz` column read as its UTC wall-clock time."""
        table = program.table(key)
        instants = (
            {c.name for c in table.columns if c.type.name == "timestamptz"} if table else set()
        )

        def read(name: str) -> str:
            return f"({col(name)} AT TIME ZONE {UTC_ZONE})" if name in instants else col(name)

        return read

    # ------------------------------------------------------------------ masking methods
    def action_sql(self, action: methods.MaskAction, c: str, ty: SqlType) -> str:
        """String methods see a char(n) value padded to n, as clients (and the evaluator) do:
        PostgreSQL itself drops the trailing blanks of char(n) in length() and casts."""
        reads_text = methods.method_of(action).families == methods.STRINGS
        if ty.name == "char" and ty.length is not None and reads_text:
            c = f"pg_catalog.rpad(CAST({c} AS text), {int(ty.length)})"
        return super().action_sql(action, c, ty)

    def hash_input_sql(self, c: str) -> str:
        return f"CAST({c} AS text)"

    def sha256_hex_sql(self, text: str) -> str:
        return f"pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to({text}, 'UTF8')), 'hex')"

    # The text that hash, show and email_domain give is cast to the column's type: when every
    # branch of a mask's CASE has the column's type and modifier, the cast around the CASE is no
    # operation, so a revealed value is not length-checked row by row. (regex stays text: its
    # "C" collation is part of the view's column.)
    method_sql: t.ClassVar[Mapping[str, MethodSql]] = {
        **Target.method_sql,
        **{m: typed(Target.method_sql[m]) for m in ("hash", "show_first", "show_last")},
        "regex": lambda tg, a, c, ty: tg.fit(tg.regex_sql(c, a.pattern, a.replacement), a.length),
        "email_domain": typed(lambda tg, a, c, ty: tg.email_domain_sql(c)),
    }

    def regex_sql(self, c: str, pattern: str, replacement: str) -> str:
        # COLLATE "C": ASCII character classes whatever the database's locale.
        return (
            f'pg_catalog.regexp_replace(CAST({c} AS text) COLLATE "C", '
            f"{self.literal(pattern)}, {self.literal(pg_replacement(replacement))}, 'g')"
        )

    def truncate_sql(self, c: str, unit: str, ty: SqlType) -> str:
        u = self.literal(unit)
        if ty.name == "date":
            return f"pg_catalog.date_trunc({u}, CAST({c} AS timestamp))"
        if ty.name == "timestamptz":
            return f"pg_catalog.date_trunc({u}, {c}, {UTC_ZONE})"  # in UTC, like the evaluator
        return f"pg_catalog.date_trunc({u}, {c})"

    def email_domain_sql(self, c: str) -> str:
        return f"SUBSTRING(CAST({c} AS text) FROM '@([^@]*)$')"

    # ------------------------------------------------------------------ governance data
    def declared_groups(self, program: model.Program) -> list[str]:
        """Every group the repository names: declared, given to users, used in conditions."""
        groups = set(program.groups)
        for u in program.users:
            groups.update(u.groups)
        for m in program.masks:
            for arm in m.arms:
                groups |= _groups_in(arm.cond)
        for r in program.row_rules:
            groups |= _groups_in(r.allow)
        return sorted(groups)

    def row_policy(self, program: model.Program, key: TableKey) -> tuple[str, str] | None:
        """(name, USING sql) of the table's one RESTRICTIVE policy, `veil_rows_<hash of the
        sql>`: the AND of its row rules, the exceptions they share first (`row_sql`). None
        without row rules.

        One policy, not one per rule: PostgreSQL ANDs the restrictive policies of a table into
        one filter anyway, which would then test each rule's exceptions in turn on every row
        (docs/targets/postgres.md, "Row rules")."""
        rules = program.rules_of(key)
        if not rules:
            return None
        using = self.row_sql(rules, self.predicate_columns(program, key, self.ident))
        return f"{ROW_POLICY_PREFIX}{digest(using)[:8]}", using

    def row_policies(self, program: model.Program) -> dict[TableKey, tuple[str, str] | None]:
        """Each protected table's `row_policy`: lowered once, for both the script's policies and
        the names `protected_table` records."""
        return {tb.key: self.row_policy(program, tb.key) for tb in program.protected_tables}

    def governance_rows(  # type: ignore[override]
        self, program: model.Program
    ) -> dict[str, list[Row]]:
        return self._governance_rows(program, self.row_policies(program))

    def _governance_rows(
        self, program: model.Program, row_policies: Mapping[TableKey, tuple[str, str] | None]
    ) -> dict[str, list[Row]]:
        rows = {k: list[Row](v) for k, v in super().governance_rows(program).items()}
        # the effective acknowledgement text (own or inherited) a member must have acknowledged
        rows["project_purpose"] = [
            (*r, info.acknowledgement if (info := program.purpose(str(r[1]))) else None)
            for r in rows["project_purpose"]
        ]
        rows["project_source"] = sorted(
            {(p.name, source_key(s)) for p in program.projects for s in p.sources}
        )
        roles = [
            (self.owner_role, "owner"),
            (self.view_role, "views"),
            (self.auditor_role, "auditors"),
        ]
        roles += [(g, "group") for g in self.declared_groups(program)]
        rows["managed_role"] = sorted(roles)
        protected: list[Row] = []
        for tb in program.protected_tables:
            schema, table = self.schema_and_name(tb.key)
            vschema, vname = self.view_of(tb.key)
            row_policy = row_policies[tb.key]
            policies = (BASE_POLICY,) if row_policy is None else (BASE_POLICY, row_policy[0])
            protected.append(
                (
                    schema,
                    table,
                    vschema,
                    vname,
                    tuple(sorted(policies)),
                    tuple(c.name for c in tb.columns),
                )
            )
        rows["protected_table"] = sorted(protected, key=lambda r: (str(r[0]), str(r[1])))
        return rows

    # ------------------------------------------------------------------ governance schema
    def create_table_sql(self, table: governance.Table) -> str:
        """`CREATE TABLE IF NOT EXISTS` of a governance table, after the comment of its `doc`."""
        gov = self.ident(self.options.governance_schema)
        one_key = table.key[0] if len(table.key) == 1 else None
        lines = []
        for c in table.columns:
            if c.name == one_key:
                lines.append(f"  {c.name} {c.type}{c.pg_extra} PRIMARY KEY")
                continue
            ref = f" REFERENCES {gov}.{c.references} ON DELETE CASCADE" if c.references else ""
            null = "" if c.nullable else " NOT NULL"
            lines.append(f"  {c.name} {c.type}{null}{ref}{c.pg_extra}")
        if len(table.key) > 1:
            lines.append(f"  PRIMARY KEY ({', '.join(table.key)})")
        lines += [f"  CHECK ({check})" for check in table.pg_checks]
        text = table.doc.format(auditors=self.auditor_role)
        doc = "".join(f"-- {line}\n" for line in textwrap.wrap(text, 93))
        return (
            f"{doc}CREATE TABLE IF NOT EXISTS {gov}.{table.name} (\n" + ",\n".join(lines) + "\n);"
        )

    # ------------------------------------------------------------------ rendering
    def render(self, program: model.Program) -> str:
        problems = [d for d in self.check(program) if d.is_error]
        if problems:
            raise ValueError("; ".join(d.message for d in problems))
        return super().render(program)

    def lower(self, program: model.Program) -> Script:
        row_policies = self.row_policies(program)
        gov_rows = self._governance_rows(program, row_policies)
        tables = []
        for tb in program.protected_tables:
            vschema, vname = self.view_of(tb.key)
            masks = {m.column: m for m in program.masks_of(tb.key)}

            def col(n: str) -> str:
                return "t." + self.ident(n)

            name = model.table_str(tb.key)
            sql = self.table_sql(tb.key)
            view = View(
                schema=vschema,
                name=vname,
                qualified=self.qualified((vschema, vname)),
                columns=tuple(
                    ViewColumn(
                        name=c.name,
                        sql=col(c.name)
                        if c.name not in masks
                        else self.mask_sql(
                            masks[c.name], col, self.predicate_columns(program, tb.key, col)
                        ),
                    )
                    for c in tb.columns
                ),
            )
            row_policy = row_policies[tb.key]
            rows = (
                ()
                if row_policy is None
                else (
                    Policy(
                        kind="row policy",
                        name=row_policy[0],
                        target=f"table {name}",
                        table=sql,
                        body=row_policy[1],
                    ),
                )
            )
            tables.append(ProtectedTable(key=tb.key, name=name, sql=sql, rows=rows, view=view))
        return Script(
            target=self.name,
            governance=self.governance_script(
                "postgres",
                {g.name: gov_rows[g.name] for g in governance.tables("postgres", "repository")},
                str,
            ),
            tables=tuple(tables),
            layout={
                "version": veil_version(),
                "gov_name": self.options.governance_schema,
                "groups": tuple(self.declared_groups(program)),
            },
        )

    def layout(self, script: Script) -> str:
        gov_tables = []
        for g in script.tables_written("repository"):
            keys = [g.columns.index(k) for k in g.key]
            gov_tables.append(
                {
                    "name": g.name,
                    "qualified": g.qualified,
                    "ddl": g.ddl,
                    "columns": g.columns,
                    "key_columns": g.key,
                    "others": tuple(c for c in g.columns if c not in g.key),
                    "rows": list(g.rows),
                    "key_rows": sorted({tuple(r[i] for i in keys) for r in g.rows}, key=repr),
                }
            )
        kept = [*script.tables_written("runtime"), *script.tables_written("record")]
        added = [
            {"table": tb.name, "column": c.name, "type": c.type}
            for tb in governance.tables("postgres")
            for c in tb.columns
            if c.added_later
        ]
        tables = self.layout_tables(script)
        return self.template("script.sql.j2").render(
            {
                **script.layout,
                "gov": self.ident(self.options.governance_schema),
                "owner_role": self.owner_role,
                "view_role": self.view_role,
                "auditor_role": self.auditor_role,
                "base_policy": BASE_POLICY,
                "base_using": BASE_USING,
                "gov_tables": gov_tables,
                "kept_tables": [g.name for g in kept],
                "kept_ddl": [g.ddl for g in kept],
                "auditors_read": [g.name for g in kept if "auditors" in g.readers],
                "public_read": [g.name for g in kept if "public" in g.readers],
                "added_columns": added,
                "all_gov_tables": tuple(g.name for g in script.governance),
                "known_tables": (*(g.name for g in script.governance), *LEGACY_TABLES),
                "known_functions": FUNCTIONS,
                "gov_policies": GOVERNANCE_POLICIES,
                "tables": tables,
                "view_schemas": sorted({tb["view_schema"] for tb in tables}),
            }
        )

    def layout_tables(self, script: Script) -> list[dict[str, t.Any]]:
        """Each protected table of `script` as the template lays it out (names, digests)."""
        tables = []
        for tb in script.tables:
            assert tb.view is not None
            view_columns = [{"name": c.name, "sql": c.sql} for c in tb.view.columns]
            policies = [
                {"name": p.name, "using": p.body, "digest": digest(p.body)} for p in tb.rows
            ]
            body = view_body(tb.sql, [(self.ident(c.name), c.sql) for c in tb.view.columns])
            tables.append(
                {
                    "name": tb.name,
                    "sql": tb.sql,
                    "table_parts": self.schema_and_name(tb.key),
                    "view": tb.view.qualified,
                    "view_parts": (tb.view.schema, tb.view.name),
                    "view_schema": tb.view.schema,
                    "view_digest": digest(body),
                    "policies": policies,
                    "all_policies": [
                        {"name": BASE_POLICY, "digest": digest(BASE_USING)},
                        *policies,
                    ],
                    "columns": view_columns,
                }
            )
        return tables

    def plan(self, old: Script, new: Script, header: t.Sequence[str], notes: PlanNotes) -> str:
        from veil.targets.postgres_plan import postgres_plan

        return postgres_plan(self, old, new, header, notes)

    # ------------------------------------------------------------------ target rules
    def check(self, program: model.Program) -> list[t.Any]:
        """What PostgreSQL would reject or silently change: long names (truncated to 63 bytes),
        tables without a schema, group names that cannot be roles, invalid options."""
        out: list[Diagnostic] = []
        opts = self.options
        longest = max(len(r) for r in self.own_roles)
        if not _PLAIN.match(opts.governance_schema) or longest > self.max_identifier:
            out.append(
                error(
                    BAD_OPTION,
                    f"governance schema `{opts.governance_schema}` must be "
                    "a lowercase identifier ([a-z_][a-z0-9_]*) of at most 54 bytes",
                    NO_SPAN,
                )
            )
        if not _SUFFIX.match(opts.view_schema_suffix):
            out.append(
                error(
                    BAD_OPTION,
                    f"view schema suffix `{opts.view_schema_suffix}` must match [a-z0-9_]+",
                    NO_SPAN,
                )
            )

        def too_long(name: str, what: str, span: Span) -> None:
            if len(name.encode()) > self.max_identifier:
                out.append(
                    error(
                        IDENT_TOO_LONG,
                        f"{what} `{name}` is longer than 63 bytes",
                        span,
                        help="PostgreSQL truncates longer identifiers",
                    )
                )

        for tb in program.tables:
            if len(tb.key) not in (2, 3):
                out.append(
                    error(
                        TABLE_NEEDS_SCHEMA,
                        f"table `{tb.name}` must be named `schema.table` on PostgreSQL",
                        tb.span,
                    )
                )
                continue
            for part in tb.key:
                too_long(part, "name", tb.span)
            too_long(tb.key[-2] + opts.view_schema_suffix, "view schema", tb.span)
            for c in tb.columns:
                too_long(c.name, "column", c.span)
        relations = {tb.key[-2:] for tb in program.tables}
        for tb in program.protected_tables:
            if len(tb.key) < 2:
                continue
            view = self.view_of(tb.key)
            if view in relations:
                clash = f"its view `{'.'.join(view)}` would be a table of the catalog"
            elif tb.key[-2] == opts.governance_schema:
                clash = f"it is in `{opts.governance_schema}`, the governance schema"
            else:
                continue
            out.append(error(NAME_CLASH, f"table `{tb.name}` clashes with veil: {clash}", tb.span))
        for g in self.declared_groups(program):
            too_long(g, "group", NO_SPAN)
            if g.lower() in _RESERVED_ROLES or g in self.own_roles:
                out.append(
                    error(
                        RESERVED_ROLE,
                        f"group `{g}` cannot be a PostgreSQL role",
                        NO_SPAN,
                        help="rename the group",
                    )
                )
            elif g.startswith("pg_"):
                out.append(
                    warning(
                        PREDEFINED_ROLE,
                        f"group `{g}` must be a predefined role: "
                        "PostgreSQL reserves names that start with `pg_`",
                        NO_SPAN,
                    )
                )
        for u in program.users:
            too_long(u.name, "user", u.span)
        return out
