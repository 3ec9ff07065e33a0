"""Deterministic sample rows for `veil sandbox`: values that fit each column's type and length,
look like what the column holds (emails, card numbers, phones …), and fall on both sides of the
row filters and `when` predicates, so every policy shows its effect.

Two rules on top of that, so that what the sandbox shows makes sense:

* **Every user sees at least one row where the policies allow it.** For each declared user (under
  no project, else under the first of their projects where a row can be visible at all), when no
  sample row passes the table's row rules, one row (from the end, one per user) is rewritten
  until the reference evaluator lets it through: its columns that the predicates read take
  values the predicates name, bound to that user (`region in user.region` -> one of the user's
  regions, `owner = user.name` -> the user's name, `x = "ONC"` -> "ONC", `n > 5` -> 6) and, for
  time windows (`admitted_at >= now() - 7 days`), instants on each side of the boundary (the
  midpoint between it and now first). A user whom no row can reach (a `restrict` without a
  purpose of theirs, a predicate no value satisfies) is left alone.
* **Date and time columns keep their declared order**: in every row, a date or timestamp column
  is never before one declared above it in its `table` block (catalogs declare lifecycle columns
  in order: `admitted_at` then `discharged_at`, `created_at` then `refunded_at`). A column that
  would be earlier is moved to some hours after the one above it (never past now when the one
  above is not).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import itertools
import random
import typing as t
from collections.abc import Iterator, Sequence
from decimal import Decimal

from veil import ir, model
from veil.access import bind_user, nodes, projects_of
from veil.evaluator import (
    Context,
    EvaluationError,
    check_purposes,
    coerce_row,
    eval_condition,
    eval_expr,
)
from veil.model import Family, SqlType
from veil.rowexpr import as_utc, eval_predicate

Row: t.TypeAlias = tuple[object, ...]


def value_hints(program: model.Program, key: model.TableKey) -> dict[str, list[object]]:
    """Values that the table's row rules and `when` clauses compare columns with, so that the
    sample rows fall on both sides of every filter."""
    exprs: list[ir.Expr] = [r.where for r in program.rules_of(key) if r.where is not None]
    exprs += [m.when for m in program.masks_of(key) if m.when is not None]
    hints: dict[str, set[object]] = {}

    def add(ref: object, values: Sequence[object]) -> None:
        if isinstance(ref, ir.ColumnRef):
            hints.setdefault(ref.name.parts[-1], set()).update(
                v for v in values if v is not None and not isinstance(v, bool)
            )

    for expr in exprs:
        for node in nodes(expr):
            match node:
                case ir.Compare(left=left, right=right):
                    for a, b in ((left, right), (right, left)):
                        if isinstance(b, ir.Literal):
                            add(a, [b.value])
                        elif isinstance(b, ir.UserRef) and b.attr == "name":
                            add(a, [u.name for u in program.users])
                case ir.InList(item=item, options=options):
                    add(item, [o.value for o in options if isinstance(o, ir.Literal)])
                case ir.Between(item=item, low=low, high=high):
                    add(item, [b.value for b in (low, high) if isinstance(b, ir.Literal)])
                case ir.InUser(item=item, ref=ref):
                    if ref.attr == "name":
                        add(item, [u.name for u in program.users])
                    elif ref.attr == "groups":
                        add(item, list(program.groups))
                    else:
                        add(item, [v for u in program.users for v in u.values(ref.attr)])
    return {col: sorted(vs, key=repr) for col, vs in sorted(hints.items())}


_FIRST = ["Ada", "Grace", "Alan", "Edsger", "Barbara", "Donald", "Frances", "Ken", "Radia", "Tim"]
_LAST = [
    "Lovelace",
    "Hopper",
    "Turing",
    "Dijkstra",
    "Liskov",
    "Knuth",
    "Allen",
    "Thompson",
    "Perlman",
    "Berners-Lee",
]
_WORDS = {
    "country": ["DE", "FR", "US", "GB", "BR", "JP", "IN", "ES"],
    "region": ["EMEA", "AMER", "APAC", "LATAM"],
    "department": ["Risk", "People", "Growth", "Engineering", "Finance"],
    "currency": ["EUR", "USD", "GBP", "JPY"],
    "status": ["open", "paid", "refunded", "disputed"],
}


def _tagged(col: model.CatalogColumn, *words: str) -> bool:
    text = [col.name.lower(), *(str(tag).lower() for tag in col.tags)]
    return any(w in x for w in words for x in text)


def _luhn(digits: str) -> str:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch) * (2 if i % 2 == 0 else 1)
        total += d - 9 if d > 9 else d
    return digits + str((10 - total % 10) % 10)


def _string(col: model.CatalogColumn, i: int, rng: random.Random) -> str:
    first, last = _FIRST[i % len(_FIRST)], _LAST[(i * 3 + 1) % len(_LAST)]
    if _tagged(col, "email", "mail"):
        domain = ["example.com", "example.org", "example.net", "mail.example"][i % 4]
        return f"{first.lower()}.{last.lower()}{i + 1}@{domain}"
    if _tagged(col, "card", "pan", "iban"):
        return _luhn("4" + "".join(str(rng.randrange(10)) for _ in range(14)))
    if _tagged(col, "phone", "mobile"):
        return "+4930" + "".join(str(rng.randrange(10)) for _ in range(7))
    if _tagged(col, "pii.name", "customer") or col.name.lower() in ("name", "full_name"):
        return f"{first} {last}"
    for word, values in _WORDS.items():
        if word in col.name.lower():
            return values[i % len(values)]
    return f"{col.name} {i + 1}"


def sample_value(
    col: model.CatalogColumn,
    i: int,
    n: int,
    rng: random.Random,
    today: dt.date,
    hints: Sequence[object] = (),
) -> object:
    """The value of `col` in sample row `i` (0-based) of `n`: fits the type, deterministic."""
    st, fam = col.type, col.type.family
    if hints and i % (len(hints) + 1) < len(hints):  # mostly the values filters look for
        hint = hints[i % (len(hints) + 1)]
        with contextlib.suppress(ValueError, ArithmeticError, TypeError):
            value = _convert(hint, st)
            if value is not None:
                return value
    if fam is Family.INTEGER:
        limit = 32767 if st.name == "smallint" else 1_000_000
        if col.name.lower() == "id":
            return min(i + 1, limit)
        return rng.randint(1, min(limit, 9999))
    if fam is Family.DECIMAL:
        precision, scale = st.precision or 12, st.scale or 0
        whole = rng.randint(0, min(10 ** max(precision - scale, 0) - 1, 99_999))
        frac = rng.randint(0, 10**scale - 1) if scale else 0
        return Decimal(f"{whole}.{frac:0{scale}d}") if scale else Decimal(whole)
    if fam is Family.FLOAT:
        return round(rng.uniform(0, 1000), 2)
    if fam is Family.BOOLEAN:
        return i % 2 == 0
    if fam in (Family.DATE, Family.TIMESTAMP):
        day = today - dt.timedelta(days=(i * 180) // max(n, 1))
        if fam is Family.DATE:
            return day
        moment = dt.datetime.combine(day, dt.time(rng.randrange(24), rng.randrange(60)))
        return moment.replace(tzinfo=dt.UTC) if st.name == "timestamptz" else moment
    if fam is Family.BINARY:
        return bytes(rng.randrange(256) for _ in range(8))
    if fam is Family.JSON:
        return f'{{"row": {i + 1}}}'
    text = _string(col, i, rng)
    return text[: st.length] if st.length is not None else text


def _convert(value: object, st: SqlType) -> object:
    fam = st.family
    if fam is Family.STRING:
        text = str(value)
        return text if st.length is None or len(text) <= st.length else None
    if fam is Family.INTEGER:
        return int(str(value))
    if fam is Family.DECIMAL:
        return Decimal(str(value))
    if fam is Family.FLOAT:
        return float(str(value))
    return None


def sample_rows(
    program: model.Program,
    table: model.CatalogTable,
    n: int,
    today: dt.date,
    now: dt.datetime | None = None,
) -> list[Row]:
    """`n` deterministic rows for `table` (the same for the same catalog, rules and instant).

    `now` (default: noon UTC of `today`) is the instant time windows are measured from.
    """
    now = now or dt.datetime.combine(today, dt.time(12), tzinfo=dt.UTC)
    hints = value_hints(program, table.key)
    rngs = [random.Random(f"{table.name}.{c.name}") for c in table.columns]
    rows = [
        [
            sample_value(c, i, n, rng, today, hints.get(c.name, ()))
            for c, rng in zip(table.columns, rngs, strict=True)
        ]
        for i in range(n)
    ]
    for i, row in enumerate(rows):
        keep_order(table, row, i, now)
    _reach_every_user(program, table, rows, now)
    return [tuple(row) for row in rows]


# --------------------------------------------------------------------------------------------
# Declared order of date and time columns


def _temporal(col: model.CatalogColumn) -> bool:
    return col.type.family in (Family.DATE, Family.TIMESTAMP)


def _as_column(moment: dt.datetime, col: model.CatalogColumn) -> object:
    """An aware UTC instant as the value of a date / timestamp / timestamptz column."""
    if col.type.family is Family.DATE:
        return moment.date()
    return moment if col.type.name == "timestamptz" else moment.replace(tzinfo=None)


def keep_order(table: model.CatalogTable, row: list[object], i: int, now: dt.datetime) -> None:
    """Move each date or time column of `row` (row number `i`) that is before one declared
    above it to 1 to 72 hours after that one (a date: its day, or the next), never past `now`
    unless the one above already is."""
    latest: dt.datetime | None = None
    for j, col in enumerate(table.columns):
        value = row[j]
        if not _temporal(col) or not isinstance(value, dt.date):
            continue
        moment = as_utc(value)
        if latest is not None and moment < latest:
            moment = latest + dt.timedelta(hours=1 + (i * 7) % 72)
            if moment > now >= latest:
                moment = latest + (now - latest) / 2
            if col.type.family is Family.DATE and as_utc(moment.date()) < latest:
                moment += dt.timedelta(days=1)
            row[j] = _as_column(moment, col)
            moment = as_utc(t.cast(dt.date, row[j]))
        latest = moment if latest is None else max(latest, moment)


# --------------------------------------------------------------------------------------------
# At least one row for every user


_MAX_TRIES = 512  # combinations of candidate values tried per user
_MAX_CANDIDATES = 8  # per column


def _context(program: model.Program, key: model.TableKey, user: str) -> Context | None:
    """The first context (no project, then the user's projects) where some row of the table
    can be visible to `user`: every rule either lets all rows through or has a predicate."""
    for project in (None, *projects_of(program, user)):
        ctx = Context(user=user, project=project)
        if check_purposes(program, user, project, key).reason is None or project is None:
            rules = program.rules_of(key)
            if all(
                r.where is not None or eval_condition(program, r.allow, ctx, key) for r in rules
            ):
                return ctx
    return None


def _visible(
    program: model.Program, table: model.CatalogTable, row: Sequence[object], ctx: Context
) -> bool:
    values = {c.name: v for c, v in zip(table.columns, row, strict=True)}
    for rule in program.rules_of(table.key):
        if eval_condition(program, rule.allow, ctx, table.key):
            continue
        assert rule.where is not None  # `_context` chose a context where this holds
        try:
            if eval_predicate(program, rule.where, coerce_row(table, values), ctx) is not True:
                return False
        except EvaluationError:
            return False
    return True


def _columns_of(expr: ir.Expr) -> Iterator[str]:
    for node in nodes(expr):
        if isinstance(node, ir.ColumnRef):
            yield node.name.parts[-1]


def _reads_row(expr: ir.Expr) -> bool:
    return any(isinstance(node, ir.ColumnRef) for node in nodes(expr))


def _candidates(
    program: model.Program, exprs: Sequence[ir.Expr], ctx: Context, now: dt.datetime
) -> dict[str, list[object]]:
    """Per column, the values the (bound) predicates compare it with, in the order to try."""
    found: dict[str, list[object]] = {}

    def add(ref: ir.Expr, values: Sequence[object]) -> None:
        if isinstance(ref, ir.ColumnRef):
            bucket = found.setdefault(ref.name.parts[-1], [])
            bucket += [v for v in values if v is not None and v not in bucket]

    def value_of(expr: ir.Expr) -> object:
        if _reads_row(expr):
            return None
        try:
            return eval_expr(program, expr, {}, ctx)
        except EvaluationError:
            return None

    for expr in exprs:
        for node in nodes(expr):
            match node:
                case ir.Compare(left=left, right=right):
                    for a, b in ((left, right), (right, left)):
                        add(a, _around(value_of(b), now))
                case ir.InList(item=item, options=options):
                    add(item, [value_of(o) for o in options])
                case ir.Between(item=item, low=low, high=high):
                    lo, hi = value_of(low), value_of(high)
                    add(item, [_middle(lo, hi), lo, hi])
    return found


def _around(value: object, now: dt.datetime) -> list[object]:
    """Values on both sides of a boundary: for an instant, the midpoint between it and now
    first (a time window's natural inside), then an hour and a day either side; a number and
    its neighbours; anything else as it is."""
    if isinstance(value, dt.date):
        at = as_utc(value)
        hour, day = dt.timedelta(hours=1), dt.timedelta(days=1)
        return [at + (now - at) / 2, at + hour, at - hour, at + day, at - day]
    if isinstance(value, bool) or not isinstance(value, int | Decimal | float):
        return [value]
    return [value, value + 1, value - 1]


def _middle(lo: object, hi: object) -> object:
    if isinstance(lo, dt.date) and isinstance(hi, dt.date):
        a, b = as_utc(lo), as_utc(hi)
        return a + (b - a) / 2
    if isinstance(lo, int | Decimal) and isinstance(hi, int | Decimal):
        return (lo + hi) // 2
    return lo


def _fit(value: object, col: model.CatalogColumn) -> object:
    """`value` as a value of `col`, or None when it does not fit."""
    if _temporal(col):
        return _as_column(as_utc(value), col) if isinstance(value, dt.date) else None
    if col.type.family is Family.BOOLEAN:
        return value if isinstance(value, bool) else None
    if isinstance(value, dt.date):
        return None
    with contextlib.suppress(ValueError, ArithmeticError, TypeError):
        return _convert(value, col.type)
    return None


def _reach_every_user(
    program: model.Program, table: model.CatalogTable, rows: list[list[object]], now: dt.datetime
) -> None:
    if not rows or not program.rules_of(table.key):
        return
    claimed: set[int] = set()  # rows that give some user their one visible row
    index = {c.name: j for j, c in enumerate(table.columns)}
    for user in program.users:
        found_ctx = _context(program, table.key, user.name)
        if found_ctx is None:
            continue
        ctx = Context(user=user.name, project=found_ctx.project, now=now)
        seen = [i for i, row in enumerate(rows) if _visible(program, table, row, ctx)]
        if seen:
            claimed.add(seen[0])
            continue
        free = [i for i in range(len(rows)) if i not in claimed]
        if not free:
            return
        spare = free[-1]
        exprs = [
            bind_user(program, r.where, user.name)
            for r in program.rules_of(table.key)
            if r.where is not None and not eval_condition(program, r.allow, ctx, table.key)
        ]
        names = sorted(
            {c for e in exprs for c in _columns_of(e) if c in index}, key=index.__getitem__
        )
        found = _candidates(program, exprs, ctx, now)
        options: list[list[object]] = []
        for name in names:
            col = table.columns[index[name]]
            fits = [v for v in (_fit(x, col) for x in found.get(name, ())) if v is not None]
            options.append([*fits[:_MAX_CANDIDATES], rows[spare][index[name]]])
        for combo in itertools.islice(itertools.product(*options), _MAX_TRIES):
            row = list(rows[spare])
            for name, value in zip(names, combo, strict=True):
                row[index[name]] = value
            keep_order(table, row, spare, now)
            if _visible(program, table, row, ctx):
                rows[spare] = row
                claimed.add(spare)
                break
