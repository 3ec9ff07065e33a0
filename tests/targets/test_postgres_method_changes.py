"""Every newer script converges from every older one when a column's masking method changes,
including to and from `regex` (whose result is in the "C" collation) on a `varchar(n)` and a
`char(n)` column: applied over the older script, the newer one leaves the database as a fresh
apply of it would (view definition, column types, collations and grants, and what a reader
sees), on a real server.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PgDatabase, PgServer, temporary_database
from tests.targets.scenarios import check_text
from tests.targets.test_postgres_e2e import use_test_hash_key
from veil.targets.postgres import PostgresTarget

TARGET = PostgresTarget()
OWNER = "veil_mc_owner"
READER = "veil_mc_reader"
METHODS = (
    'regex("[0-9]", "#")',
    "hash",
    "show_last(2)",
    "null",
    'constant("x")',
    "email_domain",
)
TABLES = """
table app.people { id bigint; email varchar(40); code char(12) }
"""


def script(method: str) -> str:
    program = check_text(
        TABLES + f"mask app.people.email with {method}\nmask app.people.code with {method}\n"
    )
    return TARGET.render(program)


def prepare(db: PgDatabase) -> None:
    db.apply_script(
        f"CREATE SCHEMA app AUTHORIZATION {OWNER};\n"
        "CREATE TABLE app.people (id bigint PRIMARY KEY, email varchar(40), code char(12));\n"
        f"ALTER TABLE app.people OWNER TO {OWNER};\n"
        "INSERT INTO app.people VALUES (1, 'ann@example.com', 'AB12'),"
        " (2, 'bob7@mail.org', 'x9'), (3, NULL, NULL);\n"
        f"GRANT SELECT ON app.people TO {READER};\n"
    )


def state(db: PgDatabase) -> object:
    view = db.query_as(
        None,
        "SELECT a.attname, format_type(a.atttypid, a.atttypmod),"
        " a.attcollation::regcollation::text,"
        " a.attacl::text FROM pg_attribute a WHERE a.attrelid = 'app_protected.people'::regclass"
        " AND a.attnum > 0 ORDER BY a.attnum",
    )
    definition = db.query_as(None, "SELECT pg_get_viewdef('app_protected.people'::regclass)")
    acl = db.query_as(
        None, "SELECT relacl::text FROM pg_class WHERE oid = 'app_protected.people'::regclass"
    )
    seen = db.query_as(READER, "SELECT * FROM app_protected.people ORDER BY id")
    return view, definition, acl, seen


@pytest.fixture(scope="module")
def roles(pg_server: PgServer) -> Iterator[None]:
    made = [pg_server.create_role(OWNER, login=False), pg_server.create_role(READER)]
    try:
        yield
    finally:
        for role in (*reversed(made), *TARGET.own_roles):
            pg_server.drop_role(role)


@pytest.fixture(scope="module")
def fresh(pg_server: PgServer, roles: None) -> dict[str, object]:
    """What a fresh apply of each method's script leaves."""
    out = {}
    for method in METHODS:
        with temporary_database(pg_server) as db:
            prepare(db)
            db.apply_script(script(method))
            use_test_hash_key(db)
            out[method] = state(db)
    return out


@pytest.mark.parametrize("old", METHODS)
def test_each_method_changes_into_each_other(
    pg_server: PgServer, fresh: dict[str, object], old: str
) -> None:
    with temporary_database(pg_server) as db:
        prepare(db)
        db.apply_script(script(old))
        use_test_hash_key(db)
        for new in (m for m in METHODS if m != old):  # old -> new -> old: every ordered pair
            for method in (new, old):
                db.apply_script(script(method))
                assert state(db) == fresh[method], (old, new, method)
