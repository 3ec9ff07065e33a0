"""Who sees what: the access of every user, under no project and under each of their projects,
to every protected table, computed with the reference evaluator (never from a target's SQL).

For one (user, project) and one table, every catalog column is `clear`, `masked` with a method,
or `depends` (masked where the mask's `when` predicate is TRUE or NULL, clear elsewhere); the
rows are `all`, `hidden` (no row) or `filtered` by a predicate. Predicates are shown as the
user would meet them: `user.<attr>` and `user.groups` become the user's actual values
(`region in user.region` -> `region in ("AMER")`), `user.name` their name; a predicate that
then no longer reads the row (nor the clock) is decided on the spot (TRUE -> all rows).

`veil explain` (the values and the terminal matrix), `veil plan` (who gains or loses which
cells and rows between two programs) and `veil report` (the HTML page) all read this module.
Everything is deterministic: users, projects, tables and columns come in program order, and
nothing here reads the clock (`now()` and `today()` stay in the predicate text).
Acknowledgements are assumed given, as `veil explain` and `veil test` assume.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass

from veil import ir, model
from veil.evaluator import (
    Context,
    check_purposes,
    decide_arm,
    eval_condition,
    eval_predicate,
)
from veil.printer import action_to_source, expr_to_source
from veil.rowexpr import user_set

ColumnState: t.TypeAlias = t.Literal["clear", "masked", "depends"]
RowState: t.TypeAlias = t.Literal["all", "hidden", "filtered"]

#: The fixed instant predicates without row data are decided at: it is never read, because a
#: predicate that reads the clock is never decided on the spot (kept for `Context`).
_EPOCH = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)


# --------------------------------------------------------------------------------------------
# Predicates with the user's values


def bind_user(program: model.Program, expr: ir.Expr, user: str) -> ir.Expr:
    """`expr` with the user's values in place of `user.…`: `x in user.region` becomes
    `x in ("AMER", "EMEA")` (or `false` / `true` for `not in` when the user has no value),
    `user.name` becomes the name as a string. The meaning is unchanged (`rowexpr.py`)."""
    match expr:
        case ir.InUser(item=item, ref=ref, negated=negated):
            values = user_set(program, user, ref.attr)
            if not values:
                return ir.Literal(value=negated)
            options = tuple(ir.Literal(value=v) for v in values)
            return ir.InList(item=bind_user(program, item, user), options=options, negated=negated)
        case ir.UserRef(attr="name"):
            return ir.Literal(value=user)
    if not dataclasses.is_dataclass(expr):  # pragma: no cover - every Expr is a dataclass
        return expr
    changes: dict[str, object] = {}
    for f in dataclasses.fields(expr):
        value = getattr(expr, f.name)
        if isinstance(value, tuple):
            new: object = tuple(_bind_any(program, v, user) for v in value)
        else:
            new = _bind_any(program, value, user)
        if new is not value:
            changes[f.name] = new
    return dataclasses.replace(expr, **changes) if changes else expr  # type: ignore[arg-type]


def _bind_any(program: model.Program, value: object, user: str) -> object:
    if dataclasses.is_dataclass(value) and not isinstance(value, type | ir.ObjectName):
        return bind_user(program, t.cast(ir.Expr, value), user)
    return value


def nodes(node: object) -> Iterator[object]:
    """Every IR node below `node`, itself first (row expressions are small trees of frozen
    dataclasses)."""
    yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if dataclasses.is_dataclass(item):
                    yield from nodes(item)


def _constant(expr: ir.Expr) -> bool:
    """Whether the predicate reads neither the row nor the clock (so it can be decided now)."""
    return not any(isinstance(n, ir.ColumnRef | ir.Now | ir.Today) for n in nodes(expr))


def decide(program: model.Program, expr: ir.Expr, user: str) -> bool | None:
    """TRUE / FALSE / NULL of a bound predicate that reads no row and no clock (`_constant`)."""
    return eval_predicate(program, expr, {}, Context(user=user, now=_EPOCH))


def simplify(program: model.Program, expr: ir.Expr, user: str) -> ir.Expr:
    """`expr` with its parts that read neither the row nor the clock decided: a part that is
    TRUE or FALSE becomes `true` / `false`, `and` / `or` / `not` fold them (`false and x` is
    `false`, `true and x` is `x`). A NULL part is kept: NULL is not FALSE under `not`."""
    match expr:
        case ir.BoolAnd(items=items) | ir.BoolOr(items=items):
            stop = isinstance(expr, ir.BoolOr)  # the value that decides the whole
            kept: list[ir.Expr] = []
            for item in items:
                got = simplify(program, item, user)
                if isinstance(got, ir.Literal) and got.value is stop:
                    return got
                if not (isinstance(got, ir.Literal) and got.value is (not stop)):
                    kept.append(got)
            if not kept:
                return ir.Literal(value=not stop)
            if len(kept) == 1:
                return kept[0]
            return ir.BoolOr(items=tuple(kept)) if stop else ir.BoolAnd(items=tuple(kept))
        case ir.BoolNot(item=item):
            got = simplify(program, item, user)
            if isinstance(got, ir.Literal) and isinstance(got.value, bool):
                return ir.Literal(value=not got.value)
            return ir.BoolNot(item=got)
    if _constant(expr):
        value = decide(program, expr, user)
        if isinstance(value, bool):
            return ir.Literal(value=value)
    return expr


def bound(program: model.Program, expr: ir.Expr, user: str) -> ir.Expr:
    """The predicate as `user` meets it: their values bound (`bind_user`), then `simplify`."""
    return simplify(program, bind_user(program, expr, user), user)


# --------------------------------------------------------------------------------------------
# Access of one user under one project


@dataclass(frozen=True, slots=True, kw_only=True)
class ColumnAccess:
    """One column: `method` is the method as written (`hash`, `show_last(4)`), None when
    clear; `when` the mask's `when` predicate with the user's values, when it `depends`."""

    column: str
    type: str
    state: ColumnState
    method: str | None = None
    when: str | None = None

    @property
    def method_name(self) -> str:
        """The method's name without its arguments (`regex`), `clear` when clear."""
        if self.state == "clear" or self.method is None:
            return "clear"
        return self.method.split("(", 1)[0]

    @property
    def text(self) -> str:
        """`clear`, `hash`, or `constant("x") when region = "EMEA"`."""
        if self.state == "clear" or self.method is None:
            return "clear"
        return self.method if self.when is None else f"{self.method} when {self.when}"


@dataclass(frozen=True, slots=True, kw_only=True)
class RowAccess:
    state: RowState
    predicate: str | None = None  # with the user's values, when `filtered`

    @property
    def text(self) -> str:
        """`all`, `hidden`, or the predicate the rows are filtered by."""
        return self.predicate if self.state == "filtered" and self.predicate else self.state


@dataclass(frozen=True, slots=True, kw_only=True)
class TableAccess:
    table: str
    key: model.TableKey
    purposes: tuple[str, ...]  # the approved purposes the user acts under on this table
    columns: tuple[ColumnAccess, ...]  # every catalog column, in catalog order
    rows: RowAccess

    def column(self, name: str) -> ColumnAccess | None:
        return next((c for c in self.columns if c.column == name), None)


@dataclass(frozen=True, slots=True, kw_only=True)
class Access:
    """What `user` sees with `project` active (None: no project)."""

    user: str
    project: str | None
    state: str  # `active`, or why no purpose applies (`evaluator.NoPurpose` values)
    purposes: tuple[str, ...]
    tables: tuple[TableAccess, ...]

    @property
    def label(self) -> str:
        """`alice` or `alice (fraud_q4)`."""
        return self.user if self.project is None else f"{self.user} ({self.project})"

    def table(self, name: str) -> TableAccess | None:
        return next((tb for tb in self.tables if tb.table == name), None)


def column_access(
    program: model.Program, col: model.CatalogColumn, mask: model.ColumnMask | None, ctx: Context
) -> ColumnAccess:
    """What the user sees of one column, whose mask (None: it has none) is `mask`."""
    if mask is None:
        return ColumnAccess(column=col.name, type=str(col.type), state="clear")
    arm = decide_arm(program, mask, ctx)
    if arm.action is None:
        return ColumnAccess(column=col.name, type=str(col.type), state="clear")
    method = action_to_source(arm.action)
    if mask.when is None:
        return ColumnAccess(column=col.name, type=str(col.type), state="masked", method=method)
    when = bound(program, mask.when, ctx.user)
    if _constant(when):
        if decide(program, when, ctx.user) is False:
            return ColumnAccess(column=col.name, type=str(col.type), state="clear")
        return ColumnAccess(column=col.name, type=str(col.type), state="masked", method=method)
    return ColumnAccess(
        column=col.name,
        type=str(col.type),
        state="depends",
        method=method,
        when=expr_to_source(when),
    )


def rule_predicate(program: model.Program, rule: model.RowRule, ctx: Context) -> ir.Expr | bool:
    """What one row rule lets through for the context: True (every row), False (none), or the
    `where` predicate bound to the user's values."""
    if eval_condition(program, rule.allow, ctx, rule.table):
        return True
    if rule.where is None:
        return False
    where = bound(program, rule.where, ctx.user)
    if _constant(where):
        return decide(program, where, ctx.user) is True
    return where


def row_access(program: model.Program, key: model.TableKey, ctx: Context) -> RowAccess:
    """The AND of the table's rules (`all` when it has none)."""
    wheres: list[ir.Expr] = []
    for rule in program.rules_of(key):
        got = rule_predicate(program, rule, ctx)
        if got is False:
            return RowAccess(state="hidden")
        if got is not True:
            wheres.append(got)
    if not wheres:
        return RowAccess(state="all")
    combined = wheres[0] if len(wheres) == 1 else ir.BoolAnd(items=tuple(wheres))
    return RowAccess(state="filtered", predicate=expr_to_source(combined))


def table_access(program: model.Program, table: model.CatalogTable, ctx: Context) -> TableAccess:
    check = check_purposes(program, ctx.user, ctx.project, table.key, ctx.acknowledged)
    masks = {m.column: m for m in program.masks_of(table.key)}
    return TableAccess(
        table=table.name,
        key=table.key,
        purposes=check.purposes,
        columns=tuple(column_access(program, c, masks.get(c.name), ctx) for c in table.columns),
        rows=row_access(program, table.key, ctx),
    )


def access_of(
    program: model.Program,
    user: str,
    project: str | None,
    tables: t.Sequence[model.CatalogTable] | None = None,
) -> Access:
    """What `user` sees under `project` on `tables` (default: every protected table)."""
    ctx = Context(user=user, project=project, now=_EPOCH)
    check = check_purposes(program, user, project, None)
    chosen = program.protected_tables if tables is None else tables
    return Access(
        user=user,
        project=project,
        state=check.reason.value if check.reason else "active",
        purposes=check.purposes,
        tables=tuple(table_access(program, tb, ctx) for tb in chosen),
    )


def projects_of(program: model.Program, user: str) -> tuple[str, ...]:
    """The projects `user` is a member of, in program order."""
    return tuple(p.name for p in program.projects if user in p.members)


def contexts(program: model.Program) -> tuple[tuple[str, str | None], ...]:
    """Every (user, project-or-none) worth showing: each declared user with no project, then
    under each project they are a member of."""
    out: list[tuple[str, str | None]] = []
    for u in program.users:
        out.append((u.name, None))
        out += [(u.name, p) for p in projects_of(program, u.name)]
    return tuple(out)


def matrix(
    program: model.Program, tables: t.Sequence[model.CatalogTable] | None = None
) -> tuple[Access, ...]:
    """The access of every context of `contexts`, on `tables` (default: every protected)."""
    return tuple(access_of(program, u, p, tables) for u, p in contexts(program))


# --------------------------------------------------------------------------------------------
# What changes between two programs


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessChange:
    """One cell or row set a user gains or loses: `subject` is `table.column` or `table rows`;
    `old`/`new` the `text` of the state before and after (`absent`: no such table/column)."""

    user: str
    project: str | None
    subject: str
    old: str
    new: str

    @property
    def label(self) -> str:
        return self.user if self.project is None else f"{self.user} ({self.project})"

    def __str__(self) -> str:
        return f"{self.label}: {self.subject} {self.old} \u2192 {self.new}"


ABSENT = "absent"


def _states(
    program: model.Program, user: str, project: str | None, names: t.Sequence[str]
) -> dict[str, str]:
    tables = [tb for tb in program.tables if tb.name in names]
    acc = access_of(program, user, project, tables)
    out: dict[str, str] = {}
    for tb in acc.tables:
        out[f"{tb.table} rows"] = tb.rows.text
        for c in tb.columns:
            out[f"{tb.table}.{c.column}"] = c.text
    return out


def access_lines(changes: t.Sequence[AccessChange]) -> list[str]:
    """The plan's `Access` section: one line per change, or one line saying there is none."""
    title = "Access (who gains or loses which cells and rows; from the reference evaluator):"
    if not changes:
        return [title, "  no user gains or loses any cell or row"]
    return [title, *(f"  {c}" for c in changes)]


def diff_access(old: model.Program, new: model.Program) -> tuple[AccessChange, ...]:
    """Per user (declared in OLD or NEW) and per project they belong to in either, every
    column and row set of a table protected in OLD or NEW whose access differs. A user or
    project that exists on one side only is evaluated on the other too (where the evaluator
    fails closed: no groups, no purpose). Sorted by user, then no project first, then project,
    then table and column in catalog order."""
    names = sorted({tb.name for p in (old, new) for tb in p.protected_tables})
    users = sorted({u.name for p in (old, new) for u in p.users})
    out: list[AccessChange] = []
    for user in users:
        projects = sorted({*projects_of(old, user), *projects_of(new, user)})
        for project in (None, *projects):
            before = _states(old, user, project, names)
            after = _states(new, user, project, names)
            keys = list(before) + [k for k in after if k not in before]
            for key in keys:
                a, b = before.get(key, ABSENT), after.get(key, ABSENT)
                if a != b:
                    out.append(AccessChange(user=user, project=project, subject=key, old=a, new=b))
    return tuple(out)


# --------------------------------------------------------------------------------------------
# The matrix: tables x columns (and rows) by context, for the terminal and the HTML report


@dataclass(frozen=True, slots=True, kw_only=True)
class Cell:
    """One cell of the matrix: `text` is short (`clear`, `hash`, `hidden`, `filtered`);
    `detail` the whole decision when `text` does not say it all; `kind` a CSS class."""

    text: str
    kind: str
    detail: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class MatrixTable:
    table: str
    lines: tuple[tuple[str, tuple[Cell, ...]], ...]  # (`rows` or a column name, a cell per context)


_SHORT = 16  # a method written longer than this shows by name, with a note


def _column_cell(c: ColumnAccess) -> Cell:
    if c.state == "clear":
        return Cell(text="clear", kind="clear")
    short = c.text if len(c.text) <= _SHORT else c.method_name
    return Cell(text=short, kind=c.state, detail=c.text if c.text != short else None)


def _rows_cell(r: RowAccess) -> Cell:
    if r.state == "filtered":
        return Cell(text="filtered", kind="filtered", detail=f"rows where {r.predicate}")
    return Cell(text=r.state, kind=r.state)


def grid(accesses: t.Sequence[Access]) -> tuple[MatrixTable, ...]:
    """The matrix of `accesses` (all computed on the same tables): per table, a `rows` line,
    then one line per catalog column; one cell per access, in order."""
    if not accesses:
        return ()
    out: list[MatrixTable] = []
    for i, tb in enumerate(accesses[0].tables):
        lines: list[tuple[str, tuple[Cell, ...]]] = [
            ("rows", tuple(_rows_cell(a.tables[i].rows) for a in accesses))
        ]
        for j, col in enumerate(tb.columns):
            lines.append(
                (col.column, tuple(_column_cell(a.tables[i].columns[j]) for a in accesses))
            )
        out.append(MatrixTable(table=tb.table, lines=tuple(lines)))
    return tuple(out)


def render_matrix_text(accesses: t.Sequence[Access]) -> list[str]:
    """The matrix as aligned plain-text lines (no colour): one column per context; a cell
    whose short text hides a predicate gets a note number, the notes follow the grid."""
    tables = grid(accesses)
    if not tables:
        return []
    notes: dict[str, int] = {}

    def show(cell: Cell) -> str:
        if cell.detail is None:
            return cell.text
        number = notes.setdefault(cell.detail, len(notes) + 1)
        return f"{cell.text} [{number}]"

    rows: list[tuple[str, ...]] = [("", *(a.label for a in accesses))]
    for tb in tables:
        rows.append((tb.table, *("" for _ in accesses)))
        rows += [(f"  {name}", *(show(c) for c in cells)) for name, cells in tb.lines]
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    out = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in rows]
    out += [f"[{n}] {text}" for text, n in notes.items()]
    return out
