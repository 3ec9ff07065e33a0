"""The reference value of each masking method: what every target must compute for a masked
cell, on the evaluator's values. Pure functions, with nothing of the evaluator's side, so that
the registry (`veil.methods`) can name them and the targets can import it.

The reference values (a NULL input gives NULL for every method except `constant`, which always
gives its value; lengths and positions count Unicode code points, never bytes):

null            NULL.
constant(v)     v, read as the column type (a date column's constant is a date).
hash            a keyed hash: with K the deployment's secret key (64 lowercase hex characters)
                and sha256_hex the lowercase hex of the SHA-256 of the UTF-8 bytes, the table's
                key Kt = sha256_hex(K + ":" + salt)[:32] (the salt is `model.table_id` of the
                table: its name, a part with `.` or `"` double-quoted, so no two tables share
                it), and hash = sha256_hex(Kt + value) (its bytes are `hash_input`), then
                the first `length` characters when the checker set a length (to fit the
                column). Without K, nobody can hash candidate values and compare. Kt has a
                fixed length, so no separator is needed, and a value of up to 23 UTF-8 bytes
                is one SHA-256 block; a target computes Kt once per query (per value in a
                native tag policy, whose salt is the row's table).
                SHA-256 keyed by a secret prefix is open only to length extension (from
                H(Kt + v), H(Kt + v + pad + x) for any x, where pad starts with the byte 0x80),
                and 0x80 never starts a UTF-8 character: v + pad + x is the UTF-8 of no string,
                so no value's input extends another's (docs/security.md, "`hash` is keyed").
                The evaluator, `veil test` and `veil explain` use TEST_HASH_KEY.
show_first(n)   the first n characters, every other character replaced by `*`; a value of n
show_last(n)    characters or fewer becomes all `*` of the same length ("" stays "").
regex(p, r)     every non-overlapping match of p, left to right, replaced by r, then the first
                `length` characters when set. p is matched with ASCII character classes (`\\d`,
                `\\w`, `\\s` are ASCII only, like PostgreSQL under the `C` locale); after an
                empty match the search moves on one character. In r, `\\1`…`\\9` insert a group
                ("" when it did not take part), `\\\\` inserts one backslash, and any other
                character, backslash included, stands for itself.
round(step)     the nearest multiple of step, halves away from zero, computed exactly in decimal.
                A float is first read as a decimal of 15 significant digits (6 for `real`),
                like PostgreSQL's cast to numeric. The result has the column's type: an int for
                integer columns (halves away from zero again), a Decimal with the column's
                scale for decimal(p,s) (rounded half away from zero), a float for real/double.
                Negative zero becomes zero.
truncate(unit)  date_trunc: the start of the year, quarter (January, April, July, October),
                month, day or hour. Aware timestamps are truncated in UTC; a date stays a date
                (`day` and `hour` leave it unchanged).
email_domain    the text after the last `@` ("" when `@` is last); NULL when there is no `@`.

A value of a family the method does not fit raises `EvaluationError` (`need`; the checker's
type rules never let it through).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
import typing as t
from decimal import ROUND_HALF_UP, Decimal

from veil import model

TruncateUnit: t.TypeAlias = t.Literal["year", "quarter", "month", "day", "hour"]
TRUNCATE_UNITS: tuple[str, ...] = t.get_args(TruncateUnit)

EXACT = decimal.Context(prec=400, rounding=decimal.ROUND_HALF_UP)
"""Decimal context for exact arithmetic (PostgreSQL `numeric` is arbitrary-precision)."""


class EvaluationError(Exception):
    """A value of the wrong type reached an operation (the checker should have rejected it)."""


def _sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


#: The fixed, public key of the `hash` method in the evaluator, `veil test` and `veil explain`
#: (and in the tests, which set a database's key to it): sha256_hex("veil test key"). A real
#: deployment draws its own secret key on the first apply (docs/targets/*.md, "The hash key").
TEST_HASH_KEY = _sha256_hex("veil test key")

_HASH_KEY = re.compile(r"[0-9a-f]{64}\Z")


def is_hash_key(key: str) -> bool:
    """A key of the `hash` method: exactly 64 lowercase hexadecimal characters."""
    return _HASH_KEY.match(key) is not None


def hash_text(salt: str, value: str, length: int | None = None, key: str = TEST_HASH_KEY) -> str:
    """The keyed hash of `value` in the table salted `salt` (see the module's docstring)."""
    if not is_hash_key(key):
        raise EvaluationError("a hash key must be 64 lowercase hexadecimal characters")
    digest = hashlib.sha256(hash_input(key, salt, value)).hexdigest()
    return digest if length is None else digest[:length]


def hash_input(key: str, salt: str, value: str) -> bytes:
    """The message SHA-256 hashes for `value` in the table salted `salt`: the table's key Kt
    (32 ASCII bytes), then the UTF-8 of the value, nothing between or after. So a value of up
    to 23 UTF-8 bytes is one 64-byte block, and no value's padded input begins another's."""
    return table_key(key, salt).encode("ascii") + value.encode("utf-8")


#: Hex characters of a table's key: 128 bits.
TABLE_KEY_LENGTH = 32


def table_key(key: str, salt: str) -> str:
    """The key `hash` uses in the table salted `salt`: a pseudo-random function of the salt
    under the deployment's key, so two tables' keys are unrelated and neither gives `key`."""
    return _sha256_hex(f"{key}:{salt}")[:TABLE_KEY_LENGTH]


def show(value: str, side: t.Literal["first", "last"], count: int) -> str:
    if len(value) <= count:
        return "*" * len(value)
    hidden = "*" * (len(value) - count)
    return value[:count] + hidden if side == "first" else hidden + value[len(value) - count :]


def replacement_parts(replacement: str) -> list[int | str]:
    """A regex replacement read as group numbers and literal text.

    `\\1`…`\\9` is a group, `\\\\` one backslash, any other character (a lone backslash
    included) stands for itself. Every target renders these parts in its own syntax.
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


def expand_replacement(replacement: str, match: re.Match[str]) -> str:
    """`\\1`…`\\9` -> the group (or ""), `\\\\` -> `\\`; everything else literally."""
    groups = match.re.groups or 0
    return "".join(
        part if isinstance(part, str) else (match.group(part) if part <= groups else None) or ""
        for part in replacement_parts(replacement)
    )


def regex_replace(value: str, pattern: str, replacement: str, length: int | None = None) -> str:
    compiled = re.compile(pattern, re.ASCII)
    result = compiled.sub(lambda m: expand_replacement(replacement, m), value)
    return result if length is None else result[:length]


def _float_to_decimal(value: float, type_: model.SqlType) -> Decimal:
    digits = 6 if type_.name == "real" else 15
    return Decimal(format(value, f".{digits}g"))


def round_to_step(value: int | Decimal | float, step: Decimal, type_: model.SqlType) -> object:
    if step <= 0:
        raise EvaluationError(f"round step must be positive, got {step}")
    x = _float_to_decimal(value, type_) if isinstance(value, float) else Decimal(value)
    quotient = EXACT.divide(x, step).quantize(Decimal(1), rounding=ROUND_HALF_UP, context=EXACT)
    result = EXACT.plus(EXACT.multiply(quotient, step))
    match type_.family:
        case model.Family.INTEGER:
            return int(result.to_integral_value(rounding=ROUND_HALF_UP))
        case model.Family.FLOAT:
            return float(result)
        case model.Family.DECIMAL if type_.precision is not None:
            exp = Decimal(1).scaleb(-(type_.scale or 0))
            return EXACT.plus(result.quantize(exp, rounding=ROUND_HALF_UP, context=EXACT))
        case _:
            return result


def truncate(value: dt.date, unit: TruncateUnit) -> dt.date:
    if (
        isinstance(value, dt.datetime)
        and value.tzinfo is not None
        and value.utcoffset() is not None
    ):
        value = value.astimezone(dt.UTC)
    if unit == "year":
        month, day = 1, 1
    elif unit == "quarter":
        month, day = 3 * ((value.month - 1) // 3) + 1, 1
    elif unit == "month":
        month, day = value.month, 1
    else:
        month, day = value.month, value.day
    if not isinstance(value, dt.datetime):
        return dt.date(value.year, month, day)
    hour = value.hour if unit == "hour" else 0
    return value.replace(month=month, day=day, hour=hour, minute=0, second=0, microsecond=0)


def email_domain(value: str) -> str | None:
    _head, at, domain = value.rpartition("@")
    return domain if at else None


_V = t.TypeVar("_V")


def need(value: object, kind: type[_V] | tuple[type, ...], method: str) -> _V:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise EvaluationError(f"`{method}` cannot mask a {type(value).__name__} value")
    return t.cast(_V, value)
