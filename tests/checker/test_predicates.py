"""check_predicates: columns and types in `filter … where` and `mask … when`."""

from __future__ import annotations

import pytest

from tests.checker.helpers import codes, one, run, where
from veil.diagnostics import Severity

F = "filter sales.transactions where "  # predicates below start at column 33


@pytest.mark.parametrize(
    "pred",
    [
        "region in user.region and created_at >= now() - 90 days",
        "region not in user.groups or user.name = 'alice'",
        'created_at >= "2024-01-01" and born < "2000-01-01T00:00:00Z"',
        "born > today() - 30 and born between today() - 1 year and today()",
        "amount + 1 > 2.5 and -id < 0 and id in (1, 2, 3) and notes is not null",
        "active and not (active = false)",
        "created_at > born + 1 day",
        "sales.transactions.id > 1 and transactions.id < 9",
    ],
)
def test_valid_predicates(pred: str) -> None:
    r = run(F + pred)
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    assert not r.diagnostics


def test_e0208_user_set_as_a_value() -> None:
    d = one(run(F + "region = user.region"), "E0208")
    assert d.message == "`user.region` is a set of values and can only follow `in` or `not in`"
    assert where(d) == "policy.veil:1:42"
    assert d.help == "write `x in user.region`"


def test_e0208_user_name_is_not_a_set() -> None:
    d = one(run(F + "region in user.name"), "E0208")
    assert d.message == "`user.name` is a single value, not a set"
    assert where(d) == "policy.veil:1:43"
    assert d.help == "write `region = user.name`"


@pytest.mark.parametrize(
    ("pred", "message", "col"),
    [
        ('amount > "100"', 'cannot compare `amount` (decimal(12,2)) with `"100"` (string)', 33),
        ("region = 5", "cannot compare `region` (varchar) with `5` (number)", 33),
        ("active = born", "cannot compare `active` (boolean) with `born` (date)", 33),
        ("id in (1, 'x')", 'cannot compare `id` (bigint) with `"x"` (string)', 43),
        (
            "id in user.region",
            "cannot look for `id` (bigint) in `user.region`, a set of strings",
            33,
        ),
        (
            'created_at > "last week"',
            '`"last week"` is not a date or timestamp to compare with `created_at` (timestamp)',
            33,
        ),
    ],
)
def test_e0209_incompatible_comparison(pred: str, message: str, col: int) -> None:
    d = one(run(F + pred), "E0209")
    assert d.message == message
    assert where(d) == f"policy.veil:1:{col}"
    assert d.help


def test_e0210_unknown_interval_unit() -> None:
    d = one(run(F + "created_at > now() - 3 dayz"), "E0210")
    assert d.message == "unknown interval unit `dayz`"
    assert where(d) == "policy.veil:1:54"
    assert d.help == "did you mean `day` or `days`?"


@pytest.mark.parametrize(
    ("pred", "message"),
    [
        ("amount", "a row predicate must be a condition, not `amount` (decimal(12,2))"),
        ("active and region", "each side of `and` must be a condition, not `region` (varchar)"),
        ("not id", "the operand of `not` must be a condition, not `id` (bigint)"),
        ("region + 1 = 2", "cannot compute `region` (varchar) + `1` (number)"),
        ("-region = 'x'", "cannot negate `region` (varchar)"),
    ],
)
def test_e0211_wrong_kind_of_expression(pred: str, message: str) -> None:
    d = one(run(F + pred), "E0211")
    assert d.message == message
    assert d.help


def test_w0204_comparison_with_null() -> None:
    r = run(F + "region = null")
    d = one(r, "W0204")
    assert d.severity is Severity.WARNING
    assert d.message == "`= null` is never true"
    assert where(d) == "policy.veil:1:33"
    assert d.help is not None and "is null" in d.help
    assert r.program is not None


def test_column_of_another_table() -> None:
    d = one(run(F + "hr.survey.id = 1"), "E0102")
    assert d.message == "`hr.survey.id` is not a column of table `sales.transactions`"
    assert where(d) == "policy.veil:1:33"


def test_when_of_a_mask_reaching_several_tables_is_checked_in_each() -> None:
    r = run("mask notes with null when regoin = 'EU'")
    assert codes(r) == ["E0102", "E0102"]
    survey, tx = r.diagnostics
    assert survey.message == "table `hr.survey` has no column `regoin`"
    assert tx.message == "table `sales.transactions` has no column `regoin`"
    assert where(survey) == where(tx) == "policy.veil:1:27"
    note = "this mask reaches tables `hr.survey`, `sales.transactions`, and its `when` must hold"
    assert survey.help is not None and survey.help.startswith(note)
    assert tx.help is not None and tx.help.endswith("did you mean `region`?")


def test_when_with_a_type_error_in_one_table_only() -> None:
    r = run("table crm.notes { notes integer }\nmask notes with null when notes = 'x'")
    d = one(r, "E0209")
    assert d.message == 'cannot compare `notes` (integer) with `"x"` (string)'
