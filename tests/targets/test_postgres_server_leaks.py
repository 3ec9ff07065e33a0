"""Leaks of the server itself that no script can close: the script warns loudly about them.

CVE-2024-4317 (fixed in PostgreSQL 16.3 and 15.7): `pg_stats_ext_exprs` shows the statistics of
expressions to every user, so a login with no privilege reads the common values of a protected
column. The test proves the leak as that login where the server has it, and that the script
warns exactly there.
"""

from __future__ import annotations

from tests.pg import PgDatabase, RoleFactory
from tests.targets.test_postgres import small_program
from tests.targets.test_postgres_e2e import table_ddl
from veil.targets.postgres import PostgresTarget

TARGET = PostgresTarget()


def leaky(version_num: int) -> bool:
    """Has a freshly initialised cluster of this version CVE-2024-4317?"""
    return (
        140000 <= version_num < 140012
        or 150000 <= version_num < 150007
        or (160000 <= version_num < 160003)
    )


def test_the_script_warns_where_statistics_of_expressions_leak(
    pg_db: PgDatabase, pg_login_role: RoleFactory
) -> None:
    program = small_program()
    owner = pg_login_role("veil_leak_owner", login=False)
    mallory = pg_login_role("veil_leak_mallory")
    pg_db.apply_script(
        table_ddl(program.tables, owner) + "INSERT INTO sales.transactions (id, email, region)"
        "  SELECT i, 'ceo@example.com', 'EMEA' FROM generate_series(1, 200) AS i;\n"
        "CREATE STATISTICS sales.leak ON (lower(email)) FROM sales.transactions;\n"
        "ANALYZE sales.transactions;\n"
    )
    result = pg_db.apply_script(TARGET.render(program))
    [(version,)] = pg_db.query_as(None, "SELECT current_setting('server_version_num')::int")
    seen = pg_db.query_as(
        mallory,
        "SELECT most_common_vals::text FROM pg_stats_ext_exprs WHERE tablename = 'transactions'",
    )
    leaked = any("ceo@example.com" in str(v) for (v,) in seen)
    assert leaked == leaky(version), (version, seen)
    assert ("CVE-2024-4317" in result.stderr) == leaked, result.stderr
