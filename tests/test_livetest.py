"""`veil test --dsn` on a real server: the repository's own tests, run as each test's user.

examples/payments is applied (its tables readable by PUBLIC, as a DBA would have them); the live
run must agree with the offline one test for test. Then hand-made grants make the database and
the evaluator disagree — the offline run still passes, the live run must fail on the very
expectations the grants break. A user who is a superuser is refused, never read as.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from tests.pg import PgDatabase, PgServer, temporary_database
from tests.targets.test_postgres_e2e import insert_rows, people, sample_value, table_ddl
from veil.api import check, compile
from veil.cli import main
from veil.targets.postgres import PostgresTarget

__all__ = ["people"]  # the e2e module's fixture: the example's users and groups as roles

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "payments"
TARGET = PostgresTarget()
NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["test", str(EXAMPLE), *args])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.stdout


def verdicts(out: str) -> dict[tuple[str, int], bool]:
    """Whether each expectation (file, line) held."""
    data = json.loads(out)
    return {(e["file"], e["line"]): e["passed"] for t in data["tests"] for e in t["expectations"]}


@pytest.fixture(scope="module")
def deployed(pg_server: PgServer, people: list[str]) -> Iterator[PgDatabase]:
    checked = check([EXAMPLE])
    assert checked.program is not None and checked.ok
    program = checked.program
    with temporary_database(pg_server) as db:
        db.apply_script(table_ddl(program.tables))
        for tb in program.tables:
            row = {c.name: sample_value(c, 1, j, NOW) for j, c in enumerate(tb.columns)}
            insert_rows(db, tb, [row])
            db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO PUBLIC;\n")
        db.apply_script(compile([EXAMPLE], "postgres"))
        yield db


def test_the_live_run_agrees_with_the_offline_run(deployed: PgDatabase) -> None:
    offline_code, offline = run("--format", "json")
    code, live = run("--dsn", deployed.dsn, "--format", "json")
    assert verdicts(live) == verdicts(offline), live
    assert len(verdicts(live)) > 50
    assert code == offline_code, live
    # and nothing it did persists: no switch, no acknowledgement
    assert deployed.query_as(None, "SELECT count(*) FROM veil.audit_log") == [(0,)]


def test_a_hand_made_grant_is_caught_live(deployed: PgDatabase) -> None:
    """alice may read the base table: the view still masks, but she reads the card directly."""
    before = verdicts(run("--dsn", deployed.dsn, "--format", "json")[1])
    with deployed.admin_connect() as conn:
        conn.execute("GRANT SELECT ON sales.transactions TO alice")
    try:
        code, out = run("--dsn", deployed.dsn)
        assert code == 1, out
        assert (
            "expected sales.transactions.credit_card masked with null, got clear "
            "(`alice` may SELECT `sales.transactions.credit_card` directly)"
        ) in out, out
        data = json.loads(run("--dsn", deployed.dsn, "--format", "json")[1])
        broken = {
            (e["file"], e["line"]): t["user"]
            for t in data["tests"]
            for e in t["expectations"]
            if not e["passed"] and before[(e["file"], e["line"])]
        }
        assert broken and set(broken.values()) == {"alice"}, broken
    finally:
        with deployed.admin_connect() as conn:
            conn.execute("REVOKE SELECT ON sales.transactions FROM alice")
    assert verdicts(run("--dsn", deployed.dsn, "--format", "json")[1]) == before


def test_a_group_granted_by_hand_changes_what_the_view_shows(deployed: PgDatabase) -> None:
    with deployed.admin_connect() as conn:
        conn.execute("GRANT stewards TO alice")
    try:
        code, out = run("--dsn", deployed.dsn)
        assert code == 1, out
        assert "expected sales.transactions.email masked with hash, got clear" in out, out
    finally:
        with deployed.admin_connect() as conn:
            conn.execute("REVOKE stewards FROM alice")


def test_a_superuser_is_never_read_as(deployed: PgDatabase) -> None:
    with deployed.admin_connect() as conn:
        conn.execute("ALTER ROLE erin SUPERUSER")
    try:
        code, out = run("--dsn", deployed.dsn)
        assert code == 1
        assert "`erin` is a superuser or bypasses row security: refusing to read as it" in out
    finally:
        with deployed.admin_connect() as conn:
            conn.execute("ALTER ROLE erin NOSUPERUSER")


def test_the_dsn_must_let_veil_become_each_user(deployed: PgDatabase) -> None:
    result = CliRunner().invoke(main, ["test", str(EXAMPLE), "--dsn", deployed.dsn_as("alice")])
    assert result.exit_code == 2
    assert "error: the DSN's role must be a superuser" in result.stderr
    code, _ = run("--dsn", deployed.dsn, "--now", "2026-01-01")
    assert code == 2


def test_a_dropped_row_policy_is_caught_live(deployed: PgDatabase) -> None:
    """Row expectations are decided by the live policies: without the table's row policy (its
    region and 90-day filters), alice sees LATAM rows the repository hides from her."""
    [(policy,)] = deployed.query_as(
        None,
        "SELECT polname FROM pg_policy WHERE polrelid = 'sales.transactions'::regclass"
        " AND polname LIKE 'veil\\_rows\\_%'",
    )
    script = compile([EXAMPLE], "postgres")
    with deployed.admin_connect() as conn:
        conn.execute(f"DROP POLICY {policy} ON sales.transactions")
    try:
        code, out = run("--dsn", deployed.dsn)
        assert code == 1, out
        assert 'row { region: "LATAM", created_at: "2020-01-15 10:00:00" } hidden' in out, out
    finally:
        deployed.apply_script(script)
    assert verdicts(run("--dsn", deployed.dsn, "--format", "json")[1]) == verdicts(
        run("--format", "json")[1]
    )


def test_each_user_can_log_in_with_their_own_credentials(deployed: PgDatabase) -> None:
    """A DSN holding `{user}`: veil logs in as each test's user (trust over the socket here)."""
    params = conninfo_to_dict(deployed.dsn)
    params.pop("password", None)
    params["user"] = "USER"
    template = make_conninfo("", **params).replace("USER", "{user}")
    _, out = run("--dsn", template, "--format", "json")
    assert verdicts(out) == verdicts(run("--format", "json")[1])
