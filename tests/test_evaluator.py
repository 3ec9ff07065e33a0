"""The reference evaluator: who (conditions), rows (three-valued predicates), cells (masks)."""

from __future__ import annotations

import datetime as dt
import itertools
import sqlite3
from collections.abc import Iterator, Mapping
from decimal import Decimal
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.evalkit import (
    NOW,
    OPEN,
    SURVEY,
    TX,
    TX_TABLE,
    always,
    cmp,
    col,
    ctx,
    group,
    lit,
    program,
    purpose,
    span,
    unless,
)
from tests.pg import Connection, PgServer, temporary_database
from veil import ir, methods, model
from veil.evaluator import (
    Context,
    EvaluationError,
    NoPurpose,
    check_purposes,
    decide_arm,
    eval_condition,
    eval_expr,
    eval_predicate,
    evaluate_cell,
    evaluate_table,
    mask_value,
    visible_row,
)
from veil.masking import TEST_HASH_KEY, hash_text

P = program()
UTC = dt.UTC


def pred(
    expr: ir.Expr,
    row: Mapping[str, object] | None = None,
    user: str = "alice",
    now: dt.datetime = NOW,
) -> bool | None:
    return eval_predicate(P, expr, row or {}, ctx(user, now=now))


def value(expr: ir.Expr, row: Mapping[str, object] | None = None) -> object:
    return eval_expr(P, expr, row or {}, ctx())


def minus(a: ir.Expr, b: ir.Expr) -> ir.Arith:
    return ir.Arith(op="-", left=a, right=b)


def plus(a: ir.Expr, b: ir.Expr) -> ir.Arith:
    return ir.Arith(op="+", left=a, right=b)


def iv(amount: int, unit: str) -> ir.Interval:
    return ir.Interval(amount=amount, unit=unit)


# --------------------------------------------------------------------------------------------
# Context


def test_context_needs_an_aware_now_and_keeps_it_in_utc() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        Context(user="alice", now=dt.datetime(2024, 1, 1))
    paris = dt.timezone(dt.timedelta(hours=2))
    c = Context(user="alice", now=dt.datetime(2024, 7, 1, 1, 0, tzinfo=paris))
    assert c.now == dt.datetime(2024, 6, 30, 23, 0, tzinfo=UTC)
    assert c.now.tzinfo is UTC
    assert c.today() == dt.date(2024, 6, 30)  # the UTC date, not the local one


# --------------------------------------------------------------------------------------------
# Who: purposes


@pytest.mark.parametrize(
    ("user", "project", "table", "reason"),
    [
        ("alice", None, TX, NoPurpose.NO_PROJECT),
        ("alice", "nope", TX, NoPurpose.UNKNOWN_PROJECT),
        ("carol", "fraud_q4", TX, NoPurpose.NOT_MEMBER),
        ("mallory", "fraud_q4", TX, NoPurpose.NOT_MEMBER),
        ("alice", "pending_p", TX, NoPurpose.NOT_APPROVED),
        ("alice", "revoked_p", TX, NoPurpose.NOT_APPROVED),
        ("bob", "stale_p", TX, NoPurpose.NOT_APPROVED),
        ("alice", "fraud_q4", SURVEY, NoPurpose.NOT_SOURCE),
        ("alice", "fraud_q4", TX, None),
    ],
)
def test_purpose_checks_fail_closed_in_order(
    user: str, project: str | None, table: model.TableKey, reason: NoPurpose | None
) -> None:
    check = check_purposes(P, user, project, table)
    assert check.reason is reason
    assert (check.purposes == ()) == (reason is not None)


def test_project_level_check_skips_sources() -> None:
    assert check_purposes(P, "alice", "fraud_q4", None).purposes == ("Fraud Detection",)
    assert check_purposes(P, "alice", "mixed", SURVEY).purposes == ("Audit",)  # pending excluded


@pytest.mark.parametrize(
    ("project", "required", "expected"),
    [
        ("fraud_q4", "Fraud Detection", True),
        ("chargebacks", "Fraud Detection", True),  # a sub-purpose satisfies its ancestor
        ("chargebacks", "Fraud Detection.Chargebacks", True),
        ("fraud_q4", "Fraud Detection.Chargebacks", False),  # never the reverse
        ("fraud_q4", "Fraud", False),  # path segments, not string prefixes
        ("fraud_q4", "Marketing", False),
        ("mixed", "Marketing", False),  # pending
        ("mixed", "Audit", True),
        ("stale_p", "Fraud Detection", False),
        ("pending_p", "Fraud Detection", False),
        ("revoked_p", "Fraud Detection", False),
        (None, "Fraud Detection", False),
        ("nope", "Fraud Detection", False),
    ],
)
def test_purpose_condition(project: str | None, required: str, expected: bool) -> None:
    assert eval_condition(P, purpose(required), ctx("alice", project), TX) is expected


def test_purpose_needs_membership_and_the_table_in_the_project() -> None:
    assert eval_condition(P, purpose("Fraud Detection"), ctx("bob", "fraud_q4"), TX)
    assert not eval_condition(P, purpose("Fraud Detection"), ctx("carol", "fraud_q4"), TX)
    assert not eval_condition(P, purpose("Fraud Detection"), ctx("bob", "chargebacks"), TX)
    assert not eval_condition(P, purpose("Fraud Detection"), ctx("alice", "fraud_q4"), SURVEY)
    assert not eval_condition(P, ir.AnyPurpose(), ctx("alice", "fraud_q4"), OPEN)
    # an undeclared user listed as a member still acts under the project's purposes
    prog = program()
    prog = model.Program(
        tables=prog.tables,
        purposes=prog.purposes,
        groups=prog.groups,
        users=prog.users,
        projects=(
            model.ProjectInfo(
                name="p",
                purposes=(
                    model.ProjectPurpose(purpose="Audit", state=model.PurposeState.APPROVED),
                ),
                members=("zed",),
                sources=(TX,),
            ),
        ),
        masks=(),
        row_rules=(),
    )
    assert eval_condition(prog, purpose("Audit"), ctx("zed", "p"), TX)


def test_any_purpose() -> None:
    assert eval_condition(P, ir.AnyPurpose(), ctx("alice", "mixed"), SURVEY)
    for project in (None, "pending_p", "revoked_p", "stale_p", "nope"):
        assert not eval_condition(P, ir.AnyPurpose(), ctx("alice", project), TX)


def test_group_user_attribute_and_unknown_users() -> None:
    alice, stranger = ctx("alice"), ctx("mallory")
    assert eval_condition(P, group("analysts"), alice, TX)
    assert not eval_condition(P, group("stewards"), alice, TX)
    assert not eval_condition(P, group("analysts"), stranger, TX)
    assert eval_condition(P, ir.IsUser(user=ir.Name(value="alice")), alice, TX)
    assert not eval_condition(P, ir.IsUser(user=ir.Name(value="Alice")), alice, TX)
    attr = ir.HasAttribute(key="region", value="APAC")
    assert eval_condition(P, attr, alice, TX)
    assert not eval_condition(P, ir.HasAttribute(key="region", value="LATAM"), alice, TX)
    assert not eval_condition(P, ir.HasAttribute(key="nope", value="APAC"), alice, TX)
    assert not eval_condition(P, attr, stranger, TX)


def test_boolean_connectives_of_conditions() -> None:
    a, f = group("analysts"), group("stewards")
    c = ctx("alice")
    assert eval_condition(P, ir.CondOr(items=(f, a)), c, TX)
    assert not eval_condition(P, ir.CondAnd(items=(a, f)), c, TX)
    assert eval_condition(P, ir.CondNot(item=f), c, TX)
    assert eval_condition(P, ir.CondConst(value=True), c, TX)
    assert not eval_condition(P, ir.CondConst(value=False), c, TX)


# --------------------------------------------------------------------------------------------
# Three-valued logic against a brute-force truth table and against SQLite

T3 = (True, False, None)
_AND = {
    (a, b): (False if False in (a, b) else None if None in (a, b) else True) for a in T3 for b in T3
}
_AND_TABLE = {  # written out, the way SQL textbooks print it
    (True, True): True,
    (True, False): False,
    (True, None): None,
    (False, True): False,
    (False, False): False,
    (False, None): False,
    (None, True): None,
    (None, False): False,
    (None, None): None,
}
_OR_TABLE = {
    (True, True): True,
    (True, False): True,
    (True, None): True,
    (False, True): True,
    (False, False): False,
    (False, None): None,
    (None, True): True,
    (None, False): None,
    (None, None): None,
}
_NOT_TABLE = {True: False, False: True, None: None}


def test_truth_table_is_the_textbook_one() -> None:
    assert _AND == _AND_TABLE


def _brute(expr: ir.Expr) -> bool | None:
    match expr:
        case ir.Literal(value=v):
            assert v is None or isinstance(v, bool)
            return v
        case ir.BoolNot(item=i):
            return _NOT_TABLE[_brute(i)]
        case ir.BoolAnd(items=items):
            out = _brute(items[0])
            for i in items[1:]:
                out = _AND_TABLE[(out, _brute(i))]
            return out
        case ir.BoolOr(items=items):
            out = _brute(items[0])
            for i in items[1:]:
                out = _OR_TABLE[(out, _brute(i))]
            return out
    raise AssertionError(expr)


logic = st.recursive(
    st.sampled_from(T3).map(lit),
    lambda inner: st.one_of(
        inner.map(lambda i: ir.BoolNot(item=i)),
        st.lists(inner, min_size=2, max_size=4).map(lambda xs: ir.BoolAnd(items=tuple(xs))),
        st.lists(inner, min_size=2, max_size=4).map(lambda xs: ir.BoolOr(items=tuple(xs))),
    ),
    max_leaves=12,
)


@given(logic)
def test_kleene_logic_matches_the_truth_tables(expr: ir.Expr) -> None:
    assert pred(expr) is _brute(expr)


def _sql(expr: ir.Expr, pg: bool = False, boolean: bool = True) -> str:
    """SQL text of an integer predicate, for SQLite or (`pg`) PostgreSQL."""

    def r(e: ir.Expr) -> str:
        return _sql(e, pg, boolean=False)

    def rb(e: ir.Expr) -> str:
        return _sql(e, pg, boolean=True)

    match expr:
        case ir.Literal(value=None):
            return ("NULL::boolean" if boolean else "NULL::int") if pg else "NULL"
        case ir.Literal(value=bool(v)):
            return ("TRUE" if v else "FALSE") if pg else str(int(v))
        case ir.Literal(value=int(v)):
            return str(v)
        case ir.ColumnRef(name=name):
            return name.parts[-1]
        case ir.BoolNot(item=i):
            return f"(NOT {rb(i)})"
        case ir.BoolAnd(items=items):
            return "(" + " AND ".join(map(rb, items)) + ")"
        case ir.BoolOr(items=items):
            return "(" + " OR ".join(map(rb, items)) + ")"
        case ir.Compare(op=op, left=a, right=b):
            return f"({r(a)} {'<>' if op == '!=' else op} {r(b)})"
        case ir.InList(item=i, options=opts, negated=neg):
            return f"({r(i)} {'NOT IN' if neg else 'IN'} ({', '.join(map(r, opts))}))"
        case ir.Between(item=i, low=lo, high=hi, negated=neg):
            kw = "NOT BETWEEN" if neg else "BETWEEN"
            return f"({r(i)} {kw} {r(lo)} AND {r(hi)})"
        case ir.IsNull(item=i, negated=neg):
            return f"({r(i)} IS {'NOT NULL' if neg else 'NULL'})"
    raise AssertionError(expr)


ints = st.one_of(st.none(), st.integers(-2, 2)).map(lit) | st.sampled_from(["x", "y"]).map(col)
ops: st.SearchStrategy[ir.CompareOp] = st.sampled_from(["=", "!=", "<", "<=", ">", ">="])
atoms = st.one_of(
    st.builds(lambda op, a, b: ir.Compare(op=op, left=a, right=b), ops, ints, ints),
    st.builds(
        lambda i, o, n: ir.InList(item=i, options=tuple(o), negated=n),
        ints,
        st.lists(ints, min_size=1, max_size=3),
        st.booleans(),
    ),
    st.builds(
        lambda i, lo, hi, n: ir.Between(item=i, low=lo, high=hi, negated=n),
        ints,
        ints,
        ints,
        st.booleans(),
    ),
    st.builds(lambda i, n: ir.IsNull(item=i, negated=n), ints, st.booleans()),
    st.sampled_from(T3).map(lit),
)
predicates = st.recursive(
    atoms,
    lambda inner: st.one_of(
        inner.map(lambda i: ir.BoolNot(item=i)),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.BoolAnd(items=tuple(xs))),
        st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.BoolOr(items=tuple(xs))),
    ),
    max_leaves=8,
)
_SQLITE = sqlite3.connect(":memory:")


@settings(max_examples=300)
@given(
    predicates, st.one_of(st.none(), st.integers(-2, 2)), st.one_of(st.none(), st.integers(-2, 2))
)
def test_predicates_match_sqlite(expr: ir.Expr, x: int | None, y: int | None) -> None:
    """SQLite implements SQL's NULL rules for and/or/not, comparisons, IN, BETWEEN, IS NULL."""
    (expected,) = _SQLITE.execute(
        f"SELECT {_sql(expr)} FROM (SELECT ? AS x, ? AS y)", (x, y)
    ).fetchone()
    got = pred(expr, {"x": x, "y": y})
    assert got == (None if expected is None else bool(expected))


@pytest.fixture(scope="module")
def pg_conn(pg_server: PgServer) -> Iterator[Connection]:
    with temporary_database(pg_server) as db, db.admin_connect() as conn:
        yield conn


@settings(
    max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    predicates, st.one_of(st.none(), st.integers(-2, 2)), st.one_of(st.none(), st.integers(-2, 2))
)
def test_predicates_match_postgresql(
    pg_conn: Connection, expr: ir.Expr, x: int | None, y: int | None
) -> None:
    row = pg_conn.execute(
        f"SELECT {_sql(expr, pg=True)} FROM (SELECT %s::int AS x, %s::int AS y) AS r", (x, y)
    ).fetchone()
    assert row is not None
    assert pred(expr, {"x": x, "y": y}) is row[0]


_D, _TS = dt.date(2024, 1, 1), dt.datetime(2024, 1, 1, 0, 0, 1)


@pytest.mark.parametrize(
    ("sql", "expr", "row"),
    [
        (
            "%(d)s::date = '2024-01-01 00:00'::timestamp",
            cmp("=", col("d"), col("t")),
            {"d": _D, "t": dt.datetime(2024, 1, 1)},
        ),
        ("%(d)s::date < %(t)s::timestamp", cmp("<", col("d"), col("t")), {"d": _D, "t": _TS}),
        ("%(t)s::timestamp >= '2024-01-01'", cmp(">=", col("t"), lit("2024-01-01")), {"t": _TS}),
        (
            "%(d)s::date IN ('2023-12-31', '2024-01-01')",
            ir.InList(item=col("d"), options=(lit("2023-12-31"), lit("2024-01-01"))),
            {"d": _D},
        ),
        ("%(n)s::numeric > '10'", cmp(">", col("n"), lit("10")), {"n": Decimal("10.01")}),
        (
            "%(n)s::numeric(4,1) = 0.1::float8",
            cmp("=", col("n"), col("f")),
            {"n": Decimal("0.1"), "f": 0.1},
        ),
        (
            "'Z' < 'a' COLLATE \"C\" AND 'é' > 'z' COLLATE \"C\"",
            ir.BoolAnd(items=(cmp("<", lit("Z"), lit("a")), cmp(">", lit("é"), lit("z")))),
            {},
        ),
        (
            "%(s)s::text = ANY ('{}'::text[])",
            ir.InUser(item=col("s"), ref=ir.UserRef(attr="nothing")),
            {"s": None},
        ),
        (
            "NOT (%(s)s::text = ANY ('{}'::text[]))",
            ir.InUser(item=col("s"), ref=ir.UserRef(attr="nothing"), negated=True),
            {"s": None},
        ),
        (
            "%(s)s::text = ANY ('{EMEA,APAC}'::text[])",
            ir.InUser(item=col("s"), ref=ir.UserRef(attr="region")),
            {"s": None},
        ),
        (
            "'2024-03-31 12:30+00'::timestamptz - interval '1 month' > %(t)s::timestamp",
            cmp(">", minus(ir.Now(), iv(1, "month")), col("t")),
            {"t": dt.datetime(2024, 2, 29, 12, 29)},
        ),
        (
            "'2024-03-31'::date - interval '1 month' = %(t)s::timestamp",
            cmp("=", minus(ir.Today(), iv(1, "month")), col("t")),
            {"t": dt.datetime(2024, 2, 29)},
        ),
    ],
)
def test_comparisons_match_postgresql(
    pg_conn: Connection, sql: str, expr: ir.Expr, row: dict[str, object]
) -> None:
    got = pg_conn.execute(f"SELECT {sql}", row).fetchone()
    assert got is not None
    assert pred(expr, row) is got[0]


def test_a_non_boolean_in_a_boolean_position_is_an_error() -> None:
    with pytest.raises(EvaluationError, match="expected a boolean"):
        pred(ir.BoolNot(item=lit(1)))


# --------------------------------------------------------------------------------------------
# Comparisons and values


@pytest.mark.parametrize(
    ("left", "op", "right", "expected"),
    [
        (1, "=", Decimal("1.00"), True),
        (Decimal("0.1"), "=", 0.1, True),  # a float makes both floats (PostgreSQL)
        (3, "<", 3.5, True),
        ("Z", "<", "a", True),  # code points, not a linguistic collation
        ("é", ">", "z", True),
        ("", "<", " ", True),
        (False, "<", True, True),
        (dt.date(2024, 1, 1), "=", dt.datetime(2024, 1, 1), True),  # date promoted to midnight
        (dt.date(2024, 1, 1), "<", dt.datetime(2024, 1, 1, 0, 0, 1), True),
        (dt.datetime(2024, 1, 1, 12), "=", dt.datetime(2024, 1, 1, 12, tzinfo=UTC), True),
        (
            dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1))),
            "<",
            dt.datetime(2024, 1, 1, 12),
            True,
        ),
        (None, "=", None, None),
        (1, "!=", None, None),
    ],
)
def test_comparisons(left: object, op: ir.CompareOp, right: object, expected: bool | None) -> None:
    assert pred(cmp(op, col("a"), col("b")), {"a": left, "b": right}) is expected


@pytest.mark.parametrize(("left", "right"), [(True, 1), ("1", 1), (dt.date(2024, 1, 1), "x")])
def test_comparing_unlike_values_is_an_error(left: object, right: object) -> None:
    with pytest.raises(EvaluationError, match="cannot compare"):
        pred(cmp("=", col("a"), col("b")), {"a": left, "b": right})


def test_a_string_literal_is_read_as_the_type_it_is_compared_with() -> None:
    row = {"t": dt.datetime(2024, 1, 1, 10), "d": dt.date(2024, 1, 2), "n": Decimal("10.5")}
    assert pred(cmp(">=", col("t"), lit("2024-01-01")), row) is True
    assert pred(cmp("<", lit("2024-01-01T11:00:00Z"), col("t")), row) is False
    assert pred(cmp("=", col("d"), lit("2024-01-02")), row) is True
    assert pred(cmp(">", col("n"), lit("10")), row) is True
    in_list = ir.InList(item=col("d"), options=(lit("2024-01-01"), lit("2024-01-02")))
    assert pred(in_list, row) is True
    assert pred(ir.Between(item=col("n"), low=lit("10"), high=lit(11)), row) is True
    with pytest.raises(EvaluationError, match="is not a date"):
        pred(cmp("=", col("d"), lit("yesterday")), row)
    with pytest.raises(EvaluationError, match="cannot compare"):  # a string column never
        pred(cmp("=", col("s"), lit(1)), {"s": "1"})


def test_columns_resolve_by_their_last_part_and_missing_ones_are_null() -> None:
    ref = ir.ColumnRef(name=ir.ObjectName(parts=("sales", "transactions", "region")))
    assert pred(cmp("=", ref, lit("EU")), {"region": "EU"}) is True
    assert pred(ir.IsNull(item=col("nope")), {"region": "EU"}) is True


def test_in_user_sets() -> None:
    region = ir.UserRef(attr="region")

    def inn(item: ir.Expr, attr: str = "region", negated: bool = False) -> ir.InUser:
        return ir.InUser(item=item, ref=ir.UserRef(attr=attr), negated=negated)

    assert pred(inn(lit("EMEA"))) is True
    assert pred(inn(lit("LATAM"))) is False
    assert pred(inn(lit("LATAM"), negated=True)) is True
    assert pred(inn(lit(None))) is None  # NULL item, non-empty set
    assert pred(inn(lit(None), negated=True)) is None
    assert pred(inn(lit("analysts"), "groups")) is True
    # an empty set: FALSE for `in`, TRUE for `not in`, whatever the item (SQL `= ANY('{}')`)
    for user in ("carol", "mallory"):
        assert pred(inn(lit(None)), user=user) is False
        assert pred(inn(lit(None), negated=True), user=user) is True
        assert pred(inn(lit("EMEA"), "groups"), user=user) is False
    assert pred(cmp("=", ir.UserRef(attr="name"), lit("alice"))) is True
    with pytest.raises(EvaluationError, match="is a set"):
        value(region)
    with pytest.raises(EvaluationError, match="holds strings"):
        pred(inn(lit(1)))


def test_is_null_between_and_in_lists_with_nulls() -> None:
    row = {"a": None, "b": 5}
    assert pred(ir.IsNull(item=col("a")), row) is True
    assert pred(ir.IsNull(item=col("b"), negated=True), row) is True
    assert pred(ir.InList(item=col("b"), options=(lit(1), lit(None))), row) is None
    assert pred(ir.InList(item=col("b"), options=(lit(5), lit(None))), row) is True
    assert pred(ir.InList(item=col("b"), options=(lit(1), lit(None)), negated=True), row) is None
    assert pred(ir.InList(item=col("b"), options=(lit(1), lit(2)), negated=True), row) is True
    assert pred(ir.Between(item=col("b"), low=lit(6), high=lit(None)), row) is False
    assert pred(ir.Between(item=col("b"), low=lit(1), high=lit(None)), row) is None
    assert pred(ir.Between(item=col("b"), low=lit(9), high=lit(1)), row) is False  # not symmetric


# --------------------------------------------------------------------------------------------
# Time and arithmetic


def test_now_today_and_day_intervals() -> None:
    assert value(ir.Now()) == NOW
    assert value(ir.Today()) == dt.date(2024, 3, 31)
    assert value(minus(ir.Now(), iv(90, "days"))) == dt.datetime(2024, 1, 1, 12, 30, tzinfo=UTC)
    assert value(plus(iv(2, "weeks"), ir.Now())) == dt.datetime(2024, 4, 14, 12, 30, tzinfo=UTC)
    assert value(minus(ir.Now(), iv(36, "hours"))) == dt.datetime(2024, 3, 30, 0, 30, tzinfo=UTC)
    assert value(minus(ir.Today(), iv(1, "day"))) == dt.datetime(2024, 3, 30, tzinfo=UTC)
    assert value(minus(ir.Today(), lit(1))) == dt.date(2024, 3, 30)  # date - integer: a date
    assert value(ir.Neg(item=iv(1, "minute"))) == value(iv(-60, "seconds"))
    recent = cmp(">=", col("created_at"), minus(ir.Now(), iv(90, "days")))
    assert pred(recent, {"created_at": dt.datetime(2024, 1, 1, 12, 30)}) is True
    assert pred(recent, {"created_at": dt.datetime(2024, 1, 1, 12, 29, 59)}) is False
    assert pred(recent, {"created_at": None}) is None


@pytest.mark.parametrize(
    ("start", "amount", "unit", "expected"),
    [
        (dt.datetime(2024, 3, 31), -1, "month", dt.datetime(2024, 2, 29)),  # leap day clamp
        (dt.datetime(2023, 3, 31), -1, "month", dt.datetime(2023, 2, 28)),
        (dt.datetime(2024, 1, 31), 1, "months", dt.datetime(2024, 2, 29)),
        (dt.datetime(2024, 2, 29), 1, "year", dt.datetime(2025, 2, 28)),
        (dt.datetime(2024, 2, 29), -4, "years", dt.datetime(2020, 2, 29)),
        (dt.datetime(2024, 5, 31, 23, 59), -3, "months", dt.datetime(2024, 2, 29, 23, 59)),
        (dt.datetime(2024, 12, 15), 1, "month", dt.datetime(2025, 1, 15)),
        (dt.datetime(2024, 1, 15), -13, "months", dt.datetime(2022, 12, 15)),
    ],
)
def test_calendar_intervals_clamp_the_day_of_month(
    start: dt.datetime, amount: int, unit: str, expected: dt.datetime
) -> None:
    got = value(plus(col("t"), iv(amount, unit)), {"t": start})
    assert got == expected.replace(tzinfo=UTC)


def test_months_are_added_before_days() -> None:
    # PostgreSQL: '2024-01-31'::timestamp + interval '1 month 1 day' = 2024-03-01
    interval = plus(iv(1, "month"), iv(1, "day"))
    got = value(plus(col("t"), interval), {"t": dt.datetime(2024, 1, 31)})
    assert got == dt.datetime(2024, 3, 1, tzinfo=UTC)


def test_number_arithmetic() -> None:
    assert value(plus(lit(2), lit(3))) == 5
    assert value(minus(lit(Decimal("0.1")), lit(Decimal("0.3")))) == Decimal("-0.2")
    big = value(plus(lit(10**30), lit(Decimal("0.000001"))))  # exact, not 28 digits
    assert big == Decimal("1000000000000000000000000000000.000001")
    assert isinstance(value(plus(col("f"), lit(1)), {"f": 0.5}), float)
    assert value(ir.Neg(item=col("n")), {"n": Decimal("2.5")}) == Decimal("-2.5")
    assert value(plus(col("n"), lit(1)), {"n": None}) is None
    with pytest.raises(EvaluationError, match="cannot compute"):
        value(plus(lit("a"), lit(1)))
    with pytest.raises(EvaluationError, match="unknown interval unit"):
        value(iv(1, "fortnight"))


# --------------------------------------------------------------------------------------------
# Masks


def test_mask_arms_first_match_wins() -> None:
    mask = model.ColumnMask(
        table=TX,
        column="email",
        type=model.SqlType(name="varchar"),
        arms=(
            model.MaskArm(action=None, cond=purpose("Fraud Detection"), span=span(2)),
            model.MaskArm(action=methods.MaskEmailDomain(), cond=group("analysts"), span=span(3)),
            model.MaskArm(action=methods.MaskNull(), cond=None, span=span(4)),
        ),
        policies=(span(1),),
    )
    row = {"email": "a@b.example"}
    clear = mask_value(P, mask, "a@b.example", row, ctx("alice", "fraud_q4"))
    assert (clear.value, clear.masked, clear.method, clear.policy) == (
        "a@b.example",
        False,
        "reveal",
        span(2),
    )
    domain = mask_value(P, mask, "a@b.example", row, ctx("alice"))
    assert (domain.value, domain.masked, domain.method, domain.policy) == (
        "b.example",
        True,
        "email_domain",
        span(3),
    )
    null = mask_value(P, mask, "a@b.example", row, ctx("bob"))
    assert (null.value, null.method, null.policy) == (None, "null", span(4))


def test_a_mask_without_a_matching_arm_masks_with_null() -> None:
    mask = model.ColumnMask(
        table=TX,
        column="email",
        type=model.SqlType(name="varchar"),
        arms=(model.MaskArm(action=None, cond=group("nobody")),),
        policies=(span(7),),
    )
    assert decide_arm(P, mask, ctx()).action == methods.MaskNull()
    cell = mask_value(P, mask, "x", {}, ctx())
    assert (cell.value, cell.masked, cell.policy) == (None, True, span(7))


def test_when_false_clears_when_null_or_true_masks() -> None:
    eu = cmp("=", col("region"), lit("EU"))
    mask = unless(
        TX,
        "notes",
        methods.MaskConstant(value="REDACTED"),
        purpose("Fraud Detection"),
        when=eu,
        line=9,
    )
    c = ctx("bob")
    for region, shown, masked in (
        ("US", "secret", False),
        ("EU", "REDACTED", True),
        (None, "REDACTED", True),
    ):
        cell = mask_value(P, mask, "secret", {"region": region}, c)
        assert (cell.value, cell.masked) == (shown, masked), region
        assert cell.policy == span(9)
    # the purpose still reveals where `when` holds
    cell = mask_value(P, mask, "secret", {"region": "EU"}, ctx("alice", "fraud_q4"))
    assert (cell.value, cell.masked) == ("secret", False)


def test_when_reads_the_row_coerced_to_column_types() -> None:
    old = cmp("<", col("created_at"), lit("2024-01-01"))
    mask = always(TX, "notes", methods.MaskNull(), when=old)
    for created, shown in (
        ("2023-05-01 10:00", None),
        ("2024-05-01", "x"),
        (dt.date(2023, 1, 1), None),
        (None, None),
    ):
        assert mask_value(P, mask, "x", {"created_at": created}, ctx()).value == shown


def test_evaluate_cell_for_unmasked_and_masked_columns() -> None:
    prog = program(masks=(always(TX, "amount", methods.MaskRound(step=Decimal(100))),))
    row = {"amount": 1250, "region": "EU"}
    cell = evaluate_cell(prog, TX, "amount", row, ctx())
    assert (cell.value, cell.masked, cell.method) == (Decimal("1300.00"), True, "round")
    assert evaluate_cell(prog, TX, "region", row, ctx()).policy is None
    with pytest.raises(EvaluationError, match="not a table"):
        evaluate_cell(prog, ("no", "table"), "x", row, ctx())


# --------------------------------------------------------------------------------------------
# Rows


def _filter(where: ir.Expr, allow: ir.Condition | None = None, line: int = 1) -> model.RowRule:
    return model.RowRule(
        table=TX,
        kind="filter",
        allow=allow or ir.CondConst(value=False),
        where=where,
        span=span(line),
    )


def test_row_rules_and_null_predicates_hide() -> None:
    by_region = _filter(
        ir.InUser(item=col("region"), ref=ir.UserRef(attr="region")),
        allow=purpose("Fraud Detection"),
    )
    restrict = model.RowRule(
        table=TX,
        kind="restrict",
        allow=ir.CondOr(items=(purpose("Fraud Detection"), purpose("Audit"))),
    )
    prog = program(rules=(by_region,))
    assert visible_row(prog, TX, {"region": "EMEA"}, ctx()).visible
    assert not visible_row(prog, TX, {"region": "LATAM"}, ctx()).visible
    assert not visible_row(prog, TX, {"region": None}, ctx()).visible  # NULL hides
    assert not visible_row(prog, TX, {}, ctx()).visible  # a missing column is NULL
    assert visible_row(prog, TX, {"region": None}, ctx("alice", "fraud_q4")).visible
    assert not visible_row(prog, TX, {"region": "EMEA"}, ctx("carol")).visible  # no regions

    both = program(rules=(by_region, restrict))
    result = visible_row(both, TX, {"region": "EMEA"}, ctx())
    assert not result.visible
    assert result.rules == ((by_region, True), (restrict, False))
    assert visible_row(both, TX, {"region": "LATAM"}, ctx("alice", "mixed")).rules == (
        (by_region, False),
        (restrict, True),
    )
    assert visible_row(both, TX, {"region": "LATAM"}, ctx("alice", "fraud_q4")).visible
    assert visible_row(program(), TX, {}, ctx()).visible  # no rules: every row


def test_where_is_not_evaluated_when_allow_holds() -> None:
    broken = _filter(cmp("=", col("region"), lit(1)), allow=group("analysts"))
    prog = program(rules=(broken,))
    assert visible_row(prog, TX, {"region": "EU"}, ctx("alice")).visible
    with pytest.raises(EvaluationError):
        visible_row(prog, TX, {"region": "EU"}, ctx("bob"))


def test_row_values_are_coerced_to_column_types() -> None:
    recent = _filter(cmp(">=", col("created_at"), minus(ir.Now(), iv(90, "days"))))
    prog = program(rules=(recent,))
    assert visible_row(prog, TX, {"created_at": "2024-03-01T00:00:00"}, ctx()).visible
    assert visible_row(prog, TX, {"created_at": dt.date(2024, 3, 1)}, ctx()).visible
    assert not visible_row(prog, TX, {"created_at": "2023-03-01"}, ctx()).visible


def test_evaluate_table() -> None:
    prog = program(
        masks=(
            unless(
                TX,
                "credit_card",
                methods.MaskShow(side="last", count=4),
                purpose("Fraud Detection"),
                line=3,
            ),
            always(TX, "email", methods.MaskHash(salt="s", length=12), line=4),
        ),
        rules=(_filter(cmp("!=", col("region"), lit("LATAM"))),),
    )
    rows: list[dict[str, object]] = [
        {
            "id": 1,
            "credit_card": "4111-1111-1111-1111",
            "email": "a@x.io",
            "amount": 1,
            "region": "EU",
            "created_at": None,
            "notes": "n",
        },
        {"id": 2, "credit_card": "5500", "email": None, "region": "LATAM"},
        {"id": 3, "credit_card": None, "email": "b@y.io", "region": None},
    ]
    out = evaluate_table(prog, TX, rows, ctx("bob"))
    assert out[1] is None and out[2] is None
    assert out[0] == {
        "id": 1,
        "credit_card": "***************1111",
        "email": hash_text("s", "a@x.io", 12, TEST_HASH_KEY),
        "amount": 1,
        "region": "EU",
        "created_at": None,
        "notes": "n",
    }
    assert list(out[0]) == [c.name for c in TX_TABLE.columns]  # catalog order
    assert out[0]["amount"] == 1 and isinstance(out[0]["amount"], int)  # unmasked: unchanged
    clear = evaluate_table(prog, TX, rows[:1], ctx("bob", "fraud_q4"))[0]
    assert clear is not None and clear["credit_card"] == "4111-1111-1111-1111"
    with pytest.raises(EvaluationError, match="not a table"):
        evaluate_table(prog, ("x",), rows, ctx())
    keyed = Context(user="bob", now=NOW, hash_key="f" * 64)
    other = evaluate_table(prog, TX, rows[:1], keyed)[0]
    assert other is not None and other["email"] == hash_text("s", "a@x.io", 12, "f" * 64)
    assert other["email"] != out[0]["email"]


def test_undeclared_users_and_projects_see_masked_data() -> None:
    prog = program(
        masks=(
            unless(
                TX,
                "email",
                methods.MaskNull(),
                ir.CondOr(items=(purpose("Fraud Detection"), group("analysts"))),
            ),
        )
    )
    for who, project in itertools.product(("mallory", "carol"), (None, "fraud_q4", "nope")):
        cell = evaluate_cell(prog, TX, "email", {"email": "x@y"}, ctx(who, project))
        assert cell.masked and cell.value is None


# --------------------------------------------------------------------------------------------
# From source: parse -> check -> evaluate

SOURCE = """
table sales.transactions {
  id           bigint
  credit_card  varchar(19)    tags pii.card
  email        varchar        tags pii.email
  amount       decimal(12,2)
  region       varchar
  created_at   timestamp
  notes        text
}
purpose "Fraud Detection"
purpose "Fraud Detection.Chargebacks"
group analysts
group auditors
user alice { groups analysts; region "EMEA", "APAC" }
user bob
approvers carol
project fraud_q4 {
  purposes "Fraud Detection"
  members  {members}
  sources  sales.transactions
}
mask tagged pii.card with show_last(4) unless purpose "Fraud Detection.Chargebacks" or \\
  purpose Fraud Detection
mask tagged pii.email with email_domain
mask amount with round(100) for group analysts
mask notes with constant("REDACTED") when region = "EU" unless purpose Fraud Detection
filter sales.transactions where region in user.region unless purpose "Fraud Detection"
filter sales.transactions where created_at >= now() - 90 days unless group auditors
"""


def _checked(text: str) -> model.Program:
    from veil.checker import check
    from veil.parser import parse_file

    f, diags = parse_file(text, "policies.veil")
    assert f is not None, diags
    result = check(ir.PolicySet(files=(f,)))
    assert not [d for d in result.diagnostics if d.is_error], result.diagnostics
    assert result.program is not None
    return result.program


def _approved_source(members: str = "alice, bob", members_later: str | None = None) -> str:
    from veil.approvals import approval_record, approve_line, project_digest

    text = SOURCE.replace("{members}", members)
    prog = _checked(text)
    project = prog.project("fraud_q4")
    assert project is not None
    purposes = {p.name: p for p in prog.purposes}
    line = approve_line(
        "fraud_q4",
        "Fraud Detection",
        "carol",
        NOW,
        project_digest(project, purposes),
        approval_record(project, purposes),
    )
    if members_later is not None:
        text = SOURCE.replace("{members}", members_later)
    return text + line


ROWS: list[dict[str, object]] = [
    {
        "id": 1,
        "credit_card": "4111-1111-1111-1111",
        "email": "a@shop.example",
        "amount": 1250,
        "region": "EMEA",
        "created_at": "2024-03-01 10:00:00",
        "notes": "n1",
    },
    {
        "id": 2,
        "credit_card": "5500-0000-0000-0004",
        "email": "b@x.example",
        "amount": 49,
        "region": "EU",
        "created_at": "2024-03-02 10:00:00",
        "notes": "n2",
    },
    {
        "id": 3,
        "credit_card": None,
        "email": None,
        "amount": None,
        "region": None,
        "created_at": None,
        "notes": None,
    },
    {
        "id": 4,
        "credit_card": "1",
        "email": "c@y.example",
        "amount": -150,
        "region": "APAC",
        "created_at": "2023-01-01 00:00:00",
        "notes": "old",
    },
]


def test_from_source_without_approval_everything_is_masked() -> None:
    prog = _checked(SOURCE.replace("{members}", "alice, bob"))
    out = evaluate_table(prog, TX, ROWS, ctx("alice", "fraud_q4"))
    assert out[1] is None and out[2] is None and out[3] is None  # region / NULL / too old
    assert out[0] == {
        "id": 1,
        "credit_card": "***************1111",
        "email": "shop.example",
        "amount": Decimal("1300.00"),
        "region": "EMEA",
        "created_at": "2024-03-01 10:00:00",
        "notes": "n1",
    }


def test_from_source_an_approved_project_reveals_and_unfilters() -> None:
    prog = _checked(_approved_source())
    project = prog.project("fraud_q4")
    assert project is not None and project.active_purposes == ("Fraud Detection",)
    out = evaluate_table(prog, TX, ROWS, ctx("alice", "fraud_q4"))
    # the 90-day filter still applies (only auditors skip it), and a NULL created_at hides
    assert out[2] is None and out[3] is None
    first, second = out[0], out[1]
    assert first is not None and second is not None
    assert first["credit_card"] == "4111-1111-1111-1111"
    assert second["notes"] == "n2" and second["amount"] == Decimal("0.00")
    bob = evaluate_table(prog, TX, ROWS, ctx("bob", "fraud_q4"))[1]
    assert bob is not None and bob["amount"] == 49  # bob is not an analyst
    nobody = evaluate_table(prog, TX, ROWS, ctx("bob"))
    assert nobody == [None, None, None, None]  # bob has no regions


def test_from_source_a_stale_approval_grants_nothing() -> None:
    prog = _checked(_approved_source(members_later="alice"))
    project = prog.project("fraud_q4")
    assert project is not None
    assert [p.state for p in project.purposes] == [model.PurposeState.STALE]
    out = evaluate_table(prog, TX, ROWS, ctx("alice", "fraud_q4"))
    assert out[1] is None  # EU is not among alice's regions
    first = out[0]
    assert first is not None and first["credit_card"] == "***************1111"
    notes = evaluate_table(prog, TX, [dict(ROWS[1], region="EMEA")], ctx("alice", "fraud_q4"))
    assert notes[0] is not None and notes[0]["notes"] == "n2"  # not EU: `when` is false


# ------------------------------------------------------------------ acknowledgements (issue 4)


def test_acknowledgement_is_required_when_tracked() -> None:
    from veil.api import check as check_repo

    root = Path(__file__).resolve().parent.parent / "examples" / "payments"
    program = check_repo([root]).program
    assert program is not None
    fd = program.purpose("Fraud Detection")
    assert fd is not None and fd.acknowledgement
    cond = ir.PurposeIs(purpose=ir.Name(value="Fraud Detection"))
    table = ("sales", "transactions")
    assumed = Context(user="alice", project="fraud_q4")
    assert eval_condition(program, cond, assumed, table)
    nothing = Context(user="alice", project="fraud_q4", acknowledged=frozenset())
    assert not eval_condition(program, cond, nothing, table)
    assert (
        check_purposes(program, "alice", "fraud_q4", table, frozenset()).reason
        is NoPurpose.NOT_ACKNOWLEDGED
    )
    done = frozenset({("fraud_q4", "Fraud Detection", fd.acknowledgement)})
    assert eval_condition(
        program, cond, Context(user="alice", project="fraud_q4", acknowledged=done), table
    )
    old_text = frozenset({("fraud_q4", "Fraud Detection", fd.acknowledgement + " (old)")})
    assert not eval_condition(
        program, cond, Context(user="alice", project="fraud_q4", acknowledged=old_text), table
    )


# --------------------------------------------------------------------------------------------
# Native tag policies: a column tagged on the platform after the apply

NATIVE = """
table s.t {
  known varchar(40) tags pii.card
  named varchar(40) tags pii.card
  plain varchar(40)
}
group stewards
user sue { groups stewards }
user bob
mask tagged pii with null
mask tagged pii.card with show_last(4) unless group stewards
mask tagged contact with hash
mask s.t.named with constant("x")
"""


def native_program(tmp_path: Path, text: str = NATIVE) -> model.Program:
    from veil.api import check

    (tmp_path / "p.veil").write_text(text, encoding="utf-8")
    found = check([tmp_path]).program
    assert found is not None
    return found


def test_a_late_column_is_decided_by_the_deepest_tag_mask_covering_its_tag(
    tmp_path: Path,
) -> None:
    from veil.evaluator import native_cell

    p = native_program(tmp_path)
    bob, sue = Context(user="bob", now=NOW), Context(user="sue", now=NOW)
    card = "4111111111111111"

    def shown(tag: str | None, who: Context, table: model.TableKey = ("s", "t")) -> object:
        return native_cell(p, table, "late", "text", tag, card, who).value

    assert shown("pii.card", bob) == "************1111"
    assert shown("pii.card.pan", bob) == "************1111"  # under pii.card
    assert shown("pii.card", sue) == card  # the mask's own exception
    assert shown("pii.name", bob) is None  # only `pii` covers it
    assert shown("piix", bob) == card  # path segments, not a string prefix
    assert shown(None, bob) == card  # untagged: clear
    # a method that does not fit the type falls back to null, as for a catalog column
    assert (
        native_cell(p, ("s", "t"), "late", "date", "pii.card", dt.date(2026, 1, 2), bob).value
        is None
    )
    # hashed with the table's name as salt, and NULL on a table the repository does not know
    salted = hash_text("s.t", card)
    assert shown("contact.phone", bob) == salted
    assert shown("contact.phone", bob, ("other", "table")) is None


#: Two tables whose parts joined by `.` read the same (`a.b.c`), each with a hashed column, a
#: column tagged `contact` that `mask tagged contact` hashes, and a late column on the platform.
DOTTED = """
table `a.b`.c {
  v varchar(64)
  w varchar(64) tags contact
}
table a.`b.c` {
  v varchar(64)
  w varchar(64) tags contact
}
user bob
mask `a.b`.c.v with hash
mask a.`b.c`.v with hash
mask tagged contact with hash
"""


def test_tables_whose_dotted_names_read_the_same_never_share_a_hash(tmp_path: Path) -> None:
    """`"a.b".c` and `a."b.c"` are two tables: the same value hashes differently in each (the
    salt quotes a part with a dot), so their pseudonyms do not join, whether the column is
    masked by name, by tag, or by a native tag policy on the platform."""
    from veil.evaluator import native_cell

    p = native_program(tmp_path, DOTTED)
    bob = Context(user="bob", now=NOW)
    one, two = ("a.b", "c"), ("a", "b.c")
    for column in ("v", "w"):
        a = evaluate_cell(p, one, column, {column: "x"}, bob).value
        b = evaluate_cell(p, two, column, {column: "x"}, bob).value
        assert a != b, column
        assert a == hash_text('"a.b".c', "x") and b == hash_text('a."b.c"', "x"), column
    late = [native_cell(p, k, "late", "text", "contact", "x", bob).value for k in (one, two)]
    assert late == [hash_text('"a.b".c', "x"), hash_text('a."b.c"', "x")]
    # a part with neither `.` nor `"` is written as it is, so ordinary names keep their hash
    assert model.table_id(one) == '"a.b".c' and model.table_id(two) == 'a."b.c"'
    assert model.table_id(("s", "t")) == "s.t"
    assert model.table_id(('x"y', "z")) == '"x""y".z'


def test_a_column_the_repository_masks_keeps_its_own_mask(tmp_path: Path) -> None:
    from veil.evaluator import native_cell

    p = native_program(tmp_path)
    bob = Context(user="bob", now=NOW)
    # named: its own mask (a named column beats any tag, and Snowflake's column policy beats
    # the tag's); known: its own tag-selected mask, whatever tag the platform gives it
    assert native_cell(p, ("s", "t"), "named", "text", "pii.card", "v", bob).value == "x"
    assert native_cell(p, ("s", "t"), "known", "text", "contact", "1234567", bob).value == "***4567"
    # a known column without a mask is decided by the platform's tag
    assert native_cell(p, ("s", "t"), "plain", "text", "pii", "v", bob).value is None


def test_tied_masks_on_one_tag_have_no_native_decision(tmp_path: Path) -> None:
    from veil.evaluator import native_cell

    p = native_program(
        tmp_path,
        "table s.t {\n  c varchar(9)\n}\ngroup g\nmask tagged pii with show_first(1) for group g\n"
        "mask tagged pii with show_last(1) for group g\n",
    )
    [tm] = p.tag_masks
    assert tm.tied and tm.arms == ()
    with pytest.raises(EvaluationError, match="tie"):
        native_cell(p, ("s", "t"), "late", "text", "pii", "v", Context(user="x", now=NOW))
