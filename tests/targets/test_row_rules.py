"""How a table's row rules are lowered (targets/base.py `factor_rules`, `row_sql`): the exceptions
every rule shares are tested once, first, and the result filters exactly like the rules' AND."""

from __future__ import annotations

import sqlite3
import typing as t
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from veil import ir, model
from veil.api import check
from veil.targets import get_target
from veil.targets.base import FactoredRows, Target, factor_rules

ROOT = Path(__file__).resolve().parent.parent.parent
TABLE = ("s", "t")
#: The atoms the random conditions are made of; a truth assignment gives each a value.
ATOMS: tuple[ir.Condition, ...] = (
    ir.PurposeIs(purpose=ir.Name(value="A")),
    ir.PurposeIs(purpose=ir.Name(value="B")),
    ir.AnyPurpose(),
    ir.InGroup(group=ir.Name(value="g")),
    ir.IsUser(user=ir.Name(value="u")),
    ir.HasAttribute(key="k", value="v"),
)
#: The columns a `where` reads; a row gives each TRUE, FALSE or NULL.
COLUMNS = ("w0", "w1", "w2")

Truth: t.TypeAlias = dict[ir.Condition, bool]
Row: t.TypeAlias = dict[str, bool | None]


def holds(c: ir.Condition, truth: Truth) -> bool:
    match c:
        case ir.CondOr(items=items):
            return any(holds(i, truth) for i in items)
        case ir.CondAnd(items=items):
            return all(holds(i, truth) for i in items)
        case ir.CondNot(item=item):
            return not holds(item, truth)
        case ir.CondConst(value=v):
            return v
        case _:
            return truth[c]


def passes(rule: model.RowRule, truth: Truth, row: Row) -> bool:
    """The evaluator's reading of one rule: `allow`, or `where` TRUE (NULL hides)."""
    if holds(rule.allow, truth):
        return True
    assert rule.where is None or isinstance(rule.where, ir.ColumnRef)
    return rule.where is not None and row[rule.where.name.parts[-1]] is True


def visible(rows: FactoredRows, truth: Truth, row: Row) -> bool:
    return any(holds(s, truth) for s in rows.shared) or (
        not rows.never and all(passes(r, truth, row) for r in rows.rest)
    )


class TruthTarget(Target):
    """A target whose checks are the constants of a truth assignment, to run its SQL in SQLite."""

    name = "truth"

    def __init__(self, truth: Truth) -> None:
        super().__init__()
        self.truth = truth

    def _const(self, c: ir.Condition) -> str:
        return self.true_sql if self.truth[c] else self.false_sql

    def purpose_sql(self, purpose: str | None, table: model.TableKey) -> str:
        if purpose is None:
            return self._const(ir.AnyPurpose())
        return self._const(ir.PurposeIs(purpose=ir.Name(value=purpose)))

    def group_sql(self, group: str) -> str:
        return self._const(ir.InGroup(group=ir.Name(value=group)))

    def user_sql(self, user: str) -> str:
        return self._const(ir.IsUser(user=ir.Name(value=user)))

    def attribute_sql(self, key: str, value: str) -> str:
        return self._const(ir.HasAttribute(key=key, value=value))


def conditions() -> st.SearchStrategy[ir.Condition]:
    return st.recursive(
        st.sampled_from(ATOMS),
        lambda inner: st.one_of(
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.CondOr(items=tuple(xs))),
            st.lists(inner, min_size=2, max_size=3).map(lambda xs: ir.CondAnd(items=tuple(xs))),
            inner.map(lambda x: ir.CondNot(item=x)),
        ),
        max_leaves=4,
    )


@st.composite
def rule_sets(draw: st.DrawFn) -> list[model.RowRule]:
    """Rules of one table, as the checker builds them (`checker/rows.py`), that often share
    exceptions: each rule's `allow` may list some of a few common conditions, in any order."""
    common = draw(st.lists(conditions(), min_size=1, max_size=2))
    rules = []
    for _ in range(draw(st.integers(1, 4))):
        items = draw(st.lists(conditions(), max_size=2))
        items += [c for c in common if draw(st.booleans())]
        items = draw(st.permutations(items))
        if draw(st.booleans()):  # filter T where P [unless C]
            where = ir.ColumnRef(name=ir.ObjectName(parts=(draw(st.sampled_from(COLUMNS)),)))
            allow: ir.Condition = (
                ir.CondConst(value=False)
                if not items
                else items[0]
                if len(items) == 1
                else ir.CondOr(items=tuple(items))
            )
            rules.append(model.RowRule(table=TABLE, kind="filter", allow=allow, where=where))
        elif items:  # restrict T to A, B unless C
            allow = items[0] if len(items) == 1 else ir.CondOr(items=tuple(items))
            rules.append(model.RowRule(table=TABLE, kind="restrict", allow=allow))
    return rules


@settings(max_examples=150, deadline=None)
@given(
    rules=rule_sets(),
    values=st.lists(st.booleans(), min_size=len(ATOMS), max_size=len(ATOMS)),
    cells=st.lists(st.sampled_from([True, False, None]), min_size=3, max_size=3),
)
def test_factored_rules_filter_like_their_and(
    rules: list[model.RowRule], values: list[bool], cells: list[bool | None]
) -> None:
    truth = dict(zip(ATOMS, values, strict=True))
    row = dict(zip(COLUMNS, cells, strict=True))
    expected = all(passes(r, truth, row) for r in rules)
    rows = factor_rules(rules)
    assert visible(rows, truth, row) == expected
    # ... and so does the SQL the targets write of it
    tgt = TruthTarget(truth)
    sql = tgt.row_sql(rules, lambda c: tgt.literal(row[c]))
    with sqlite3.connect(":memory:") as db:
        [(got,)] = db.execute(f"SELECT CASE WHEN {sql} THEN 1 ELSE 0 END").fetchall()
    assert bool(got) == expected, sql
    # every shared exception is tested once, before the rest
    for s in rows.shared:
        assert all(s not in _items(r.allow) for r in rows.rest)


def _items(c: ir.Condition) -> tuple[ir.Condition, ...]:
    return c.items if isinstance(c, ir.CondOr) else (c,)


def _rule(kind: t.Literal["filter", "restrict"], allow: ir.Condition, where: bool) -> model.RowRule:
    col = ir.ColumnRef(name=ir.ObjectName(parts=("w0",)))
    return model.RowRule(table=TABLE, kind=kind, allow=allow, where=col if where else None)


A, B, _, G, U, _ = ATOMS


def test_the_exceptions_every_rule_shares_come_first_in_the_first_rules_order() -> None:
    rules = [
        _rule("filter", ir.CondOr(items=(G, B, A)), where=True),
        _rule("restrict", ir.CondOr(items=(A, ir.CondOr(items=(U, B)))), where=False),
    ]
    rows = factor_rules(rules)
    assert rows.shared == (B, A) and not rows.never
    assert [r.allow for r in rows.rest] == [G, U]
    assert [r.where for r in rows.rest] == [r.where for r in rules]


def test_a_rule_left_with_nothing_lets_only_the_shared_exceptions_through() -> None:
    rules = [_rule("restrict", A, where=False), _rule("filter", A, where=True)]
    assert factor_rules(rules) == FactoredRows(table=TABLE, shared=(A,), rest=(), never=True)
    tgt = get_target("postgres")
    assert tgt.row_sql(rules, str) == tgt.cond(A, TABLE)


def test_one_rule_or_nothing_shared_is_left_as_written() -> None:
    one = [_rule("restrict", ir.CondOr(items=(A, B)), where=False)]
    assert factor_rules(one) == FactoredRows(table=TABLE, shared=(), rest=tuple(one))
    two = [_rule("filter", A, where=True), _rule("filter", B, where=True)]
    assert factor_rules(two) == FactoredRows(table=TABLE, shared=(), rest=tuple(two))
    assert factor_rules([]).rest == ()


def test_the_example_tests_the_purpose_of_its_two_transaction_filters_once() -> None:
    """sales.transactions: `… unless purpose Fraud Detection` and `… unless group auditors or
    purpose Fraud Detection`: the purpose first, once, then the two filters without it."""
    program = check([ROOT / "examples" / "payments"]).program
    assert program is not None
    for name in ("postgres", "snowflake", "databricks"):
        tgt = get_target(name)
        sql = tgt.row_sql(program.rules_of(("sales", "transactions")), tgt.ident)
        purpose = tgt.purpose_sql("Fraud Detection", ("sales", "transactions"))
        assert sql.startswith(f"({purpose} OR (COALESCE("), (name, sql)
        assert sql.count(purpose) == 1, (name, sql)
