"""`veil verify` on a real server: examples/payments applied, verified clean; then one drift at a
time — each reported by name, then the script applied again and the database verified clean.

Every verify runs the real CLI in-process, as a login role that holds only what docs/ci.md
says a verify role needs (SELECT on the governance tables), never as a superuser.
"""

from __future__ import annotations

import datetime as dt
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.pg import PgDatabase, PgServer, RoleFactory, temporary_database
from tests.targets.test_postgres_e2e import insert_rows, people, sample_value, table_ddl
from veil import model
from veil.api import check, compile
from veil.cli import main
from veil.targets.postgres import GOVERNANCE_TABLES, PostgresTarget

__all__ = ["people"]  # the e2e module's fixture: the example's users and groups as roles

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "payments"
TARGET = PostgresTarget()
VERIFIER = "veil_test_verifier"


def program_of(path: Path) -> model.Program:
    checked = check([path])
    assert checked.program is not None and checked.ok
    return checked.program


def verifier_grants() -> str:
    """What docs/ci.md tells a DBA to grant the verify role: SELECT on veil's tables."""
    tables = [*GOVERNANCE_TABLES, "applied_definition"]
    return "".join(f"GRANT SELECT ON veil.{t} TO {VERIFIER};\n" for t in tables)


def verify(dsn: str, *args: str, path: Path = EXAMPLE) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", str(path), "--dsn", dsn, *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


class Deployed:
    def __init__(self, db: PgDatabase, script: str) -> None:
        self.db = db
        self.script = script

    def apply(self) -> None:
        self.db.apply_script(self.script)
        self.db.apply_script(verifier_grants())

    def verify(self, *args: str, path: Path = EXAMPLE) -> tuple[int, str]:
        return verify(self.db.dsn_as(VERIFIER), *args, path=path)

    def sql(self, text: str) -> None:
        with self.db.admin_connect() as conn:
            conn.execute(text)


@pytest.fixture(scope="module")
def deployed(pg_server: PgServer, people: list[str]) -> Iterator[Deployed]:
    program = program_of(EXAMPLE)
    pg_server.create_role(VERIFIER)
    try:
        with temporary_database(pg_server) as db:
            db.apply_script(table_ddl(program.tables))
            for tb in program.tables:
                row = {c.name: sample_value(c, 1, j, _NOW) for j, c in enumerate(tb.columns)}
                insert_rows(db, tb, [row])
                db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO PUBLIC;\n")
            d = Deployed(db, compile([EXAMPLE], "postgres"))
            d.apply()
            yield d
    finally:
        pg_server.drop_role(VERIFIER)


_NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def test_a_fresh_apply_verifies_clean(deployed: Deployed) -> None:
    code, out = deployed.verify()
    assert code == 0, out
    assert out.strip().splitlines() == [f"ok: {deployed.db.name} is what the repository declares"]
    code, out = deployed.verify("--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["ok"] is True and data["differences"] == []


DRIFTS: dict[str, tuple[str, list[str]]] = {
    # name: (the SQL a DBA or superuser ran, lines verify must print)
    "grant on a base table": (
        "GRANT SELECT ON sales.transactions TO alice",
        ["error: sales.transactions: alice holds SELECT on the table: readers go through the view"],
    ),
    "column grant on a base table": (
        "GRANT SELECT (email) ON sales.customers TO PUBLIC",
        [
            "error: sales.customers: PUBLIC holds SELECT on column `email`: readers go through "
            "the view"
        ],
    ),
    "dropped row policy": (
        "DROP POLICY {restrictive} ON sales.transactions",
        ["error: policy {restrictive} on sales.transactions: missing"],
    ),
    "policy altered by hand": (
        "ALTER POLICY {restrictive} ON sales.transactions USING (true)",
        [
            "error: policy {restrictive} on sales.transactions: changed after the apply: "
            "USING (true)"
        ],
    ),
    "a policy of someone else": (
        "CREATE POLICY everyone ON sales.transactions FOR SELECT USING (true)",
        ["error: policy everyone on sales.transactions: not created by this repository"],
    ),
    "view replaced by hand": (
        "CREATE OR REPLACE VIEW sales_protected.transactions"
        " AS SELECT {columns}"
        " FROM sales.transactions",
        ["error: sales_protected.transactions: replaced after the apply (its definition changed)"],
    ),
    "row inserted into project_member": (
        "INSERT INTO veil.project_member VALUES ('fraud_q4', 'mallory')",
        ['error: veil.project_member: row ("fraud_q4", "mallory") is not in the repository'],
    ),
    "row deleted from user_attribute": (
        "DELETE FROM veil.user_attribute WHERE user_name = 'alice' AND key = 'department'",
        [
            'error: veil.user_attribute: row ("alice", "department", "Risk") of the repository '
            "is missing"
        ],
    ),
    "purpose approved by hand": (
        "UPDATE veil.project_purpose SET approved = NOT approved WHERE project = 'fraud_q4'",
        [
            'error: veil.project_purpose: row ("fraud_q4", "Fraud Detection"): `approved` is '
            "false, the repository says true"
        ],
    ),
    "member of the views role": (
        "GRANT veil_views TO bob",
        ["error: veil_views: `bob` is a member: it can read everything veil protects"],
    ),
    "group membership not declared": (
        "GRANT contractors TO bob",
        [
            "error: contractors: `bob` is a member, but the repository does not put it in group "
            "`contractors`"
        ],
    ),
    "row security disabled": (
        "ALTER TABLE sales.customers DISABLE ROW LEVEL SECURITY",
        ["error: sales.customers: row level security is disabled"],
    ),
    "function replaced by hand": (
        "CREATE OR REPLACE FUNCTION veil.has_attribute(p_user name, p_key text, p_value text)"
        " RETURNS boolean LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog,"
        " pg_temp AS $$ SELECT true $$",
        [
            "error: function veil.has_attribute(p_user name, p_key text, p_value text): "
            "replaced after the apply"
        ],
    ),
    "governance schema given away": (
        "ALTER SCHEMA veil OWNER TO postgres",
        ["error: veil: owned by `postgres`, not `veil_owner`"],
    ),
    "a DBA may write a governance table": (
        "GRANT INSERT ON veil.project_member TO alice",
        ["error: veil.project_member: alice may INSERT: only `veil_owner` writes veil's tables"],
    ),
    "write grant on a view": (
        "GRANT UPDATE ON sales_protected.transactions TO alice",
        [
            "error: sales_protected.transactions: alice holds UPDATE on the view: consumers "
            "only read the views"
        ],
    ),
}


def _fill(text: str, deployed: Deployed) -> str:
    program = program_of(EXAMPLE)
    key = ("sales", "transactions")
    row_policy = TARGET.row_policy(program, key)
    assert row_policy is not None
    restrictive, _ = row_policy
    table = program.table(key)
    assert table is not None
    columns = ", ".join(TARGET.ident(c.name) for c in table.columns)
    return text.format(restrictive=restrictive, columns=columns)


@pytest.mark.parametrize("name", sorted(DRIFTS))
def test_each_drift_is_reported_by_name_and_reapplying_clears_it(
    deployed: Deployed, name: str
) -> None:
    statement, expected = DRIFTS[name]
    deployed.sql(_fill(statement, deployed))
    try:
        code, out = deployed.verify()
        assert code == 1, out
        lines = out.strip().splitlines()
        assert lines[:-1] == [_fill(e, deployed) for e in expected], out
        assert lines[-1].startswith(f"{len(expected)} difference")
        data = json.loads(deployed.verify("--format", "json")[1])
        assert data["ok"] is False and len(data["differences"]) == len(expected)
    finally:
        _undo(deployed, name)
        deployed.apply()
    code, out = deployed.verify()
    assert code == 0, (name, out)


def _undo(deployed: Deployed, name: str) -> None:
    """What re-applying the script does not undo by design (roles are cluster-wide and left as
    they are; a stranger's policy is not veil's to drop)."""
    undo = {
        "member of the views role": "REVOKE veil_views FROM bob",
        "group membership not declared": "REVOKE contractors FROM bob",
        "a policy of someone else": "DROP POLICY everyone ON sales.transactions",
        "governance schema given away": "ALTER SCHEMA veil OWNER TO veil_owner",
        "write grant on a view": "REVOKE UPDATE ON sales_protected.transactions FROM alice",
    }
    if name in undo:
        deployed.sql(undo[name])


def test_a_repository_that_moved_on_is_reported(deployed: Deployed, tmp_path: Path) -> None:
    repo = tmp_path / "payments"
    shutil.copytree(EXAMPLE, repo)
    policies = repo / "policies" / "payments.veil"
    text = policies.read_text(encoding="utf-8")
    assert text.count("show_last(4)") == 1
    policies.write_text(text.replace("show_last(4)", "show_last(2)"), encoding="utf-8")
    code, out = deployed.verify(path=repo)
    assert code == 1, out
    assert "differs from what the repository compiles to" in out, out


def test_a_database_without_veil_is_one_line(
    pg_server: PgServer, pg_login_role: RoleFactory
) -> None:
    with temporary_database(pg_server) as db:
        code, out = verify(db.dsn)
        assert code == 1
        assert out.strip().splitlines() == [
            "veil was never applied to this database (no `veil.protected_table`)"
        ]


def test_a_wrong_dsn_or_missing_privileges_exit_2(
    deployed: Deployed, pg_login_role: RoleFactory
) -> None:
    code, out = verify("host=/nonexistent port=1 dbname=nope connect_timeout=2")
    assert code == 2 and out.startswith("error: cannot connect:"), out
    assert "Traceback" not in out
    stranger = pg_login_role()
    code, out = verify(deployed.db.dsn_as(stranger))
    assert code == 2, out
    assert out.startswith("error: missing privileges: permission denied for table"), out
    assert "Traceback" not in out


def test_verify_reads_in_a_read_only_transaction(deployed: Deployed) -> None:
    from veil.verify import connect_read_only

    conn = connect_read_only(deployed.db.dsn)
    try:
        with pytest.raises(Exception, match="read-only transaction"):
            conn.execute("CREATE TABLE public.veil_verify_probe (a int)")
    finally:
        conn.rollback()
        conn.close()


# ============================================================================= coverage


def test_coverage_warns_about_what_the_catalog_does_not_declare(deployed: Deployed) -> None:
    deployed.sql(
        "CREATE TABLE sales.payouts (id integer, payee_iban text);"
        " ALTER TABLE sales.customers ADD COLUMN mobile_phone text;"
    )
    try:
        code, out = deployed.verify()
        assert code == 0, out
        assert out.strip().splitlines() == [
            "warning: sales.customers.mobile_phone: not in the catalog: declare it (and its tags)",
            "warning: sales.customers.mobile_phone: looks like phone (text) and has no mask",
            "warning: sales.payouts: not in the catalog: nothing protects it",
            "warning: sales.payouts.payee_iban: looks like bank account (text) and has no mask",
            f"ok: {deployed.db.name} is what the repository declares (4 warnings)",
        ]
        code, out = deployed.verify("--strict")
        assert code == 1
        assert out.splitlines()[0].startswith("error: sales.customers.mobile_phone:")
        assert out.strip().splitlines()[-1].startswith("4 differences")
        data = json.loads(deployed.verify("--format", "json")[1])
        assert data["ok"] is True and len(data["warnings"]) == 4
        code, out = deployed.verify("--sensitive", "phone=", "--sensitive", "bank account=")
        assert code == 0 and "looks like" not in out, out
        code, out = deployed.verify("--sensitive", "merchant=^merchant$")
        assert (
            "warning: sales.transactions.merchant: looks like merchant (character varying(128))"
            " and has no mask"
        ) in out
        code, out = deployed.verify("--sensitive", "bad=(")
        assert code == 2 and "pattern `bad`" in out, out
    finally:
        deployed.sql(
            "DROP TABLE sales.payouts; ALTER TABLE sales.customers DROP COLUMN mobile_phone"
        )


@pytest.mark.parametrize(
    ("name", "type_name", "labels"),
    [
        ("customerEmail", "text", ["email"]),
        ("e_mail", "varchar(80)", ["email"]),
        ("credit_card", "varchar(19)", ["card"]),
        ("card_no", "text", ["card"]),
        ("discard_reason", "text", []),
        ("ssn", "char(11)", ["national id"]),
        ("date_of_birth", "date", ["birth date"]),
        ("dob", "date", ["birth date"]),
        ("iban", "text", ["bank account"]),
        ("phone_number", "text", ["phone"]),
        ("telemetry", "jsonb", []),
        ("client_ip", "inet", ["ip address"]),
        ("amount", "numeric(12,2)", []),
    ],
)
def test_sensitive_patterns(name: str, type_name: str, labels: list[str]) -> None:
    from veil.coverage import _sensitive, parse_patterns

    assert _sensitive(name, type_name, parse_patterns([])) == labels
