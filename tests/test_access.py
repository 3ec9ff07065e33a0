"""veil.access: every user's access, predicates bound to the user's values, access diffs."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
from click.testing import CliRunner

from veil import access, model
from veil.api import check
from veil.cli import main
from veil.evaluator import Context, eval_predicate, mask_value
from veil.sample_data import sample_rows

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "payments"

BASE = """\
table sales.refunds {
  id      bigint
  region  varchar(8)
  email   varchar(64)
  owner   varchar(16)
}
purpose Fraud Detection
group analysts
user alice { groups analysts; region "EMEA" }
user bob   { region "AMER" }
user chris
project fraud_q4 {
  purposes Fraud Detection
  members  alice, bob
  sources  sales.refunds
}
approvers carol
"""


def checked(tmp_path: Path, name: str, policy: str) -> model.Program:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "p.veil").write_text(BASE + policy, encoding="utf-8")
    done = CliRunner().invoke(main, ["approve", "fraud_q4", "--by", "carol", "--path", str(folder)])
    assert done.exit_code == 0, done.output
    result = check([str(folder)])
    assert result.ok, result.diagnostics
    assert result.program is not None
    return result.program


@pytest.fixture(scope="module")
def payments() -> model.Program:
    result = check([str(EXAMPLE)])
    assert result.program is not None
    return result.program


def test_predicates_show_the_users_values(tmp_path: Path) -> None:
    p = checked(
        tmp_path,
        "p",
        "filter sales.refunds where region in user.region and owner = user.name\n"
        "mask sales.refunds.email with hash when region not in user.groups\n",
    )
    bob = access.access_of(p, "bob", None).tables[0]
    assert bob.rows.text == 'region in ("AMER") and owner = "bob"'
    alice = access.access_of(p, "alice", None).tables[0]
    assert alice.rows.state == "filtered"
    assert alice.column("email") == access.ColumnAccess(
        column="email",
        type="varchar(64)",
        state="depends",
        method="hash",
        when='region not in ("analysts")',
    )
    # chris has no region: `region in user.region` is FALSE for every row
    chris = access.access_of(p, "chris", None).tables[0]
    assert chris.rows.state == "hidden"
    # no groups: `not in user.groups` is TRUE for every row, so the mask always applies
    assert chris.column("email") == access.ColumnAccess(
        column="email", type="varchar(64)", state="masked", method="hash"
    )


def test_a_predicate_without_row_data_is_decided(tmp_path: Path) -> None:
    p = checked(tmp_path, "p", 'filter sales.refunds where user.name = "bob"\n')
    assert access.access_of(p, "bob", None).tables[0].rows.state == "all"
    assert access.access_of(p, "alice", None).tables[0].rows.state == "hidden"


def test_binding_never_changes_the_meaning(payments: model.Program) -> None:
    """A bound predicate gives the evaluator's answer on every sample row, for every user."""
    now = dt.datetime(2026, 11, 20, 12, tzinfo=dt.UTC)
    checked_any = 0
    for user in [u.name for u in payments.users] + ["mallory"]:
        ctx = Context(user=user, now=now)
        for tb in payments.protected_tables:
            names = [c.name for c in tb.columns]
            rows = [
                dict(zip(names, r, strict=True)) for r in sample_rows(payments, tb, 12, now.date())
            ]
            exprs = [r.where for r in payments.rules_of(tb.key) if r.where is not None]
            exprs += [m.when for m in payments.masks_of(tb.key) if m.when is not None]
            for expr in exprs:
                bound = access.bind_user(payments, expr, user)
                for row in rows:
                    assert eval_predicate(payments, bound, row, ctx) == eval_predicate(
                        payments, expr, row, ctx
                    )
                    checked_any += 1
    assert checked_any > 100


def test_matrix_agrees_with_the_evaluator(payments: model.Program) -> None:
    """`masked` / `clear` in the matrix is what the evaluator does to a cell."""
    for acc in access.matrix(payments):
        ctx = Context(user=acc.user, project=acc.project)
        for tb in acc.tables:
            info = payments.table(tb.key)
            assert info is not None
            for col in tb.columns:
                mask = next((m for m in payments.masks_of(tb.key) if m.column == col.column), None)
                if mask is None or mask.when is not None:
                    continue
                result = mask_value(payments, mask, None, {}, ctx)
                assert result.masked == (col.state == "masked"), (acc.label, tb.table, col)


def test_contexts_cover_every_user_and_their_projects(payments: model.Program) -> None:
    ctxs = access.contexts(payments)
    assert ("bob", None) in ctxs and ("bob", "chargebacks") in ctxs and ("bob", "fraud_q4") in ctxs
    assert ("bob", "campaign") not in ctxs
    assert {u for u, _ in ctxs} == {u.name for u in payments.users}


def test_diff_names_who_gains_and_loses(tmp_path: Path) -> None:
    old = checked(
        tmp_path,
        "old",
        "mask sales.refunds.email with hash unless purpose Fraud Detection\n"
        "restrict sales.refunds to purpose Fraud Detection\n",
    )
    new = checked(
        tmp_path,
        "new",
        "mask sales.refunds.email with hash unless group analysts\n"
        "filter sales.refunds where region in user.region unless purpose Fraud Detection\n",
    )
    lines = [str(c) for c in access.diff_access(old, new)]
    assert lines == [
        'alice: sales.refunds rows hidden \u2192 region in ("EMEA")',
        "alice: sales.refunds.email hash \u2192 clear",
        'bob: sales.refunds rows hidden \u2192 region in ("AMER")',
        "bob (fraud_q4): sales.refunds.email clear \u2192 hash",
    ]
    assert access.diff_access(old, old) == ()


def test_diff_of_a_table_no_longer_protected(tmp_path: Path) -> None:
    old = checked(tmp_path, "old", "mask sales.refunds.email with null\n")
    new = checked(tmp_path, "new", "")
    changes = access.diff_access(old, new)
    assert [(c.label, c.subject, c.old, c.new) for c in changes] == [
        (label, "sales.refunds.email", "null", "clear")
        for label in ("alice", "alice (fraud_q4)", "bob", "bob (fraud_q4)", "chris")
    ]


def test_matrix_text_notes_long_decisions(payments: model.Program) -> None:
    accs = [access.access_of(payments, "bob", p) for p in (None, "chargebacks")]
    text = "\n".join(access.render_matrix_text(accs))
    assert "bob (chargebacks)" in text
    assert '[1] constant("Other") when department in ("Legal", "Executive Office")' in text
    assert 'rows where region in ("AMER") and created_at >= now() - 90 days' in text
    assert access.render_matrix_text([]) == []
