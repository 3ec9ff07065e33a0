"""A `constant` argument read as a column's type: the value the lowered method holds, or why it
cannot be one."""

from __future__ import annotations

import datetime as dt
import json
from decimal import Decimal, InvalidOperation

from veil import ir, model

F = model.Family
INT_RANGES: dict[str, int] = {"smallint": 2**15, "integer": 2**31, "bigint": 2**63}


def cast_constant(
    v: ir.LiteralValue, ty: model.SqlType
) -> tuple[str | int | Decimal | bool | None, str | None]:
    """The constant converted to the column's family, or why it cannot be."""
    shown = ir.literal_source(v)
    nope = f"`{shown}` cannot be cast to `{ty}`"
    match ty.family:
        case F.STRING:
            s = v if isinstance(v, str) else ir.literal_source(v)
            if ty.length is not None and len(s) > ty.length:
                return None, f"`{shown}` is {len(s)} characters long and `{ty}` holds {ty.length}"
            return s, None
        case F.INTEGER:
            i = _as_number(v)
            if i is None or i != i.to_integral_value():
                return None, nope
            bound = INT_RANGES[ty.name]
            if not -bound <= i < bound:
                return None, f"`{shown}` is out of the range of `{ty}`"
            return int(i), None
        case F.DECIMAL | F.FLOAT:
            d = _as_number(v)
            if d is None:
                return None, nope
            if ty.family is F.DECIMAL and ty.precision is not None and not _fits(d, ty):
                return None, f"`{shown}` does not fit `{ty}`"
            return d, None
        case F.BOOLEAN:
            if isinstance(v, bool):
                return v, None
            if isinstance(v, str) and v.strip().lower() in ("true", "false"):
                return v.strip().lower() == "true", None
            return None, nope
        case F.DATE | F.TIMESTAMP:
            return _as_temporal(v, ty, nope)
        case F.JSON:
            if isinstance(v, str):
                try:
                    json.loads(v)
                except ValueError:
                    return None, f"`{shown}` is not JSON text"
                return v, None
            return ir.literal_source(v), None
        case F.BINARY:
            return None, "a binary column has no constants"
    raise AssertionError(ty)  # pragma: no cover


def _as_number(v: ir.LiteralValue) -> Decimal | None:
    if isinstance(v, bool) or v is None:
        return None
    if isinstance(v, int | Decimal):
        return Decimal(v)
    try:
        d = Decimal(v.strip())
    except InvalidOperation:
        return None
    return d if d.is_finite() else None


def _fits(d: Decimal, ty: model.SqlType) -> bool:
    assert ty.precision is not None
    scale = ty.scale or 0
    exp = d.as_tuple().exponent
    assert isinstance(exp, int)
    if -exp > scale and d != d.quantize(Decimal(1).scaleb(-scale)):
        return False
    return abs(d) < Decimal(10) ** (ty.precision - scale)


def _as_temporal(v: ir.LiteralValue, ty: model.SqlType, nope: str) -> tuple[str | None, str | None]:
    if not isinstance(v, str):
        return None, nope
    text = v.strip()
    try:
        if ty.family is F.DATE:
            return dt.date.fromisoformat(text).isoformat(), None
        value = dt.datetime.fromisoformat(text)
    except ValueError:
        want = (
            'a date such as "2024-01-31"'
            if ty.family is F.DATE
            else 'a timestamp such as "2024-01-31T12:00:00Z"'
        )
        return None, f"{nope}: write {want}"
    if ty.name == "timestamptz" and value.tzinfo is None:
        value = value.replace(tzinfo=dt.UTC)
    if ty.name == "timestamp" and value.tzinfo is not None:
        value = value.astimezone(dt.UTC).replace(tzinfo=None)
    return value.isoformat(), None
