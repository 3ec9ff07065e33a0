"""resolve_names: tables, columns, tags, purposes, groups, users, attributes."""

from __future__ import annotations

import pytest

from tests.checker.helpers import codes, one, run, where
from veil.diagnostics import Severity


def masked_columns(text: str) -> list[str]:
    r = run(text)
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    return [".".join((*m.table, m.column)) for m in r.program.masks]


def test_e0101_unknown_table_suggests_the_full_name() -> None:
    d = one(run("filter transactions where id > 0"), "E0101")
    assert d.message == "unknown table `transactions`"
    assert where(d) == "policy.veil:1:8"
    assert d.help == (
        "did you mean `sales.transactions`? (a table is named as in its `table` block)"
    )


def test_e0101_in_project_sources_and_restrict() -> None:
    r = run("project p { sources sales.transactoins }\nrestrict hr.survy to any purpose")
    assert codes(r) == ["E0101", "E0101"]
    src, res = r.diagnostics
    assert (where(src), src.message, src.help) == (
        "policy.veil:1:21",
        "unknown table `sales.transactoins`",
        "did you mean `sales.transactions`?",
    )
    assert (where(res), res.help) == ("policy.veil:2:10", "did you mean `hr.survey`?")


def test_e0101_unknown_table_in_a_qualified_mask_target() -> None:
    d = one(run("mask payments.cards.pan with null"), "E0101")
    assert d.message == "unknown table `payments.cards` in `payments.cards.pan`"
    assert where(d) == "policy.veil:1:6"


def test_e0102_unknown_column() -> None:
    r = run("mask emial with hash\nmask transactions.emial with hash")
    assert codes(r) == ["E0102", "E0102"]
    bare, qualified = r.diagnostics
    assert (bare.message, where(bare), bare.help) == (
        "unknown column `emial`",
        "policy.veil:1:6",
        "did you mean `email`?",
    )
    assert (qualified.message, where(qualified), qualified.help) == (
        "table `sales.transactions` has no column `emial`",
        "policy.veil:2:6",
        "did you mean `email`?",
    )


def test_e0103_ambiguous_qualified_column() -> None:
    r = run("table crm.survey { id bigint }\nmask survey.id with null")
    d = one(r, "E0103")
    assert d.message == "`survey.id` is ambiguous: it names 2 columns"
    assert where(d) == "policy.veil:2:6"
    assert d.help == "qualify it further: `crm.survey.id` or `hr.survey.id`"


def test_column_targets() -> None:
    # a bare name is every column with that name; a qualified one the column of one table
    assert masked_columns("mask notes with null") == ["hr.survey.notes", "sales.transactions.notes"]
    assert masked_columns("mask survey.notes with null") == ["hr.survey.notes"]
    assert masked_columns("mask hr.survey.notes with null") == ["hr.survey.notes"]


def test_tag_paths_match_on_segments() -> None:
    # `pii` covers `pii`, `pii.card`, `pii.email`; never `piix` (hr.survey.score)
    assert masked_columns("mask tagged pii with null") == [
        "hr.survey.notes",
        "sales.transactions.credit_card",
        "sales.transactions.email",
    ]
    assert masked_columns("mask tagged pii.card with null") == ["sales.transactions.credit_card"]
    assert masked_columns("mask tagged piix with null") == ["hr.survey.score"]


def test_tag_on_reaches_tag_masks() -> None:
    assert masked_columns("tag pii.hr on hr.survey.team\nmask tagged pii.hr with null") == [
        "hr.survey.team"
    ]


def test_w0101_tag_that_no_column_carries() -> None:
    r = run("mask tagged pi with null\nmask tagged pii.card.number with null")
    assert codes(r) == ["W0103"] * 4 + ["W0101", "W0101"]  # W0103: the catalog's, see below
    pi, deep = r.diagnostics[4:]
    assert pi.severity is Severity.WARNING
    assert pi.message == "no column is tagged `pi`, so this mask matches nothing"
    assert where(pi) == "policy.veil:1:13"
    assert pi.help == "did you mean `pii` or `piix`?"
    assert deep.message == "no column is tagged `pii.card.number`, so this mask matches nothing"
    assert r.program is not None


@pytest.mark.parametrize(
    ("cond", "code", "message", "col", "help_"),
    [
        (
            "purpose Fraud Detectoin",
            "E0104",
            "unknown purpose `Fraud Detectoin`",
            37,
            "did you mean `Fraud Detection` or `Fraud Detection.Chargebacks`?",
        ),
        (
            'purpose "Billing"',
            "E0104",
            "unknown purpose `Billing`",
            37,
            "declare it with `purpose Billing`",
        ),
        ("group analyst", "E0105", "unknown group `analyst`", 35, "did you mean `analysts`?"),
        ("user alicia", "E0106", "unknown user `alicia`", 34, "did you mean `alice`?"),
    ],
)
def test_unknown_names_in_conditions(
    cond: str, code: str, message: str, col: int, help_: str
) -> None:
    d = one(run(f"mask email with hash unless {cond}"), code)
    assert d.message == message
    assert where(d) == f"policy.veil:1:{col}"
    assert d.help == help_


def test_groups_listed_by_users_need_no_declaration() -> None:
    r = run("user erin { groups auditors }\nmask email with hash unless group auditors")
    assert r.program is not None and not r.diagnostics


def test_names_in_projects_restricts_and_approvers() -> None:
    r = run(
        "project p {\n  purposes Support, Billing\n  members bob, zed\n}\n"
        "restrict hr.survey to purpose Markting\n"
        "approvers carol for purpose Suport"
    )
    assert [(d.code, where(d)) for d in r.diagnostics] == [
        ("E0104", "policy.veil:2:21"),
        ("E0106", "policy.veil:3:16"),
        ("E0104", "policy.veil:5:31"),
        ("E0104", "policy.veil:6:29"),
    ]


def test_w0102_attribute_that_no_user_has() -> None:
    r = run('mask email with hash unless attribute regoin = "EU"')
    d = one(r, "W0102")
    assert d.severity is Severity.WARNING
    assert d.message == "no user has the attribute `regoin`"
    assert where(d) == "policy.veil:1:29"
    assert d.help == "did you mean `region`?"
    assert r.program is not None


def test_w0103_column_tag_that_no_policy_names() -> None:
    """A tag that looks meant for a tag mask (close to one, or of its family) but that no mask
    covers leaves its column clear: warned once per tag, with the likely spelling."""
    r = run(
        "tag pii.emial on sales.transactions.notes\n"
        "tag pii.emial on hr.survey.team\n"
        "mask tagged pii.email with null\nmask tagged pii.card with null"
    )
    assert codes(r) == ["W0103", "W0103"]
    family, typo = r.diagnostics
    assert family.message == "no policy names the tag `pii`, so it protects nothing"
    assert where(family) == "0base.veil:14:27"  # hr.survey.notes: of the `pii` family
    assert family.help == "mask it with `mask tagged …`, or rename it if it is only a label"
    assert where(typo) == "policy.veil:1:5"  # once, where first written
    assert typo.message == "no policy names the tag `pii.emial`, so it protects nothing"
    assert typo.help == "did you mean `pii.email`?"
    assert typo.severity is Severity.WARNING
    # `contact`, `event_time` and `piix` are neither close to a masked tag nor of its family:
    # labels, left alone


def test_w0103_not_in_a_repository_without_tag_masks() -> None:
    assert "W0103" not in codes(run("mask sales.transactions.email with null"))
