"""The lowering every target shares: checked Program -> SQL expressions and template context.

A target subclass states only what differs: quoting, type names, the SQL of each atom
(purpose, group, user, attribute checks), of each masking method, and its templates. The
structure — how conditions combine, the CASE of a mask, the AND of row rules, three-valued
logic that fails closed — is written once, here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
import hashlib
import re
import sys
import typing as t
from dataclasses import dataclass
from decimal import Decimal

import jinja2

from veil import ir, model
from veil.diagnostics import NO_SPAN, Diagnostic, Span, error, warning
from veil.model import Family, SqlType, TableKey

SqlValue: t.TypeAlias = str | int | Decimal | bool | float | dt.date | dt.datetime | None


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Compile options shared by all targets."""

    governance_schema: str = "veil"
    #: PostgreSQL: schema suffix of the protected views (`sales` -> `sales_protected`).
    view_schema_suffix: str = "_protected"


class Target:
    """Base class: a target overrides the class attributes and the `*_sql` hooks it needs."""

    #: `--target` name, and the templates folder.
    name: t.ClassVar[str] = "_default"
    #: veil type name -> SQL type name (parameters are added by `sql_type`).
    type_names: t.ClassVar[dict[str, str]] = {}
    #: Longest identifier the platform accepts (bytes); longer generated names get a hash suffix.
    max_identifier: t.ClassVar[int] = 255
    #: The SQL of the current user and of TRUE/FALSE.
    current_user: t.ClassVar[str] = "CURRENT_USER"
    true_sql: t.ClassVar[str] = "TRUE"
    false_sql: t.ClassVar[str] = "FALSE"
    length_fn: t.ClassVar[str] = "LENGTH"
    #: Big decimal used for exact rounding arithmetic.
    decimal_work_type: t.ClassVar[str] = "DECIMAL(38, 10)"

    def __init__(self, options: Options | None = None) -> None:
        self.options = options or Options()
        self._env = jinja2.Environment(
            loader=jinja2.PackageLoader("veil", "targets/templates"),
            undefined=jinja2.StrictUndefined,
            autoescape=False,
            keep_trailing_newline=True,
            trim_blocks=True,
            lstrip_blocks=True,
        )
        self._env.filters["ident"] = self.ident
        self._env.filters["literal"] = self.literal
        self._env.filters["qualified"] = self.qualified
        self._env.filters["sql_type"] = self.sql_type

    # ------------------------------------------------------------------ quoting (override)
    def ident(self, name: str) -> str:
        """One identifier, always quoted: `"a""b"`."""
        return '"' + name.replace('"', '""') + '"'

    def literal(self, value: SqlValue) -> str:
        """A value as a SQL literal. Strings: single quotes doubled, nothing else special."""
        if value is None:
            return "NULL"
        if isinstance(value, bool):
            return self.true_sql if value else self.false_sql
        if isinstance(value, int | Decimal | float):
            return str(value)
        if isinstance(value, dt.datetime):
            return self.string_literal(value.isoformat(sep=" "))
        if isinstance(value, dt.date):
            return self.string_literal(value.isoformat())
        return self.string_literal(value)

    def string_literal(self, value: str) -> str:
        if "\0" in value:
            raise ValueError("NUL characters cannot be written in SQL string literals")
        return "'" + value.replace("'", "''") + "'"

    def qualified(self, parts: t.Sequence[str]) -> str:
        return ".".join(self.ident(p) for p in parts)

    # ------------------------------------------------------------------ names of objects
    def table_sql(self, key: TableKey) -> str:
        """The protected table as the platform names it."""
        return self.qualified(key)

    def gov(self, name: str) -> str:
        """A governance object: `veil.name`."""
        return self.qualified((self.options.governance_schema, name))

    def object_name(self, prefix: str, *parts: str) -> str:
        """A stable generated name (`prefix__sales__transactions__email`), hashed when too long.

        Only [a-z0-9_] survive, so the name needs no quoting; a short hash of the exact parts
        keeps two different sources from colliding after sanitising.
        """
        raw = "__".join((prefix, *parts))
        clean = re.sub(r"[^a-z0-9_]+", "_", raw.lower())
        if clean == raw and len(clean) <= self.max_identifier:
            return clean
        digest = hashlib.sha256(raw.encode()).hexdigest()[:8]
        return clean[: self.max_identifier - 10] + "_" + digest

    # ------------------------------------------------------------------ types
    def sql_type(self, ty: SqlType) -> str:
        base = self.type_names.get(ty.name, ty.name.upper())
        if ty.name == "decimal" and ty.precision is not None:
            return f"{base}({ty.precision}, {ty.scale or 0})"
        if ty.length is not None and ty.name in ("varchar", "char"):
            return f"{base}({ty.length})"
        return base

    def cast(self, sql: str, ty: SqlType) -> str:
        return f"CAST({sql} AS {self.sql_type(ty)})"

    # ------------------------------------------------------------------ conditions (who)
    def cond(self, c: ir.Condition, table: TableKey) -> str:
        """A user-level condition; `table` is the table being queried (for purpose checks)."""
        match c:
            case ir.PurposeIs(purpose=p):
                return self.purpose_sql(p.value, table)
            case ir.AnyPurpose():
                return self.purpose_sql(None, table)
            case ir.InGroup(group=g):
                return self.group_sql(g.value)
            case ir.IsUser(user=u):
                return self.user_sql(u.value)
            case ir.HasAttribute(key=k, value=v):
                return self.attribute_sql(k, v)
            case ir.CondAnd(items=items):
                return "(" + " AND ".join(self.cond(i, table) for i in items) + ")"
            case ir.CondOr(items=items):
                return "(" + " OR ".join(self.cond(i, table) for i in items) + ")"
            case ir.CondNot(item=item):
                return f"(NOT {self.cond(item, table)})"
            case ir.CondConst(value=v):
                return self.true_sql if v else self.false_sql
            case _:
                t.assert_never(c)

    def purpose_sql(self, purpose: str | None, table: TableKey) -> str:
        """True iff the user acts under `purpose` (None: any purpose) for `table`. Never NULL."""
        raise NotImplementedError

    def group_sql(self, group: str) -> str:
        raise NotImplementedError

    def user_sql(self, user: str) -> str:
        return f"({self.current_user} = {self.literal(user)})"

    def attribute_sql(self, key: str, value: str) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ row expressions
    def expr(self, e: ir.Expr, col: t.Callable[[str], str]) -> str:
        """A row expression; `col(name)` renders a column reference of the table."""
        match e:
            case ir.Literal(value=v):
                return self.literal(v)
            case ir.ColumnRef(name=n):
                return col(n.parts[-1])
            case ir.UserRef(attr=a):
                if a != "name":  # sets only appear under `in` (the checker enforces it)
                    raise ValueError(f"user.{a} is a set; it can only be used with `in`")
                return self.current_user
            case ir.Now():
                return self.now_sql()
            case ir.Today():
                return self.today_sql()
            case ir.Interval(amount=n, unit=u):
                return self.interval_sql(n, ir.INTERVAL_UNITS[u])
            case ir.Arith(op=op, left=left, right=right):
                return f"({self.expr(left, col)} {op} {self.expr(right, col)})"
            case ir.Neg(item=item):
                return f"(- {self.expr(item, col)})"
            case ir.Compare(op=op, left=left, right=right):
                return f"({self.expr(left, col)} {self.compare_op(op)} {self.expr(right, col)})"
            case ir.InList(item=item, options=opts, negated=neg):
                inner = ", ".join(self.expr(o, col) for o in opts)
                return f"({self.expr(item, col)} {'NOT IN' if neg else 'IN'} ({inner}))"
            case ir.InUser(item=item, ref=ref, negated=neg):
                return self.in_user_sql(self.expr(item, col), ref.attr, neg)
            case ir.Between(item=item, low=low, high=high, negated=neg):
                kw = "NOT BETWEEN" if neg else "BETWEEN"
                return (f"({self.expr(item, col)} {kw} {self.expr(low, col)} "
                        f"AND {self.expr(high, col)})")
            case ir.IsNull(item=item, negated=neg):
                return f"({self.expr(item, col)} IS {'NOT ' if neg else ''}NULL)"
            case ir.BoolAnd(items=items):
                return "(" + " AND ".join(self.expr(i, col) for i in items) + ")"
            case ir.BoolOr(items=items):
                return "(" + " OR ".join(self.expr(i, col) for i in items) + ")"
            case ir.BoolNot(item=item):
                return f"(NOT {self.expr(item, col)})"
            case _:
                t.assert_never(e)

    def compare_op(self, op: ir.CompareOp) -> str:
        return "<>" if op == "!=" else op

    def now_sql(self) -> str:
        return "CURRENT_TIMESTAMP"

    def today_sql(self) -> str:
        return "CURRENT_DATE"

    def interval_sql(self, amount: int, unit: str) -> str:
        return f"INTERVAL '{int(amount)} {unit}'"

    def in_user_sql(self, item: str, attr: str, negated: bool) -> str:
        """`item [not] in user.<attr>` (`groups` for the user's groups). An empty set gives
        FALSE for `in` and TRUE for `not in`; a NULL item gives NULL."""
        raise NotImplementedError

    # ------------------------------------------------------------------ masks
    def mask_sql(self, mask: model.ColumnMask, col: t.Callable[[str], str]) -> str:
        """The shown value: `CASE WHEN NOT COALESCE(<when>, TRUE) THEN c WHEN <arm> … END`.

        Cast to the exact column type, so a view or policy keeps its signature.
        """
        c = col(mask.column)
        whens: list[str] = []
        if mask.when is not None:
            whens.append(f"WHEN NOT COALESCE({self.expr(mask.when, col)}, {self.true_sql}) "
                         f"THEN {c}")
        otherwise = self.cast("NULL", mask.type)
        for arm in mask.arms:
            value = c if arm.action is None else self.action_sql(arm.action, c, mask.type)
            if arm.cond is None:
                otherwise = value
                break
            whens.append(f"WHEN {self.cond(arm.cond, mask.table)} THEN {value}")
        if not whens:
            return self.cast(otherwise, mask.type)
        return self.cast("CASE " + " ".join(whens) + f" ELSE {otherwise} END", mask.type)

    def action_sql(self, action: model.MaskAction, c: str, ty: SqlType) -> str:
        """One masking method applied to column SQL `c` of type `ty` (NULL stays NULL)."""
        match action:
            case model.MaskNull():
                return self.cast("NULL", ty)
            case model.MaskConstant(value=v):
                return self.cast(self.literal(v), ty)
            case model.MaskHash(salt=salt, length=n):
                return self.fit(self.hash_sql(c, salt), n)
            case model.MaskShow(side=side, count=n):
                return self.show_sql(c, side, n)
            case model.MaskRegex(pattern=p, replacement=r, length=n):
                return self.fit(self.regex_sql(c, p, r), n)
            case model.MaskRound(step=step):
                return self.cast(self.round_sql(c, step), ty)
            case model.MaskTruncate(unit=unit):
                return self.cast(self.truncate_sql(c, unit, ty), ty)
            case model.MaskEmailDomain():
                return self.email_domain_sql(c)
            case _:
                t.assert_never(action)

    def fit(self, sql: str, length: int | None) -> str:
        return sql if length is None else f"LEFT({sql}, {int(length)})"

    def hash_sql(self, c: str, salt: str) -> str:
        raise NotImplementedError

    def show_sql(self, c: str, side: t.Literal["first", "last"], n: int) -> str:
        keep = "LEFT" if side == "first" else "RIGHT"
        ln = f"{self.length_fn}({c})"
        stars = f"REPEAT('*', {ln} - {int(n)})"
        shown = f"{keep}({c}, {int(n)})"
        masked = f"{shown} || {stars}" if side == "first" else f"{stars} || {shown}"
        return f"(CASE WHEN {ln} > {int(n)} THEN {masked} ELSE REPEAT('*', {ln}) END)"

    def regex_sql(self, c: str, pattern: str, replacement: str) -> str:
        raise NotImplementedError

    def round_sql(self, c: str, step: Decimal) -> str:
        w = self.decimal_work_type
        s = self.literal(step)
        return f"(ROUND(CAST({c} AS {w}) / {s}) * {s})"

    def truncate_sql(self, c: str, unit: str, ty: SqlType) -> str:
        return f"DATE_TRUNC({self.literal(unit)}, {c})"

    def email_domain_sql(self, c: str) -> str:
        raise NotImplementedError

    # ------------------------------------------------------------------ rows
    def row_sql(self, rules: t.Sequence[model.RowRule], col: t.Callable[[str], str]) -> str:
        """AND of the rules; each is `allow OR COALESCE(where, FALSE)` (NULL hides)."""
        parts = [self.rule_sql(r, col) for r in rules]
        if not parts:
            return self.true_sql
        return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"

    def rule_sql(self, rule: model.RowRule, col: t.Callable[[str], str]) -> str:
        allow = self.cond(rule.allow, rule.table)
        if rule.where is None:
            return allow
        where = f"COALESCE({self.expr(rule.where, col)}, {self.false_sql})"
        if isinstance(rule.allow, ir.CondConst) and not rule.allow.value:
            return where
        return f"({allow} OR {where})"

    # ------------------------------------------------------------------ governance data
    def governance_rows(self, program: model.Program) -> dict[str, list[tuple[SqlValue, ...]]]:
        """Rows of each governance table, sorted: the script makes the tables hold exactly these.

        project_purpose.approved is TRUE only for an approved, non-stale, non-revoked purpose.
        """
        projects = [(p.name, p.documentation) for p in program.projects]
        purposes = [(p.name, pp.purpose, pp.state is model.PurposeState.APPROVED, pp.state.value,
                     pp.approved_by, pp.approved_at)
                    for p in program.projects for pp in p.purposes]
        members = [(p.name, m) for p in program.projects for m in p.members]
        sources = [(p.name, model.table_str(s)) for p in program.projects for s in p.sources]
        attributes = [(u.name, k, v) for u in program.users for k, vs in u.attributes
                      for v in vs]
        groups = [(u.name, g) for u in program.users for g in u.groups]
        return {
            "project": sorted(projects, key=lambda r: str(r[0])),
            "project_purpose": sorted(purposes, key=lambda r: (str(r[0]), str(r[1]))),
            "project_member": sorted(set(members)),
            "project_source": sorted(set(sources)),
            "user_attribute": sorted(set(attributes)),
            "user_group": sorted(set(groups)),
        }

    # ------------------------------------------------------------------ rendering
    def template(self, name: str) -> jinja2.Template:
        """`<target>/name`, falling back to `_default/name` (dbt's adapter.dispatch)."""
        return self._env.select_template([f"{self.name}/{name}", f"_default/{name}"])

    def render(self, program: model.Program) -> str:
        """The whole script. Subclasses build the context; templates only lay it out."""
        raise NotImplementedError

    def check(self, program: model.Program) -> list[t.Any]:
        """Target-specific diagnostics (what this platform cannot express or would reject),
        found before rendering. The default target accepts everything."""
        return []


def family_of(ty: SqlType) -> Family:
    return ty.family


# ============================================================================================
# Shared by the targets whose policy bodies read the governance tables themselves (Snowflake,
# Databricks): backslash-escaped string literals, matching the querying user, the purpose,
# attribute and group lookups, the columns a policy reads, and checks both platforms need.

#: Governance tables synchronised from the repository (rows: `Target.governance_rows`): columns
#: as (name, veil type) in order, and how many leading columns form the key.
LOOKUP_TABLES: dict[str, tuple[tuple[tuple[str, str], ...], int]] = {
    "project": ((("project_name", "text"), ("documentation", "text")), 1),
    "project_purpose": ((("project_name", "text"), ("purpose_name", "text"),
                         ("approved", "boolean"), ("state", "text"), ("approved_by", "text"),
                         ("approved_at", "text")), 2),
    "project_member": ((("project_name", "text"), ("principal", "text")), 2),
    "project_source": ((("project_name", "text"), ("source_table", "text")), 2),
    "user_attribute": ((("principal", "text"), ("attribute_name", "text"),
                        ("attribute_value", "text")), 3),
    "user_group": ((("principal", "text"), ("group_name", "text")), 2),
}


#: What a script attached (one row per policy or function), so that a newer script can detach
#: and drop what it no longer produces: the statements are written by the script that created it.
APPLIED_TABLE: tuple[str, tuple[tuple[str, str], ...]] = (
    "applied_object", (("object_name", "text"), ("object_kind", "text"), ("target", "text"),
                       ("detach_sql", "text"), ("drop_sql", "text")))


@dataclass(frozen=True, slots=True, kw_only=True)
class LookupTable:
    """One synchronised governance table, rendered for a template."""

    name: str  # qualified, e.g. VEIL.PROJECT_MEMBER
    columns: tuple[tuple[str, str], ...]  # (identifier, SQL type)
    key: tuple[str, ...]  # identifiers of the key columns
    rows: tuple[tuple[str, ...], ...]  # literals


_N = t.TypeVar("_N")


def find_nodes(node: object, cls: type[_N]) -> list[_N]:
    """Every `cls` node inside an IR or model value (dataclasses and tuples), in order."""
    if isinstance(node, cls):
        return [node]
    if isinstance(node, tuple):
        return [found for item in node for found in find_nodes(item, cls)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [found for f in dataclasses.fields(node) if f.name != "span"
                for found in find_nodes(getattr(node, f.name), cls)]
    return []


def columns_read(node: object) -> set[str]:
    """Names of the columns a row expression reads (the last part of each column reference)."""
    return {ref.name.parts[-1] for ref in find_nodes(node, ir.ColumnRef)}


def replacement_parts(replacement: str) -> list[int | str]:
    """A regex replacement as the evaluator reads it: group numbers and literal text.

    `\\1`…`\\9` is a group, `\\\\` one backslash, any other character (a lone backslash
    included) stands for itself (`masking.expand_replacement`).
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


def _longest(action: model.MaskAction | None) -> int | None:
    """The longest string a method can produce, when it can be longer than its input
    (None: never longer, or not a string method)."""
    match action:
        case model.MaskConstant(value=str() as v):
            return len(v)
        case model.MaskHash(length=n):
            return 64 if n is None else n
        case model.MaskRegex(length=None):
            return sys.maxsize
        case model.MaskRegex(length=n):
            return n
        case _:
            return None


class LookupTarget(Target):
    """A target whose masks and row filters look the user up in the governance tables.

    The project a user claims is only a selector: every lookup re-checks, keyed by the current
    user, membership, approval and sources (design: runtime.md §1).
    """

    #: (precision, scale) of a `DECIMAL` written without them.
    default_decimal: t.ClassVar[tuple[int, int]] = (38, 0)
    #: Rewrites applied to a string literal after backslash escaping.
    literal_rewrites: t.ClassVar[tuple[tuple[str, str], ...]] = ()
    #: A name the platform reads unquoted (unless it is a keyword), and the quote character.
    plain_name: t.ClassVar[re.Pattern[str]] = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
    quote_char: t.ClassVar[str] = '"'
    #: What `applied_object.object_kind` calls a column mask and a row filter here.
    mask_kind: t.ClassVar[str] = "column mask"
    rows_kind: t.ClassVar[str] = "row filter"

    # ------------------------------------------------------------------ names
    @functools.cached_property
    def keywords(self) -> frozenset[str]:
        """Words always quoted: the data file `templates/<target>/keywords.sql.j2`."""
        return frozenset(w.upper() for w in self.template("keywords.sql.j2").render().split())

    def stored_name(self, name: str) -> str:
        """The name as the platform stores it (Snowflake folds plain names to upper case)."""
        return name

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
        out = (value.replace("\\", "\\\\").replace("'", "\\'").replace("\n", "\\n")
               .replace("\r", "\\r").replace("\t", "\\t"))
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

    def comment(self, text: str) -> str:
        """Text for a `--` comment: one line, printable, no variable substitution."""
        clean = "".join(ch if ch.isprintable() else " " for ch in text)
        return clean.replace("${", "$ {")

    def name_key(self, name: str) -> str:
        """Two names with the same key are the same object on the platform."""
        return self.ident(name)

    # ------------------------------------------------------------------ lookups
    def gov_col(self, alias: str, column: str) -> str:
        return f"{alias}.{self.ident(column)}"

    def principal_is_me(self, column: str) -> str:
        """User names match case-insensitively (both platforms fold unquoted user names)."""
        return f"UPPER({column}) = UPPER({self.current_user})"

    def purpose_match_sql(self, purpose: str) -> str:
        """`pp` grants `purpose`: equal to it, or a sub-purpose of it."""
        name = self.gov_col("pp", "purpose_name")
        prefix = purpose + "."
        return (f"({name} = {self.literal(purpose)} OR "
                f"LEFT({name}, {len(prefix)}) = {self.literal(prefix)})")

    def purpose_exists_sql(self, source: str, purpose_match: str | None) -> str:
        """EXISTS: the user's selected project has the user as a member, is a source project of
        `source` (SQL) and has an approved purpose matching `purpose_match` (any when None)."""
        c = self.gov_col
        joins = " ".join(
            f"JOIN {self.gov(tbl)} {alias} ON {c(alias, 'project_name')} = "
            f"{c('ap', 'project_name')}"
            for tbl, alias in (("project_member", "pm"), ("project_purpose", "pp"),
                               ("project_source", "ps")))
        where = [self.principal_is_me(c("ap", "principal")),
                 self.principal_is_me(c("pm", "principal")),
                 c("pp", "approved"), f"{c('ps', 'source_table')} = {source}"]
        if purpose_match is not None:
            where.append(purpose_match)
        return (f"EXISTS (SELECT 1 FROM {self.gov('active_project')} ap {joins} "
                f"WHERE {' AND '.join(where)})")

    def user_values_sql(self, attr: str) -> str:
        """The current user's values of an attribute, or (`groups`) their declared groups."""
        if attr == "groups":
            return (f"SELECT {self.gov_col('ug', 'group_name')} FROM {self.gov('user_group')} ug "
                    f"WHERE {self.principal_is_me(self.gov_col('ug', 'principal'))}")
        return (f"SELECT {self.gov_col('ua', 'attribute_value')} "
                f"FROM {self.gov('user_attribute')} ua "
                f"WHERE {self.principal_is_me(self.gov_col('ua', 'principal'))} "
                f"AND {self.gov_col('ua', 'attribute_name')} = {self.literal(attr)}")

    def in_user_sql(self, item: str, attr: str, negated: bool) -> str:
        """The evaluator's rule spelled out: an empty set gives FALSE (TRUE for `not in`), a
        NULL item NULL otherwise. Spark 4 answers FALSE, not NULL, for `NULL IN (subquery)`, so
        the NULL case is explicit. The item stays outside the subqueries, where no governance
        column can shadow it."""
        values = self.user_values_sql(attr)
        found = f"{item} {'NOT IN' if negated else 'IN'} ({values})"
        return (f"(CASE WHEN NOT EXISTS ({values}) THEN {self.literal(negated)} "
                f"WHEN {item} IS NULL THEN NULL ELSE {found} END)")

    def attribute_sql(self, key: str, value: str) -> str:
        return (f"EXISTS ({self.user_values_sql(key)} "
                f"AND {self.gov_col('ua', 'attribute_value')} = {self.literal(value)})")

    def user_sql(self, user: str) -> str:
        return f"(UPPER({self.current_user}) = UPPER({self.literal(user)}))"

    # ------------------------------------------------------------------ what a policy reads
    def mask_args(self, program: model.Program, mask: model.ColumnMask
                  ) -> tuple[model.CatalogColumn, ...]:
        """The masked column, then the other columns its `when` reads, in catalog order."""
        table = program.table(mask.table)
        if table is None:
            raise ValueError(f"unknown table {model.table_str(mask.table)}")
        read = columns_read(mask.when) - {mask.column}
        first = [c for c in table.columns if c.name == mask.column]
        return (*first, *(c for c in table.columns if c.name in read))

    def rule_args(self, program: model.Program, key: TableKey
                  ) -> tuple[model.CatalogColumn, ...]:
        """The columns the row rules of a table read, in catalog order."""
        table = program.table(key)
        read = columns_read(program.rules_of(key))
        return tuple(c for c in (table.columns if table else ()) if c.name in read)

    def arg_names(self, cols: t.Sequence[model.CatalogColumn]) -> dict[str, str]:
        """Column -> the name of its argument in a policy or function signature: the column's
        own name when it needs no quotes, else `argN` (sqlfluff, and some signatures, take
        plain names only; the attaching statement names the columns themselves)."""
        used = {self.name_key(c.name) for c in cols}
        out = {}
        for i, c in enumerate(cols, 1):
            name = self.ident(c.name)
            if name.startswith(self.quote_char):
                alias = f"arg{i}"
                while self.name_key(alias) in used:
                    alias = "_" + alias
                used.add(self.name_key(alias))
                name = self.ident(alias)
            out[c.name] = name
        return out

    def row_args(self, program: model.Program, key: TableKey
                 ) -> tuple[model.CatalogColumn, ...]:
        """The arguments of a table's row filter (a target may need at least one)."""
        return self.rule_args(program, key)

    def used_columns(self, program: model.Program
                     ) -> list[tuple[TableKey, model.CatalogColumn]]:
        """Every column that a mask or row filter takes as an argument, once."""
        used = [(m.table, c) for m in program.masks for c in self.mask_args(program, m)]
        used += [(k, c) for k in sorted({r.table for r in program.row_rules})
                 for c in self.row_args(program, k)]
        return list({(k, c.name): (k, c) for k, c in used}.values())

    def named_objects(self, program: model.Program, *, groups: bool
                      ) -> list[tuple[str, Span]]:
        """The identifiers the script writes (protected tables, policy arguments) and, with
        `groups`, the group names of conditions, with their spans."""
        names = [(p, tb.span) for tb in program.protected_tables for p in tb.key]
        names += [(c.name, c.span) for _, c in self.used_columns(program)]
        if groups:
            atoms = find_nodes((program.masks, program.row_rules), ir.InGroup)
            names += [(g.group.value, g.group.span) for g in atoms]
        return names

    def lookup_tables(self, program: model.Program) -> list[LookupTable]:
        rows = self.governance_rows(program)
        out = []
        for name, (columns, nkey) in LOOKUP_TABLES.items():
            out.append(LookupTable(
                name=self.gov(name),
                columns=tuple((self.ident(c), self.sql_type(SqlType(name=ty)))
                              for c, ty in columns),
                key=tuple(self.ident(c) for c, _ in columns[:nkey]),
                rows=tuple(tuple(self.literal(v) for v in r) for r in rows[name])))
        return out

    # ------------------------------------------------------------------ the script
    def detach_sql(self, kind: str, table: str, column: str | None, name: str) -> str:
        """The statement that takes policy `name` off `table` (its `column` for a mask)."""
        raise NotImplementedError

    def drop_sql(self, kind: str, name: str) -> str:
        raise NotImplementedError

    def applied_table(self, masks: t.Iterable[t.Mapping[str, t.Any]],
                      rows: t.Iterable[t.Mapping[str, t.Any]]) -> LookupTable:
        """The `applied_object` rows for the masks (`name`, `table`, `column`, `target`) and
        row policies (`name`, `table`, `target`) the script attaches."""
        objects = [(m["name"], self.mask_kind, m["target"],
                    self.detach_sql(self.mask_kind, m["table"], m["column"], m["name"]),
                    self.drop_sql(self.mask_kind, m["name"])) for m in masks]
        objects += [(r["name"], self.rows_kind, r["target"],
                     self.detach_sql(self.rows_kind, r["table"], None, r["name"]),
                     self.drop_sql(self.rows_kind, r["name"])) for r in rows]
        name, columns = APPLIED_TABLE
        return LookupTable(
            name=self.gov(name),
            columns=tuple((self.ident(c), self.sql_type(SqlType(name=ty))) for c, ty in columns),
            key=(self.ident(columns[0][0]),),
            rows=tuple(tuple(self.literal(v) for v in o) for o in sorted(objects)))

    def mask_target(self, mask: model.ColumnMask) -> str:
        return f"column {model.table_str(mask.table)}.{mask.column}"

    def rows_target(self, key: TableKey) -> str:
        return f"table {model.table_str(key)}"

    def render_script(self, program: model.Program, masks: list[dict[str, t.Any]],
                      rows: list[dict[str, t.Any]], **context: t.Any) -> str:
        """`<target>/script.sql.j2` with what every lookup target's script shows."""
        return self.template("script.sql.j2").render(
            schema=self.ident(self.options.governance_schema),
            tables=self.lookup_tables(program),
            applied=self.applied_table(masks, rows),
            gov=self.gov,
            comment=self.comment,
            masks=masks,
            rows=rows,
            **context,
        )

    # ------------------------------------------------------------------ shared checks
    def shared_diagnostics(self, program: model.Program, *, decimal: str, too_long: str,
                           fatal_too_long: bool, same_name: str) -> list[Diagnostic]:
        """The checks both lookup targets make, under each target's own codes."""
        return [*self.decimal_diagnostics(program, decimal),
                *self.overflow_diagnostics(program, too_long, fatal=fatal_too_long),
                *self.collision_diagnostics(program, same_name)]

    def overflow_diagnostics(self, program: model.Program, code: str, *, fatal: bool
                             ) -> list[Diagnostic]:
        """Masked values that can be longer than their `varchar(n)` / `char(n)` column."""
        out = []
        for mask in program.masks:
            limit = mask.type.length
            if limit is None:
                continue
            for arm in mask.arms:
                longest = _longest(arm.action)
                if longest is None or longest <= limit:
                    continue
                method = model.action_name(arm.action)
                size = "unbounded" if longest == sys.maxsize else f"up to {longest} characters"
                make = error if fatal else warning
                out.append(make(
                    code, f"`{method}` gives values {size} long, longer than `{mask.type}` "
                    f"column `{model.table_str(mask.table)}.{mask.column}`",
                    _first_span(arm.span, *mask.policies),
                    help=f"{self.name} {'fails the query' if fatal else 'shows it whole'}"
                    "; use a method whose result fits the column, or declare its real length"))
        return out

    def decimal_diagnostics(self, program: model.Program, code: str) -> list[Diagnostic]:
        """A policy argument of type `decimal` without precision would take the platform's
        default precision and scale, changing the values it passes on."""
        default = self.sql_type(SqlType(name="decimal", precision=self.default_decimal[0],
                                        scale=self.default_decimal[1]))
        return [error(
            code, f"`{model.table_str(key)}.{col.name}` is `decimal` without precision, which "
            f"is `{default}` on {self.name}", col.span,
            help="a policy argument must have the column's exact type: declare it as "
            f"`decimal(p,s)` with the precision and scale it has on {self.name}")
            for key, col in self.used_columns(program)
            if col.type.name == "decimal" and col.type.precision is None]

    def collision_diagnostics(self, program: model.Program, code: str) -> list[Diagnostic]:
        """Users, tables or columns that the platform cannot tell apart (case folding)."""
        out = []
        seen: dict[str, tuple[str, Span]] = {}
        for u in program.users:
            folded = u.name.upper()
            if folded in seen and seen[folded][0] != u.name:
                out.append(error(
                    code, f"users `{seen[folded][0]}` and `{u.name}` differ only in case",
                    u.span, help=f"{self.name} matches user names case-insensitively;"
                    " rename one of them", related=(seen[folded][1],)))
            seen.setdefault(folded, (u.name, u.span))
        for table in program.protected_tables:
            names: dict[str, str] = {}
            for col in table.columns:
                shown = self.name_key(col.name)
                if shown in names:
                    out.append(error(
                        code, f"columns `{names[shown]}` and `{col.name}` of "
                        f"`{table.name}` are the same column on {self.name}", col.span,
                        help="rename one of them in the catalog to the platform's name"))
                names.setdefault(shown, col.name)
        return out


def _first_span(*spans: Span) -> Span:
    return next((s for s in spans if s != NO_SPAN), NO_SPAN)
