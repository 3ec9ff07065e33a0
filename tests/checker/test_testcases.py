"""check_tests: users, projects, columns, tables and methods named in `test` blocks."""

from __future__ import annotations

from tests.checker.helpers import codes, run, where

PROJECT = "project fraud_q4 { members alice; sources sales.transactions }\n"


def test_a_valid_test_block_is_kept() -> None:
    r = run(
        PROJECT + 'test "t" {\n  as alice in project fraud_q4\n'
        "  expect sales.transactions.credit_card clear\n"
        "  expect transactions.email masked with hash\n"
        "  expect credit_card masked\n"
        '  expect sales.transactions row { region: "EU", id: 3, born: "2000-01-01" } hidden\n'
        "}"
    )
    assert r.program is not None and r.diagnostics == ()
    assert [tc.name for tc in r.program.tests] == ["t"]


def test_names_in_tests_must_resolve() -> None:
    r = run(
        PROJECT + 'test "t" {\n  as alicia in project fraud_q5\n'
        "  expect sales.transactions.emial clear\n"
        "  expect id clear\n"
        "  expect sales.transactions.email masked with hsh\n"
        "  expect transaction row { id: 1 } visible\n"
        '  expect sales.transactions row { regoin: "EU", id: "x" } hidden\n'
        "}"
    )
    got = [(d.code, where(d), d.message, d.help) for d in r.diagnostics]
    assert got == [
        ("E0106", "policy.veil:3:6", "unknown user `alicia`", "did you mean `alice`?"),
        ("E0107", "policy.veil:3:24", "unknown project `fraud_q5`", "did you mean `fraud_q4`?"),
        (
            "E0102",
            "policy.veil:4:10",
            "table `sales.transactions` has no column `emial`",
            "did you mean `email`?",
        ),
        (
            "E0103",
            "policy.veil:5:10",
            "`id` is ambiguous: it names 2 columns",
            "qualify it further: `hr.survey.id` or `sales.transactions.id`",
        ),
        ("E0203", "policy.veil:6:47", "unknown masking method `hsh`", "did you mean `hash`?"),
        (
            "E0101",
            "policy.veil:7:10",
            "unknown table `transaction`",
            "did you mean `sales.transactions`?",
        ),
        (
            "E0102",
            "policy.veil:8:35",
            "table `sales.transactions` has no column `regoin`",
            "did you mean `region`?",
        ),
        (
            "E0209",
            "policy.veil:8:49",
            'cannot compare `id` (bigint) with `"x"` (string)',
            "numbers and strings do not compare: write a number without quotes (`10`)",
        ),
    ]
    assert r.program is None


def test_tests_are_checked_last() -> None:
    # a test naming an unknown user is not reported while a mask has an error
    r = run('mask emial with null\ntest "t" {\n  as nobody\n}')
    assert codes(r) == ["E0102"]


def test_cell_expectations_are_checked_like_rows_and_columns() -> None:
    ok = run(
        PROJECT + 'test "t" {\n  as alice\n'
        '  expect sales.transactions.email in row { region: "EU", id: 3 } is "x@y.z"\n'
        "  expect transactions.amount in row { amount: -2.5 } is -2.5\n"
        "  expect credit_card in row { id: 1 } masked with null\n"
        "  expect credit_card in row { id: 1 } is null\n"
        "}"
    )
    assert ok.program is not None and ok.diagnostics == ()
    r = run(
        PROJECT + 'test "t" {\n  as alice\n'
        '  expect sales.transactions.emial in row { id: 1 } is "x"\n'
        '  expect sales.transactions.amount in row { regoin: "EU" } is "ten"\n'
        "  expect sales.transactions.email in row { id: 1 } masked with hsh\n"
        "}"
    )
    got = [(d.code, where(d), d.message) for d in r.diagnostics]
    assert got == [
        ("E0102", "policy.veil:4:10", "table `sales.transactions` has no column `emial`"),
        (
            "E0209",
            "policy.veil:5:3",
            'cannot compare `amount` (decimal(12,2)) with `"ten"` (string)',
        ),
        ("E0102", "policy.veil:5:45", "table `sales.transactions` has no column `regoin`"),
        ("E0203", "policy.veil:6:64", "unknown masking method `hsh`"),
    ]
