"""Masking methods: exact values, edge cases, and a cross-check against real PostgreSQL."""

from __future__ import annotations

import datetime as dt
import hashlib
from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from tests.evalkit import T, col, ctx, program
from tests.pg import PgServer, temporary_database
from veil import ir, methods, model
from veil.evaluator import EvaluationError, eval_expr
from veil.masking import (
    TEST_HASH_KEY,
    apply_method,
    expand_replacement,
    hash_text,
    is_hash_key,
    regex_replace,
    round_to_step,
    show,
    truncate,
)

UTC = dt.UTC
TEXT = T("text")


def masked(action: methods.MaskAction, value: object, type_: model.SqlType = TEXT) -> object:
    return apply_method(action, value, type_)


ALL_METHODS: list[methods.MaskAction] = [
    methods.MaskNull(),
    methods.MaskHash(salt="s"),
    methods.MaskShow(side="first", count=2),
    methods.MaskShow(side="last", count=2),
    methods.MaskRegex(pattern="a", replacement="b"),
    methods.MaskRound(step=Decimal(10)),
    methods.MaskTruncate(unit="month"),
    methods.MaskEmailDomain(),
]


@pytest.mark.parametrize("action", ALL_METHODS, ids=methods.action_name)
def test_null_stays_null(action: methods.MaskAction) -> None:
    assert masked(action, None) is None


def test_constant_replaces_null_too_and_takes_the_column_type() -> None:
    assert masked(methods.MaskConstant(value="REDACTED"), None) == "REDACTED"
    assert masked(methods.MaskConstant(value="REDACTED"), "x") == "REDACTED"
    assert masked(methods.MaskConstant(value=0), 5, T("integer")) == 0
    assert masked(
        methods.MaskConstant(value="2000-01-01"), dt.date(2024, 5, 1), T("date")
    ) == dt.date(2000, 1, 1)
    assert masked(
        methods.MaskConstant(value=7), Decimal(1), T("decimal", precision=5, scale=2)
    ) == Decimal(7)


def test_null_method() -> None:
    assert masked(methods.MaskNull(), "secret") is None


def sha256_hex(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()


def test_the_test_key_is_documented_and_well_formed() -> None:
    assert sha256_hex("veil test key") == TEST_HASH_KEY
    assert is_hash_key(TEST_HASH_KEY)
    assert not is_hash_key(TEST_HASH_KEY.upper())
    assert not is_hash_key(TEST_HASH_KEY[:63])
    assert not is_hash_key(TEST_HASH_KEY + "0")
    assert not is_hash_key(TEST_HASH_KEY[:63] + "\n")


def test_hash_is_sha256_keyed_by_the_tables_key() -> None:
    k = TEST_HASH_KEY
    kt = sha256_hex(f"{k}:salt")[:32]
    expected = sha256_hex(f"{kt}héllo")
    assert masked(methods.MaskHash(salt="salt"), "héllo") == expected
    assert masked(methods.MaskHash(salt="salt", length=19), "héllo") == expected[:19]
    assert masked(methods.MaskHash(salt=""), "") == sha256_hex(sha256_hex(f"{k}:")[:32])
    assert masked(methods.MaskHash(salt="x"), "A") != masked(methods.MaskHash(salt="y"), "A")
    assert expected == expected.lower()


def test_hash_known_answer() -> None:
    """A fixed key, salt and value against the digest computed here, byte by byte, from
    hashlib: Kt = the first 32 hex characters of SHA-256(K ":" salt), hash = SHA-256(Kt value)."""
    key = "0123456789abcdef" * 4
    table_key = hashlib.sha256(b"0123456789abcdef" * 4 + b":sales.transactions").hexdigest()[:32]
    value = "zoë@example.com"
    digest = hashlib.sha256(table_key.encode("ascii") + value.encode("utf-8")).hexdigest()
    assert hash_text("sales.transactions", value, None, key) == digest
    assert hash_text("sales.transactions", value, 12, key) == digest[:12]
    assert methods.table_key(key, "sales.transactions") == table_key
    assert is_hash_key(table_key * 2)  # 32 lowercase hex characters: 128 bits
    # the pinned figures, so that a change of construction is a visible change of this test
    assert table_key == "19dc0e2e08237d2005f997b41d3742d6"
    assert digest == "14c69763bfbdfb81688b1959fe459a2beb5a4ef4510b5ce241e17eeae9db4cae"


@given(st.text(max_size=40))
@example("x" * 23)
@example("é" * 11 + "x")  # 23 UTF-8 bytes
@example("x" * 24)
def test_a_value_of_up_to_23_utf8_bytes_is_one_sha256_block(value: str) -> None:
    """The message `hash` hashes per value (`methods.hash_input`): SHA-256 pads a message of up
    to 55 bytes into one 64-byte block, and a value of up to 23 UTF-8 bytes gives one."""
    per_value = methods.hash_input(TEST_HASH_KEY, "s", value)
    assert hash_text("s", value) == hashlib.sha256(per_value).hexdigest()
    assert (len(per_value) <= 55) == (len(value.encode("utf-8")) <= 23)


def sha256_padding(length: int) -> bytes:
    """What SHA-256 appends to a message of `length` bytes: 0x80, zeros, the length in bits."""
    return b"\x80" + b"\0" * ((55 - length) % 64) + (8 * length).to_bytes(8, "big")


@given(st.text(max_size=80), st.binary(max_size=8), st.text(max_size=8))
def test_no_value_extends_another(value: str, tail: bytes, more: str) -> None:
    """Length extension gives H(m + pad + x) from H(m); so no value's input (`hash_input`) may
    begin with another's padded input. It cannot: every input is one prefix then the value's
    UTF-8, pad starts with 0x80, which starts no UTF-8 character, so what would follow the
    value is the UTF-8 of no string (docs/security.md, "`hash` is keyed")."""
    data = methods.hash_input(TEST_HASH_KEY, "s", value)
    pad = sha256_padding(len(data))
    assert (len(data) + len(pad)) % 64 == 0
    # the values that come closest: the value continued by any text, or by the padding and
    # tail read one character per byte (what an encoding other than UTF-8 might give back)
    for other in (value + more, value + (pad + tail).decode("latin-1")):
        assert not methods.hash_input(TEST_HASH_KEY, "s", other).startswith(data + pad)
    # and every value's input is the same prefix, then exactly the value's UTF-8
    assert data == methods.hash_input(TEST_HASH_KEY, "s", "") + value.encode("utf-8")


def test_table_keys_differ_per_table_and_per_key() -> None:
    tables = ["sales.transactions", "sales.customers", "a.b", ""]
    keys = {methods.table_key(TEST_HASH_KEY, s) for s in tables}
    assert len(keys) == len(tables)
    assert methods.table_key("0" * 64, "a.b") != methods.table_key(TEST_HASH_KEY, "a.b")
    # the deployment's key is in no table key
    assert all(k not in TEST_HASH_KEY for k in keys)


def test_hash_depends_on_the_key() -> None:
    other = "0" * 64
    action = methods.MaskHash(salt="salt")
    assert apply_method(action, "héllo", TEXT, other) == hash_text("salt", "héllo", None, other)
    assert apply_method(action, "héllo", TEXT, other) != masked(action, "héllo")
    # without the key, the unkeyed hash of a guessed value does not match
    assert masked(action, "héllo") != sha256_hex("salt:héllo")


def test_a_malformed_key_is_an_error() -> None:
    with pytest.raises(EvaluationError, match="64 lowercase hexadecimal"):
        hash_text("s", "v", None, "not a key")


@pytest.mark.parametrize(
    ("value", "side", "count", "expected"),
    [
        ("4111-1111-1111-1111", "last", 4, "***************1111"),
        ("4111-1111-1111-1111", "first", 4, "4111***************"),
        ("1234", "last", 4, "****"),  # n characters or fewer: all stars
        ("12", "last", 4, "**"),
        ("", "last", 4, ""),
        ("", "first", 0, ""),
        ("abc", "first", 0, "***"),
        ("abc", "last", 0, "***"),
        ("héllo wörld", "first", 3, "hél********"),  # code points, not bytes
        ("日本語テキスト", "last", 2, "*****スト"),
        ("😀😀😀", "last", 1, "**😀"),
    ],
)
def test_show(value: str, side: str, count: int, expected: str) -> None:
    action = methods.MaskShow(side="first" if side == "first" else "last", count=count)
    assert masked(action, value) == expected


@given(st.text(max_size=20), st.integers(0, 25), st.sampled_from(["first", "last"]))
def test_show_keeps_the_length_and_at_most_n_characters(value: str, n: int, side: str) -> None:
    out = show(value, "first" if side == "first" else "last", n)
    assert len(out) == len(value)
    kept = [c for c, v in zip(out, value, strict=True) if c == v and c != "*"]
    assert len(kept) <= n
    if len(value) <= n:
        assert out == "*" * len(value)


@pytest.mark.parametrize(
    ("value", "pattern", "replacement", "length", "expected"),
    [
        ("alice@example.com", r"^(.)[^@]*@", r"\1***@", None, "a***@example.com"),
        ("a1b22c333", r"\d+", "#", None, "a#b#c#"),  # every match
        ("abc", r"(x)?b", r"[\1]", None, "a[]c"),  # a group that did not take part: ""
        ("abc", "b", r"\\", None, "a\\c"),  # `\\` is one backslash
        ("abc", "b", r"\n\&", None, "a\\n\\&c"),  # other escapes stand for themselves
        ("abxd", "x*", "-", None, "-a-b--d-"),  # empty matches (PostgreSQL agrees)
        ("١٢٣", r"\d", "#", None, "١٢٣"),  # ASCII classes only
        ("secret-value", ".", "*", 4, "****"),
        ("", ".*", "X", None, "X"),
    ],
)
def test_regex(
    value: str, pattern: str, replacement: str, length: int | None, expected: str
) -> None:
    action = methods.MaskRegex(pattern=pattern, replacement=replacement, length=length)
    assert masked(action, value) == expected


def test_expand_replacement_group_beyond_the_pattern_is_empty() -> None:
    import re

    m = re.match("(a)", "a")
    assert m is not None
    assert expand_replacement(r"\1\2\9x\\", m) == "ax\\"
    assert regex_replace("aa", "a", "\\") == "\\\\"  # a trailing backslash is literal


@pytest.mark.parametrize(
    ("value", "step", "type_", "expected"),
    [
        (1249, "100", T("integer"), 1200),
        (1250, "100", T("integer"), 1300),  # halves away from zero
        (-1250, "100", T("integer"), -1300),
        (-1249, "100", T("bigint"), -1200),
        (-49, "100", T("integer"), 0),  # no negative zero
        (7, "5", T("smallint"), 5),
        (Decimal("12.345"), "0.05", T("decimal", precision=12, scale=2), Decimal("12.35")),
        (Decimal("-0.125"), "0.25", T("decimal", precision=12, scale=3), Decimal("-0.250")),
        (Decimal("1234.56"), "1000", T("decimal", precision=12, scale=2), Decimal("1000.00")),
        (Decimal("-0.01"), "1", T("decimal", precision=5, scale=2), Decimal("0.00")),
        (Decimal("2.5"), "1", T("decimal"), Decimal("3")),  # unconstrained: the exact result
        (2.675, "0.01", T("double"), 2.68),  # 15 significant digits first, like PostgreSQL
        (-2.5, "1", T("double"), -3.0),
        (0.1, "0.1", T("real"), 0.1),
        (1e20, "1000", T("double"), 1e20),
    ],
)
def test_round(
    value: int | Decimal | float, step: str, type_: model.SqlType, expected: object
) -> None:
    got = masked(methods.MaskRound(step=Decimal(step)), value, type_)
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(got, Decimal):
        assert got.as_tuple().exponent == Decimal(str(expected)).as_tuple().exponent
    if isinstance(got, float):
        assert str(got) != "-0.0"


@given(st.integers(-(10**12), 10**12), st.sampled_from(["1", "5", "10", "100", "250"]))
def test_round_is_the_nearest_multiple(value: int, step: str) -> None:
    s = Decimal(step)
    got = round_to_step(value, s, T("bigint"))
    assert isinstance(got, int)
    assert got % int(s) == 0
    assert abs(got - value) * 2 <= s
    if abs(got - value) * 2 == s:  # a half: away from zero
        assert abs(got) > abs(value)


def test_round_rejects_a_step_that_is_not_positive() -> None:
    with pytest.raises(EvaluationError, match="positive"):
        round_to_step(5, Decimal(0), T("integer"))


@pytest.mark.parametrize(
    ("value", "unit", "expected"),
    [
        (dt.datetime(2024, 8, 17, 13, 5, 9, 7), "year", dt.datetime(2024, 1, 1)),
        (dt.datetime(2024, 8, 17, 13, 5), "quarter", dt.datetime(2024, 7, 1)),
        (dt.datetime(2024, 3, 31, 23, 59), "quarter", dt.datetime(2024, 1, 1)),
        (dt.datetime(2024, 4, 1), "quarter", dt.datetime(2024, 4, 1)),
        (dt.datetime(2024, 12, 31, 23, 59), "quarter", dt.datetime(2024, 10, 1)),
        (dt.datetime(2024, 2, 29, 13, 5), "month", dt.datetime(2024, 2, 1)),
        (dt.datetime(2024, 2, 29, 13, 5), "day", dt.datetime(2024, 2, 29)),
        (dt.datetime(2024, 2, 29, 13, 5, 59, 999999), "hour", dt.datetime(2024, 2, 29, 13)),
        (
            dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
            "day",
            dt.datetime(2023, 12, 31, tzinfo=UTC),
        ),  # aware: truncated in UTC
        (dt.date(2024, 11, 30), "quarter", dt.date(2024, 10, 1)),  # a date stays a date
        (dt.date(2024, 11, 30), "year", dt.date(2024, 1, 1)),
        (dt.date(2024, 11, 30), "hour", dt.date(2024, 11, 30)),
    ],
)
def test_truncate(value: dt.date, unit: str, expected: dt.date) -> None:
    got = truncate(value, unit)  # type: ignore[arg-type]
    assert got == expected
    assert type(got) is type(expected)
    if isinstance(got, dt.datetime) and isinstance(expected, dt.datetime):
        assert got.tzinfo == expected.tzinfo


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("alice@example.com", "example.com"),
        ('"a@b"@example.org', "example.org"),  # the last `@`
        ("no-at-sign", None),
        ("trailing@", ""),
        ("@", ""),
        ("", None),
        ("ünï@cödé.example", "cödé.example"),
    ],
)
def test_email_domain(value: str, expected: str | None) -> None:
    assert masked(methods.MaskEmailDomain(), value) == expected


@pytest.mark.parametrize(
    ("action", "value"),
    [
        (methods.MaskHash(salt="s"), 5),
        (methods.MaskShow(side="last", count=4), 1234),
        (methods.MaskRegex(pattern="a", replacement="b"), dt.date(2024, 1, 1)),
        (methods.MaskEmailDomain(), b"a@b"),
        (methods.MaskRound(step=Decimal(1)), "12"),
        (methods.MaskRound(step=Decimal(1)), True),
        (methods.MaskTruncate(unit="day"), "2024-01-01"),
    ],
)
def test_a_method_on_the_wrong_type_is_an_error(action: methods.MaskAction, value: object) -> None:
    with pytest.raises(EvaluationError, match="cannot mask"):
        masked(action, value)


# --------------------------------------------------------------------------------------------
# PostgreSQL agrees (the SQL here is what a target is expected to generate)

PG_CASES: list[tuple[str, object, methods.MaskAction, model.SqlType]] = [
    (
        f"encode(sha256(convert_to((SELECT left(encode(sha256(convert_to(k || ':s', 'UTF8')),"
        f" 'hex'), 32) FROM (VALUES ('{TEST_HASH_KEY}')) AS t(k)) || %(v)s::text, 'UTF8')),"
        " 'hex')",
        "héllo",
        methods.MaskHash(salt="s"),
        TEXT,
    ),
    (
        f"encode(sha256(convert_to(left(encode(sha256(convert_to('{TEST_HASH_KEY}:s.t', 'UTF8')),"
        " 'hex'), 32) || %(v)s::text, 'UTF8')), 'hex')",
        "a value of more than one SHA-256 block: ünïcödé and more than 64 bytes in all",
        methods.MaskHash(salt="s.t"),
        TEXT,
    ),
    (
        "CASE WHEN char_length(%(v)s::text) <= 4 THEN repeat('*', char_length(%(v)s::text))"
        " ELSE repeat('*', char_length(%(v)s::text) - 4) || right(%(v)s::text, 4) END",
        "日本語テキスト",
        methods.MaskShow(side="last", count=4),
        TEXT,
    ),
    (
        "regexp_replace(%(v)s::text, '\\d+', '#', 'g')",
        "a1b22c333",
        methods.MaskRegex(pattern=r"\d+", replacement="#"),
        TEXT,
    ),
    (
        "regexp_replace(%(v)s::text, 'x*', '-', 'g')",
        "abxd",
        methods.MaskRegex(pattern="x*", replacement="-"),
        TEXT,
    ),
    (
        "regexp_replace(%(v)s::text, '^(.)[^@]*@', '\\1***@', 'g')",
        "alice@example.com",
        methods.MaskRegex(pattern="^(.)[^@]*@", replacement=r"\1***@"),
        TEXT,
    ),
    (
        "(round(%(v)s::integer::numeric / 100) * 100)::integer",
        -1250,
        methods.MaskRound(step=Decimal(100)),
        T("integer"),
    ),
    (
        "(round(%(v)s::numeric(12,2) / 0.05) * 0.05)::numeric(12,2)",
        Decimal("-12.375"),
        methods.MaskRound(step=Decimal("0.05")),
        T("decimal", precision=12, scale=2),
    ),
    (
        "(round(%(v)s::float8::numeric / 0.01) * 0.01)::float8",
        2.675,
        methods.MaskRound(step=Decimal("0.01")),
        T("double"),
    ),
    (
        "(round(%(v)s::real::numeric / 0.01) * 0.01)::real",
        0.125,
        methods.MaskRound(step=Decimal("0.01")),
        T("real"),
    ),
    (
        "date_trunc('quarter', %(v)s::timestamp)",
        dt.datetime(2024, 12, 31, 23, 59),
        methods.MaskTruncate(unit="quarter"),
        T("timestamp"),
    ),
    (
        "date_trunc('quarter', %(v)s::date)::date",
        dt.date(2024, 5, 31),
        methods.MaskTruncate(unit="quarter"),
        T("date"),
    ),
    (
        "date_trunc('day', %(v)s::timestamptz)",
        dt.datetime(2024, 1, 1, 0, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
        methods.MaskTruncate(unit="day"),
        T("timestamptz"),
    ),
    (
        "CASE WHEN position('@' in %(v)s::text) = 0 THEN NULL"
        " ELSE regexp_replace(%(v)s::text, '^.*@', '') END",
        '"a@b"@example.org',
        methods.MaskEmailDomain(),
        TEXT,
    ),
]


def test_methods_agree_with_postgresql(pg_server: PgServer) -> None:
    with temporary_database(pg_server) as db, db.admin_connect() as conn:
        for sql, value, action, type_ in PG_CASES:
            row = conn.execute(f"SELECT {sql}", {"v": value}).fetchone()
            assert row is not None
            assert apply_method(action, value, type_) == row[0], sql


@pytest.mark.parametrize(
    ("start", "interval"),
    [
        ("2024-03-31", "-1 month"),
        ("2024-01-31", "1 month"),
        ("2024-02-29", "1 year"),
        ("2024-02-29", "-4 years"),
        ("2023-12-31", "2 months"),
        ("2024-03-10 06:00", "-36 hours"),
        ("2024-01-31", "3 weeks"),
        ("2024-05-31 23:59", "-3 months"),
    ],
)
def test_interval_arithmetic_agrees_with_postgresql(
    pg_server: PgServer, start: str, interval: str
) -> None:
    amount, unit = interval.split()
    n = int(amount)  # the grammar has no negative interval: `t - 1 month`
    expr = ir.Arith(
        op="+" if n >= 0 else "-", left=col("t"), right=ir.Interval(amount=abs(n), unit=unit)
    )
    ours = eval_expr(program(), expr, {"t": dt.datetime.fromisoformat(start)}, ctx())
    with temporary_database(pg_server) as db, db.admin_connect() as conn:
        row = conn.execute("SELECT %s::timestamp + %s::interval", (start, interval)).fetchone()
    assert row is not None
    assert ours == row[0].replace(tzinfo=UTC)
