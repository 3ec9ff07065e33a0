"""check_masks: methods, the type rule (explicit error / tag fallback), lowering to ColumnMask."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from tests.checker.helpers import codes, one, run, where
from veil import ir, methods, model
from veil.diagnostics import Severity


def mask_of(text: str, column: str) -> model.ColumnMask:
    r = run(text)
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    found = [m for m in r.program.masks if ".".join((*m.table, m.column)) == column]
    assert len(found) == 1
    return found[0]


def actions(m: model.ColumnMask) -> list[methods.MaskAction | None]:
    return [a.action for a in m.arms]


# ------------------------------------------------------------------------------ lowering


def test_unless_form_lowers_to_reveal_then_method() -> None:
    m = mask_of(
        'mask sales.transactions.email with hash unless purpose "Marketing"',
        "sales.transactions.email",
    )
    assert m.type == model.SqlType(name="varchar")
    assert actions(m) == [None, methods.MaskHash(salt="sales.transactions")]
    assert m.arms[0].cond == ir.PurposeIs(purpose=ir.Name(value="Marketing"))
    assert m.arms[1].cond is None
    assert [str(s) for s in m.policies] == ["policy.veil:1:1"]


def test_for_form_and_when() -> None:
    m = mask_of(
        "mask amount with round(100) when region = 'EU' for group analysts",
        "sales.transactions.amount",
    )
    assert actions(m) == [methods.MaskRound(step=Decimal(100)), None]
    assert m.arms[0].cond == ir.InGroup(group=ir.Name(value="analysts"))
    assert isinstance(m.when, ir.Compare)


def test_block_form_keeps_its_arms_in_order() -> None:
    m = mask_of(
        "mask email {\n  reveal for purpose Support\n  with hash for group analysts\n"
        "  with email_domain otherwise\n}",
        "sales.transactions.email",
    )
    assert actions(m) == [
        None,
        methods.MaskHash(salt="sales.transactions"),
        methods.MaskEmailDomain(),
    ]


def test_w0201_block_without_otherwise_gets_with_null_otherwise() -> None:
    r = run("mask email {\n  reveal for purpose Support\n}")
    d = one(r, "W0201")
    assert d.severity is Severity.WARNING
    assert d.message == "mask has no `otherwise` arm, so everyone else sees `null`"
    assert where(d) == "policy.veil:1:6"
    assert d.help is not None and "with null otherwise" in d.help
    assert r.program is not None
    (m,) = r.program.masks
    assert actions(m) == [None, methods.MaskNull()]
    assert m.arms[-1].cond is None


def test_e0207_arm_after_otherwise() -> None:
    d = one(run("mask email {\n  reveal otherwise\n  with null for group analysts\n}"), "E0207")
    assert d.message == "this arm follows `otherwise` and never applies"
    assert where(d) == "policy.veil:3:3"
    assert d.help


@pytest.mark.parametrize(
    ("method", "column", "action"),
    [
        ("null", "sales.transactions.id", methods.MaskNull()),
        (
            'constant("REDACTED")',
            "sales.transactions.notes",
            methods.MaskConstant(value="REDACTED"),
        ),
        ("constant(5)", "sales.transactions.region", methods.MaskConstant(value="5")),
        ("constant(7)", "sales.transactions.id", methods.MaskConstant(value=7)),
        ('constant("12")', "sales.transactions.id", methods.MaskConstant(value=12)),
        ("constant(1.5)", "sales.transactions.amount", methods.MaskConstant(value=Decimal("1.5"))),
        ("constant(true)", "sales.transactions.active", methods.MaskConstant(value=True)),
        (
            'constant("2024-01-31")',
            "sales.transactions.born",
            methods.MaskConstant(value="2024-01-31"),
        ),
        (
            'constant("2024-01-31T10:00:00Z")',
            "sales.transactions.created_at",
            methods.MaskConstant(value="2024-01-31T10:00:00"),
        ),
        (
            'constant("2024-01-31")',
            "sales.transactions.created_at",
            methods.MaskConstant(value="2024-01-31T00:00:00"),
        ),
        ("show_first(2)", "hr.survey.team", methods.MaskShow(side="first", count=2)),
        ("show_last(4)", "sales.transactions.credit_card", methods.MaskShow(side="last", count=4)),
        (
            'regex("([0-9]+)-([0-9]+)", "\\\\2-\\\\1")',
            "sales.transactions.credit_card",
            methods.MaskRegex(pattern="([0-9]+)-([0-9]+)", replacement="\\2-\\1", length=19),
        ),
        (
            'regex("a", "b")',
            "sales.transactions.notes",
            methods.MaskRegex(pattern="a", replacement="b"),
        ),
        ("round(0.5)", "sales.transactions.amount", methods.MaskRound(step=Decimal("0.5"))),
        ("round(10)", "hr.survey.score", methods.MaskRound(step=Decimal(10))),
        ("truncate(month)", "sales.transactions.born", methods.MaskTruncate(unit="month")),
        ("truncate(hour)", "sales.transactions.created_at", methods.MaskTruncate(unit="hour")),
        ("email_domain", "sales.transactions.email", methods.MaskEmailDomain()),
        ("hash", "hr.survey.notes", methods.MaskHash(salt="hr.survey")),
    ],
)
def test_methods_lower_to_actions(method: str, column: str, action: methods.MaskAction) -> None:
    m = mask_of(f"mask {column} with {method}", column)
    assert actions(m) == [action]


# ------------------------------------------------------------------------------ hash length


def test_w0203_hash_is_shortened_to_the_column() -> None:
    r = run("mask credit_card with hash")
    d = one(r, "W0203")
    assert (
        d.message == "the hash of column `sales.transactions.credit_card` is shortened to 19 "
        "characters"
    )
    assert where(d) == "policy.veil:1:23"
    assert d.help is not None and d.help.startswith("the 64-character hash is cut to the 19")
    assert r.program is not None
    assert actions(r.program.masks[0]) == [methods.MaskHash(salt="sales.transactions", length=19)]


def test_e0205_hash_does_not_fit_a_column_under_8_characters() -> None:
    d = one(run("mask team with hash"), "E0205")
    assert d.message == "`hash` cannot mask column `hr.survey.team` of type `char(4)`"
    assert where(d) == "policy.veil:1:16"
    assert d.help == (
        "a hash needs at least 8 characters and `char(4)` holds 4; choose a method "
        "that fits the column (`null` fits every column)"
    )


# ------------------------------------------------------------------------------ type rule


@pytest.mark.parametrize(
    ("text", "message", "reason"),
    [
        (
            "mask amount with hash",
            "`hash` cannot mask column `sales.transactions.amount` of type `decimal(12,2)`",
            "`hash` masks string columns",
        ),
        (
            "mask born with truncate(hour)",
            "`truncate(hour)` cannot mask column `sales.transactions.born` of type `date`",
            "a date has no hours to truncate",
        ),
        (
            "mask email with round(5)",
            "`round(5)` cannot mask column `sales.transactions.email` of type `varchar`",
            "`round` masks numbers",
        ),
        (
            "mask score with round(0.5)",
            "`round(0.5)` cannot mask column `hr.survey.score` of type `integer`",
            "the step of `round` on `integer` must be a whole number",
        ),
        (
            "mask hr.survey.id with truncate(day)",
            "`truncate(day)` cannot mask column `hr.survey.id` of type `bigint`",
            "`truncate` masks dates and timestamps",
        ),
        (
            'mask team with constant("ABCDE")',
            '`constant("ABCDE")` cannot mask column `hr.survey.team` of type `char(4)`',
            '`"ABCDE"` is 5 characters long and `char(4)` holds 4',
        ),
        (
            'mask active with constant("yes")',
            '`constant("yes")` cannot mask column `sales.transactions.active` of type `boolean`',
            '`"yes"` cannot be cast to `boolean`',
        ),
        (
            "mask score with constant(3000000000)",
            "`constant(3000000000)` cannot mask column `hr.survey.score` of type `integer`",
            "`3000000000` is out of the range of `integer`",
        ),
        (
            "mask amount with constant(1.234)",
            "`constant(1.234)` cannot mask column `sales.transactions.amount` of type "
            "`decimal(12,2)`",
            "`1.234` does not fit `decimal(12,2)`",
        ),
        (
            'mask born with constant("2024-13-01")',
            '`constant("2024-13-01")` cannot mask column `sales.transactions.born` of type `date`',
            '`"2024-13-01"` cannot be cast to `date`: write a date such as "2024-01-31"',
        ),
    ],
)
def test_e0205_method_does_not_fit_an_explicit_column(text: str, message: str, reason: str) -> None:
    r = run(text)
    d = one(r, "E0205")
    assert d.message == message
    assert d.help is not None and d.help.startswith(reason + "; ")
    assert r.program is None


def test_w0202_tag_selected_column_falls_back_to_null() -> None:
    r = run("mask tagged event_time with show_first(2)")
    d = one(r, "W0202")
    assert d.severity is Severity.WARNING
    assert d.message == (
        "`show_first(2)` cannot mask column `sales.transactions.created_at` of "
        "type `timestamp`, so it is masked with `null`"
    )
    assert where(d) == "policy.veil:1:29"
    assert d.help is not None
    assert d.help.startswith(
        "`show_first` masks string columns; the column was selected by tag `event_time`"
    )
    assert "--strict" in d.help
    assert r.program is not None
    assert actions(r.program.masks[0]) == [methods.MaskNull()]


def test_fallback_is_per_column() -> None:
    r = run("tag pii on sales.transactions.amount\nmask tagged pii with show_last(2)")
    assert codes(r) == ["W0103", "W0202"]  # W0103: `piix` looks like a misspelt `pii`
    assert r.program is not None
    by_col = {m.column: actions(m) for m in r.program.masks}
    assert by_col["amount"] == [methods.MaskNull()]
    assert by_col["email"] == [methods.MaskShow(side="last", count=2)]


# ------------------------------------------------------------------------------ method errors


def test_e0203_unknown_method() -> None:
    d = one(run("mask email with shw_last(4)"), "E0203")
    assert d.message == "unknown masking method `shw_last`"
    assert where(d) == "policy.veil:1:17"
    assert d.help == "did you mean `show_last` or `show_first`?"


@pytest.mark.parametrize(
    ("method", "message"),
    [
        ("hash(4)", "`hash` takes no arguments, not 1"),
        ("show_last", "`show_last` takes one argument, not 0"),
        ("regex('a')", "`regex` takes two arguments, not 1"),
        (
            "show_last(-1)",
            "the argument of `show_last` must be a whole number of characters (0 or more)",
        ),
        (
            "show_first(1.5)",
            "the argument of `show_first` must be a whole number of characters (0 or more)",
        ),
        ("round(0)", "the step of `round` must be a number greater than 0"),
        ("round('x')", "the step of `round` must be a number greater than 0"),
        ("truncate(week)", "`truncate` cannot truncate to `week`"),
        ("constant(null)", "`constant(null)` is not a constant"),
        ("regex(1, 'x')", "`regex` takes a pattern string and a replacement string"),
        (
            "regex('(a', 'x')",
            "invalid regex `(a`: missing ), unterminated subpattern at position 0",
        ),
        (
            "regex('(a)', '\\\\2')",
            "invalid replacement `\\2`: `\\2` refers to group 2 and the pattern has 1",
        ),
        ("regex('(a)', '\\\\q')", "invalid replacement `\\q`: the escape `\\q`"),
        (
            "regex('(a)', '\\\\10')",
            "invalid replacement `\\10`: `\\1` followed by a digit (ambiguous between targets)",
        ),
    ],
)
def test_e0204_bad_arguments(method: str, message: str) -> None:
    d = one(run(f"mask email with {method}"), "E0204")
    assert d.message == message
    assert where(d) == "policy.veil:1:17"
    assert d.help


def test_argument_and_type_errors_are_reported_together() -> None:
    r = run("mask amount with hash\nmask email with show_last(-1)")
    assert codes(r) == ["E0205", "E0204"]


def test_e0204_is_an_error_even_on_tag_selected_columns() -> None:
    assert codes(run("mask tagged pii with show_last(-1)")) == ["W0103", "E0204"]


@pytest.mark.parametrize(
    ("pattern", "uses"),
    [
        ("a(?=b)", "a lookahead"),
        ("(?<!a)b", "a lookbehind"),
        ("(?P<x>a)", "a named group"),
        ("(?<x>a)", "a named group"),
        ("(a)\\\\1", "a backreference or octal escape `\\1`"),
        ("(?i)abc", "an inline flag group `(?…)`"),
        ("(?>a)", "an atomic group"),
        ("a++", "a possessive quantifier"),
        ("a{2}+", "a possessive quantifier"),
        ("\\\\bword", "the anchor `\\b`"),
        ("[[:alpha:]]", "a POSIX class or nested set such as `[[:alpha:]]`"),
    ],
)
def test_e0206_non_portable_regex(pattern: str, uses: str) -> None:
    d = one(run(f'mask email with regex("{pattern}", "x")'), "E0206")
    assert d.message.endswith(f"uses {uses}")
    assert where(d) == "policy.veil:1:17"
    assert d.help is not None and "lookaround" in d.help


@pytest.mark.parametrize(
    "pattern", ["(?:ab)+", "[a+]+", "a+?b*?", "\\\\d{3}-\\\\w+", "[]a]", "^x$", "a|b"]
)
def test_portable_regexes(pattern: str) -> None:
    r = run(f'mask email with regex("{pattern}", "x")')
    assert r.program is not None, [(d.code, d.message) for d in r.diagnostics]


def test_date_and_timestamp_constants_are_normalised() -> None:
    r = run(
        "table t { a timestamptz; b timestamp }\n"
        'mask t.a with constant("2024-01-31 10:00")\n'
        'mask t.b with constant("2024-01-31T12:00:00+02:00")',
        base=None,
    )
    assert r.program is not None
    assert [actions(m) for m in r.program.masks] == [
        [methods.MaskConstant(value=dt.datetime(2024, 1, 31, 10, tzinfo=dt.UTC).isoformat())],
        [methods.MaskConstant(value="2024-01-31T10:00:00")],
    ]
