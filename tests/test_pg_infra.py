"""The PostgreSQL test infrastructure itself: servers, databases, login roles, psql, helpers."""

from __future__ import annotations

import datetime as dt
import re
import subprocess
from pathlib import Path

import pytest

from tests.pg import (
    ENV_DSN,
    PgDatabase,
    PgServer,
    PgUnavailable,
    PsqlError,
    RoleFactory,
    fail_or_skip,
    temporary_database,
)

ALICE = "veil_infra_alice"
BOB = "veil_infra_bob"

# A table with row security and a SECURITY DEFINER function, as a veil script would create them.
SCRIPT = f"""
CREATE SCHEMA app;
CREATE TABLE app.notes (id int PRIMARY KEY, owner name NOT NULL, body text NOT NULL);
INSERT INTO app.notes VALUES (1, '{ALICE}', 'a1'), (2, '{BOB}', 'b1'), (3, '{ALICE}', 'a2');
ALTER TABLE app.notes ENABLE ROW LEVEL SECURITY;
CREATE POLICY own_rows ON app.notes TO PUBLIC USING (owner = current_user);
CREATE FUNCTION app.whoami() RETURNS text
  LANGUAGE sql STABLE SECURITY DEFINER SET search_path = pg_catalog, pg_temp
  AS $$ SELECT session_user || ' via ' || current_user $$;
GRANT USAGE ON SCHEMA app TO PUBLIC;
GRANT SELECT ON app.notes TO {ALICE}, {BOB};
GRANT EXECUTE ON FUNCTION app.whoami() TO PUBLIC;
DO $$ BEGIN RAISE NOTICE 'script applied'; END $$;
"""

# Creates a table, then fails: with `psql -1` the table must not survive.
FAILING_SCRIPT = """
CREATE TABLE leftover (id int);
SELECT * FROM no_such_table;
CREATE TABLE after_error (id int);
"""


@pytest.fixture
def app_db(pg_db: PgDatabase, pg_login_role: RoleFactory) -> PgDatabase:
    pg_login_role(ALICE)
    pg_login_role(BOB)
    pg_db.apply_script(SCRIPT)
    return pg_db


def _superuser_name(pg_server: PgServer) -> str:
    return str(pg_server.query_as(None, pg_server.maintenance_db, "SELECT current_user")[0][0])


# -- server ---------------------------------------------------------------------------------------


def test_admin_is_superuser_on_a_supported_version(pg_server: PgServer) -> None:
    rows = pg_server.query_as(
        None,
        pg_server.maintenance_db,
        "SELECT rolsuper FROM pg_roles WHERE rolname = current_user",
    )
    assert rows == [(True,)]
    assert pg_server.server_version_num >= 150000


def test_psql_matches_the_server_major_version(pg_server: PgServer) -> None:
    out = subprocess.run(
        [str(pg_server.psql), "--version"], capture_output=True, text=True, check=True
    ).stdout
    match = re.search(r"\(PostgreSQL\) (\d+)", out)
    assert match is not None, out
    assert int(match.group(1)) == pg_server.server_version_num // 10000


# -- databases ------------------------------------------------------------------------------------


def test_new_database_is_utf8_c_locale_and_utc(pg_db: PgDatabase, pg_server: PgServer) -> None:
    rows = pg_server.query_as(
        None,
        pg_server.maintenance_db,
        "SELECT pg_encoding_to_char(d.encoding), d.datcollate, s.setconfig"
        " FROM pg_database d LEFT JOIN pg_db_role_setting s"
        "   ON s.setdatabase = d.oid AND s.setrole = 0"
        " WHERE d.datname = %s",
        (pg_db.name,),
    )
    assert rows == [("UTF8", "C", ["TimeZone=UTC"])]


def test_connections_use_utc(pg_db: PgDatabase, pg_login_role: RoleFactory) -> None:
    role = pg_login_role()
    for user in (None, role):
        [(zone, now)] = pg_db.query_as(user, "SELECT current_setting('TimeZone'), now()")
        assert zone == "UTC"
        assert isinstance(now, dt.datetime)
        assert now.utcoffset() == dt.timedelta(0)


def test_drop_database_closes_its_connections(
    pg_server: PgServer, pg_login_role: RoleFactory
) -> None:
    role = pg_login_role()
    with temporary_database(pg_server) as db:
        conn = db.connect_as(role)
        pg_server.drop_database(db.name)
        assert conn.closed
        query = "SELECT 1 FROM pg_database WHERE datname = %s"
        rows = pg_server.query_as(None, pg_server.maintenance_db, query, (db.name,))
        assert rows == []


def test_refuses_to_recreate_the_maintenance_database(pg_server: PgServer) -> None:
    with pytest.raises(ValueError, match="refusing"):
        pg_server.create_database(pg_server.maintenance_db)


# -- roles ----------------------------------------------------------------------------------------


def test_login_roles_connect_as_themselves(pg_db: PgDatabase, pg_login_role: RoleFactory) -> None:
    alice = pg_login_role(ALICE)
    bob = pg_login_role(BOB)
    for role in (alice, bob):
        with pg_db.connect_as(role) as conn:
            row = conn.execute(
                "SELECT session_user, current_user, r.rolcanlogin, r.rolsuper"
                " FROM pg_roles r WHERE r.rolname = session_user"
            ).fetchone()
        assert row == (role, role, True, False)


def test_role_membership(pg_db: PgDatabase, pg_login_role: RoleFactory) -> None:
    group = pg_login_role("veil_infra_group", login=False)
    member = pg_login_role(member_of=[group])
    rows = pg_db.query_as(
        member,
        "SELECT pg_has_role(current_user, %s, 'MEMBER'), r.rolcanlogin"
        " FROM pg_roles r WHERE r.rolname = %s",
        (group, group),
    )
    assert rows == [(True, False)]


def test_recreating_a_role_drops_the_old_one_and_what_it_owned(
    pg_server: PgServer, pg_db: PgDatabase, pg_login_role: RoleFactory
) -> None:
    carol = pg_login_role("veil_infra_carol")
    pg_db.apply_script(f"GRANT CREATE ON SCHEMA public TO {carol};")
    with pg_db.connect_as(carol) as conn:
        conn.execute("CREATE TABLE carols (id int)")
    old_oid = pg_db.query_as(None, "SELECT oid FROM pg_roles WHERE rolname = %s", (carol,))

    assert pg_login_role("veil_infra_carol") == carol

    new_oid = pg_db.query_as(None, "SELECT oid FROM pg_roles WHERE rolname = %s", (carol,))
    assert new_oid != old_oid
    owner = pg_db.query_as(None, "SELECT tableowner FROM pg_tables WHERE tablename = 'carols'")
    assert owner == [(_superuser_name(pg_server),)]
    acl = pg_db.query_as(None, "SELECT nspacl::text FROM pg_namespace WHERE nspname = 'public'")
    assert carol not in acl[0][0]


def test_drop_role_removes_it(pg_server: PgServer, pg_login_role: RoleFactory) -> None:
    role = pg_login_role()
    pg_server.drop_role(role)
    rows = pg_server.query_as(
        None, pg_server.maintenance_db, "SELECT 1 FROM pg_roles WHERE rolname = %s", (role,)
    )
    assert rows == []


def test_refuses_to_drop_a_superuser(pg_server: PgServer) -> None:
    with pytest.raises(ValueError, match="refusing to drop superuser"):
        pg_server.drop_role(_superuser_name(pg_server))


# -- psql scripts ---------------------------------------------------------------------------------


def test_script_creates_rls_table_and_security_definer_function(app_db: PgDatabase) -> None:
    rows = app_db.query_as(
        None,
        "SELECT c.relrowsecurity, p.prosecdef FROM pg_class c, pg_proc p"
        " WHERE c.oid = 'app.notes'::regclass AND p.oid = 'app.whoami()'::regprocedure",
    )
    assert rows == [(True, True)]


def test_script_notices_are_returned(pg_db: PgDatabase) -> None:
    result = pg_db.apply_script("DO $$ BEGIN RAISE NOTICE 'hello from psql'; END $$;")
    assert "NOTICE:  hello from psql" in result.stderr


def test_row_security_and_definer_function_see_the_caller(
    pg_server: PgServer, app_db: PgDatabase
) -> None:
    superuser = _superuser_name(pg_server)
    for role, ids in ((ALICE, [1, 3]), (BOB, [2])):
        rows = app_db.query_as(role, "SELECT id FROM app.notes ORDER BY id")
        assert [r[0] for r in rows] == ids
        assert app_db.query_as(role, "SELECT app.whoami()") == [(f"{role} via {superuser}",)]


def test_script_from_a_path(pg_db: PgDatabase, tmp_path: Path) -> None:
    script = tmp_path / "ddl.sql"
    script.write_text("CREATE TABLE from_file (id int);\n", encoding="utf-8")
    pg_db.apply_script(script)
    assert pg_db.query_as(None, "SELECT to_regclass('public.from_file')::text") == [("from_file",)]


def test_failing_script_raises_with_psql_message_and_rolls_back(pg_db: PgDatabase) -> None:
    with pytest.raises(PsqlError) as caught:
        pg_db.apply_script(FAILING_SCRIPT)
    err = caught.value
    assert err.returncode == 3  # psql: an error in a script run with ON_ERROR_STOP
    assert 'relation "no_such_table" does not exist' in err.stderr
    assert err.stderr.strip() in str(err)
    assert pg_db.name in str(err)
    rows = pg_db.query_as(
        None, "SELECT to_regclass('public.leftover'), to_regclass('public.after_error')"
    )
    assert rows == [(None, None)]


def test_failing_script_file_is_named_in_the_error(pg_db: PgDatabase, tmp_path: Path) -> None:
    script = tmp_path / "broken.sql"
    script.write_text("CREATE TABLE ok (id int);\nSELEC 1;\n", encoding="utf-8")
    with pytest.raises(PsqlError, match=r"broken\.sql:2: ERROR:  syntax error"):
        pg_db.apply_script(script)
    assert pg_db.query_as(None, "SELECT to_regclass('public.ok')") == [(None,)]


# -- query helpers --------------------------------------------------------------------------------


def test_query_as_runs_setup_in_the_same_session(app_db: PgDatabase) -> None:
    rows = app_db.query_as(
        ALICE,
        "SELECT current_setting('veil.active_project', true), %s::int",
        (7,),
        setup=["SELECT set_config('veil.active_project', 'fraud_q4', false)"],
    )
    assert rows == [("fraud_q4", 7)]


def test_explain_shows_the_plan_without_costs(app_db: PgDatabase) -> None:
    plan = app_db.explain(
        "SELECT body FROM app.notes WHERE (SELECT app.whoami()) IS NOT NULL AND id = %s",
        (1,),
        role=ALICE,
    )
    assert "InitPlan" in plan
    assert "app.whoami()" not in plan.split("InitPlan")[0]
    assert "cost=" not in plan
    assert "notes" in plan


# -- no server ------------------------------------------------------------------------------------


def test_unreachable_dsn_is_reported(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv(ENV_DSN, f"host={tmp_path} port=1 user=postgres dbname=postgres")
    with pytest.raises(PgUnavailable, match=f"cannot connect to the {ENV_DSN} server"):
        PgServer.from_environment()


def test_missing_server_fails_in_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="PostgreSQL is required when CI=true: gone"):
        fail_or_skip("gone")


def test_missing_server_skips_elsewhere(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match="PostgreSQL unavailable: gone"):
        fail_or_skip("gone")
