"""The lowering shared by targets whose policy bodies read the governance tables themselves
(Snowflake, Databricks): backslash-escaped string literals, matching the querying user, the
purpose (with its acknowledgement), attribute and group lookups, the statements that record an
acknowledgement and show the texts to acknowledge, the columns a policy reads, and checks both
platforms need.
"""

from __future__ import annotations

import dataclasses
import functools
import re
import sys
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

from veil import ir, methods, model
from veil.diagnostics import NO_SPAN, Diagnostic, Span, error, warning
from veil.methods import method_of
from veil.model import Family, SqlType, TableKey
from veil.targets import governance
from veil.targets.base import MethodSql, SqlValue, Target
from veil.targets.script import (
    GovernanceTable,
    NativeTags,
    PlanNotes,
    Policy,
    ProtectedTable,
    Script,
)


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupTable:
    """One synchronised governance table, rendered for a template."""

    name: str  # qualified, e.g. VEIL.PROJECT_MEMBER
    columns: tuple[tuple[str, str], ...]  # (identifier, SQL type)
    key: tuple[str, ...]  # identifiers of the key columns
    rows: tuple[tuple[str, ...], ...]  # literals


@dataclass(frozen=True, slots=True, kw_only=True)
class RuntimeTable:
    """One runtime table, named for a template."""

    name: str  # qualified
    columns: str  # the column identifiers, comma-separated (for INSERT)


_N = t.TypeVar("_N")


def find_nodes(node: object, cls: type[_N] | tuple[type[_N], ...]) -> list[_N]:
    """Every `cls` node (a class, or a tuple of classes as `isinstance` takes them) inside an
    IR or model value (dataclasses and tuples), in order."""
    out: list[_N] = []
    _find(node, cls, out, {})
    return out


def _find(
    node: object, cls: type[_N] | tuple[type[_N], ...], out: list[_N], seen: dict[int, list[_N]]
) -> None:
    # The policies of many tables share their IR (one tag mask masks a column of each table),
    # so what a tuple or a dataclass holds is collected once per walk and repeated from
    # `seen`: every node reached is held by the root, so no id is reused during the walk.
    if isinstance(node, cls):
        out.append(node)
        return
    names = _FIELDS.get(type(node))
    if names is None:
        names = _FIELDS[type(node)] = _field_names(type(node))
    if not names:
        return
    found = seen.get(id(node))
    if found is None:
        found = seen[id(node)] = []
        if names is _ITEMS:
            for item in t.cast(tuple[object, ...], node):
                _find(item, cls, found, seen)
        else:
            for name in names:
                _find(getattr(node, name), cls, found, seen)
    out.extend(found)


#: class -> the fields `find_nodes` reads: a dataclass's fields but its span, a tuple's items
#: (`_ITEMS`), nothing of any other value (a `Span` holds positions and a `SqlType` a name and
#: numbers, nothing else).
_ITEMS = ("",)
_FIELDS: dict[type, tuple[str, ...]] = {Span: (), SqlType: (), str: (), int: (), type(None): ()}


def _field_names(klass: type) -> tuple[str, ...]:
    if issubclass(klass, tuple):
        return _ITEMS
    if not dataclasses.is_dataclass(klass):
        return ()
    return tuple(f.name for f in dataclasses.fields(klass) if f.name != "span")


def purpose_checks(node: object) -> int:
    """How many purpose checks (`purpose P`, `any purpose`) an IR or model value holds."""
    return len(find_nodes(node, (ir.PurposeIs, ir.AnyPurpose)))


def columns_read(node: object) -> set[str]:
    """Names of the columns a row expression reads (the last part of each column reference)."""
    return {ref.name.parts[-1] for ref in find_nodes(node, ir.ColumnRef)}


class LookupTarget(Target):
    """A target whose masks and row filters look the user up in the governance tables.

    The project a user claims is only a selector: every lookup re-checks, keyed by the current
    user, membership, approval and sources.
    """

    #: (precision, scale) of a `DECIMAL` written without them.
    default_decimal: t.ClassVar[tuple[int, int]] = (38, 0)
    #: Rewrites applied to a string literal after backslash escaping.
    literal_rewrites: t.ClassVar[tuple[tuple[str, str], ...]] = ()
    backslash_literals = True
    #: A name the platform reads unquoted (unless it is a keyword), and the quote character.
    plain_name: t.ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
    quote_char: t.ClassVar[str] = '"'
    comment_unprintable: t.ClassVar[str | None] = " "
    comment_substitution: t.ClassVar[bool] = True
    #: The type of an instant (a governance column of type `timestamptz`).
    instant_type: t.ClassVar[str] = "TIMESTAMP"
    #: The SQL of the current database / catalog (where veil's schema is).
    current_catalog_sql: t.ClassVar[str] = "CURRENT_DATABASE()"
    #: `veil plan`: the platform's name, the step that creates and attaches each policy, and
    #: whether queries fail while a policy whose parameters changed is not attached again.
    title: t.ClassVar[str] = ""
    plan_attach_steps: t.ClassVar[tuple[str, ...]] = ()
    new_params_break_queries: t.ClassVar[bool] = False
    #: What `applied_object.object_kind` calls a column mask and a row filter here.
    mask_kind: t.ClassVar[str] = "column mask"
    rows_kind: t.ClassVar[str] = "row filter"

    #: Both platforms write `regex` and `email_domain` alike, from their own `regex_sql` and
    #: `email_domain_sql`.
    method_sql: t.ClassVar[Mapping[str, MethodSql]] = {
        **Target.method_sql,
        "regex": lambda tg, a, c, ty: tg.fit(tg.regex_sql(c, a.pattern, a.replacement), a.length),
        "email_domain": lambda tg, a, c, ty: tg.email_domain_sql(c),
    }

    #: Names (as `name_key` gives them) a policy body binds itself, so no argument takes them.
    reserved_args: t.ClassVar[frozenset[str]] = frozenset()

    #: The user attribute that holds a user's login on this platform, when the login is not
    #: the user's name (Databricks: `email`).
    login_attribute: t.ClassVar[str | None] = None

    def __init__(self, options: t.Any = None) -> None:
        super().__init__(options)
        #: user name -> login, and the declared purposes, of the program being rendered
        #: (`use_logins`).
        self._logins: dict[str, str] = {}
        self._purposes: tuple[str, ...] = ()
        self._logins_of: model.Program | None = None
        #: What `mask_args` and `rule_args` found for `_args_of` (the checks, the lowering and
        #: the script's sections each ask them for every mask and table).
        self._args_of: model.Program | None = None
        self._args: dict[t.Hashable, tuple[object, tuple[model.CatalogColumn, ...]]] = {}

    # ------------------------------------------------------------------ logins
    def logins(self, program: model.Program) -> dict[str, str]:
        """Declared user -> the name the platform's current user function returns: the one
        value of the user's `login_attribute`, else the user's name."""
        out = {}
        for u in program.users:
            values = u.values(self.login_attribute) if self.login_attribute else ()
            out[u.name] = values[0] if len(values) == 1 else u.name
        return out

    def login(self, name: str) -> str:
        return self._logins.get(name, name)

    def use_logins(self, program: model.Program) -> None:
        """Lower `user X` conditions and purpose checks of `program` with its logins and its
        declared purposes."""
        if self._logins_of is program:
            return  # called for each policy
        self._logins_of = program
        self._logins = self.logins(program)
        self._purposes = tuple(sorted(p.name for p in program.purposes))

    # ------------------------------------------------------------------ names
    @functools.cached_property
    def keywords(self) -> frozenset[str]:
        """Words always quoted: the data file `templates/<target>/keywords.sql.j2`."""
        return frozenset(w.upper() for w in self.template("keywords.sql.j2").render().split())

    def stored_name(self, name: str) -> str:
        """The name as the platform stores it (Snowflake folds plain names to upper case)."""
        return name

    def catalog_name(self, name: str) -> str:
        """The name as the platform's information schema shows it (`veil verify --emit-sql`)."""
        return self.stored_name(name)

    def ident(self, name: str) -> str:
        """Unquoted when plain and not a keyword, else quoted (the quote doubled inside)."""
        stored = self.stored_name(name)
        if self.plain_name.match(name) and stored.upper() not in self.keywords:
            return stored
        q = self.quote_char
        return q + stored.replace(q, q + q) + q

    # ------------------------------------------------------------------ literals
    def string_literal(self, value: str) -> str:
        """`'…'` with backslash escapes (both platforms read `\\\\`, `\\'`, `\\n` inside quotes)."""
        if "\0" in value:
            raise ValueError("NUL characters cannot be written in SQL string literals")
        out = (
            value.replace("\\", "\\\\")
            .replace("'", "\\'")
            .replace("\n", "\\n")
            .replace("\r", "\\r")
            .replace("\t", "\\t")
        )
        for old, new in self.literal_rewrites:
            out = out.replace(old, new)
        return "'" + out + "'"

    def literal(self, value: SqlValue) -> str:
        if isinstance(value, Decimal):
            return format(value, "f")  # never `1E+2`, which both platforms read as a float
        return super().literal(value)

    def round_sql(self, c: str, step: Decimal) -> str:
        """A power-of-ten step rounds at a digit position, exactly and half away from zero."""
        if not step.is_finite() or step <= 0 or step != Decimal(1).scaleb(step.adjusted()):
            return super().round_sql(c, step)
        return f"ROUND(CAST({c} AS {self.decimal_work_type}), {-step.adjusted()})"

    def truncate_sql(self, c: str, unit: str, ty: SqlType) -> str:
        if ty.family is Family.DATE and unit in ("day", "hour"):
            return c  # a date has no time of day
        return self.date_trunc_sql(c, unit, ty)

    def date_trunc_sql(self, c: str, unit: str, ty: SqlType) -> str:
        """`c` cut to `unit` by the platform's DATE_TRUNC (dates cut below a day never get here)."""
        return super().truncate_sql(c, unit, ty)

    def name_key(self, name: str) -> str:
        """Two names with the same key are the same object on the platform."""
        return self.ident(name)

    # ------------------------------------------------------------------ lookups
    def gov_col(self, alias: str, column: str) -> str:
        return f"{alias}.{self.ident(column)}"

    def principal_is_me(self, column: str, me: str | None = None) -> str:
        """User names match case-insensitively (both platforms fold unquoted user names); `me`
        is the SQL of the user (the current user when None)."""
        return f"UPPER({column}) = UPPER({me or self.current_user})"

    def purpose_query_sql(
        self, select: str, source: str, purpose_match: str | None, me: str | None = None
    ) -> str:
        """`SELECT select` over the user's purposes: the selected project has the user as a
        member, is a source project of `source` (SQL) and has an approved purpose (`pp`)
        matching `purpose_match` (any when None) whose acknowledgement text is NULL or one the
        user acknowledged, exactly, in that project (a LEFT JOIN rather than a correlated EXISTS
        under OR, which Snowflake may refuse)."""
        c = self.gov_col
        joins = " ".join(
            f"JOIN {self.gov(tbl)} {alias} ON {c(alias, 'project_name')} = "
            f"{c('ap', 'project_name')}"
            for tbl, alias in (
                ("project_member", "pm"),
                ("project_purpose", "pp"),
                ("project_source", "ps"),
            )
        )
        joins += " " + self.acknowledged_join_sql(me)
        where = [
            self.principal_is_me(c("ap", "principal"), me),
            self.principal_is_me(c("pm", "principal"), me),
            c("pp", "approved"),
            f"({c('pp', 'acknowledgement')} IS NULL OR {c('ma', 'principal')} IS NOT NULL)",
            f"{c('ps', 'source_table')} = {source}",
        ]
        if purpose_match is not None:
            where.append(purpose_match)
        return (
            f"SELECT {select} FROM {self.gov('active_project')} ap {joins} "
            f"WHERE {' AND '.join(where)}"
        )

    #: The lookups of the policy bodies, one SQL function each, called with the caller's user
    #: name as their last argument: the purposes the user acts under for a table
    #: (`active_purposes(source, caller_name)`), the user's groups (`user_groups(caller_name)`)
    #: and values of an attribute (`user_values(attribute_key, caller_name)`). Each returns an
    #: array, empty (never NULL) when there is nothing; these spell the aggregate, an array's
    #: size, a literal array, an overlap, membership and the string type.
    purposes_agg: t.ClassVar[str] = "ARRAY_AGG(DISTINCT {})"
    array_size: t.ClassVar[str] = "ARRAY_SIZE"
    array_overlap: t.ClassVar[str] = "ARRAYS_OVERLAP"
    array_literal: t.ClassVar[str] = "ARRAY_CONSTRUCT"
    array_contains: t.ClassVar[str] = "ARRAY_CONTAINS({item}::VARIANT, {array})"
    text_type: t.ClassVar[str] = "VARCHAR"

    def lookup_call(self, function: str, *args: str) -> str:
        """A call of lookup `function`, the current user passed last."""
        return f"{self.gov(function)}({', '.join([*args, self.current_user])})"

    def purposes_sql(self, table: TableKey) -> str:
        """The array of the purposes the user acts under for `table` that a purpose check
        reads: here a call of the lookup (Snowflake memoizes it; Databricks binds it once in a
        body with several checks, `DatabricksTarget.one_lookup`)."""
        return self.lookup_call("active_purposes", self.source_sql(table))

    def purpose_sql(self, purpose: str | None, table: TableKey) -> str:
        """`purpose P` holds when the purposes the user acts under for the table include P or a
        declared sub-purpose of P; `any purpose` when there is one. Fail-closed: no row of the
        lookup (no active project, not a member, unapproved or unacknowledged purpose, table
        not a source) is an empty array, so both are false."""
        call = self.purposes_sql(table)
        if purpose is None:
            return f"({self.array_size}({call}) > 0)"
        names = [purpose, *(p for p in self._purposes if p.startswith(purpose + "."))]
        array = f"{self.array_literal}({', '.join(map(self.literal, names))})"
        return f"{self.array_overlap}({call}, {array})"

    def source_sql(self, table: TableKey) -> str:
        """The table a policy body's purpose checks are about, as SQL text: its name, or for a
        native tag policy (`model.TAGGED_TABLE`) the name the platform's tag gives it."""
        if table == model.TAGGED_TABLE:
            return self.tagged_source_sql()
        return self.literal(model.table_id(table))

    def tagged_source_sql(self) -> str:
        """The name of the table a native tag policy is evaluated on (NULL when unknown)."""
        raise NotImplementedError(f"{self.name} has no native tag policies")

    def tag_mask_sql(
        self, tm: model.TagMask, type_name: str, ty: SqlType, column: str, value: str
    ) -> str:
        """A native tag policy's decision for a value of `type_name`: the arms of `tm` for that
        type, lowered as the mask of a column `column` of type `ty` on `model.TAGGED_TABLE`,
        every column it names read as `value` (SQL)."""
        mask = model.ColumnMask(
            table=model.TAGGED_TABLE, column=column, type=ty, arms=tm.arms_for(type_name)
        )
        return self.mask_sql(mask, lambda _name: value)

    def hash_sql(self, c: str, salt: str) -> str:
        """A native tag policy salts with the table's name from its tag (NULL when unknown,
        so the hash is NULL): its table key is computed per row from the key's sub-select."""
        if salt != model.table_id(model.TAGGED_TABLE):
            return super().hash_sql(c, salt)
        table_key = self.table_key_of(self.hash_key_sql(), f"':' || {self.tagged_source_sql()}")
        return self.keyed_hash_sql(table_key, c)

    def user_array_sql(self, attr: str) -> str:
        """The current user's values of an attribute, or (`groups`) their declared groups."""
        if attr == "groups":
            return self.lookup_call("user_groups")
        return self.lookup_call("user_values", self.literal(attr))

    def contains_sql(self, item: str, array: str) -> str:
        return self.array_contains.format(item=item, array=array)

    def in_user_sql(self, item: str, attr: str, negated: bool) -> str:
        """The evaluator's rule spelled out: an empty set gives FALSE (TRUE for `not in`), a
        NULL item NULL otherwise. The values are strings, compared with the item's text."""
        values = self.user_array_sql(attr)
        found = self.contains_sql(f"CAST({item} AS {self.text_type})", values)
        return (
            f"(CASE WHEN {self.array_size}({values}) = 0 THEN {self.literal(negated)} "
            f"WHEN {item} IS NULL THEN NULL ELSE {'NOT ' if negated else ''}{found} END)"
        )

    def group_sql(self, group: str) -> str:
        """Membership as the repository declares it (`veil.user_group`), like the evaluator:
        never the platform's roles or groups, which a user can switch off (Snowflake's
        `USE SECONDARY ROLES NONE`) or hold through a role hierarchy."""
        return self.contains_sql(self.literal(group), self.user_array_sql("groups"))

    def attribute_sql(self, key: str, value: str) -> str:
        return self.contains_sql(self.literal(value), self.user_array_sql(key))

    def lookup_functions(self, param: t.Callable[[str, str], str]) -> list[dict[str, t.Any]]:
        """The three lookup functions for the template: name, parameters (name, STRING or
        VARCHAR), comment and body. `param(function, name)` is how a body names its parameter."""
        c = self.gov_col
        agg = self.purposes_agg.format
        caller = "caller_name"

        def me(fn: str) -> str:
            return param(fn, caller)

        groups = (
            f"SELECT {agg(c('ug', 'group_name'))} FROM {self.gov('user_group')} ug "
            f"WHERE {self.principal_is_me(c('ug', 'principal'), me('user_groups'))}"
        )
        values = (
            f"SELECT {agg(c('ua', 'attribute_value'))} FROM {self.gov('user_attribute')} ua "
            f"WHERE {self.principal_is_me(c('ua', 'principal'), me('user_values'))} "
            f"AND {c('ua', 'attribute_name')} = {param('user_values', 'attribute_key')}"
        )
        purposes = self.purpose_query_sql(
            agg(c("pp", "purpose_name")),
            param("active_purposes", "source"),
            None,
            me("active_purposes"),
        )
        return [
            {
                "name": self.gov("active_purposes"),
                "params": ("source", caller),
                "comment": "the purposes the user acts under for a source table",
                "body": purposes,
            },
            {
                "name": self.gov("user_groups"),
                "params": (caller,),
                "comment": "the groups the repository declares for the user",
                "body": groups,
            },
            {
                "name": self.gov("user_values"),
                "params": ("attribute_key", caller),
                "comment": "the values of an attribute the repository declares for the user",
                "body": values,
            },
        ]

    def user_sql(self, user: str) -> str:
        return f"(UPPER({self.current_user}) = UPPER({self.literal(self.login(user))}))"

    # ------------------------------------------------------------------ time
    # Time in predicates is UTC wall-clock time, as on PostgreSQL and in the evaluator: `now()`
    # is UTC (`now_sql`), and a `timestamptz` column is read as its UTC wall-clock time, so a
    # comparison never goes through the session's time zone.
    def utc_wall_sql(self, c: str) -> str:
        """A `timestamptz` value as its UTC wall-clock time, of the type `now_sql` has."""
        raise NotImplementedError

    def predicate_reader(
        self, program: model.Program, key: TableKey, col: t.Callable[[str], str]
    ) -> t.Callable[[str], str]:
        """`col` for the predicates of a table's policies: its `timestamptz` columns read as
        their UTC wall-clock time."""
        table = program.table(key)
        instants = {c.name for c in table.columns if c.type.name == "timestamptz"} if table else ()

        def read(name: str) -> str:
            return self.utc_wall_sql(col(name)) if name in instants else col(name)

        return read

    # ------------------------------------------------------------------ what a policy reads
    def mask_args(
        self, program: model.Program, mask: model.ColumnMask
    ) -> tuple[model.CatalogColumn, ...]:
        """The masked column, then the other columns its `when` reads, in catalog order."""
        args = self._args_memo(program)
        # Keyed by identity, and the mask is kept with its answer, so its id is not reused.
        found = args.get(id(mask))
        if found is not None and found[0] is mask:
            return found[1]
        table = program.table(mask.table)
        if table is None:
            raise ValueError(f"unknown table {model.table_str(mask.table)}")
        read = columns_read(mask.when) - {mask.column}
        first = [c for c in table.columns if c.name == mask.column]
        out = (*first, *(c for c in table.columns if c.name in read))
        args[id(mask)] = (mask, out)
        return out

    def rule_args(self, program: model.Program, key: TableKey) -> tuple[model.CatalogColumn, ...]:
        """The columns the row rules of a table read, in catalog order."""
        args = self._args_memo(program)
        found = args.get(("rules", key))
        if found is not None:
            return found[1]
        table = program.table(key)
        read = columns_read(program.rules_of(key))
        out = tuple(c for c in (table.columns if table else ()) if c.name in read)
        args["rules", key] = (key, out)
        return out

    def _args_memo(
        self, program: model.Program
    ) -> dict[t.Hashable, tuple[object, tuple[model.CatalogColumn, ...]]]:
        if self._args_of is not program:
            self._args_of, self._args = program, {}
        return self._args

    def arg_names(self, cols: t.Sequence[model.CatalogColumn]) -> dict[str, str]:
        """Column -> the name of its argument in a policy or function signature: the column's
        own name when it needs no quotes and is not reserved (`reserved_args`), else `argN`
        (sqlfluff, and some signatures, take plain names only; the attaching statement names
        the columns themselves)."""
        used = {self.name_key(c.name) for c in cols} | self.reserved_args
        out = {}
        for i, c in enumerate(cols, 1):
            name = self.ident(c.name)
            if name.startswith(self.quote_char) or self.name_key(c.name) in self.reserved_args:
                alias = f"arg{i}"
                while self.name_key(alias) in used:
                    alias = "_" + alias
                used.add(self.name_key(alias))
                name = self.ident(alias)
            out[c.name] = name
        return out

    def row_args(self, program: model.Program, key: TableKey) -> tuple[model.CatalogColumn, ...]:
        """The arguments of a table's row filter (a target may need at least one)."""
        return self.rule_args(program, key)

    def used_columns(self, program: model.Program) -> list[tuple[TableKey, model.CatalogColumn]]:
        """Every column that a mask or row filter takes as an argument, once."""
        used = [(m.table, c) for m in program.masks for c in self.mask_args(program, m)]
        used += [
            (k, c)
            for k in sorted({r.table for r in program.row_rules})
            for c in self.row_args(program, k)
        ]
        return list({(k, c.name): (k, c) for k, c in used}.values())

    def named_objects(self, program: model.Program) -> list[tuple[str, Span]]:
        """The identifiers the script writes (protected tables, policy arguments), with their
        spans. Group names are values, never identifiers: groups are read from veil's tables."""
        names = [(p, tb.span) for tb in program.protected_tables for p in tb.key]
        names += [(c.name, c.span) for _, c in self.used_columns(program)]
        return names

    def governance_rows(self, program: model.Program) -> dict[str, list[tuple[SqlValue, ...]]]:
        """The base rows, with each project purpose's effective acknowledgement text."""
        rows = super().governance_rows(program)
        logins = self.logins(program)
        for table, at in (("project_member", 1), ("user_attribute", 0), ("user_group", 0)):
            rows[table] = sorted(
                {(*r[:at], logins.get(str(r[at]), r[at]), *r[at + 1 :]) for r in rows[table]}
            )
        rows["project_purpose"] = [
            (*r, info.acknowledgement if (info := program.purpose(str(r[1]))) else None)
            for r in rows["project_purpose"]
        ]
        return rows

    def gov_type(self, ty: str) -> str:
        """A governance column's type (`governance.Column.type`) on this platform."""
        return self.instant_type if ty == "timestamptz" else self.sql_type(SqlType(name=ty))

    #: Whether CREATE TABLE declares the key of a governance table.
    declares_keys: t.ClassVar[bool] = True

    def create_table_sql(self, table: governance.Table) -> str:
        """`CREATE TABLE IF NOT EXISTS` of a governance table."""
        columns = [
            f"{self.ident(c.name)} {self.gov_type(c.type)}{'' if c.nullable else ' NOT NULL'}"
            for c in table.columns
        ]
        if table.key and self.declares_keys:
            columns.append(f"PRIMARY KEY ({', '.join(self.ident(k) for k in table.key)})")
        return f"CREATE TABLE IF NOT EXISTS {self.gov(table.name)} ({', '.join(columns)});"

    def governance_ddl(self) -> dict[str, list[str]]:
        """The CREATE TABLE of every governance table, by who writes it."""
        out: dict[str, list[str]] = {"repository": [], "runtime": [], "record": []}
        for tb in governance.tables("lookup"):
            out[tb.writer].append(self.create_table_sql(tb))
        return out

    def runtime_tables(self) -> dict[str, RuntimeTable]:
        """The runtime tables, with this platform's names (for the statements that write them)."""
        return {
            tb.name: RuntimeTable(
                name=self.gov(tb.name), columns=", ".join(self.ident(c) for c in tb.column_names)
            )
            for tb in governance.tables("lookup", "runtime")
        }

    def lookup_tables(self, script: Script) -> list[LookupTable]:
        """The tables a script synchronises: the repository's governance tables, then
        `applied_object` (what the script attached)."""
        return [
            *(self.script_table(g) for g in script.tables_written("repository")),
            self.script_table(script.table("applied_object")),
        ]

    def script_table(self, table: GovernanceTable) -> LookupTable:
        """A governance table of a script, with the rows the script writes, as templates and
        `veil verify --emit-sql` show it."""
        return self._lookup_table(governance.table("lookup", table.name), table.rows)

    def _lookup_table(
        self, table: governance.Table, rows: t.Iterable[t.Sequence[SqlValue]]
    ) -> LookupTable:
        return LookupTable(
            name=self.gov(table.name),
            columns=tuple((self.ident(c.name), self.gov_type(c.type)) for c in table.columns),
            key=tuple(self.ident(k) for k in table.key),
            rows=tuple(tuple(self.literal(v) for v in r) for r in rows),
        )

    # ------------------------------------------------------------------ the script
    def detach_sql(self, kind: str, table: str, column: str | None, name: str) -> str:
        """The statement that takes policy `name` off `table` (its `column` for a mask)."""
        raise NotImplementedError

    def drop_sql(self, kind: str, name: str) -> str:
        raise NotImplementedError

    #: Objects of veil's schema that earlier versions of this target created and this one no
    #: longer does, as `DROP` completions (`FUNCTION veil.f`): the clean-up drops them, after
    #: every policy that called them was replaced, so a re-apply leaves nothing stale.
    retired: t.ClassVar[tuple[str, ...]] = ()

    def retired_sql(self) -> list[str]:
        """`DROP … IF EXISTS` of each retired object."""
        out = []
        for entry in self.retired:
            kind, name = entry.split(" ", 1)
            bare, paren, args = name.partition("(")
            out.append(f"DROP {kind} IF EXISTS {self.gov(bare)}{paren}{args}")
        return out

    # ------------------------------------------------------------------ acknowledgements
    def acknowledged_join_sql(self, me: str | None = None) -> str:
        """LEFT JOIN of the user's acknowledgement (`me`, the current user when None) of exactly
        `pp`'s text in its project (`ma` is NULL when there is none)."""
        c = self.gov_col
        same = " AND ".join(
            f"{c('ma', col)} = {c('pp', col)}"
            for col in ("project_name", "purpose_name", "acknowledgement")
        )
        return (
            f"LEFT JOIN {self.gov('member_acknowledgement')} ma ON {same} "
            f"AND {self.principal_is_me(c('ma', 'principal'), me)}"
        )

    def acknowledgement_texts_sql(self, project: str) -> str:
        """The texts of the purposes of `project` (SQL) that have one, and whether the current
        user acknowledged each; no rows unless the user is a member."""
        c = self.gov_col
        return (
            f"SELECT {c('pp', 'purpose_name')}, {c('pp', 'acknowledgement')}, "
            f"COUNT({c('ma', 'principal')}) > 0 AS {self.ident('acknowledged')}\n"
            f"    FROM {self.gov('project_purpose')} pp\n"
            f"    JOIN {self.gov('project_member')} pm ON {c('pm', 'project_name')} = "
            f"{c('pp', 'project_name')} AND {self.principal_is_me(c('pm', 'principal'))}\n"
            f"    {self.acknowledged_join_sql()}\n"
            f"    WHERE {c('pp', 'project_name')} = {project} "
            f"AND {c('pp', 'acknowledgement')} IS NOT NULL\n"
            f"    GROUP BY {c('pp', 'purpose_name')}, {c('pp', 'acknowledgement')}"
        )

    def acknowledge_sql(self, project: str, at: str) -> tuple[str, str]:
        """The two statements that acknowledge for the current user, at instant `at` (SQL),
        the current text of every purpose of `project` (SQL) that has one: one audit row per
        purpose, then the texts not recorded yet for the user, copied from exactly those audit
        rows (so that what counts is what was audited, even if a script changed a text in
        between)."""
        c = self.gov_col
        runtime = self.runtime_tables()
        audit, acks = runtime["audit_log"], runtime["member_acknowledgement"]
        me = self.current_user
        log = (
            f"INSERT INTO {audit.name} ({audit.columns})\n"
            f"    SELECT {at}, {me}, 'acknowledge', {c('pp', 'project_name')}, "
            f"{c('pp', 'purpose_name')}, {c('pp', 'acknowledgement')}, 'acknowledged'\n"
            f"      FROM {self.gov('project_purpose')} pp\n"
            f"      WHERE {c('pp', 'project_name')} = {project} "
            f"AND {c('pp', 'acknowledgement')} IS NOT NULL"
        )
        same = " AND ".join(
            f"{c('ma', col)} = {c('a', col)}"
            for col in ("project_name", "purpose_name", "acknowledgement")
        )
        record = (
            f"INSERT INTO {acks.name} ({acks.columns})\n"
            f"    SELECT {c('a', 'principal')}, {c('a', 'project_name')}, "
            f"{c('a', 'purpose_name')}, {c('a', 'acknowledgement')}, {c('a', 'event_at')}\n"
            f"      FROM {audit.name} a\n"
            f"      WHERE {c('a', 'event_at')} = {at} AND {c('a', 'principal')} = {me} "
            f"AND {c('a', 'event')} = 'acknowledge'\n"
            f"        AND {c('a', 'outcome')} = 'acknowledged' "
            f"AND {c('a', 'project_name')} = {project}\n"
            f"        AND NOT EXISTS (SELECT 1 FROM {acks.name} ma WHERE "
            f"UPPER({c('ma', 'principal')}) = UPPER({c('a', 'principal')}) AND {same})"
        )
        return log, record

    def old_log_copy_sql(self) -> str:
        """Copies the switch log of the scripts before acknowledgements (`project_switch`) into
        the audit log."""
        i = self.ident
        audit = self.runtime_tables()["audit_log"]
        return (
            f"INSERT INTO {audit.name} ({audit.columns}) SELECT {i('switched_at')}, "
            f"{i('principal')}, 'switch', {i('project_name')}, NULL, NULL, {i('outcome')} "
            f"FROM {self.gov('project_switch')}"
        )

    @property
    def auditor_name(self) -> str:
        """The role or group that may read the audit log (`veil_auditors`)."""
        return f"{self.options.governance_schema}_auditors"

    def principal_sql(self, name: str) -> str:
        """A role or group as a GRANT names it."""
        return self.ident(name)

    def mask_target(self, mask: model.ColumnMask) -> str:
        return f"column {model.table_str(mask.table)}.{mask.column}"

    def rows_target(self, key: TableKey) -> str:
        return f"table {model.table_str(key)}"

    def preflight(self, program: model.Program) -> list[dict[str, t.Any]]:
        """What the pre-flight block checks, per protected table: the table (SQL), its name
        parts and masked columns as the platform stores them, and whether veil filters its
        rows. A mask or row policy that veil did not create on any of them stops the script
        before it changes anything: veil would otherwise replace it (a forced SET) or, on
        Snowflake, leave a tag-based policy beaten by its own."""
        keys = sorted({m.table for m in program.masks} | {r.table for r in program.row_rules})
        return [
            {
                "key": key,
                "table": self.table_sql(key),
                "target": self.rows_target(key)[6:],
                "parts": [self.stored_name(p) for p in key],
                "masked": sorted(self.stored_name(m.column) for m in program.masks_of(key)),
                "rows": bool(program.rules_of(key)),
            }
            for key in keys
        ]

    def lower_policies(self, program: model.Program) -> list[tuple[TableKey, Policy]]:
        """Every column mask and row policy of the script, with the table it protects."""
        raise NotImplementedError

    def layout_settings(self, program: model.Program) -> dict[str, t.Any]:
        """What the target's template needs besides the script's sections: by default the
        pre-flight checks (`preflight`)."""
        return {"preflight": tuple(self.preflight(program))}

    def native_tags(self, program: model.Program) -> NativeTags | None:
        """The native tag policies of the script, when the target writes them."""
        return None

    def drift_settings(self, program: model.Program, native: NativeTags | None) -> dict[str, t.Any]:
        """What the target's `verify.sql.j2` needs besides the checks all share (`drift.py`),
        given the script's native tag policies (`native_tags`)."""
        return {}

    def tied_tag_diagnostics(
        self, program: model.Program, code: str, policy: str, decision: str
    ) -> list[Diagnostic]:
        """With `native_tags`, masks of one tag that do not merge cannot be one `policy` (the
        platform's word) deciding a column tagged later: one `decision` per tag."""
        if not self.options.native_tags:
            return []
        return [
            error(
                code,
                f"the masks on tag `{tm.tag}` cannot be one {policy}",
                tm.policies[-1],
                help=f"with `native_tags`, every column tagged on {self.name} is masked by one "
                f"{decision} per tag: write the masks on this tag as one `mask tagged … {{ … }}` "
                "block, or as `with M unless …` with the same method",
                related=tm.policies[:-1],
            )
            for tm in program.tag_masks
            if tm.tied
        ]

    def lower(self, program: model.Program) -> Script:
        self.use_logins(program)
        policies = self.lower_policies(program)
        native = self.native_tags(program)
        gov_rows = self.governance_rows(program)
        recorded = [p for _, p in policies] + list(native.policies if native else ())
        applied = sorted((p.name, p.kind, p.target, p.detach, p.drop) for p in recorded)
        written: dict[str, t.Sequence[tuple[SqlValue, ...]]] = {
            **gov_rows,
            "applied_object": applied,
        }
        # Grouped once, so each table takes its own policies without a scan of everyone's.
        by_table: dict[TableKey, list[Policy]] = {}
        for key, policy in policies:
            by_table.setdefault(key, []).append(policy)
        return Script(
            target=self.name,
            governance=self.governance_script("lookup", written, self.ident),
            tables=tuple(
                ProtectedTable(
                    key=tb.key,
                    name=tb.name,
                    sql=self.table_sql(tb.key),
                    masks=tuple(p for p in by_table.get(tb.key, ()) if p.column is not None),
                    rows=tuple(p for p in by_table.get(tb.key, ()) if p.column is None),
                )
                for tb in program.protected_tables
            ),
            layout=self.layout_settings(program),
            native=native,
        )

    def mask_order(self, policy: Policy) -> tuple[t.Any, ...]:
        """Where a column policy comes in the script."""
        return (policy.name,)

    def layout(self, script: Script) -> str:
        """`<target>/script.sql.j2`, laying out `script` (the target's own helpers at hand)."""
        return self.template("script.sql.j2").render(
            schema=self.ident(self.options.governance_schema),
            tables=[self.script_table(g) for g in script.tables_written("repository")],
            ddl={
                w: [g.ddl for g in script.tables_written(w)]
                for w in ("repository", "runtime", "record")
            },
            added_columns=[
                {
                    "table": self.gov(tb.name),
                    "column": self.ident(c.name),
                    "type": self.gov_type(c.type),
                    "names": (tb.name, c.name),
                }
                for tb in governance.tables("lookup")
                for c in tb.columns
                if c.added_later
            ],
            runtime=self.runtime_tables(),
            old_log_copy=self.old_log_copy_sql(),
            retired=self.retired_sql(),
            acknowledge_sql=self.acknowledge_sql,
            acknowledgement_texts_sql=self.acknowledgement_texts_sql,
            acknowledged_join=self.acknowledged_join_sql(),
            auditors=self.principal_sql(self.auditor_name),
            auditors_read=[g.qualified for g in script.governance if "auditors" in g.readers],
            applied=self.script_table(script.table("applied_object")),
            gov=self.gov,
            comment=self.comment,
            masks=sorted((p for tb in script.tables for p in tb.masks), key=self.mask_order),
            native=script.native,
            rows=[p for tb in sorted(script.tables, key=lambda tb: tb.key) for p in tb.rows],
            **script.layout,
        )

    def plan(self, old: Script, new: Script, header: t.Sequence[str], notes: PlanNotes) -> str:
        from veil.targets.lookup_plan import lookup_plan

        return lookup_plan(self, old, new, header)

    # ------------------------------------------------------------------ shared checks
    def shared_diagnostics(
        self,
        program: model.Program,
        *,
        decimal: str,
        too_long: str,
        fatal_too_long: bool,
        same_name: str,
    ) -> list[Diagnostic]:
        """The checks both lookup targets make, under each target's own codes."""
        return [
            *self.decimal_diagnostics(program, decimal),
            *self.overflow_diagnostics(program, too_long, fatal=fatal_too_long),
            *self.collision_diagnostics(program, same_name),
        ]

    def overflow_diagnostics(
        self, program: model.Program, code: str, *, fatal: bool
    ) -> list[Diagnostic]:
        """Masked values that can be longer than their `varchar(n)` / `char(n)` column."""
        out = []
        for mask in program.masks:
            limit = mask.type.length
            if limit is None:
                continue
            for arm in mask.arms:
                longest = None if arm.action is None else method_of(arm.action).longest(arm.action)
                if longest is None or longest <= limit:
                    continue
                method = methods.action_name(arm.action)
                size = "unbounded" if longest == sys.maxsize else f"up to {longest} characters"
                make = error if fatal else warning
                out.append(
                    make(
                        code,
                        f"`{method}` gives values {size} long, longer than `{mask.type}` "
                        f"column `{model.table_str(mask.table)}.{mask.column}`",
                        _first_span(arm.span, *mask.policies),
                        help=f"{self.name} {'fails the query' if fatal else 'shows it whole'}"
                        "; use a method whose result fits the column, or declare its real length",
                    )
                )
        return out

    def decimal_diagnostics(self, program: model.Program, code: str) -> list[Diagnostic]:
        """A policy argument of type `decimal` without precision would take the platform's
        default precision and scale, changing the values it passes on."""
        default = self.sql_type(
            SqlType(
                name="decimal", precision=self.default_decimal[0], scale=self.default_decimal[1]
            )
        )
        return [
            error(
                code,
                f"`{model.table_str(key)}.{col.name}` is `decimal` without precision, which "
                f"is `{default}` on {self.name}",
                col.span,
                help="a policy argument must have the column's exact type: declare it as "
                f"`decimal(p,s)` with the precision and scale it has on {self.name}",
            )
            for key, col in self.used_columns(program)
            if col.type.name == "decimal" and col.type.precision is None
        ]

    def collision_diagnostics(self, program: model.Program, code: str) -> list[Diagnostic]:
        """Users, tables or columns that the platform cannot tell apart (case folding)."""
        out = []
        seen: dict[str, tuple[str, Span]] = {}
        for u in program.users:
            folded = u.name.upper()
            if folded in seen and seen[folded][0] != u.name:
                out.append(
                    error(
                        code,
                        f"users `{seen[folded][0]}` and `{u.name}` differ only in case",
                        u.span,
                        help=f"{self.name} matches user names case-insensitively;"
                        " rename one of them",
                        related=(seen[folded][1],),
                    )
                )
            seen.setdefault(folded, (u.name, u.span))
        for table in program.protected_tables:
            names: dict[str, str] = {}
            for col in table.columns:
                shown = self.name_key(col.name)
                if shown in names:
                    out.append(
                        error(
                            code,
                            f"columns `{names[shown]}` and `{col.name}` of "
                            f"`{table.name}` are the same column on {self.name}",
                            col.span,
                            help="rename one of them in the catalog to the platform's name",
                        )
                    )
                names.setdefault(shown, col.name)
        return out


def _first_span(*spans: Span) -> Span:
    return next((s for s in spans if s != NO_SPAN), NO_SPAN)
