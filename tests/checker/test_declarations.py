"""collect_declarations and apply_tags: duplicates, column types, purposes, tags."""

from __future__ import annotations

import pytest

from tests.checker.helpers import codes, one, run, where
from veil import model


@pytest.mark.parametrize(
    ("text", "message", "at", "first"),
    [
        (
            "table sales.transactions { id bigint }",
            "duplicate table `sales.transactions`",
            "policy.veil:1:7",
            "0base.veil:1:7",
        ),
        (
            'purpose "Marketing"',
            "duplicate purpose `Marketing`",
            "policy.veil:1:9",
            "0base.veil:22:9",
        ),
        ("group stewards", "duplicate group `stewards`", "policy.veil:1:7", "0base.veil:24:17"),
        ("user bob", "duplicate user `bob`", "policy.veil:1:6", "0base.veil:26:6"),
        (
            "project p { members bob }\nproject p { members dave }",
            "duplicate project `p`",
            "policy.veil:2:9",
            "policy.veil:1:9",
        ),
        (
            "table t { a bigint; b text; a text }",
            "duplicate column `a` in table `t`",
            "policy.veil:1:29",
            "policy.veil:1:11",
        ),
        (
            'user zoe { region "EU"; region "US" }',
            "duplicate attribute `region` of user `zoe`",
            "policy.veil:1:25",
            "policy.veil:1:12",
        ),
    ],
)
def test_e0108_duplicate_declaration(text: str, message: str, at: str, first: str) -> None:
    d = one(run(text), "E0108")
    assert d.message == message
    assert where(d) == at
    assert [str(r) for r in d.related] == [first]
    assert d.help is not None and f"already declared at {first}" in d.help


@pytest.mark.parametrize(
    ("written", "suggestion"),
    [
        ("int", "integer"),
        ("string", "varchar"),
        ("bool", "boolean"),
        ("numeric", "decimal"),
        ("varchr", "varchar"),
        ("timestmp", "timestamp"),
    ],
)
def test_e0201_unknown_type_suggests(written: str, suggestion: str) -> None:
    d = one(run(f"table t {{ a {written} }}"), "E0201")
    assert d.message == f"unknown column type `{written}`"
    assert where(d) == "policy.veil:1:13"
    assert d.help == f"did you mean `{suggestion}`?"


def test_e0201_without_a_near_name_lists_the_types() -> None:
    d = one(run("table t { a qqq }"), "E0201")
    assert d.help is not None and d.help.startswith("known types: boolean, smallint")


@pytest.mark.parametrize(
    ("written", "message"),
    [
        ("decimal(40,2)", "precision of `decimal(40,2)` must be between 1 and 38"),
        ("decimal(5,6)", "scale of `decimal(5,6)` must be between 0 and the precision 5"),
        ("decimal(1,2,3)", "`decimal(1,2,3)` takes 0 to 2 parameters"),
        ("char", "`char` takes one parameter"),
        ("varchar(0)", "length of `varchar(0)` must be between 1 and 10485760"),
        ("timestamp(3)", "`timestamp(3)` takes no parameters"),
        ("varchar(1,2)", "`varchar(1,2)` takes 0 to 1 parameters"),
    ],
)
def test_e0202_type_parameters(written: str, message: str) -> None:
    d = one(run(f"table t {{ a {written} }}"), "E0202")
    assert d.message == message
    assert where(d) == "policy.veil:1:13"
    assert d.help


def test_checked_types() -> None:
    r = run(
        "table t { a decimal; b decimal(9); c decimal(9,2); d varchar; e varchar(3); "
        "f char(2); g timestamptz }",
        base=None,
    )
    assert r.program is not None
    tb = r.program.tables[0]
    assert [c.type for c in tb.columns] == [
        model.SqlType(name="decimal"),
        model.SqlType(name="decimal", precision=9, scale=0),
        model.SqlType(name="decimal", precision=9, scale=2),
        model.SqlType(name="varchar"),
        model.SqlType(name="varchar", length=3),
        model.SqlType(name="char", length=2),
        model.SqlType(name="timestamptz"),
    ]


def test_e0109_parent_purpose_must_be_declared() -> None:
    d = one(run('purpose "Retention.Churn"'), "E0109")
    assert d.message == "purpose `Retention.Churn` needs its parent purpose `Retention`"
    assert where(d) == "policy.veil:1:9"
    assert d.help == "declare the parent with `purpose Retention`"


def test_acknowledgement_is_inherited_from_the_nearest_ancestor() -> None:
    r = run(
        'purpose "Fraud Detection.Chargebacks.Visa"\n'
        'purpose "Fraud Detection.Disputes" { acknowledgement "own" }\n'
        'purpose "Fraud Detection.Disputes.Late"'
    )
    assert r.program is not None
    ack = {p.name: p.acknowledgement for p in r.program.purposes}
    parent = "I will use card data only to investigate fraud."
    assert ack["Fraud Detection"] == parent
    assert ack["Fraud Detection.Chargebacks"] == parent
    assert ack["Fraud Detection.Chargebacks.Visa"] == parent
    assert ack["Fraud Detection.Disputes"] == "own"
    assert ack["Fraud Detection.Disputes.Late"] == "own"
    assert ack["Marketing"] is None


def test_people_are_sorted_and_groups_include_users_groups() -> None:
    r = run('user zed { groups ops, analysts; team "b", "a" }')
    assert r.program is not None
    assert r.program.groups == ("analysts", "ops", "stewards")
    assert [u.name for u in r.program.users] == ["alice", "bob", "dave", "zed"]
    zed = r.program.user("zed")
    assert zed is not None
    assert zed.groups == ("analysts", "ops")
    assert zed.values("team") == ("a", "b")


def test_tag_on_adds_tags_to_the_column() -> None:
    r = run("tag pii.hr, pii.hr on hr.survey.team\ntag pii.card on transactions.email")
    assert r.program is not None
    survey = r.program.table(("hr", "survey"))
    assert survey is not None
    team = survey.column("team")
    assert team is not None
    assert [str(tg) for tg in team.tags] == ["pii.hr"]
    tx = r.program.table(("sales", "transactions"))
    assert tx is not None
    email = tx.column("email")
    assert email is not None
    assert [str(tg) for tg in email.tags] == ["contact", "pii.card", "pii.email"]


def test_tag_on_unknown_or_ambiguous_column() -> None:
    r = run("tag pii on id\ntag pii on hr.survey.tem\ntag pii on payments.cards.pan")
    assert codes(r) == ["E0103", "E0102", "E0101"]
    amb, unknown, table = r.diagnostics
    assert amb.message == "`id` is ambiguous: it names 2 columns"
    assert amb.help == "qualify it further: `hr.survey.id` or `sales.transactions.id`"
    assert unknown.message == "table `hr.survey` has no column `tem`"
    assert unknown.help == "did you mean `team`?"
    assert where(unknown) == "policy.veil:2:12"
    assert table.message == "unknown table `payments.cards` in `payments.cards.pan`"


def test_string_length_is_bounded_by_what_postgres_allows() -> None:
    from tests.checker.helpers import one, run

    d = one(run("table a.t { x varchar(999999999999) }", base=None), "E0202")
    assert "between 1 and 10485760" in d.message
