"""IR back to veil source: what the printer writes parses back to the same IR."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from veil import ir, methods
from veil.parser import parse_file
from veil.printer import (
    action_to_source,
    cond_to_source,
    expr_to_source,
    literal_to_source,
    name_to_source,
    string_literal,
)


def parse_where(text: str) -> ir.Expr:
    f, diags = parse_file(f"filter t where {text}\n", "p.veil")
    assert not diags, (text, diags)
    assert f is not None
    stmt = f.statements[0]
    assert isinstance(stmt, ir.Filter)
    return stmt.where


def parse_cond(text: str) -> ir.Condition:
    f, diags = parse_file(f"mask x unless {text}\n", "p.veil")
    assert not diags, (text, diags)
    assert f is not None
    stmt = f.statements[0]
    assert isinstance(stmt, ir.Mask) and stmt.clauses[0].cond is not None
    return stmt.clauses[0].cond


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", '"plain"'),
        ('say "hi"\\', '"say \\"hi\\"\\\\"'),
        ("a\nb\tc\r\0", '"a\\nb\\tc\\r\\0"'),
        ("\x01\x7f", '"\\u0001\\u007f"'),
        ("héllo 😀", '"héllo 😀"'),
    ],
)
def test_string_literal(value: str, expected: str) -> None:
    assert string_literal(value) == expected


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("Fraud Detection", "Fraud Detection"),
        ("analysts", "analysts"),
        ("Fraud Detection.Chargebacks", '"Fraud Detection.Chargebacks"'),
        ("Review and Audit", '"Review and Audit"'),  # a keyword would end bare words
        ("two  spaces", '"two  spaces"'),
        ("", '""'),
        ("9lives", '"9lives"'),
    ],
)
def test_names(name: str, expected: str) -> None:
    assert name_to_source(name) == expected


def test_literals() -> None:
    assert [
        literal_to_source(v)
        for v in (None, True, False, -3, Decimal("2.50"), Decimal("5"), Decimal("1E+2"), "x")
    ] == ["null", "true", "false", "-3", "2.50", "5.0", "100.0", '"x"']


def test_actions() -> None:
    assert [
        action_to_source(a)
        for a in (
            None,
            methods.MaskNull(),
            methods.MaskHash(salt="s", length=9),
            methods.MaskEmailDomain(),
            methods.MaskConstant(value="REDACTED"),
            methods.MaskConstant(value=Decimal("0.00")),
            methods.MaskShow(side="last", count=4),
            methods.MaskShow(side="first", count=1),
            methods.MaskRegex(pattern=r"\d", replacement=r"\1"),
            methods.MaskRound(step=Decimal(100)),
            methods.MaskTruncate(unit="quarter"),
        )
    ] == [
        "reveal",
        "null",
        "hash",
        "email_domain",
        'constant("REDACTED")',
        "constant(0.00)",
        "show_last(4)",
        "show_first(1)",
        'regex("\\\\d", "\\\\1")',
        "round(100)",
        "truncate(quarter)",
    ]


@pytest.mark.parametrize(
    "text",
    [
        "created_at >= now() - 90 days",
        "region in user.region or region is null",
        "not (a = 1 or b = 2) and c between 1 and 2 + 3",
        "a - (b - c) = -(x + 1)",
        "(a = b) = true",
        'x not in (1, -2, 3.5, null, "s")',
        "user.name = owner and team not in user.groups",
        "`Order Lines`.`unit price` > 0",
        "d not between today() - 7 days and today()",
        "-90 days < x",
    ],
)
def test_predicates_print_back_as_written(text: str) -> None:
    assert expr_to_source(parse_where(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "purpose Fraud Detection or group stewards",
        'not (purpose "Fraud Detection.Chargebacks" or any purpose) and user bob',
        'attribute `cost center` = "a\\"b" and not not group x',
        "(group a or group b) and (group c or group d)",
    ],
)
def test_conditions_print_back_as_written(text: str) -> None:
    assert cond_to_source(parse_cond(text)) == text


def test_condition_constants() -> None:
    assert (
        cond_to_source(
            ir.CondOr(items=(ir.CondConst(value=False), ir.InGroup(group=ir.Name(value="a"))))
        )
        == "false or group a"
    )


# --------------------------------------------------------------------------------------------
# Round trips of generated IR

_idents = st.from_regex(r"[a-z_][a-z0-9_]{0,6}", fullmatch=True).filter(
    lambda s: s not in ir.KEYWORDS
)
_parts = _idents | st.text(
    st.characters(blacklist_characters="\n\r`", min_codepoint=32, max_codepoint=0x2FF),
    min_size=1,
    max_size=6,
)
_columns = st.lists(_parts, min_size=1, max_size=3).map(
    lambda ps: ir.ColumnRef(name=ir.ObjectName(parts=tuple(ps)))
)
_strings = st.text(st.characters(blacklist_categories=["Cs"]), max_size=8)
_numbers = st.integers(-(10**6), 10**6) | st.decimals(
    allow_nan=False, allow_infinity=False, places=3, min_value=-(10**4), max_value=10**4
)
_literals: st.SearchStrategy[ir.Expr] = st.one_of(st.none(), st.booleans(), _numbers, _strings).map(
    lambda v: ir.Literal(value=v)
)
_units = st.sampled_from(sorted(ir.INTERVAL_UNITS))
_values: st.SearchStrategy[ir.Expr] = st.one_of(
    _literals,
    _columns,
    st.sampled_from([ir.Now(), ir.Today(), ir.UserRef(attr="name")]),
    st.builds(lambda n, u: ir.Interval(amount=n, unit=u), st.integers(0, 400), _units),
)


def _neg(e: ir.Expr) -> ir.Expr:
    if (
        isinstance(e, ir.Literal)
        and not isinstance(e.value, bool)
        and isinstance(e.value, int | Decimal)
    ):
        return ir.Neg(item=ir.ColumnRef(name=ir.ObjectName(parts=("n",))))  # folded by parser
    return ir.Neg(item=e)


_sums: st.SearchStrategy[ir.Expr] = st.recursive(
    _values,
    lambda inner: st.one_of(
        st.builds(
            lambda op, a, b: ir.Arith(op=op, left=a, right=b),
            st.sampled_from(["+", "-"]),
            inner,
            inner,
        ),
        inner.map(_neg),
    ),
    max_leaves=4,
)
_ops = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
_attrs = st.sampled_from(["groups", "region", "department"])


def _pred_atoms(sums: st.SearchStrategy[ir.Expr]) -> st.SearchStrategy[ir.Expr]:
    return st.one_of(
        sums,
        st.builds(lambda op, a, b: ir.Compare(op=op, left=a, right=b), _ops, sums, sums),
        st.builds(
            lambda i, o, n: ir.InList(item=i, options=tuple(o), negated=n),
            sums,
            st.lists(sums, min_size=1, max_size=3),
            st.booleans(),
        ),
        st.builds(
            lambda i, a, n: ir.InUser(item=i, ref=ir.UserRef(attr=a), negated=n),
            sums,
            _attrs,
            st.booleans(),
        ),
        st.builds(
            lambda i, lo, hi, n: ir.Between(item=i, low=lo, high=hi, negated=n),
            sums,
            sums,
            sums,
            st.booleans(),
        ),
        st.builds(lambda i, n: ir.IsNull(item=i, negated=n), sums, st.booleans()),
    )


_preds = st.recursive(
    _pred_atoms(_sums),
    lambda inner: st.one_of(
        inner.map(lambda i: ir.BoolNot(item=i)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.BoolAnd(items=tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.BoolOr(items=tuple(xs))),
        # a predicate in parentheses used as a value: `(a = b) = true`
        st.builds(lambda a, b: ir.Compare(op="=", left=a, right=b), inner, _literals),
    ),
    max_leaves=6,
)


@settings(max_examples=300)
@given(_preds)
def test_printed_predicates_parse_back_to_the_same_ir(expr: ir.Expr) -> None:
    assert parse_where(expr_to_source(expr)) == expr


_words = st.lists(
    _idents.map(str.capitalize).filter(lambda s: s.lower() not in ir.KEYWORDS),
    min_size=1,
    max_size=3,
).map(" ".join)
_names = (_words | _strings).map(lambda v: ir.Name(value=v))
_cond_atoms = st.one_of(
    _names.map(lambda n: ir.PurposeIs(purpose=n)),
    st.just(ir.AnyPurpose()),
    _names.map(lambda n: ir.InGroup(group=n)),
    _names.map(lambda n: ir.IsUser(user=n)),
    st.builds(lambda k, v: ir.HasAttribute(key=k, value=v), _parts, _strings),
)
_conds = st.recursive(
    _cond_atoms,
    lambda inner: st.one_of(
        inner.map(lambda i: ir.CondNot(item=i)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.CondAnd(items=tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.CondOr(items=tuple(xs))),
    ),
    max_leaves=6,
)


@settings(max_examples=300)
@given(_conds)
def test_printed_conditions_parse_back_to_the_same_ir(cond: ir.Condition) -> None:
    assert parse_cond(cond_to_source(cond)) == cond
