"""check_rows: one RowRule per filter/restrict, sorted by table then source order."""

from __future__ import annotations

from tests.checker.helpers import BASE, policies
from veil import ir, model
from veil.checker import check


def rules(files: dict[str, str]) -> tuple[model.RowRule, ...]:
    r = check(policies({"0base.veil": BASE, **files}))
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    return r.program.row_rules


def test_filter_without_unless_allows_nobody_by_condition() -> None:
    (rule,) = rules({"p.veil": "filter sales.transactions where region = 'EU'"})
    assert rule.table == ("sales", "transactions")
    assert rule.kind == "filter"
    assert rule.allow == ir.CondConst(value=False)
    assert isinstance(rule.where, ir.Compare)


def test_filter_with_unless() -> None:
    (rule,) = rules(
        {"p.veil": "filter sales.transactions where region in user.region unless purpose Support"}
    )
    assert rule.allow == ir.PurposeIs(purpose=ir.Name(value="Support"))


def test_restrict_allows_any_listed_purpose_or_the_exception() -> None:
    one, two = rules(
        {
            "p.veil": "restrict hr.survey to purpose Support\n"
            "restrict hr.survey to purpose Support, any purpose "
            "unless group stewards"
        }
    )
    assert one.kind == "restrict" and one.where is None
    assert one.allow == ir.PurposeIs(purpose=ir.Name(value="Support"))
    assert two.allow == ir.CondOr(
        items=(
            ir.PurposeIs(purpose=ir.Name(value="Support")),
            ir.AnyPurpose(),
            ir.InGroup(group=ir.Name(value="stewards")),
        )
    )


def test_rules_are_sorted_by_table_then_source_order() -> None:
    got = rules(
        {
            "a.veil": (
                "restrict sales.transactions to any purpose\nrestrict hr.survey to any purpose"
            ),
            "b.veil": "filter sales.transactions where id > 1\nfilter hr.survey where id > 2",
        }
    )
    assert [(r.table[-1], r.kind, r.span.file, r.span.line) for r in got] == [
        ("survey", "restrict", "a.veil", 2),
        ("survey", "filter", "b.veil", 2),
        ("transactions", "restrict", "a.veil", 1),
        ("transactions", "filter", "b.veil", 1),
    ]
