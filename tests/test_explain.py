"""`veil explain`: decisions without row data, context lines, text and JSON renderings."""

from __future__ import annotations

import json

import pytest

from tests.evalkit import (
    OPEN,
    SURVEY,
    TX,
    always,
    cmp,
    col,
    group,
    lit,
    program,
    purpose,
    span,
    unless,
)
from veil import ir, methods, model
from veil.explain import Explanation, explain, explanation_to_json, render_explanation_text

EU = cmp("=", col("region"), lit("EU"))
MASKS = (
    unless(
        TX,
        "credit_card",
        methods.MaskShow(side="last", count=4),
        purpose("Fraud Detection"),
        line=3,
    ),
    always(TX, "email", methods.MaskHash(salt="sales.transactions"), line=4),
    unless(
        TX,
        "notes",
        methods.MaskConstant(value="REDACTED"),
        purpose("Fraud Detection"),
        when=EU,
        line=9,
    ),
)
RULES = (
    model.RowRule(
        table=TX,
        kind="filter",
        allow=purpose("Fraud Detection"),
        where=ir.InUser(item=col("region"), ref=ir.UserRef(attr="region")),
        span=span(12),
    ),
    model.RowRule(
        table=TX,
        kind="filter",
        allow=group("auditors"),
        where=cmp(">=", col("id"), lit(10)),
        span=span(13),
    ),
    model.RowRule(table=SURVEY, kind="restrict", allow=ir.AnyPurpose(), span=span(14)),
)
P = program(MASKS, RULES)


def columns(expl: Explanation, table: str = "sales.transactions") -> dict[str, tuple[str, str]]:
    tb = next(t for t in expl.tables if t.table == table)
    return {c.column: (c.outcome, c.method_source) for c in tb.columns}


@pytest.mark.parametrize(
    ("user", "project", "lines"),
    [
        ("alice", None, ["no active project: no purpose applies"]),
        ("alice", "nope", ["`nope` is not a project: no purpose applies"]),
        ("carol", "fraud_q4", ["`carol` is not a member of `fraud_q4`: no purpose applies"]),
        (
            "alice",
            "pending_p",
            [
                "project `pending_p` is not approved for any purpose: no purpose applies",
                "purpose `Fraud Detection` is pending approval",
            ],
        ),
        (
            "alice",
            "revoked_p",
            [
                "project `revoked_p` is not approved for any purpose: no purpose applies",
                "purpose `Fraud Detection` was revoked",
            ],
        ),
        (
            "bob",
            "stale_p",
            [
                "project `stale_p` is not approved for any purpose: no purpose applies",
                "purpose `Fraud Detection` has a stale approval (re-approval required)"
                " (members changed: added `bob`)",
            ],
        ),
        (
            "alice",
            "mixed",
            ["project `mixed` is active for `Audit`", "purpose `Marketing` is pending approval"],
        ),
        ("alice", "fraud_q4", ["project `fraud_q4` is active for `Fraud Detection`"]),
    ],
)
def test_project_context_lines(user: str, project: str | None, lines: list[str]) -> None:
    expl = explain(P, user, project, None)
    assert list(expl.context[1:]) == lines


def test_user_lines() -> None:
    assert (
        explain(P, "alice", None, None).context[0]
        == "`alice`: groups analysts; attributes department = Risk; region = EMEA, APAC"
    )
    assert explain(P, "carol", None, None).context[0] == "`carol`: groups none"
    stranger = explain(P, "mallory", None, None)
    assert stranger.context[0] == "`mallory` is not a declared user: no groups, no attributes"
    assert not stranger.user_declared


def test_columns_without_a_purpose() -> None:
    expl = explain(P, "bob", None, None)
    assert [t.table for t in expl.tables] == ["hr.survey", "sales.transactions"]
    assert columns(expl) == {
        "credit_card": ("masked", "show_last(4)"),
        "email": ("masked", "hash"),
        "notes": ("depends", 'constant("REDACTED")'),
    }
    tx = expl.tables[1]
    notes = tx.columns[2]
    assert notes.when == 'region = "EU"'
    assert (
        notes.summary
        == 'masked with constant("REDACTED") where region = "EU" (NULL too), clear elsewhere'
    )
    assert notes.decided_by == span(9)


def test_columns_under_a_purpose() -> None:
    expl = explain(P, "alice", "fraud_q4", None)
    assert columns(expl) == {
        "credit_card": ("clear", "reveal"),
        "email": ("masked", "hash"),
        "notes": ("clear", "reveal"),  # revealed whatever `when` says
    }
    tx = expl.tables[1]
    assert tx.purposes == ("Fraud Detection",) and tx.note is None
    assert tx.columns[0].decided_by == span(3) and tx.columns[0].when is None


def test_sub_purpose_project_reveals_and_parent_does_not_satisfy_child() -> None:
    expl = explain(P, "alice", "chargebacks", None)
    assert columns(expl)["credit_card"] == ("clear", "reveal")
    child_only = program(
        (unless(TX, "email", methods.MaskNull(), purpose("Fraud Detection.Chargebacks")),)
    )
    assert columns(explain(child_only, "alice", "fraud_q4", None))["email"] == ("masked", "null")


def test_row_rules() -> None:
    bob = explain(P, "bob", None, None)
    survey, tx = bob.tables
    assert [(r.kind, r.outcome, r.summary) for r in survey.rules] == [
        ("restrict", "none", "no rows")
    ]
    assert survey.rows == "no rows"
    # bob has no `region`: `region in user.region` is FALSE for every row
    assert [(r.outcome, r.predicate) for r in tx.rules] == [("none", None), ("where", "id >= 10")]
    assert tx.rows == "no rows"

    # predicates show the user's actual values
    alice_tx = explain(P, "alice", None, None).tables[1]
    assert [(r.outcome, r.predicate) for r in alice_tx.rules] == [
        ("where", 'region in ("EMEA", "APAC")'),
        ("where", "id >= 10"),
    ]
    assert alice_tx.rows == 'rows where region in ("EMEA", "APAC") and id >= 10'

    alice = explain(P, "alice", "fraud_q4", None)
    survey, tx = alice.tables
    assert survey.note == "`hr.survey` is not a source of `fraud_q4`: no purpose applies to it"
    assert survey.purposes == ()
    assert [r.outcome for r in tx.rules] == ["all", "where"]
    assert tx.rows == "rows where id >= 10"
    assert tx.rules[0].allow == "purpose Fraud Detection"

    mixed = explain(P, "alice", "mixed", None)
    assert mixed.tables[0].rows == "all rows"


def test_one_table_and_unknown_tables() -> None:
    expl = explain(P, "alice", None, SURVEY)
    assert [t.table for t in expl.tables] == ["hr.survey"]
    unprotected = explain(P, "alice", None, OPEN)
    assert (
        unprotected.tables[0].note
        == "no veil policy protects this table: every row and column is clear"
    )
    assert unprotected.tables[0].rows == "all rows"
    with pytest.raises(ValueError, match="not a table"):
        explain(P, "alice", None, ("no", "such"))


def test_text_rendering() -> None:
    text = render_explanation_text(explain(P, "bob", "fraud_q4", None))
    assert "\x1b" not in text
    assert (
        text
        == """\
user `bob`, project `fraud_q4`
  `bob`: groups stewards
  project `fraud_q4` is active for `Fraud Detection`

hr.survey
  `hr.survey` is not a source of `fraud_q4`: no purpose applies to it
  row rule  sees     policy
  restrict  no rows  policies.veil:14
  => no rows

sales.transactions
  column       sees              decided by
  credit_card  clear             policies.veil:3
  email        masked with hash  policies.veil:4
  notes        clear             policies.veil:9
  row rule  sees                 policy
  filter    all rows             policies.veil:12
  filter    rows where id >= 10  policies.veil:13
  => rows where id >= 10

access matrix: `bob` under no project and under each project (rows: all / hidden / filtered; \
columns: clear or the masking method)
                      bob           bob (fraud_q4)  bob (stale_p)
  hr.survey
    rows              hidden        hidden          hidden
    id                clear         clear           clear
    answer            clear         clear           clear
  sales.transactions
    rows              hidden        filtered [1]    hidden
    id                clear         clear           clear
    credit_card       show_last(4)  clear           show_last(4)
    email             hash          hash            hash
    amount            clear         clear           clear
    region            clear         clear           clear
    created_at        clear         clear           clear
    notes             constant [2]  clear           constant [2]
  [1] rows where id >= 10
  [2] constant("REDACTED") when region = "EU"

note: hashes are computed with veil's public test key (masking.TEST_HASH_KEY); a database \
hashes with its own secret key, so its values differ
"""
    )


def test_text_without_protected_tables() -> None:
    text = render_explanation_text(explain(program(), "mallory", None, None))
    assert text.endswith("\n\nno table is protected by a veil policy\n")


def test_json_is_stable_and_serialisable() -> None:
    expl = explain(P, "bob", None, TX)
    data = explanation_to_json(expl)
    assert json.loads(json.dumps(data)) == data
    assert sorted(data) == ["context", "project", "tables", "user"]
    assert data["user"] == {
        "name": "bob",
        "declared": True,
        "groups": ["stewards"],
        "attributes": {},
    }
    assert data["project"] == {
        "name": None,
        "state": "no_project",
        "active_purposes": [],
        "purposes": [],
    }
    tables = data["tables"]
    assert isinstance(tables, list) and len(tables) == 1
    table = tables[0]
    assert table["columns"][2] == {
        "column": "notes",
        "type": "text",
        "outcome": "depends",
        "method": "constant",
        "method_source": 'constant("REDACTED")',
        "when": 'region = "EU"',
        "decided_by": {"file": "policies.veil", "line": 9, "column": 1},
        "policies": [{"file": "policies.veil", "line": 9, "column": 1}],
        "summary": 'masked with constant("REDACTED") where region = "EU" (NULL too),'
        " clear elsewhere",
    }
    assert table["row_rules"][0] == {
        "kind": "filter",
        "outcome": "none",  # bob has no `region`
        "predicate": None,
        "where": "region in user.region",
        "allow": "purpose Fraud Detection",
        "policy": {"file": "policies.veil", "line": 12, "column": 1},
        "summary": "no rows",
    }
    stale = explanation_to_json(explain(P, "bob", "stale_p", None))["project"]
    assert stale == {
        "name": "stale_p",
        "state": "not_approved",
        "active_purposes": [],
        "purposes": [
            {
                "purpose": "Fraud Detection",
                "state": "stale",
                "changes": ["members changed: added `bob`"],
            }
        ],
    }


def test_explain_is_deterministic() -> None:
    a = explain(P, "alice", "fraud_q4", None)
    b = explain(P, "alice", "fraud_q4", None)
    assert a == b
    assert render_explanation_text(a) == render_explanation_text(b)
