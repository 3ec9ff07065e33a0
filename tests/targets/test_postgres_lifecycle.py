"""The purpose lifecycle on a real server, driven by the real CLI.

A temporary copy of examples/payments goes through what a team would do: fraud_q4 starts pending
(its approval removed), `veil approve` approves it, the members acknowledge its text
(`veil.acknowledge`), the text changes, a member is added, it is approved again and finally
`veil revoke`d. After each change the repository is compiled again (`veil.api.compile`) and the
script applied with psql, and a member's view is checked: the card numbers of
sales.transactions (masked unless "Fraud Detection") and sales.customers (restricted to any
purpose), compared with the evaluator too. At the end the audit log must hold every switch and
acknowledgement in order, be readable by `veil_auditors`, and refuse every write.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from click.testing import CliRunner

from tests.pg import PgDatabase, PgServer, fetch_all
from tests.targets.test_postgres_e2e import (
    Acknowledged,
    acknowledged_by,
    base_rows,
    compare_with_evaluator,
    insert_rows,
    sample_value,
    table_ddl,
    use_test_hash_key,
)
from veil import model
from veil.api import check, compile
from veil.cli import main
from veil.targets.postgres import PostgresTarget

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payments"
TARGET = PostgresTarget()
PROJECT = "fraud_q4"
PURPOSE = "Fraud Detection"
MEMBER = "alice"  # a member of fraud_q4 from the start
NEWCOMER = "maya"  # added to fraud_q4 on the way
OWNER = "veil_lc_owner"  # owns the tables
AUDITOR = "veil_lc_auditor"  # a login role granted veil_auditors
TX: model.TableKey = ("sales", "transactions")
CU: model.TableKey = ("sales", "customers")
NEW_TEXT = "I will use card data only to investigate fraud; I won't copy it, nor share it."


# ============================================================================= the repository


def cli(*args: str) -> str:
    """Run `veil ARGS` in-process; it must succeed. Returns what it printed."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def state_of(repo: Path) -> model.PurposeState:
    checked = check([repo])
    assert checked.program is not None
    info = checked.program.project(PROJECT)
    assert info is not None
    [pp] = info.purposes
    return pp.state


# ============================================================================= the database


@dataclasses.dataclass
class Lifecycle:
    """The database, the program last applied, and the audit rows expected so far."""

    db: PgDatabase
    repo: Path
    program: model.Program
    rows: dict[model.TableKey, list[dict[str, object]]]
    expected_audit: list[tuple[str, str, str | None, str | None, str | None]]

    def apply(self) -> None:
        """Compile the repository as it is now and apply the script."""
        checked = check([self.repo])
        assert checked.program is not None
        self.db.apply_script(compile([self.repo], "postgres"))
        use_test_hash_key(self.db)
        self.program = checked.program

    def text(self) -> str:
        info = self.program.purpose(PURPOSE)
        assert info is not None and info.acknowledgement is not None
        return info.acknowledgement

    def acknowledge(self, user: str) -> None:
        with self.db.connect_as(user) as conn:
            assert fetch_all(conn, "SELECT veil.acknowledge(%s)", (PROJECT,)) == [(1,)]
        self.expected_audit.append((user, "acknowledge", PROJECT, PURPOSE, self.text()))

    def acknowledged(self, user: str) -> Acknowledged:
        return acknowledged_by(self.db, user)

    def sees(self, user: str) -> str:
        """`clear` or `masked`: what `user` sees after selecting fraud_q4 (checked against the
        evaluator, told what the user acknowledged)."""
        acknowledged = self.acknowledged(user)
        with self.db.connect_as(user) as conn:
            fetch_all(conn, "SELECT veil.use_project(%s)", (PROJECT,))
            self.expected_audit.append((user, "switch", PROJECT, None, None))
            for key in (TX, CU):
                table = self.program.table(key)
                assert table is not None
                problems = compare_with_evaluator(
                    conn, self.program, user, PROJECT, table, self.rows[key], acknowledged
                )
                assert problems == [], problems
            cards = dict(
                fetch_all(conn, "SELECT id, credit_card FROM sales_protected.transactions")
            )
            [(customers,)] = fetch_all(conn, "SELECT count(*) FROM sales_protected.customers")
        clear = {r["id"]: r["credit_card"] for r in self.rows[TX]}
        if cards == clear and customers == len(self.rows[CU]):
            return "clear"
        assert customers == 0 and all(card is None for card in cards.values()), (cards, customers)
        return "masked"

    def not_a_member(self, user: str) -> None:
        with (
            self.db.connect_as(user) as conn,
            pytest.raises(psycopg.errors.InsufficientPrivilege, match="is not a member"),
        ):
            fetch_all(conn, "SELECT veil.use_project(%s)", (PROJECT,))

    def purpose_row(self) -> tuple[Any, ...]:
        [row] = self.db.query_as(
            None,
            "SELECT approved, state, approved_by, acknowledgement FROM veil.project_purpose"
            " WHERE project = %s",
            (PROJECT,),
        )
        return tuple(row)


@pytest.fixture(scope="module")
def roles(pg_server: PgServer) -> Iterator[None]:
    """The example's groups and users as roles (users log in), and the tables' owner."""
    checked = check([EXAMPLE])
    assert checked.program is not None
    program = checked.program
    created = [pg_server.create_role(OWNER, login=False)]
    created += [pg_server.create_role(g, login=False) for g in program.groups]
    created += [pg_server.create_role(u.name, member_of=u.groups) for u in program.users]
    try:
        yield
    finally:
        for role in (AUDITOR, *reversed(created), *TARGET.own_roles):
            pg_server.drop_role(role)


@pytest.fixture
def lifecycle(pg_db: PgDatabase, roles: None, tmp_path: Path) -> Lifecycle:
    """The example's tables with rows, readable by everyone, in a fresh database; fraud_q4's
    approval removed from a copy of the repository (nothing applied yet)."""
    repo = tmp_path / "payments"
    shutil.copytree(EXAMPLE, repo)
    projects = repo / "projects.veil"
    text = projects.read_text(encoding="utf-8")
    text, n = re.subn(r"(?ms)^approve fraud_q4 purpose .*?^}\n", "", text)
    assert n == 1
    projects.write_text(text, encoding="utf-8")
    checked = check([repo])
    assert checked.program is not None and checked.ok
    program = checked.program
    pg_db.apply_script(table_ddl(program.tables, OWNER))
    now = dt.datetime.now(dt.UTC)
    rows = {}
    for tb in program.tables:
        insert_rows(
            pg_db,
            tb,
            [
                {c.name: sample_value(c, i, j, now) for j, c in enumerate(tb.columns)}
                for i in range(1, 49)
            ],
        )
        rows[tb.key] = base_rows(pg_db, tb)
        pg_db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO PUBLIC;\n")
    return Lifecycle(db=pg_db, repo=repo, program=program, rows=rows, expected_audit=[])


# ============================================================================= the walk


def test_the_whole_lifecycle(lifecycle: Lifecycle, pg_server: PgServer) -> None:
    lc, repo = lifecycle, str(lifecycle.repo)
    first_text = lc.text()

    # pending: a member may select the project; it grants nothing
    assert state_of(lc.repo) is model.PurposeState.PENDING
    lc.apply()
    assert lc.purpose_row() == (False, "pending", None, first_text)
    assert lc.sees(MEMBER) == "masked"

    # approved, not acknowledged: still masked
    cli("approve", PROJECT, "--by", "carol", "--path", repo, "--at", "2026-12-01T09:00:00Z")
    lc.apply()
    assert lc.purpose_row() == (True, "approved", "carol", first_text)
    assert lc.sees(MEMBER) == "masked"

    # acknowledged: clear
    lc.acknowledge(MEMBER)
    assert lc.acknowledged(MEMBER) == {(PROJECT, PURPOSE, first_text)}
    assert lc.sees(MEMBER) == "clear"

    # the acknowledgement text changes: the approval is stale (it covers the text), and once
    # approved again the member must acknowledge the new text
    edit(
        lc.repo / "purposes.veil",
        f'acknowledgement "{first_text}"',
        f'acknowledgement "{NEW_TEXT}"',
    )
    assert "acknowledgement of `Fraud Detection` changed" in cli("check", repo)
    assert lc.sees(MEMBER) == "clear"  # not applied yet
    lc.apply()
    assert lc.text() == NEW_TEXT
    assert lc.purpose_row() == (False, "stale", "carol", NEW_TEXT)
    assert lc.sees(MEMBER) == "masked"
    cli("approve", PROJECT, "--by", "carol", "--path", repo, "--at", "2026-12-02T09:00:00Z")
    lc.apply()
    assert lc.purpose_row() == (True, "approved", "carol", NEW_TEXT)
    assert lc.sees(MEMBER) == "masked"  # only the old text was acknowledged
    with lc.db.connect_as(MEMBER) as conn:
        texts = fetch_all(conn, "SELECT * FROM veil.acknowledgement_texts(%s)", (PROJECT,))
    assert texts == [(PURPOSE, NEW_TEXT, False)]
    lc.acknowledge(MEMBER)
    assert lc.sees(MEMBER) == "clear"

    # a member is added: `veil check` names the newcomer; after the recompiled script the
    # approval is stale for everyone
    edit(
        lc.repo / "projects.veil",
        "members  alice, bob, chris\n",
        "members  alice, bob, chris, maya\n",
    )
    assert f"member `{NEWCOMER}` added" in cli("check", repo)
    assert lc.sees(MEMBER) == "clear"  # not applied yet
    lc.not_a_member(NEWCOMER)
    lc.apply()
    assert lc.purpose_row()[:2] == (False, "stale")
    assert lc.sees(MEMBER) == "masked"
    assert lc.sees(NEWCOMER) == "masked"

    # approved again: clear for the member who acknowledged the current text; the newcomer must
    # acknowledge first
    cli("approve", PROJECT, "--by", "dan", "--path", repo, "--at", "2026-12-03T09:00:00Z")
    lc.apply()
    assert lc.purpose_row() == (True, "approved", "dan", NEW_TEXT)
    assert lc.sees(MEMBER) == "clear"
    assert lc.sees(NEWCOMER) == "masked"
    lc.acknowledge(NEWCOMER)
    assert lc.sees(NEWCOMER) == "clear"

    # revoked: nothing for anyone, acknowledged or not
    cli("revoke", PROJECT, "--by", "carol", "--path", repo, "--at", "2026-12-04T09:00:00Z")
    assert state_of(lc.repo) is model.PurposeState.REVOKED
    lc.apply()
    assert lc.purpose_row()[:2] == (False, "revoked")
    assert lc.sees(MEMBER) == "masked"
    assert lc.sees(NEWCOMER) == "masked"

    # the audit log: every switch and acknowledgement, in order, with the exact texts
    audit = (
        "SELECT who, event, project, purpose, acknowledgement, at FROM veil.audit_log ORDER BY id"
    )
    log = lc.db.query_as(None, audit)
    assert [tuple(r[:5]) for r in log] == lc.expected_audit
    assert [r[0] for r in log if r[1] == "acknowledge"] == [MEMBER, MEMBER, NEWCOMER]
    assert [r[4] for r in log if r[1] == "acknowledge"] == [first_text, NEW_TEXT, NEW_TEXT]
    times = [r[5] for r in log]
    assert times == sorted(times)
    # applying the script again leaves the runtime data alone
    lc.apply()
    assert lc.db.query_as(None, audit) == log

    # users cannot write it (nor read it); veil_auditors read it and cannot write it either
    pg_server.create_role(AUDITOR, member_of=[TARGET.auditor_role])
    writes = (
        "INSERT INTO veil.audit_log (event, project) VALUES ('switch', 'x')",
        "UPDATE veil.audit_log SET who = 'nobody'",
        "DELETE FROM veil.audit_log",
        "TRUNCATE veil.audit_log",
    )
    for statement in (*writes, "SELECT * FROM veil.audit_log"):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            lc.db.query_as(MEMBER, statement)
    assert lc.db.query_as(AUDITOR, audit) == log
    for statement in writes:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            lc.db.query_as(AUDITOR, statement)
    # append-only even for a superuser (a trigger; only disabling it deliberately gets past it)
    for statement in writes[1:]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
            lc.db.query_as(None, statement)
    assert lc.db.query_as(None, audit) == log
