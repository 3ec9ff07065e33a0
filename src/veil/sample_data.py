"""Deterministic sample rows for `veil sandbox`: values that fit each column's type and length,
look like what the column holds (emails, card numbers, phones …), and fall on both sides of the
row filters and `when` predicates, so every policy shows its effect."""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import random
import typing as t
from collections.abc import Iterator, Sequence
from decimal import Decimal

from veil import ir, model
from veil.model import Family, SqlType

Row: t.TypeAlias = tuple[object, ...]


def _walk(node: object) -> Iterator[object]:
    """Every IR node below `node` (row expressions are small trees of frozen dataclasses)."""
    yield node
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        for f in dataclasses.fields(node):
            value = getattr(node, f.name)
            for item in value if isinstance(value, tuple) else (value,):
                if dataclasses.is_dataclass(item):
                    yield from _walk(item)


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
        for node in _walk(expr):
            match node:
                case ir.Compare(left=left, right=right):
                    for a, b in ((left, right), (right, left)):
                        if isinstance(b, ir.Literal):
                            add(a, [b.value])
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
    program: model.Program, table: model.CatalogTable, n: int, today: dt.date
) -> list[Row]:
    """`n` deterministic rows for `table` (the same for the same catalog, rules and day)."""
    hints = value_hints(program, table.key)
    rngs = [random.Random(f"{table.name}.{c.name}") for c in table.columns]
    return [
        tuple(
            sample_value(c, i, n, rng, today, hints.get(c.name, ()))
            for c, rng in zip(table.columns, rngs, strict=True)
        )
        for i in range(n)
    ]
