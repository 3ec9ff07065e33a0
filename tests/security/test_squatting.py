"""Squatting: objects that someone else created before veil's script ran (or changed after), which
the script would otherwise adopt. Each attack leaves its object in a database where veil was
never applied (or was applied once), then the script must stop with an error that names the
object, and `psql -1` must leave nothing of it behind.

The script here uses its own governance schema and view suffix (`veilsq`, `_sq`), so that its
roles (`veilsq_owner`, ...) do not exist yet, whatever other modules left in the cluster.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import psycopg
import pytest

from tests.pg import PgDatabase, PgServer, PsqlError, temporary_database
from tests.targets.test_postgres import small_program
from tests.targets.test_postgres_e2e import TABLE_OWNER, table_ddl
from veil.targets import Options
from veil.targets.postgres import PostgresTarget

TARGET = PostgresTarget(Options(governance_schema="veilsq", view_schema_suffix="_sq"))
CREATOR = "veil_sq_creator"  # CREATEROLE
SQUATTER = "veil_sq_squatter"  # owns the database (CREATE on it)
CREW = "veil_sq_crew"  # a group of the policies that nobody has created yet
PROGRAM = dataclasses.replace(small_program(), groups=(*small_program().groups, CREW))
SCRIPT = TARGET.render(PROGRAM)


@pytest.fixture(scope="module")
def sq(pg_server: PgServer) -> Iterator[PgDatabase]:
    roles = [pg_server.create_role(TABLE_OWNER, login=False)]
    roles += [pg_server.create_role(g, login=False) for g in small_program().groups]
    roles += [pg_server.create_role(u) for u in ("alice", "bob", CREATOR, SQUATTER)]
    try:
        with temporary_database(pg_server) as db:
            with db.admin_connect() as conn:
                conn.execute(f"ALTER ROLE {CREATOR} CREATEROLE")
                conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO {SQUATTER}')
            db.apply_script(table_ddl(PROGRAM.tables))
            yield db
    finally:
        for role in (*reversed(roles), CREW, *TARGET.own_roles):
            pg_server.drop_role(role)


def refused(db: PgDatabase, *names: str) -> str:
    """Applies the script, asserts it fails naming every one of `names`, and that nothing of it
    was left behind; returns psql's error output."""
    with pytest.raises(PsqlError) as caught:
        db.apply_script(SCRIPT)
    err = caught.value.stderr
    for name in names:
        assert name in err, err
    assert db.query_as(None, "SELECT to_regclass('sales.transactions') IS NOT NULL") == [(True,)]
    assert db.query_as(
        None, "SELECT relrowsecurity FROM pg_class WHERE oid = 'sales.transactions'::regclass"
    ) == [(False,)]
    return err


def as_role(db: PgDatabase, role: str, *statements: str) -> None:
    with db.connect_as(role) as conn:
        for s in statements:
            conn.execute(s)


def admin(db: PgDatabase, *statements: str) -> None:
    with db.admin_connect() as conn:
        for s in statements:
            conn.execute(s)


def test_a_squatted_governance_schema(sq: PgDatabase) -> None:
    as_role(sq, SQUATTER, "CREATE SCHEMA veilsq")
    try:
        refused(sq, "veilsq", SQUATTER)
    finally:
        admin(sq, "DROP SCHEMA veilsq CASCADE")


def test_a_trigger_planted_on_a_governance_table(sq: PgDatabase) -> None:
    as_role(
        sq,
        SQUATTER,
        "CREATE SCHEMA veilsq",
        "CREATE TABLE veilsq.managed_role (role_name text PRIMARY KEY, kind text NOT NULL)",
        "CREATE FUNCTION veilsq.promote() RETURNS trigger LANGUAGE plpgsql AS"
        f" $$ BEGIN EXECUTE 'ALTER ROLE {SQUATTER} SUPERUSER'; RETURN NULL; END $$",
        "CREATE TRIGGER promote AFTER INSERT ON veilsq.managed_role"
        " FOR EACH STATEMENT EXECUTE FUNCTION veilsq.promote()",
    )
    try:
        refused(sq, "veilsq")
        assert sq.query_as(None, f"SELECT rolsuper FROM pg_roles WHERE rolname = '{SQUATTER}'") == [
            (False,)
        ]
    finally:
        admin(sq, "DROP SCHEMA veilsq CASCADE")


def test_a_squatted_view_schema(sq: PgDatabase) -> None:
    as_role(sq, SQUATTER, "CREATE SCHEMA sales_sq")
    try:
        refused(sq, "sales_sq", SQUATTER)
    finally:
        admin(sq, "DROP SCHEMA sales_sq CASCADE")


@pytest.mark.parametrize("which", ["owner", "views", "auditors"])
def test_a_squatted_veil_role(sq: PgDatabase, pg_server: PgServer, which: str) -> None:
    if pg_server.server_version_num < 160000:
        pytest.skip("before PostgreSQL 16, CREATEROLE administers every role (docs/security.md)")
    role = f"veilsq_{which}"
    as_role(sq, CREATOR, f"CREATE ROLE {role} NOLOGIN")
    try:
        refused(sq, role, CREATOR)
    finally:
        pg_server.drop_role(role)


def test_a_squatted_group(sq: PgDatabase, pg_server: PgServer) -> None:
    """The creator of a group holds ADMIN on it, which PostgreSQL 16+ counts as membership."""
    if pg_server.server_version_num < 160000:
        pytest.skip("before PostgreSQL 16, CREATEROLE administers every role (docs/security.md)")
    as_role(sq, CREATOR, f"CREATE ROLE {CREW} NOLOGIN")
    try:
        err = refused(sq, CREW, CREATOR)
        # what the error says to do is enough
        assert f"REVOKE {CREW} FROM {CREATOR}" in err
        admin(sq, f"REVOKE {CREW} FROM {CREATOR}")
        sq.apply_script(SCRIPT)
    finally:
        undo(sq, pg_server)
        pg_server.drop_role(CREW)


def test_a_group_with_an_outside_admin(sq: PgDatabase) -> None:
    admin(sq, "GRANT stewards TO alice WITH ADMIN OPTION")
    try:
        refused(sq, "stewards", "alice")
    finally:
        admin(sq, "REVOKE stewards FROM alice")


def test_a_member_of_the_view_owner(sq: PgDatabase, pg_server: PgServer) -> None:
    """Applied once cleanly, then someone makes alice a member of the view owner."""
    sq.apply_script(SCRIPT)
    admin(sq, f"GRANT {TARGET.view_role} TO alice")
    try:
        refused_again(sq, TARGET.view_role, "alice")
    finally:
        admin(sq, f"REVOKE {TARGET.view_role} FROM alice")
        undo(sq, pg_server)


@pytest.mark.parametrize(
    ("change", "named"),
    [
        (
            "CREATE FUNCTION veilsq.f() RETURNS trigger LANGUAGE plpgsql AS"
            " $$ BEGIN RETURN NULL; END $$\n"
            "CREATE TRIGGER t AFTER INSERT ON veilsq.project_member"
            " FOR EACH ROW EXECUTE FUNCTION veilsq.f()",
            "veilsq.project_member",
        ),
        (
            "CREATE RULE r AS ON INSERT TO veilsq.project DO ALSO NOTIFY x",
            "veilsq.project",
        ),
        (
            "CREATE POLICY p ON veilsq.project_member FOR SELECT TO PUBLIC USING (true)",
            "veilsq.project_member",
        ),
        ("CREATE TABLE veilsq.extra (x int)", "veilsq.extra"),
        ("CREATE FUNCTION veilsq.extra() RETURNS int LANGUAGE sql AS 'SELECT 1'", "extra"),
        (f"ALTER SCHEMA sales_sq OWNER TO {SQUATTER}", "sales_sq"),
        (f"ALTER TABLE veilsq.project OWNER TO {SQUATTER}", "veilsq.project"),
        ("CREATE FUNCTION sales_sq.f() RETURNS int LANGUAGE sql AS 'SELECT 1'", "sales_sq.f()"),
        (
            "CREATE VIEW sales_sq.loot AS SELECT 1 AS x\n"
            f"ALTER VIEW sales_sq.loot OWNER TO {SQUATTER}",
            "sales_sq.loot",
        ),
    ],
)
def test_a_change_since_the_last_apply(
    sq: PgDatabase, pg_server: PgServer, change: str, named: str
) -> None:
    """Applied once cleanly, then changed (by a superuser, or by someone holding the rights at
    the time): the next apply stops and names what changed."""
    sq.apply_script(SCRIPT)
    try:
        admin(sq, *change.split("\n"))
        refused_again(sq, named)
    finally:
        undo(sq, pg_server)


def refused_again(db: PgDatabase, *names: str) -> None:
    with pytest.raises(PsqlError) as caught:
        db.apply_script(SCRIPT)
    for name in names:
        assert name in caught.value.stderr, caught.value.stderr


def undo(db: PgDatabase, pg_server: PgServer) -> None:
    """Back to a database where veil was never applied."""
    admin(
        db,
        "DROP SCHEMA IF EXISTS veilsq CASCADE",
        "DROP SCHEMA IF EXISTS sales_sq CASCADE",
        "DROP POLICY IF EXISTS veil_base ON sales.transactions",
        "ALTER TABLE sales.transactions DISABLE ROW LEVEL SECURITY",
        "ALTER TABLE sales.customers DISABLE ROW LEVEL SECURITY",
    )
    for role in TARGET.own_roles:
        pg_server.drop_role(role)
    with db.admin_connect() as conn:
        for table in ("sales.transactions", "sales.customers"):
            for (name,) in conn.execute(
                "SELECT polname FROM pg_policy WHERE polrelid = %s::regclass", (table,)
            ).fetchall():
                conn.execute(f'DROP POLICY "{name}" ON {table}')


def test_create_on_a_view_schema_is_revoked(sq: PgDatabase, pg_server: PgServer) -> None:
    sq.apply_script(SCRIPT)
    try:
        admin(sq, f"GRANT CREATE ON SCHEMA sales_sq TO {SQUATTER}")
        sq.apply_script(SCRIPT)
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            as_role(sq, SQUATTER, "CREATE TABLE sales_sq.loot (x int)")
    finally:
        undo(sq, pg_server)


def test_a_clean_database_applies(sq: PgDatabase, pg_server: PgServer) -> None:
    """The control: with nothing squatted the same script applies, twice."""
    try:
        sq.apply_script(SCRIPT)
        sq.apply_script(SCRIPT)
    finally:
        undo(sq, pg_server)


def test_an_error_is_not_a_half_applied_database(sq: PgDatabase) -> None:
    as_role(sq, SQUATTER, "CREATE SCHEMA veilsq")
    try:
        refused(sq, "veilsq")
        assert sq.query_as(
            None, "SELECT count(*) FROM pg_namespace WHERE nspname = 'sales_sq'"
        ) == [(0,)]
    finally:
        admin(sq, "DROP SCHEMA veilsq CASCADE")
    with pytest.raises(psycopg.errors.UndefinedTable):
        sq.query_as(None, "SELECT * FROM veilsq.project")
