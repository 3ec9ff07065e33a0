"""The world the attacks run in: the payments example applied once to a real server, its people
as login roles, and attackers that hold every kind of privilege the threat model does not trust
(docs/security.md): a plain login, CREATEROLE, CREATE on the database (its owner), and members of
pg_read_all_data / pg_write_all_data / BYPASSRLS.

Every attack runs in its own transaction that is rolled back (`attempt`), so an attack that got
through cannot change what the next one sees; attacks that must commit clean up after
themselves.
"""

from __future__ import annotations

import contextlib
import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any

import psycopg

from tests.pg import Connection, PgDatabase, PgServer, fetch_all
from tests.targets.test_postgres_e2e import (
    TABLE_OWNER,
    Deployment,
    deploy,
    payments_program,
)
from veil import model
from veil.targets.postgres import PostgresTarget

TARGET = PostgresTarget()

MALLORY = "veil_sec_mallory"  # a login the repository does not know
CREATOR = "veil_sec_creator"  # CREATEROLE
DBOWNER = "veil_sec_dbowner"  # owns the database: CREATE on it
WRITER = "veil_sec_writer"  # pg_write_all_data
READER = "veil_sec_reader"  # pg_read_all_data
BYPASS = "veil_sec_bypass"  # BYPASSRLS and pg_read_all_data
TWIN = "veil_sec_twin"  # a member whose login is later dropped and re-created
GHOST = "veil_sec_ghost"  # a member whose login does not exist when the script is applied
LAB = "sec_lab"  # their project: Fraud Detection, approved, on sales.transactions
ATTACKERS = (MALLORY, CREATOR, DBOWNER, WRITER, READER, BYPASS)

#: Card numbers of the sample data long enough that no mask or hash reproduces them.
CLEAR_CARDS = ("4111111111111111", "5500005555555559", "378282246310005")
CARDS = "SELECT id, credit_card FROM sales_protected.transactions ORDER BY id"


def security_program() -> model.Program:
    program = payments_program()
    fd = next(pp for p in program.projects for pp in p.purposes if p.name == "fraud_q4")
    lab = model.ProjectInfo(
        name=LAB, purposes=(fd,), members=(TWIN, GHOST), sources=(("sales", "transactions"),)
    )
    projects = tuple(sorted((*program.projects, lab), key=lambda p: p.name))
    return dataclasses.replace(program, projects=projects)


@dataclasses.dataclass
class World:
    server: PgServer
    d: Deployment

    @property
    def db(self) -> PgDatabase:
        return self.d.db

    @contextlib.contextmanager
    def attempt(self, role: str, project: str | None = None) -> Iterator[Connection]:
        """A session of `role` in one transaction, rolled back at the end whatever happened."""
        with self.db.connect_as(role, autocommit=False) as conn:
            try:
                if project is not None:
                    fetch_all(conn, "SELECT veil.use_project(%s)", (project,))
                yield conn
            finally:
                conn.rollback()

    def run(self, role: str, *statements: str, project: str | None = None) -> list[Any]:
        """The rows of the last statement, run as `role` in a rolled-back transaction."""
        rows: list[Any] = []
        with self.attempt(role, project) as conn:
            for s in statements:
                rows = fetch_all(conn, s)
        return rows

    def denied(
        self,
        role: str,
        *statements: str,
        error: type[psycopg.Error] = psycopg.errors.InsufficientPrivilege,
        match: str | None = None,
    ) -> str:
        """Asserts that the last statement fails with `error`; returns the message."""
        with self.attempt(role) as conn:
            for s in statements[:-1]:
                fetch_all(conn, s)
            try:
                fetch_all(conn, statements[-1])
            except error as exc:
                message = str(exc)
                assert match is None or match in message, message
                return message
        raise AssertionError(f"{role} was allowed: {statements[-1]}")

    def admin(self, statement: str, params: Any = None) -> list[Any]:
        return self.db.query_as(None, statement, params)


def leaks_a_card(rows: Sequence[Sequence[object]]) -> bool:
    return any(card in str(cell) for row in rows for cell in row for card in CLEAR_CARDS)


def make_world(server: PgServer, db: PgDatabase) -> tuple[World, list[str]]:
    """Roles (cluster-wide; the caller drops the returned names), then the example applied."""
    program = security_program()
    made = [server.create_role(TABLE_OWNER, login=False)]
    made += [server.create_role(g, login=False) for g in program.groups]
    users = [server.create_role(u.name, member_of=u.groups) for u in program.users]
    users.append(server.create_role(TWIN))
    users += [server.create_role(a) for a in ATTACKERS]
    with db.admin_connect() as conn:
        conn.execute(f"ALTER ROLE {CREATOR} CREATEROLE")
        conn.execute(f"ALTER ROLE {BYPASS} BYPASSRLS")
        conn.execute(f"GRANT pg_write_all_data TO {WRITER}")
        conn.execute(f"GRANT pg_read_all_data TO {READER}, {BYPASS}")
        conn.execute(f'ALTER DATABASE "{db.name}" OWNER TO {DBOWNER}')
    d = deploy(db, program, users)
    return World(server=server, d=d), [*made, *users]
