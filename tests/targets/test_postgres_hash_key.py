"""The keyed `hash` on a real server, attacked as the logins that are not trusted would.

The key lives in `veil.hash_key`, read only by veil's owner and the owner of the masking views
(row security forced); `veil.set_hash_key` sets or rotates it and only veil's owner may call it.
Every test logs in as a role and fails to get at the key, or to hash a guessed value.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from psycopg import sql

from tests.pg import PgDatabase, PgServer, fetch_all, temporary_database
from tests.targets.test_postgres import small_program
from tests.targets.test_postgres_e2e import (
    base_rows,
    insert_rows,
    sample_value,
    table_ddl,
    use_test_hash_key,
    view_name,
)
from veil import model
from veil.api import check
from veil.masking import TEST_HASH_KEY, hash_text
from veil.targets.postgres import PostgresTarget

TARGET = PostgresTarget()
TX = ("sales", "transactions")
OWNER = "veil_hk_owner"
READER = "veil_hk_reader"  # reads the protected view, nothing else
READ_ALL = "veil_hk_read_all"  # member of pg_read_all_data
WRITE_ALL = "veil_hk_write_all"  # member of pg_write_all_data


@dataclass
class Deployed:
    db: PgDatabase
    program: model.Program
    script: str
    emails: dict[int, object]


@pytest.fixture(scope="module")
def d(pg_server: PgServer) -> Iterator[Deployed]:
    program = dataclasses.replace(small_program(), row_rules=())  # every row visible
    roles = [
        pg_server.create_role(OWNER, login=False),
        pg_server.create_role(READER),
        pg_server.create_role(READ_ALL, member_of=["pg_read_all_data"]),
        pg_server.create_role(WRITE_ALL, member_of=["pg_write_all_data"]),
    ]
    try:
        with temporary_database(pg_server) as db:
            db.apply_script(table_ddl(program.tables, OWNER))
            now = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)
            for tb in program.tables:
                rows = [
                    {c.name: sample_value(c, i, j, now) for j, c in enumerate(tb.columns)}
                    for i in range(1, 9)
                ]
                insert_rows(db, tb, rows)
                db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO {READER};\n")
            script = TARGET.render(program)
            db.apply_script(script)
            tx = program.table(TX)
            assert tx is not None
            emails = {int(str(r["id"])): r["email"] for r in base_rows(db, tx)}
            yield Deployed(db=db, program=program, script=script, emails=emails)
    finally:
        for role in (*reversed(roles), *TARGET.own_roles):
            pg_server.drop_role(role)


def the_key(d: Deployed) -> str:
    [(key,)] = d.db.query_as(None, "SELECT key_hex FROM veil.hash_key")
    return str(key)


def shown_emails(d: Deployed) -> dict[int, object]:
    rows = d.db.query_as(READER, "SELECT id, email FROM sales_protected.transactions")
    return {int(i): e for i, e in rows}


def test_the_first_apply_draws_a_random_key_and_reapplying_keeps_it(d: Deployed) -> None:
    key = the_key(d)
    assert re.fullmatch(r"[0-9a-f]{64}", key) and key != TEST_HASH_KEY
    d.db.apply_script(d.script)
    assert the_key(d) == key


def test_the_view_hashes_with_the_database_key(d: Deployed) -> None:
    key = the_key(d)
    shown = shown_emails(d)
    assert shown and set(shown) == set(d.emails)
    for i, email in d.emails.items():
        if not isinstance(email, str):
            assert shown[i] is None
            continue
        assert shown[i] == hash_text("sales.transactions", email, None, key)
        # neither the evaluator's test key nor the old unkeyed hash gives it: no offline guessing
        assert shown[i] != hash_text("sales.transactions", email)
        unkeyed = hashlib.sha256(f"sales.transactions:{email}".encode()).hexdigest()
        assert shown[i] != unkeyed


def test_the_documented_setter_sets_and_rotates_the_key(d: Deployed) -> None:
    use_test_hash_key(d.db)
    assert the_key(d) == TEST_HASH_KEY
    shown = shown_emails(d)
    assert all(
        shown[i] == hash_text("sales.transactions", e)
        for i, e in d.emails.items()
        if isinstance(e, str)
    )
    d.db.apply_script("SELECT veil.set_hash_key();\n")  # rotation: a new random key
    rotated = the_key(d)
    assert re.fullmatch(r"[0-9a-f]{64}", rotated) and rotated != TEST_HASH_KEY
    assert shown_emails(d) != shown
    with d.db.admin_connect() as conn, pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT veil.set_hash_key(%s)", (TEST_HASH_KEY.upper(),))
    assert the_key(d) == rotated


@pytest.mark.parametrize("role", [READER, READ_ALL, WRITE_ALL])
def test_no_untrusted_login_reads_the_key(d: Deployed, role: str) -> None:
    with d.db.connect_as(role) as conn:
        try:
            rows = fetch_all(conn, "SELECT * FROM veil.hash_key")
        except psycopg.errors.InsufficientPrivilege:
            rows = []
        assert rows == []


@pytest.mark.parametrize("role", [READER, READ_ALL, WRITE_ALL])
def test_no_untrusted_login_sets_or_rotates_the_key(d: Deployed, role: str) -> None:
    key = the_key(d)
    for statement in (
        f"SELECT veil.set_hash_key('{'0' * 64}')",
        "SELECT veil.set_hash_key()",
    ):
        with d.db.connect_as(role) as conn, pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute(statement)
    assert the_key(d) == key


def test_pg_write_all_data_cannot_write_the_key(d: Deployed) -> None:
    key = the_key(d)
    with d.db.connect_as(WRITE_ALL) as conn:
        assert conn.execute(f"UPDATE veil.hash_key SET key_hex = '{'0' * 64}'").rowcount == 0
        assert conn.execute("DELETE FROM veil.hash_key").rowcount == 0
        with pytest.raises(psycopg.errors.InsufficientPrivilege):  # row security
            conn.execute(f"INSERT INTO veil.hash_key VALUES (FALSE, '{'0' * 64}')")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            conn.execute("TRUNCATE veil.hash_key")
    assert the_key(d) == key


def test_statistics_never_show_the_key(d: Deployed) -> None:
    d.db.apply_script("ANALYZE veil.hash_key;\n")
    for role in (READER, READ_ALL):
        assert (
            d.db.query_as(
                role, "SELECT * FROM pg_stats WHERE schemaname = 'veil' AND tablename = 'hash_key'"
            )
            == []
        )
    # not even for the superuser: no statistics are gathered on the key
    assert d.db.query_as(
        None,
        "SELECT count(*) FROM pg_statistic WHERE starelid = 'veil.hash_key'::regclass"
        " AND staattnum = (SELECT attnum FROM pg_attribute WHERE attrelid ="
        " 'veil.hash_key'::regclass AND attname = 'key_hex')",
    ) == [(0,)]


def test_the_key_is_in_no_definition_or_setting(d: Deployed) -> None:
    key = the_key(d)
    texts = d.db.query_as(
        None,
        "SELECT pg_get_viewdef(c.oid) FROM pg_class c WHERE c.relkind = 'v'"
        " UNION ALL SELECT prosrc FROM pg_proc"
        " UNION ALL SELECT coalesce(qual, '') || coalesce(with_check, '') FROM pg_policies"
        " UNION ALL SELECT setting FROM pg_settings"
        " UNION ALL SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting",
    )
    assert not [t for (t,) in texts if t is not None and key in t]
    assert key not in d.script


def test_a_reader_cannot_hash_a_guess(d: Deployed) -> None:
    """The only way to the keyed hash is the view over the table's own values: there is no
    function a reader may call that hashes a value of their choice."""
    hashing = d.db.query_as(
        READER,
        "SELECT p.oid::regprocedure::text FROM pg_proc p"
        " WHERE p.pronamespace = 'veil'::regnamespace"
        " AND has_function_privilege(p.oid, 'EXECUTE')"
        " AND pg_get_functiondef(p.oid) LIKE '%hash_key%'",
    )
    assert hashing == []


def test_without_a_key_every_hash_is_null(d: Deployed) -> None:
    """Fail-closed: with the key's row gone, the table's key is NULL and so is every hash (NULL
    || value is NULL), never the hash of the bare value or of a key of the empty string."""
    key = the_key(d)
    d.db.apply_script("DELETE FROM veil.hash_key;\n")
    try:
        shown = shown_emails(d)
    finally:
        d.db.apply_script(f"SELECT veil.set_hash_key('{key}');\n")
    assert set(shown) == set(d.emails) and any(isinstance(e, str) for e in d.emails.values())
    assert all(v is None for v in shown.values()), shown
    assert the_key(d) == key


#: Two tables whose parts joined by `.` read the same (`a.b.c`), each hashing a column.
DOTTED = """
table `a.b`.c { v varchar(64) }
table a.`b.c` { v varchar(64) }
mask `a.b`.c.v with hash
mask a.`b.c`.v with hash
"""


def test_tables_whose_dotted_names_read_the_same_never_share_a_hash(
    d: Deployed, pg_server: PgServer, tmp_path: Path
) -> None:
    """`"a.b".c` and `a."b.c"` hash the same value differently on the server, as in the
    evaluator: a reader cannot join their pseudonyms."""
    (tmp_path / "p.veil").write_text(DOTTED, encoding="utf-8")
    program = check([tmp_path]).program
    assert program is not None
    with temporary_database(pg_server) as db:
        db.apply_script(table_ddl(program.tables, OWNER))
        for tb in program.tables:
            insert_rows(db, tb, [{"v": "x"}])
            db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO {READER};\n")
        db.apply_script(TARGET.render(program))
        use_test_hash_key(db)
        shown = {
            tb.key: db.query_as(
                READER, sql.SQL("SELECT v FROM {}").format(view_name(tb.key)).as_string()
            )
            for tb in program.tables
        }
    one, two = shown[("a.b", "c")], shown[("a", "b.c")]
    assert one != two
    assert one == [(hash_text('"a.b".c', "x"),)] and two == [(hash_text('a."b.c"', "x"),)]
