"""Databricks Unity Catalog: SQL functions as column masks and row filters.

The script (templates/databricks/script.sql.j2) creates the governance schema and its Delta tables,
synchronises their rows with the repository (`MERGE … WHEN NOT MATCHED BY SOURCE THEN DELETE`),
defines `veil.active_purposes(source)` (the one purpose lookup of every body), the definer-rights
procedures `CALL veil.use_project('…')` and `CALL veil.acknowledge('…')` (both audited in
`veil.audit_log`) and the table function `veil.acknowledgement_texts('…')`, then one mask function
per masked column
(`SET MASK … USING COLUMNS`) and one row-filter function per table with row rules (`SET ROW FILTER
… ON`), removes the masks and filters that the repository no longer produces, and lets the
account group `veil_auditors` read the audit log. `docs/targets/databricks.md` explains it to
DBAs.

What differs from the other targets:

* Identifiers are case-insensitive; a name that is not a plain identifier is written in backquotes.
* String literals take backslash escapes and Spark substitutes `${…}` in SQL text before parsing
  it, even inside quotes: `${` is written `$\\{`, which reads back as `${`.
* Functions are replaced with `CREATE OR REPLACE FUNCTION`, and `SET MASK` / `SET ROW FILTER`
  replace whatever mask or filter was there, so names need no signature digest.
* Persisted SQL functions cannot read session variables (`DECLARE VARIABLE`): the active project
  is a row of `veil.active_project` keyed by `current_user()`, written by the procedure.
"""

from __future__ import annotations

import functools
import re
import typing as t

from veil import ir, model
from veil.diagnostics import Diagnostic, error, warning
from veil.methods import replacement_parts
from veil.model import Family, SqlType, TableKey
from veil.targets import databricks_tags
from veil.targets.base import factor_rules
from veil.targets.lookup import LookupTarget, find_nodes, purpose_checks
from veil.targets.script import NativeTags, Policy


class DatabricksTarget(LookupTarget):
    """Diagnostic codes (docs/errors.md): T0201 `decimal` without precision, T0202 a masked value
    longer than its column, T0203 names Databricks cannot tell apart, T0204 `${` in a name,
    T0205 a user whose login is not an email address, T0206 masks on one tag that cannot be one
    ABAC policy and T0207 more tags than ABAC policies per table (both with `native_tags`)."""

    name = "databricks"
    current_user = "current_user()"
    current_catalog_sql = "current_catalog()"
    quote_char = "`"
    #: Spark substitutes `${…}` in SQL text before parsing it, even inside quotes.
    literal_rewrites: t.ClassVar[tuple[tuple[str, str], ...]] = (("${", "$\\{"),)
    #: collect_set gives an empty array over no rows; its order does not matter (only size and
    #: overlap are read).
    purposes_agg: t.ClassVar[str] = "collect_set({})"
    array_size = "size"
    array_overlap = "arrays_overlap"
    array_literal = "array"
    array_contains = "array_contains({array}, {item})"
    text_type = "STRING"
    default_decimal: t.ClassVar[tuple[int, int]] = (10, 0)
    type_names: t.ClassVar[dict[str, str]] = {
        "integer": "INT",
        "real": "FLOAT",
        "varchar": "STRING",
        "char": "STRING",
        "text": "STRING",
        "timestamp": "TIMESTAMP_NTZ",
        "timestamptz": "TIMESTAMP",
        "json": "STRING",
    }
    title = "Databricks"
    plan_attach_steps = (
        "  2. each function of NEW in turn: CREATE OR REPLACE FUNCTION (a function that",
        "     is attached stays attached), then SET MASK / SET ROW FILTER, which replaces",
        "     what the column or table had in one statement.",
    )
    new_params_break_queries = True
    #: Delta tables keep no key constraints veil could rely on: MERGE states the key.
    declares_keys = False
    #: `current_user()` is the user name a user was added with, an email address: a user whose
    #: veil name is not one gives it as its one `email` attribute.
    login_attribute: t.ClassVar[str | None] = "email"
    #: A login `current_user()` can return: an email address, or a service principal's UUID.
    login_shape: t.ClassVar[re.Pattern[str]] = re.compile(
        r"[^@\s]+@[^@\s]+\Z|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\Z"
    )

    #: A body with several purpose checks looks the purposes up once: `SELECT <expression>
    #: FROM (SELECT veil.active_purposes(…) AS veil_purposes) AS veil_lookup`, each check
    #: reading `veil_lookup.veil_purposes` (`one_lookup`). No argument takes these names
    #: (`arg_names`), so a column the body reads is never the lookup.
    lookup_alias: t.ClassVar[str] = "veil_lookup"
    purposes_column: t.ClassVar[str] = "veil_purposes"
    reserved_args: t.ClassVar[frozenset[str]] = frozenset((lookup_alias, purposes_column))

    #: `veil.purpose_active(purpose, source)`, the per-check purpose function of the scripts
    #: before `veil.active_purposes`.
    retired: t.ClassVar[tuple[str, ...]] = ("FUNCTION purpose_active",)

    def __init__(self, options: t.Any = None) -> None:
        super().__init__(options)
        #: What a purpose check reads while `one_lookup` builds a body (None: the call).
        self._bound_purposes: str | None = None

    def catalog_name(self, name: str) -> str:
        """Unity Catalog keeps names in lower case."""
        return name.lower()

    def name_key(self, name: str) -> str:
        return name.lower()

    def sql_type(self, ty: SqlType) -> str:
        if ty.family is Family.STRING:  # CHAR/VARCHAR exist only in table schemas
            return "STRING"
        return super().sql_type(ty)

    # ------------------------------------------------------------------ atoms
    def principal_sql(self, name: str) -> str:
        """Principals are always backquoted (`account users`)."""
        return "`" + name.replace("`", "``") + "`"

    def now_sql(self) -> str:
        """UTC wall-clock time (`TIMESTAMP_NTZ`): veil reads a `timestamp` column as UTC."""
        return self.utc_wall_sql("current_timestamp()")

    def today_sql(self) -> str:
        return f"to_date({self.now_sql()})"

    def utc_wall_sql(self, c: str) -> str:
        """An instant's UTC wall-clock time, computed from its epoch microseconds: nothing here
        reads the session time zone. (`convert_timezone('UTC', c)` would, twice: inside a SQL
        function Spark casts `c` with the zone the function was created in but takes the
        source zone from the session, so under another zone it is off by the difference.)"""
        return (
            f"(CAST('1970-01-01 00:00:00' AS TIMESTAMP_NTZ) + unix_micros({c}) "
            "* INTERVAL '0.000001' SECOND)"
        )

    # ------------------------------------------------------------------ methods
    def sha256_hex_sql(self, text: str) -> str:
        return f"sha2({text}, 256)"

    def regex_sql(self, c: str, pattern: str, replacement: str) -> str:
        """Java's replacement syntax: `$n` is a group, `\\` escapes the next character (so a
        digit right after a group stays a digit)."""
        out: list[str] = []
        for part in replacement_parts(replacement):
            if isinstance(part, int):
                out.append(f"${part}")
                continue
            text = re.sub(r"([\\$])", r"\\\1", part)
            if out and out[-1].startswith("$") and text[:1].isdigit():
                text = "\\" + text
            out.append(text)
        return f"regexp_replace({c}, {self.literal(pattern)}, {self.literal(''.join(out))})"

    def date_trunc_sql(self, c: str, unit: str, ty: SqlType) -> str:
        """Cut without reading the session time zone, which `date_trunc` does (it returns a
        `TIMESTAMP`: a `timestamp` at a time the zone skips would move by an hour): a date with
        `trunc` (a DATE function), a `timestamp` from its date and hour, a `timestamptz` in
        UTC."""
        if ty.name == "timestamptz":
            return self.utc_trunc_sql(c, unit)
        day = c if ty.family is Family.DATE else f"CAST({c} AS DATE)"
        if unit in ("year", "quarter", "month"):
            day = f"trunc({day}, {self.literal(unit.upper())})"
        if ty.family is Family.DATE:
            return day
        if unit == "hour":
            return f"(CAST({day} AS TIMESTAMP_NTZ) + make_dt_interval(0, hour({c})))"
        return f"CAST({day} AS TIMESTAMP_NTZ)"

    def utc_trunc_sql(self, c: str, unit: str) -> str:
        """An instant cut to `unit` in UTC, as epoch microseconds: an hour or a day is a whole
        multiple of them (`pmod` keeps instants before 1970 right), a month, quarter or year
        starts on the day `trunc` (a DATE function) gives for its UTC date. `date_trunc` of a
        `TIMESTAMP` cuts in the session time zone; nothing here reads it."""
        if unit in ("hour", "day"):
            step = 3_600_000_000 if unit == "hour" else 86_400_000_000
            return f"timestamp_micros(unix_micros({c}) - pmod(unix_micros({c}), {step}))"
        day = f"trunc(CAST({self.utc_wall_sql(c)} AS DATE), {self.literal(unit.upper())})"
        return f"timestamp_micros(unix_date({day}) * 86400000000)"

    def email_domain_sql(self, c: str) -> str:
        return f"(CASE WHEN instr({c}, '@') > 0 THEN substring_index({c}, '@', -1) END)"

    # ------------------------------------------------------------------ functions
    def function_context(
        self,
        args: t.Sequence[model.CatalogColumn],
        name: str,
        body: t.Callable[[t.Callable[[str], str]], str],
    ) -> dict[str, t.Any]:
        """A mask or row-filter function: its parameters (the columns `args`), its body, and
        the columns the table passes (`USING COLUMNS` / `ON`)."""
        names = self.arg_names(args)
        return {
            "name": self.gov(name),
            "bare": name,
            "params": tuple((names[c.name], self.sql_type(c.type)) for c in args),
            "body": self.lay_out(body(names.__getitem__)),
            "columns": tuple(self.ident(c.name) for c in args),
        }

    # Group and attribute checks stay EXISTS subqueries over the governance tables here: with
    # `user_groups` / `user_values` (aggregate SQL functions, inlined once per call) the test
    # that runs every mask and filter of the edge scenario in one query exhausted local Spark's
    # 1 GB heap in the optimizer (docs/targets/databricks.md).
    def user_rows_sql(self, attr: str) -> str:
        """The current user's values of an attribute, or (`groups`) their declared groups."""
        c = self.gov_col
        if attr == "groups":
            return (
                f"SELECT {c('ug', 'group_name')} FROM {self.gov('user_group')} ug "
                f"WHERE {self.principal_is_me(c('ug', 'principal'))}"
            )
        return (
            f"SELECT {c('ua', 'attribute_value')} FROM {self.gov('user_attribute')} ua "
            f"WHERE {self.principal_is_me(c('ua', 'principal'))} "
            f"AND {c('ua', 'attribute_name')} = {self.literal(attr)}"
        )

    def in_user_sql(self, item: str, attr: str, negated: bool) -> str:
        """An empty set gives FALSE (TRUE for `not in`), a NULL item NULL otherwise: Spark 4
        answers FALSE, not NULL, for `NULL IN (subquery)`, so the NULL case is explicit."""
        values = self.user_rows_sql(attr)
        found = f"{item} {'NOT IN' if negated else 'IN'} ({values})"
        return (
            f"(CASE WHEN NOT EXISTS ({values}) THEN {self.literal(negated)} "
            f"WHEN {item} IS NULL THEN NULL ELSE {found} END)"
        )

    def group_sql(self, group: str) -> str:
        return (
            f"EXISTS ({self.user_rows_sql('groups')} "
            f"AND {self.gov_col('ug', 'group_name')} = {self.literal(group)})"
        )

    def attribute_sql(self, key: str, value: str) -> str:
        return (
            f"EXISTS ({self.user_rows_sql(key)} "
            f"AND {self.gov_col('ua', 'attribute_value')} = {self.literal(value)})"
        )

    def purposes_sql(self, table: TableKey) -> str:
        return self._bound_purposes or super().purposes_sql(table)

    def one_lookup(self, table: TableKey, checks: int, body: t.Callable[[], str]) -> str:
        """The function body `body()` with its `checks` purpose checks: with one or none, as it
        is (one call of the lookup at most); with more, a query over the one row of the lookup
        for `table` that every check reads, so the body names the lookup once.

        (Only then: a query body is a subquery that refers to the function's arguments, which
        local Spark plans at a higher cost than an expression with one uncorrelated call.)"""
        if checks < 2:
            return body()
        self._bound_purposes = f"{self.lookup_alias}.{self.purposes_column}"
        try:
            expression = body()
        finally:
            self._bound_purposes = None
        call = super().purposes_sql(table)
        return (
            f"SELECT {expression} FROM (SELECT {call} AS {self.purposes_column}) "
            f"AS {self.lookup_alias}"
        )

    def _mask_body(
        self, program: model.Program, mask: model.ColumnMask, col: t.Callable[[str], str]
    ) -> str:
        return self.one_lookup(
            mask.table,
            purpose_checks(mask.arms),
            lambda: self.mask_sql(mask, col, self.predicate_reader(program, mask.table, col)),
        )

    def _rows_body(self, program: model.Program, key: TableKey, col: t.Callable[[str], str]) -> str:
        rules = program.rules_of(key)
        return self.one_lookup(
            key,
            purpose_checks(factor_rules(rules)),  # as `row_sql` writes them
            lambda: self.row_sql(rules, self.predicate_reader(program, key, col)),
        )

    def detach_sql(self, kind: str, table: str, column: str | None, name: str) -> str:
        if column is None:
            return f"ALTER TABLE {table} DROP ROW FILTER"
        return f"ALTER TABLE {table} ALTER COLUMN {column} DROP MASK"

    def drop_sql(self, kind: str, name: str) -> str:
        return f"DROP FUNCTION IF EXISTS {name}"

    def lower_policies(self, program: model.Program) -> list[tuple[TableKey, Policy]]:
        out = []
        for mask in program.masks:
            fn = self.function_context(
                self.mask_args(program, mask),
                self.object_name("mask", *mask.table, mask.column),
                functools.partial(self._mask_body, program, mask),
            )
            table, column = self.table_sql(mask.table), self.ident(mask.column)
            policy = Policy(
                kind=self.mask_kind,
                target=self.mask_target(mask),
                table=table,
                column=column,
                returns=self.sql_type(mask.type),
                column_name=mask.column,
                detach=self.detach_sql(self.mask_kind, table, column, fn["name"]),
                drop=self.drop_sql(self.mask_kind, fn["name"]),
                **fn,
            )
            out.append((mask.table, policy))
        for key in sorted({r.table for r in program.row_rules}):
            fn = self.function_context(
                self.row_args(program, key),
                self.object_name("rows", *key),
                functools.partial(self._rows_body, program, key),
            )
            table = self.table_sql(key)
            policy = Policy(
                kind=self.rows_kind,
                target=self.rows_target(key),
                table=table,
                returns="BOOLEAN",
                detach=self.detach_sql(self.rows_kind, table, None, fn["name"]),
                drop=self.drop_sql(self.rows_kind, fn["name"]),
                **fn,
            )
            out.append((key, policy))
        return out

    def native_tags(self, program: model.Program) -> NativeTags | None:
        return databricks_tags.native_tags(self, program)

    def drift_settings(self, program: model.Program, native: NativeTags | None) -> dict[str, t.Any]:
        return databricks_tags.drift_settings(self, program, native)

    def tagged_source_sql(self) -> str:
        """A tag mask function is told its table by the policy (`USING COLUMNS ('<t>')`)."""
        return self.ident(databricks_tags.SOURCE_ARG)

    def catalog_place(self, key: TableKey) -> tuple[str, str]:
        """Where the information schema of a table's catalog is, and that catalog as SQL (the
        current one for `schema.table`), its name in lower case as Unity Catalog keeps it."""
        if len(key) == 3:
            return f"{self.ident(key[0])}.information_schema", self.literal(key[0].lower())
        return "information_schema", "current_catalog()"

    def preflight_groups(self, program: model.Program) -> list[dict[str, t.Any]]:
        """The pre-flight's checks grouped by catalog: where its information_schema is, the
        catalog (SQL), and the (schema, table, column) veil masks and (schema, table) it
        filters there, in lower case as Unity Catalog keeps them."""
        groups: dict[str, dict[str, t.Any]] = {}
        for p in self.preflight(program):
            parts = [part.lower() for part in p["parts"]]
            info, catalog = self.catalog_place(p["key"])
            g = groups.setdefault(
                info, {"info": info, "catalog": catalog, "masked": [], "filtered": []}
            )
            g["masked"] += [(parts[-2], parts[-1], c.lower()) for c in p["masked"]]
            if p["rows"]:
                g["filtered"].append((parts[-2], parts[-1]))
        return [groups[k] for k in sorted(groups)]

    def layout_settings(self, program: model.Program) -> dict[str, t.Any]:
        native = self.options.native_tags and bool(program.tag_masks)
        return {
            **super().layout_settings(program),
            "tag_key": databricks_tags.TAG_KEY,
            "function_kind": databricks_tags.FUNCTION_KIND,
            "policy_kind": databricks_tags.POLICY_KIND,
            "tag_values": databricks_tags.allowed_values(program) if native else (),
            "abac_groups": databricks_tags.preflight_groups(self, program) if native else (),
            "preflight_groups": self.preflight_groups(program),
            "lookups": self.lookup_functions(lambda fn, name: f"{fn}.{name}")[:1],
            "schema_stored": self.options.governance_schema.lower(),
        }

    # ------------------------------------------------------------------ checks
    def check(self, program: model.Program) -> list[Diagnostic]:
        out = self.shared_diagnostics(
            program, decimal="T0201", too_long="T0202", fatal_too_long=False, same_name="T0203"
        )
        return (
            out
            + [
                error(
                    "T0204",
                    f"`{name}` contains `${{`",
                    span,
                    help="spark substitutes `${…}` in SQL text, even in quoted names; "
                    "rename the object",
                )
                for name, span in self.named_objects(program)
                if "${" in name
            ]
            + self.login_diagnostics(program)
            + databricks_tags.diagnostics(self, program)
        )

    def login_diagnostics(self, program: model.Program) -> list[Diagnostic]:
        """Users (declared, or named as project members or in `user` conditions) whose login
        is not an email address: `current_user()` never returns it, so they match nobody."""
        logins = self.logins(program)
        spans = {u.name: u.span for u in program.users}
        for p in program.projects:
            for m in p.members:
                spans.setdefault(m, p.span)
        for atom in find_nodes((program.masks, program.row_rules), ir.IsUser):
            spans.setdefault(atom.user.value, atom.user.span)
        return [
            warning(
                "T0205",
                f"user `{name}` is not an email address, which databricks' `current_user()` "
                "returns",
                span,
                help=f'give the user its databricks login: `user {name} {{ email "{name}@…" }}`'
                " (veil writes it wherever databricks compares users)",
            )
            for name, span in sorted(spans.items())
            if not self.login_shape.match(logins.get(name, name))
        ]
