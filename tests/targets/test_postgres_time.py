"""Time in row predicates is UTC, whatever the session's TimeZone, on a real server.

Rows sit a few hours on either side of each boundary (`now() - 90 days`, `today() - 3 days`, a
literal date). A reader reads the views under several TimeZone settings, POSIX-style ones
included (`UTC+12` redefines the abbreviation `UTC` for the session), and must always get the
rows the evaluator gives, the session's clock read once per query.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from psycopg import sql

from tests.pg import PgDatabase, PgServer, fetch_all, temporary_database
from tests.targets.scenarios import check_text
from veil import model
from veil.evaluator import Context, evaluate_table
from veil.targets.postgres import PostgresTarget

TARGET = PostgresTarget()
OWNER = "veil_time_owner"
READER = "veil_time_reader"
ZONES = (
    "UTC",
    "UTC+12",
    "UTC-14",
    "Etc/GMT-14",
    "Pacific/Kiritimati",
    "America/Los_Angeles",
    "Asia/Kolkata",
    "<-03>+03",
)
POLICIES = """
table app.naive { id bigint; ts timestamp }
table app.instant { id bigint; ts timestamptz }
table app.day { id bigint; d date }
table app.noted { id bigint; ts timestamp; note text }
filter app.naive where ts >= now() - 90 days
filter app.instant where ts >= now() - 90 days and ts < "2100-01-01"
filter app.day where d >= today() - 3 days and d < now()
mask app.noted.note with null when ts < now() - 1 days
"""
#: Offsets (hours) around each boundary: far enough from it that the seconds a test takes do
#: not matter, closer than any time zone's offset.
HOURS = (-30, -15, -11, -5, -1, 1, 5, 11, 15, 30)


@pytest.fixture(scope="module")
def deployed(pg_server: PgServer) -> Iterator[tuple[PgDatabase, model.Program]]:
    program = check_text(POLICIES)
    roles = [pg_server.create_role(OWNER, login=False), pg_server.create_role(READER)]
    try:
        with temporary_database(pg_server) as db:
            db.apply_script(
                f"CREATE SCHEMA app AUTHORIZATION {OWNER};\n"
                f"SET ROLE {OWNER};\n"
                "CREATE TABLE app.naive (id bigint PRIMARY KEY, ts timestamp);\n"
                "CREATE TABLE app.instant (id bigint PRIMARY KEY, ts timestamptz);\n"
                "CREATE TABLE app.day (id bigint PRIMARY KEY, d date);\n"
                "CREATE TABLE app.noted (id bigint PRIMARY KEY, ts timestamp, note text);\n"
                "SET TimeZone = 'UTC';\n"
                "INSERT INTO app.naive SELECT i, (now() AT TIME ZONE 'Etc/UTC')"
                "  - interval '90 days' + h * interval '1 hour'"
                f"  FROM unnest(ARRAY{list(HOURS)}) WITH ORDINALITY AS x(h, i);\n"
                "INSERT INTO app.instant SELECT i,"
                "  now() - interval '90 days' + h * interval '1 hour'"
                f"  FROM unnest(ARRAY{list(HOURS)}) WITH ORDINALITY AS x(h, i);\n"
                "INSERT INTO app.day SELECT i, CAST(now() AT TIME ZONE 'Etc/UTC' AS date) + d"
                "  FROM generate_series(-5, 2) WITH ORDINALITY AS x(d, i);\n"
                "INSERT INTO app.noted SELECT i, (now() AT TIME ZONE 'Etc/UTC')"
                "  - interval '1 day' + h * interval '1 hour', 'n' || i"
                f"  FROM unnest(ARRAY{list(HOURS)}) WITH ORDINALITY AS x(h, i);\n"
                "RESET ROLE;\n"
                f"GRANT USAGE ON SCHEMA app TO {READER};\n"
                f"GRANT SELECT ON ALL TABLES IN SCHEMA app TO {READER};\n"
            )
            db.apply_script(TARGET.render(program))
            yield db, program
    finally:
        for role in (*reversed(roles), *TARGET.own_roles):
            pg_server.drop_role(role)


def base(db: PgDatabase, table: str) -> list[dict[str, object]]:
    with db.admin_connect() as conn:
        conn.execute("SET TimeZone = 'UTC'")
        cur = conn.execute(f"SELECT * FROM app.{table} ORDER BY id")
        names = [d.name for d in cur.description or ()]
        return [dict(zip(names, r, strict=True)) for r in cur.fetchall()]


@pytest.mark.parametrize("zone", ZONES)
@pytest.mark.parametrize("table", ["naive", "instant", "day", "noted"])
def test_rows_and_masks_do_not_depend_on_the_session_time_zone(
    deployed: tuple[PgDatabase, model.Program], table: str, zone: str
) -> None:
    db, program = deployed
    key = ("app", table)
    rows = base(db, table)
    with db.connect_as(READER) as conn:
        conn.execute(sql.SQL("SET TimeZone = {}").format(sql.Literal(zone)).as_string())
        conn.execute("BEGIN")  # one transaction: now() is the same for the query and for us
        got = fetch_all(
            conn,
            f"SELECT id, {'note' if table == 'noted' else 'id'}"
            f" FROM app_protected.{table} ORDER BY id",
        )
        [(now,)] = fetch_all(conn, "SELECT now()")
        conn.execute("COMMIT")
    expected = evaluate_table(program, key, rows, Context(user=READER, now=now))
    want = [
        (r["id"], r["note"] if table == "noted" else r["id"]) for r in expected if r is not None
    ]
    assert got == want, (zone, now)
    # the boundaries are exercised: some rows on either side
    assert 0 < len(want) < len(rows) or table == "noted"
    if table == "noted":
        assert {n is None for _, n in want} == {True, False}
