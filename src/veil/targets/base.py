"""The lowering every target shares: checked Program -> SQL expressions and template context.

A target subclass states only what differs: quoting, type names, the SQL of each atom
(purpose, group, user, attribute checks), of each masking method, and its templates. The
structure — how conditions combine, the CASE of a mask, the AND of row rules, three-valued
logic that fails closed — is written once, here.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
import typing as t
from collections.abc import Mapping
from dataclasses import dataclass, replace
from decimal import Decimal

import jinja2

from veil import ir, methods, model
from veil.model import Family, SqlType, TableKey
from veil.targets import governance
from veil.targets.script import GovernanceTable, PlanNotes, PlanUnsupported, Script, Value
from veil.targets.sqllines import lay_out, list_items

SqlValue: t.TypeAlias = str | int | Decimal | bool | float | dt.date | dt.datetime | None
#: A masking method's SQL on a target: (the target, the lowered method, the column's SQL, the
#: column's type) -> SQL.
MethodSql: t.TypeAlias = t.Callable[[t.Any, t.Any, str, SqlType], str]


def comment_text(text: str, *, unprintable: str | None = None, substitution: bool = False) -> str:
    """Text for a `--` comment, kept on one line: each unprintable character (a newline would
    end the comment) as `\\uXXXX`, or as `unprintable` when given; with `substitution`, `${`
    is broken up (Spark would substitute it even in a comment)."""
    clean = "".join(
        c if c.isprintable() else f"\\u{ord(c):04x}" if unprintable is None else unprintable
        for c in text
    )
    return clean.replace("${", "$ {") if substitution else clean


def comment_block(lines: t.Iterable[str]) -> str:
    """Lines of text as `--` comment lines (an empty line as `--`), safe for every target."""
    return "".join(f"-- {comment_text(x, substitution=True)}\n" if x else "--\n" for x in lines)


@dataclass(frozen=True, slots=True, kw_only=True)
class Options:
    """Compile options shared by all targets."""

    governance_schema: str = "veil"
    #: PostgreSQL: schema suffix of the protected views (`sales` -> `sales_protected`).
    view_schema_suffix: str = "_protected"
    #: Snowflake: `mask tagged` also compiles to tag-based masking policies, which protect a
    #: column tagged on the platform after the apply (veil.toml `native_tags`).
    native_tags: bool = False


class Target:
    """Base class: a target overrides the class attributes and the `*_sql` hooks it needs."""

    #: `--target` name, and the templates folder.
    name: t.ClassVar[str]
    #: veil type name -> SQL type name (parameters are added by `sql_type`).
    type_names: t.ClassVar[dict[str, str]] = {}
    #: How a veil type name without an entry in `type_names` is written.
    type_case: t.ClassVar[t.Literal["upper", "lower"]] = "upper"
    #: Longest identifier the platform accepts (bytes); longer generated names get a hash suffix.
    max_identifier: t.ClassVar[int] = 255
    #: The SQL of the current user and of TRUE/FALSE.
    current_user: t.ClassVar[str] = "CURRENT_USER"
    true_sql: t.ClassVar[str] = "TRUE"
    false_sql: t.ClassVar[str] = "FALSE"
    length_fn: t.ClassVar[str] = "LENGTH"
    #: Big decimal used for exact rounding arithmetic.
    decimal_work_type: t.ClassVar[str] = "DECIMAL(38, 10)"
    #: `--` comments: what replaces an unprintable character (None: `\\uXXXX`), and whether
    #: `${` is broken up because the platform substitutes variables even in comments.
    comment_unprintable: t.ClassVar[str | None] = None
    comment_substitution: t.ClassVar[bool] = False
    #: String literals escape with a backslash (`'it\\'s'`), not by doubling the quote.
    backslash_literals: t.ClassVar[bool] = False
    #: A user-level check is one value per query (PostgreSQL's InitPlans), cheaper per row than a
    #: `when` that reads the row: a mask tests its leading reveal arms before its `when`.
    checks_before_when: t.ClassVar[bool] = False

    #: The SQL of each masking method of the registry (`veil.methods.METHODS`), by name: here
    #: those every target writes alike; each target adds the others in its own `method_sql`
    #: (`tests/test_methods.py` fails when a target lacks one).
    method_sql: t.ClassVar[Mapping[str, MethodSql]] = {
        "null": lambda tg, a, c, ty: tg.cast("NULL", ty),
        "constant": lambda tg, a, c, ty: tg.cast(tg.literal(a.value), ty),
        "hash": lambda tg, a, c, ty: tg.fit(tg.hash_sql(c, a.salt), a.length),
        "show_first": lambda tg, a, c, ty: tg.show_sql(c, "first", a.count),
        "show_last": lambda tg, a, c, ty: tg.show_sql(c, "last", a.count),
        "round": lambda tg, a, c, ty: tg.cast(tg.round_sql(c, a.step), ty),
        "truncate": lambda tg, a, c, ty: tg.cast(tg.truncate_sql(c, a.unit, ty), ty),
    }

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
        self._env.filters["lines"] = lambda sql, n=0: self.lay_out(sql, " " * n)
        self._env.filters["listed"] = lambda items, n=0: list_items(items, " " * n)
        self._env.filters["runtime"] = self._runtime_part
        self._runtime_parts: dict[str, str] | None = None
        #: The layouts of the bodies laid out so far (`sqllines.lay_out`): a target renders
        #: one script.
        self._shapes: dict[tuple[str, str], str] = {}

    # ------------------------------------------------------------------ quoting (override)
    def ident(self, name: str) -> str:
        """One identifier, always quoted: `"a""b"`."""
        return '"' + name.replace('"', '""') + '"'

    def comment(self, text: str) -> str:
        """Text for a `--` comment on this target (`comment_text` with its settings)."""
        return comment_text(
            text, unprintable=self.comment_unprintable, substitution=self.comment_substitution
        )

    def lay_out(self, sql: str, indent: str = "") -> str:
        """A generated expression laid out over lines (`sqllines.lay_out`): its first line
        continues where it is written, the others start with `indent`."""
        return lay_out(sql, indent=indent, backslash=self.backslash_literals, shapes=self._shapes)

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
        default = ty.name.upper() if self.type_case == "upper" else ty.name
        base = self.type_names.get(ty.name, default)
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
                return (
                    f"({self.expr(item, col)} {kw} {self.expr(low, col)} "
                    f"AND {self.expr(high, col)})"
                )
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
    def mask_sql(
        self,
        mask: model.ColumnMask,
        col: t.Callable[[str], str],
        predicate_col: t.Callable[[str], str] | None = None,
    ) -> str:
        """The shown value: `CASE WHEN NOT COALESCE(<when>, TRUE) THEN c WHEN <arm> … END`
        (with `checks_before_when`, the leading reveal arms come before the `when` test).

        Cast to the exact column type, so a view or policy keeps its signature. The `when`
        predicate reads columns through `predicate_col` (default `col`).
        """
        c = col(mask.column)
        whens: list[str] = []
        arms = list(mask.arms)
        if mask.when is not None:
            # Arms that reveal, before the first that masks, reveal whether `when` holds or not.
            while self.checks_before_when and arms:
                arm = arms[0]
                if arm.action is not None or arm.cond is None:
                    break
                whens.append(f"WHEN {self.cond(arm.cond, mask.table)} THEN {c}")
                arms.pop(0)
            when = self.expr(mask.when, predicate_col or col)
            whens.append(f"WHEN NOT COALESCE({when}, {self.true_sql}) THEN {c}")
        otherwise = self.cast("NULL", mask.type)
        for arm in arms:
            value = c if arm.action is None else self.action_sql(arm.action, c, mask.type)
            if arm.cond is None:
                otherwise = value
                break
            whens.append(f"WHEN {self.cond(arm.cond, mask.table)} THEN {value}")
        if not whens:
            return self.cast(otherwise, mask.type)
        return self.cast("CASE " + " ".join(whens) + f" ELSE {otherwise} END", mask.type)

    def action_sql(self, action: methods.MaskAction, c: str, ty: SqlType) -> str:
        """One masking method applied to column SQL `c` of type `ty` (NULL stays NULL)."""
        return self.method_sql[action.method](self, action, c, ty)

    def fit(self, sql: str, length: int | None) -> str:
        return sql if length is None else f"LEFT({sql}, {int(length)})"

    def hash_sql(self, c: str, salt: str) -> str:
        """The keyed hash of `methods.hash_text`: sha256_hex(Kt || c) with the table's key Kt
        computed once per query from the deployment's key (`table_key_sql`)."""
        return self.keyed_hash_sql(self.table_key_sql(salt), c)

    def keyed_hash_sql(self, table_key: str, c: str) -> str:
        """sha256_hex(Kt || c), Kt the SQL text of the table's key: one SHA-256 block per row
        for a value of up to 23 UTF-8 bytes."""
        return self.sha256_hex_sql(f"{table_key} || {self.hash_input_sql(c)}")

    def table_key_sql(self, salt: str) -> str:
        """The table's key Kt = LEFT(sha256_hex(K || ':' || salt), 32), K read from the
        governance table `hash_key` by the policy itself (with its owner's rights), so the key
        is in no definition and no reader can read it: one uncorrelated sub-select, evaluated
        once per query, and NULL (so is every hash) when the table has no key."""
        derived = self.table_key_of(f"k.{self.ident('key_hex')}", self.literal(":" + salt))
        return f"(SELECT {derived} FROM {self.gov('hash_key')} AS k)"

    def table_key_of(self, key: str, salted: str) -> str:
        """Kt from the SQL texts of the deployment's key and of ':' || salt."""
        return f"LEFT({self.sha256_hex_sql(f'{key} || {salted}')}, {methods.TABLE_KEY_LENGTH})"

    def hash_key_sql(self) -> str:
        """The deployment's hash key: one uncorrelated sub-select (evaluated once per query)."""
        return f"(SELECT k.{self.ident('key_hex')} FROM {self.gov('hash_key')} AS k)"

    def hash_input_sql(self, c: str) -> str:
        """The text that `hash` hashes (a string column as it is)."""
        return c

    def sha256_hex_sql(self, text: str) -> str:
        """Lowercase hex SHA-256 of the UTF-8 bytes of the text expression `text`."""
        raise NotImplementedError

    def show_sql(self, c: str, side: t.Literal["first", "last"], n: int) -> str:
        keep = "LEFT" if side == "first" else "RIGHT"
        ln = f"{self.length_fn}({c})"
        stars = f"REPEAT('*', {ln} - {int(n)})"
        shown = f"{keep}({c}, {int(n)})"
        masked = f"{shown} || {stars}" if side == "first" else f"{stars} || {shown}"
        return f"(CASE WHEN {ln} > {int(n)} THEN {masked} ELSE REPEAT('*', {ln}) END)"

    def round_sql(self, c: str, step: Decimal) -> str:
        w = self.decimal_work_type
        s = self.literal(step)
        return f"(ROUND(CAST({c} AS {w}) / {s}) * {s})"

    def truncate_sql(self, c: str, unit: str, ty: SqlType) -> str:
        return f"DATE_TRUNC({self.literal(unit)}, {c})"

    # ------------------------------------------------------------------ rows
    def row_sql(self, rules: t.Sequence[model.RowRule], col: t.Callable[[str], str]) -> str:
        """The rules' AND, each `allow OR COALESCE(where, FALSE)` (NULL hides), with the
        exceptions every rule shares tested once, first (`factor_rules`)."""
        rows = factor_rules(rules)
        parts = [self.cond(c, rows.table) for c in rows.shared]
        if not rows.never:
            parts.append(self._and_sql([self.rule_sql(r, col) for r in rows.rest]))
        return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"

    def _and_sql(self, parts: t.Sequence[str]) -> str:
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
        purposes = [
            (
                p.name,
                pp.purpose,
                pp.state is model.PurposeState.APPROVED,
                pp.state.value,
                pp.approved_by,
                pp.approved_at,
            )
            for p in program.projects
            for pp in p.purposes
        ]
        members = [(p.name, m) for p in program.projects for m in p.members]
        sources = [(p.name, model.table_id(s)) for p in program.projects for s in p.sources]
        attributes = [(u.name, k, v) for u in program.users for k, vs in u.attributes for v in vs]
        groups = [(u.name, g) for u in program.users for g in u.groups]
        return {
            "project": sorted(projects, key=lambda r: str(r[0])),
            "project_purpose": sorted(purposes, key=lambda r: (str(r[0]), str(r[1]))),
            "project_member": sorted(set(members)),
            "project_source": sorted(set(sources)),
            "user_attribute": sorted(set(attributes)),
            "user_group": sorted(set(groups)),
        }

    def create_table_sql(self, table: governance.Table) -> str:
        """The DDL that creates one governance table."""
        raise NotImplementedError

    def governance_script(
        self,
        family: governance.TargetFamily,
        rows: t.Mapping[str, t.Sequence[tuple[Value, ...]]],
        column: t.Callable[[str], str],
    ) -> tuple[GovernanceTable, ...]:
        """The script's governance section: each table of `family`, holding its `rows` (none
        when absent), its columns and key named by `column`."""
        return tuple(
            GovernanceTable(
                name=g.name,
                qualified=self.gov(g.name),
                writer=g.writer,
                ddl=self.create_table_sql(g),
                columns=tuple(column(c) for c in g.column_names),
                key=tuple(column(k) for k in g.key),
                rows=tuple(tuple(r) for r in rows.get(g.name, ())),
                readers=g.readers,
            )
            for g in governance.tables(family)
        )

    # ------------------------------------------------------------------ rendering
    def template(self, name: str) -> jinja2.Template:
        """`templates/<target>/name`."""
        return self._env.get_template(f"{self.name}/{name}")

    def lower(self, program: model.Program) -> Script:
        """The script of a checked program, as a value (the target's `check` must have found
        no error)."""
        raise NotImplementedError

    def layout(self, script: Script) -> str:
        """The script's SQL text: the target's `script.sql.j2`, given only what `script` holds."""
        raise NotImplementedError

    def render(self, program: model.Program) -> str:
        """The whole script: `layout(lower(program))`."""
        return self.layout(self.lower(program))

    def layout_parts(self, script: Script) -> tuple[str, dict[str, str]]:
        """`layout(script)` with each part that the templates mark as not depending on the
        policies (`{% filter runtime("name") %}`: veil's routines, the pre-flight checks, the
        grants) replaced by the line `runtime_marker(name)`, and those parts by name. The
        goldens pin the parts once per target and, for each case, the rest; `join_parts` puts
        them together again."""
        self._runtime_parts = {}
        try:
            return self.layout(script), self._runtime_parts
        finally:
            self._runtime_parts = None

    def _runtime_part(self, text: str, name: str) -> str:
        parts = self._runtime_parts
        if parts is None:
            return text
        if parts.setdefault(name, text) != text:
            raise ValueError(f"two runtime parts are named {name!r}")
        return runtime_marker(name) + "\n"

    def plan(self, old: Script, new: Script, header: t.Sequence[str], notes: PlanNotes) -> str:
        """`veil plan`: the script that takes a database where `old` was applied to `new`,
        after the comment lines of `header` (the target-independent summary of the changes)."""
        raise PlanUnsupported(
            f"`veil plan` does not support --target {self.name} yet; "
            "compile NEW with `veil compile` instead"
        )

    def check(self, program: model.Program) -> list[t.Any]:
        """Target-specific diagnostics (what this platform cannot express or would reject),
        found before rendering. The default target accepts everything."""
        return []


@dataclass(frozen=True, slots=True, kw_only=True)
class FactoredRows:
    """A table's row rules as the targets test them: a row is visible iff one of `shared` holds
    or every rule of `rest` lets it pass, which is the AND of the rules as written.

    `shared` are the exceptions (disjuncts of `allow`) common to every rule, in the order the
    first rule names them; `rest` are the rules without them. `never` when one of them is left
    with nothing (no exception, no `where`): their AND is FALSE, only `shared` lets rows through
    (and `rest` is empty).
    """

    table: TableKey
    shared: tuple[ir.Condition, ...]
    rest: tuple[model.RowRule, ...]
    never: bool = False


def disjuncts(c: ir.Condition) -> tuple[ir.Condition, ...]:
    """The items of `c` read as an OR: nested ORs flattened, FALSE (OR's identity) left out."""
    match c:
        case ir.CondOr(items=items):
            return tuple(d for i in items for d in disjuncts(i))
        case ir.CondConst(value=False):
            return ()
        case _:
            return (c,)


def factor_rules(rules: t.Sequence[model.RowRule]) -> FactoredRows:
    """`AND_i (S OR r_i)` as `S OR AND_i r_i`, for each condition S that every rule's `allow`
    has as a disjunct (conditions compare by structure, spans aside).

    So that a reader who has such an exception (the usual `unless purpose P` on every rule)
    costs one check, not every rule's checks on every row: PostgreSQL, for one, deforms each
    row up to the last column a filter names before any OR can short-circuit. Every check of a
    condition is two-valued (never NULL), and the law holds in three-valued logic anyway. Fewer
    than two rules, or none shared: the rules as they are.
    """
    table = rules[0].table if rules else ()
    if len(rules) < 2:
        return FactoredRows(table=table, shared=(), rest=tuple(rules))
    each = [disjuncts(r.allow) for r in rules]
    shared = tuple(
        dict.fromkeys(
            d for d in each[0] if not isinstance(d, ir.CondConst) and all(d in o for o in each[1:])
        )
    )
    if not shared:
        return FactoredRows(table=table, shared=(), rest=tuple(rules))
    rest = []
    for rule, items in zip(rules, each, strict=True):
        left = tuple(d for d in items if d not in shared)
        if not left and rule.where is None:
            return FactoredRows(table=table, shared=shared, rest=(), never=True)
        allow: ir.Condition
        if not left:
            allow = ir.CondConst(value=False, span=rule.allow.span)
        elif len(left) == 1:
            allow = left[0]
        else:
            allow = ir.CondOr(items=left, span=rule.allow.span)
        rest.append(replace(rule, allow=allow))
    return FactoredRows(table=table, shared=shared, rest=tuple(rest))


def runtime_marker(name: str) -> str:
    """The line that stands for the runtime part `name` in `Target.layout_parts`."""
    return f"-- veil runtime: {name}"


def join_parts(text: str, parts: t.Mapping[str, str]) -> str:
    """`layout_parts`' text with each marker line replaced by its part."""
    for name, part in parts.items():
        text = text.replace(runtime_marker(name) + "\n", part)
    return text


def family_of(ty: SqlType) -> Family:
    return ty.family
