"""The PostgreSQL target on a real server: the compiled script is applied with psql, then real
login roles query the views, and what they get is compared with the reference evaluator.

One database per scenario, one server per session (tests/pg.py). The payments example
(examples/payments) is the policy set; its purposes are approved here by editing the checked
program, as `veil approve` would (fraud_q4, chargebacks, retention_2026 approved; audit_fy2026
stale; campaign pending). Every purpose of the example has an acknowledgement text: after the
script, each member acknowledges each of their projects (`veil.acknowledge`) except chris in
fraud_q4, and the evaluator is told what each user acknowledged (`Context.acknowledged`, read
back from `veil.member_acknowledgement`). tests/targets/test_postgres_lifecycle.py walks the
approval lifecycle with the real CLI.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
import subprocess
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from tests.pg import (
    Connection,
    PgDatabase,
    PgServer,
    RoleFactory,
    Row,
    explain_text,
    fetch_all,
    temporary_database,
)
from tests.targets.test_postgres import (
    HOSTILE,
    HOSTILE_GROUP,
    HOSTILE_NAME,
    HOSTILE_TABLE,
    KITCHEN,
    group,
    hostile_program,
    kitchen_program,
    small_program,
)
from veil import methods, model
from veil.evaluator import Context, evaluate_table
from veil.masking import TEST_HASH_KEY
from veil.model import Family, PurposeState
from veil.targets.postgres import PostgresTarget, digest

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payments"
TABLE_OWNER = "veil_e2e_owner"  # owns the tables, like an application's schema owner
NOBODY = "veil_e2e_nobody"  # a login role the repository does not know
COLUMNS = "veil_e2e_columns"  # a login role that could read some columns, or via a grant option
TARGET = PostgresTarget()
#: (user, project) pairs that do not acknowledge after the script (every other member does).
UNACKNOWLEDGED = frozenset({("chris", "fraud_q4")})

Acknowledged = frozenset[tuple[str, str, str]]

STATES: dict[tuple[str, str], PurposeState] = {
    ("fraud_q4", "Fraud Detection"): PurposeState.APPROVED,
    ("chargebacks", "Fraud Detection.Chargebacks"): PurposeState.APPROVED,
    ("retention_2026", "Employee Retention"): PurposeState.APPROVED,
    ("campaign", "Marketing"): PurposeState.APPROVED,
    ("audit_fy2026", "Audit"): PurposeState.STALE,
    ("veil_e2e_wide", "Fraud Detection"): PurposeState.APPROVED,
    ("veil_e2e_pending", "Audit"): PurposeState.PENDING,
}


# ============================================================================= programs


def with_states(
    program: model.Program, states: Mapping[tuple[str, str], PurposeState]
) -> model.Program:
    """The program with the given approval states, as `veil approve` would leave them."""
    projects = []
    for p in program.projects:
        purposes = []
        for pp in p.purposes:
            state = states.get((p.name, pp.purpose), pp.state)
            by, at = (
                ("carol", "2026-11-20T10:00:00Z")
                if state is not PurposeState.PENDING
                else (None, None)
            )
            purposes.append(dataclasses.replace(pp, state=state, approved_by=by, approved_at=at))
        projects.append(dataclasses.replace(p, purposes=tuple(purposes)))
    return dataclasses.replace(program, projects=tuple(projects))


def payments_program() -> model.Program:
    """The example, approved as in STATES, plus two projects of the tests: `veil_e2e_wide`
    (Fraud Detection on every table: a parent purpose where a sub-purpose is required) and
    `veil_e2e_pending` (a pending purpose)."""
    from veil.api import check

    checked = check([EXAMPLE])
    assert checked.program is not None and checked.ok, [d.message for d in checked.diagnostics]
    program = checked.program
    keys = tuple(tb.key for tb in program.tables)
    extra = (
        model.ProjectInfo(
            name="veil_e2e_wide",
            members=("alice", "erin"),
            sources=keys,
            purposes=(model.ProjectPurpose(purpose="Fraud Detection", state=PurposeState.PENDING),),
        ),
        model.ProjectInfo(
            name="veil_e2e_pending",
            members=("erin",),
            sources=keys,
            purposes=(model.ProjectPurpose(purpose="Audit", state=PurposeState.PENDING),),
        ),
    )
    program = dataclasses.replace(
        program, projects=tuple(sorted((*program.projects, *extra), key=lambda p: p.name))
    )
    return with_states(program, STATES)


# ============================================================================= sample data

REGIONS = ("AMER", "EMEA", "APAC", "LATAM", "ZZ")
DEPARTMENTS = ("Risk", "People", "Legal", "Executive Office", "Growth")
EMAILS = (
    "ann.lee@example.com",
    "x@y@z.org",
    "no-at-sign",
    "trailing@",
    "\u00fcn\u00efcode@b\u00fccher.de",
    "o'brien@mail.ie",
    "",
)
TEXTS = (
    "call me on +49 30 1234567 or mail ann@example.com",
    "plain text, nothing personal",
    "quote ' double \" backslash \\ semicolon ; dollar $$",
    "\u00e9t\u00e9 \u2603 \u65e5\u672c",
    "",
    "IBAN 123 456 789 0",
)
DECIMALS = (
    "0",
    "49.99",
    "50.00",
    "150.00",
    "-150.00",
    "1234.56",
    "4999.99",
    "5000.00",
    "-5000.00",
    "15000.00",
    "99999.99",
    "0.01",
)
AGES_DAYS = (1, 10, 30, 60, 80, 100, 200, 400, 1000)  # none near the 90-day filter boundary
FLOATS = (0.25, 0.75, -0.75, 2.5, -2.5, 0.1, 0.1 + 0.2, 1234.5, -50.0, 150.0, 1e6)
DATES = (dt.date(1999, 12, 31), dt.date(2024, 2, 29), dt.date(1970, 1, 1), dt.date(2026, 7, 4))
STAMPS = (
    dt.datetime(2024, 1, 31, 23, 59, 59, 999999),
    dt.datetime(2024, 4, 1),
    dt.datetime(2026, 11, 15, 9, 3, 7),
)


def sample_value(c: model.CatalogColumn, i: int, j: int, now: dt.datetime) -> object:
    """Row i, column j: deterministic, with NULLs, edge values and every region."""
    if c.name != "id" and (i + 3 * j) % 8 == 0:
        return None
    family, n = c.type.family, c.type.length
    value: object
    if c.name == "id":
        value = i
    elif family is Family.BOOLEAN:
        value = i % 3 == 0
    elif family is Family.FLOAT:
        value = FLOATS[(i + j) % len(FLOATS)]
    elif family is Family.JSON:
        value = Jsonb({"i": i, "tags": ["a", "\u00e9"], "nested": {"x": None}})
    elif family is Family.BINARY:
        value = bytes([i % 256, 0, 255, 39])
    elif c.type.name == "timestamptz":
        value = STAMPS[(i + j) % len(STAMPS)].replace(
            tzinfo=dt.timezone(dt.timedelta(hours=(i % 5) * 3 - 6))
        )
    elif c.name == "small":
        value = (-15, -5, 5, 15, 25, 32764)[i % 6]
    elif c.name == "owner":
        value = ("alice", "bob", "analysts", "stewards", "nobody", "sam")[i % 6]
    elif c.name == "label":
        value = ("abc-123", "x-1", "no match", "ABC-9", "zz-99999", "a-1 b-2")[i % 6]
    elif c.name == "code":
        value = ("AB12", "\u00c6\u00d8\u00c51", "ZZZZ", "x y ")[i % 4]
    elif family is Family.INTEGER:
        value = 1 + (i % 5) if c.name == "score" else (i * 37) % 201 - 100
    elif family is Family.DECIMAL:
        value = Decimal(DECIMALS[(i + j) % len(DECIMALS)])
    elif family is Family.DATE:
        value = DATES[(i + j) % len(DATES)]
    elif family is Family.TIMESTAMP:
        if c.name == "created_at":
            value = (now - dt.timedelta(days=AGES_DAYS[i % len(AGES_DAYS)], hours=i % 7)).replace(
                tzinfo=None
            )
        else:
            value = STAMPS[(i + j) % len(STAMPS)]
    elif c.name == "region":
        value = REGIONS[i % len(REGIONS)]
    elif c.name == "department":
        value = DEPARTMENTS[i % len(DEPARTMENTS)]
    elif c.name == "country":
        value = ("DE", "US", "JP", "BR")[i % 4]
    elif "email" in c.name:
        value = EMAILS[i % len(EMAILS)]
    elif c.name in ("credit_card", "card_number"):
        value = ("4111111111111111", "5500005555555559", "1234", "12345", "", "378282246310005")[
            i % 6
        ]
    elif c.name == "phone":
        value = ("+4930123456", "+1", "", "+81312345678")[i % 4]
    else:
        value = TEXTS[(i + j) % len(TEXTS)]
    if isinstance(value, str) and n is not None:
        value = value[:n]
    return value


def table_ddl(tables: Sequence[model.CatalogTable], owner: str = TABLE_OWNER) -> str:
    """The tables as a DBA created them: in schemas owned by `owner`, readable schemas."""
    t = TARGET
    out = []
    for schema in sorted({tb.key[-2] for tb in tables}):
        out.append(f"CREATE SCHEMA IF NOT EXISTS {t.ident(schema)} AUTHORIZATION {t.ident(owner)};")
        out.append(f"GRANT USAGE ON SCHEMA {t.ident(schema)} TO PUBLIC;")
    for tb in tables:
        cols = ", ".join(f"{t.ident(c.name)} {t.sql_type(c.type)}" for c in tb.columns)
        out.append(f"CREATE TABLE {t.table_sql(tb.key)} ({cols});")
        out.append(f"ALTER TABLE {t.table_sql(tb.key)} OWNER TO {t.ident(owner)};")
    return "\n".join(out) + "\n"


def insert_rows(
    db: PgDatabase, tb: model.CatalogTable, rows: Sequence[Mapping[str, object]]
) -> None:
    names = [c.name for c in tb.columns]
    query = sql.SQL("INSERT INTO {} ({}) VALUES ({})").format(
        sql.Identifier(*tb.key),
        sql.SQL(", ").join(map(sql.Identifier, names)),
        sql.SQL(", ").join(sql.Placeholder() * len(names)),
    )
    with db.admin_connect() as conn, conn.cursor() as cur:
        cur.executemany(query, [[r[n] for n in names] for r in rows])


def base_rows(db: PgDatabase, tb: model.CatalogTable) -> list[dict[str, object]]:
    """The rows as stored (superusers bypass row security)."""
    names = [c.name for c in tb.columns]
    query = sql.SQL("SELECT {} FROM {}").format(
        sql.SQL(", ").join(map(sql.Identifier, names)), sql.Identifier(*tb.key)
    )
    return [dict(zip(names, r, strict=True)) for r in db.query_as(None, query.as_string())]


# ============================================================================= comparing


def norm(value: object) -> tuple[str, Any]:
    if isinstance(value, Decimal):
        return ("number", str(value.normalize()))
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return ("instant", value.astimezone(dt.UTC))
    return (type(value).__name__, value)


def canonical(rows: Sequence[Sequence[object]]) -> list[tuple[tuple[str, Any], ...]]:
    return sorted((tuple(norm(v) for v in r) for r in rows), key=repr)


def view_name(key: model.TableKey) -> sql.Identifier:
    return sql.Identifier(*TARGET.view_of(key))


def acknowledge_all(
    db: PgDatabase, program: model.Program, users: Sequence[str], skip: Collection[tuple[str, str]]
) -> None:
    """Every member (among the login roles `users`) acknowledges each of their projects, as the
    member itself, except the (user, project) pairs in `skip`."""
    for p in program.projects:
        for member in p.members:
            if member in users and (member, p.name) not in skip:
                with db.connect_as(member) as conn:
                    fetch_all(conn, "SELECT veil.acknowledge(%s)", (p.name,))


def acknowledged_by(db: PgDatabase, user: str) -> Acknowledged:
    """What `user` acknowledged, as the evaluator's `Context.acknowledged` wants it."""
    rows = db.query_as(
        None,
        "SELECT project, purpose, acknowledgement FROM veil.member_acknowledgement"
        " WHERE member = %s",
        (user,),
    )
    return frozenset((str(p), str(pp), str(text)) for p, pp, text in rows)


def select_project(
    conn: Connection, program: model.Program, user: str, project: str | None
) -> None:
    """A member selects the project with use_project; anyone else sets the setting by hand."""
    if project is None:
        return
    info = program.project(project)
    if info is not None and user in info.members:
        fetch_all(conn, "SELECT veil.use_project(%s)", (project,))
    else:
        fetch_all(
            conn, sql.SQL("SET veil.active_project = {}").format(sql.Literal(project)).as_string()
        )


def use_test_hash_key(db: PgDatabase) -> None:
    """Set the database's hash key to the evaluator's (masking.TEST_HASH_KEY) with the documented
    owner-only setter, so that hashed cells compare equal; the key is kept by later applies."""
    db.apply_script(f"SELECT veil.set_hash_key('{TEST_HASH_KEY}');\n")


def compare_with_evaluator(
    conn: Connection,
    program: model.Program,
    user: str,
    project: str | None,
    table: model.CatalogTable,
    rows: Sequence[Mapping[str, object]],
    acknowledged: Acknowledged,
    got: Sequence[Row] | None = None,
) -> list[str]:
    """Differences between the view as `user` sees it (`got`, read here when not given) and the
    evaluator, told that `user` acknowledged `acknowledged` ([] when equal)."""
    [(now,)] = fetch_all(conn, "SELECT now()")
    if got is None:
        got = fetch_all(conn, sql.SQL("SELECT * FROM {}").format(view_name(table.key)).as_string())
    ctx = Context(user=user, project=project, now=now, acknowledged=acknowledged)
    expected = evaluate_table(program, table.key, rows, ctx)
    want = [tuple(r.values()) for r in expected if r is not None]
    if canonical(got) == canonical(want):
        return []
    names = [c.name for c in table.columns]
    by_id_got = {r[0]: r for r in got}
    by_id_want = {r[0]: r for r in want}
    diffs = []
    for key in sorted(set(by_id_got) | set(by_id_want), key=repr):
        a, b = by_id_got.get(key), by_id_want.get(key)
        if a is None or b is None:
            diffs.append(
                f"id {key}: {'only the evaluator' if a is None else 'only PostgreSQL'}"
                " shows the row"
            )
        elif canonical([a]) != canonical([b]):
            cells = [
                f"{n}: pg {x!r} / evaluator {y!r}"
                for n, x, y in zip(names, a, b, strict=True)
                if norm(x) != norm(y)
            ]
            diffs.append(f"id {key}: " + "; ".join(cells))
    return [f"{user} in {project} on {table.name}: " + " | ".join(diffs[:4])]


# ============================================================================= snapshots


def snapshot(db: PgDatabase, *, acl_of: Sequence[str] | None = None) -> dict[str, list[Any]]:
    """Everything the script manages, as plain data (no OIDs), for before/after comparisons.

    `acl_of`: the tables whose privileges to include (default: the protected tables).
    """

    def q(query: str, params: Any = None) -> list[Any]:
        return db.query_as(None, query, params)

    out: dict[str, list[Any]] = {}
    for name in (
        "managed_role",
        "project",
        "project_purpose",
        "project_member",
        "project_source",
        "user_attribute",
        "user_group",
        "protected_table",
    ):
        out[name] = q(f"SELECT * FROM veil.{name} ORDER BY 1, 2")
    protected = [f"{s}.{t}" for s, t, *_ in out["protected_table"]]
    tables = list(acl_of) if acl_of is not None else protected
    out["policies"] = q(
        "SELECT schemaname, tablename, policyname, permissive, roles::text[], cmd, qual, with_check"
        " FROM pg_policies WHERE schemaname <> 'veil' ORDER BY 1, 2, 3"
    )
    out["views"] = q(
        "SELECT n.nspname, c.relname, pg_get_userbyid(c.relowner), c.relacl::text[],"
        "       c.reloptions, pg_get_viewdef(c.oid)"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'v' AND n.nspname LIKE '%%\\_protected' ORDER BY 1, 2"
    )
    out["view_columns"] = q(
        "SELECT a.attrelid::regclass::text, a.attnum, a.attname, format_type(a.atttypid,"
        " a.atttypmod), a.attacl::text[] FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'v' AND n.nspname LIKE '%%\\_protected' AND a.attnum > 0"
        " ORDER BY 1, 2"
    )
    out["row_security"] = q(
        "SELECT n.nspname, c.relname, c.relrowsecurity, c.relforcerowsecurity"
        " FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE c.relkind = 'r' AND n.nspname NOT IN ('veil', 'pg_catalog', 'information_schema')"
        "   AND n.nspname NOT LIKE 'pg\\_toast%%' ORDER BY 1, 2"
    )
    out["table_acl"] = q(
        "SELECT c.oid::regclass::text, c.relacl::text[], array_agg(a.attacl::text ORDER BY"
        " a.attnum) FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0"
        " WHERE c.oid::regclass::text = ANY (%s) GROUP BY 1, 2 ORDER BY 1",
        (tables,),
    )
    out["functions"] = q(
        "SELECT p.oid::regprocedure::text, pg_get_userbyid(p.proowner), p.proacl::text[],"
        " p.prosecdef, p.proconfig, p.prosrc FROM pg_proc p"
        " WHERE p.pronamespace = 'veil'::regnamespace ORDER BY 1"
    )
    out["governance_acl"] = q(
        "SELECT c.relname, pg_get_userbyid(c.relowner), c.relacl::text[] FROM pg_class c"
        " WHERE c.relnamespace = 'veil'::regnamespace ORDER BY 1"
    )
    return out


def governance_xmins(db: PgDatabase) -> list[Any]:
    return [
        db.query_as(None, f"SELECT xmin::text FROM veil.{n} ORDER BY 1")
        for n in (
            "managed_role",
            "project",
            "project_purpose",
            "project_member",
            "project_source",
            "user_attribute",
            "user_group",
            "protected_table",
        )
    ]


# ============================================================================= fixtures


@dataclasses.dataclass
class Deployment:
    db: PgDatabase
    program: model.Program
    script: str
    rows: dict[model.TableKey, list[dict[str, object]]]
    users: list[str]
    apply_stderr: str

    def acknowledged(self, user: str) -> Acknowledged:
        return acknowledged_by(self.db, user)


LEGACY_GROUP = "veil_e2e_legacy"


@pytest.fixture(scope="module")
def people(pg_server: PgServer) -> Iterator[list[str]]:
    """The example's groups and users as roles (cluster-wide, so once per module): each user a
    login role member of its groups; plus the table owner and a login role the repository does
    not know. Yields the login roles."""
    program = payments_program()
    created = [pg_server.create_role(TABLE_OWNER, login=False), pg_server.create_role(COLUMNS)]
    created += [pg_server.create_role(g, login=False) for g in (*program.groups, LEGACY_GROUP)]
    users = [pg_server.create_role(u.name, member_of=u.groups) for u in program.users]
    users.append(pg_server.create_role(NOBODY))
    try:
        yield users
    finally:
        for role in (*reversed(users), *reversed(created), *TARGET.own_roles):
            pg_server.drop_role(role)


def deploy(
    db: PgDatabase,
    program: model.Program,
    users: Sequence[str],
    tables: Sequence[model.CatalogTable] | None = None,
    more_grants: Callable[[PgDatabase], None] | None = None,
) -> Deployment:
    """Tables (default: the program's catalog) with rows and readers granted as a DBA would have
    done (hr to PUBLIC, sales to each user), then the compiled script."""
    now = dt.datetime.now(dt.UTC)
    tables = program.tables if tables is None else tables
    db.apply_script(table_ddl(tables))
    rows = {}
    grants = []
    for tb in tables:
        insert_rows(
            db,
            tb,
            [
                {c.name: sample_value(c, i, j, now) for j, c in enumerate(tb.columns)}
                for i in range(1, 49)
            ],
        )
        rows[tb.key] = base_rows(db, tb)
        who = "PUBLIC" if tb.key[-2] == "hr" else ", ".join(TARGET.ident(u) for u in users)
        grants.append(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO {who};")
    db.apply_script("\n".join(grants) + "\n")
    if more_grants is not None:
        more_grants(db)
    with db.admin_connect() as conn:
        conn.execute(
            sql.SQL("ALTER DATABASE {} SET track_functions = 'all'").format(sql.Identifier(db.name))
        )
    script = TARGET.render(program)
    result = db.apply_script(script)
    use_test_hash_key(db)
    acknowledge_all(db, program, users, UNACKNOWLEDGED)
    return Deployment(
        db=db,
        program=program,
        script=script,
        rows=rows,
        users=list(users),
        apply_stderr=result.stderr,
    )


@pytest.fixture(scope="module")
def payments(pg_server: PgServer, people: list[str]) -> Iterator[Deployment]:
    with temporary_database(pg_server) as db:
        yield deploy(db, payments_program(), people, more_grants=tricky_grants)


def tricky_grants(db: PgDatabase) -> None:
    """A column-level grant, and a grant made by a grantee holding GRANT OPTION (PostgreSQL
    rejects `REVOKE … GRANTED BY` someone else: the script must revoke with CASCADE)."""
    db.apply_script(
        f"GRANT SELECT (id, region, amount) ON sales.transactions TO {COLUMNS};\n"
        "GRANT SELECT ON sales.refunds TO dana WITH GRANT OPTION;\n"
    )
    with db.connect_as("dana") as conn:
        conn.execute(f"GRANT SELECT ON sales.refunds TO {COLUMNS}")


def query(
    d: Deployment, user: str, text: str, *, project: str | None = None, params: Any = None
) -> list[Any]:
    with d.db.connect_as(user) as conn:
        select_project(conn, d.program, user, project)
        return fetch_all(conn, text, params)


# ============================================================================= the key test


def test_every_user_and_project_sees_what_the_evaluator_says(payments: Deployment) -> None:
    program = payments.program
    problems: list[str] = []
    checked = 0
    for user in payments.users:
        acknowledged = payments.acknowledged(user)
        for project in [None, *(p.name for p in program.projects)]:
            with payments.db.connect_as(user) as conn:
                select_project(conn, program, user, project)
                for tb in program.protected_tables:
                    problems += compare_with_evaluator(
                        conn, program, user, project, tb, payments.rows[tb.key], acknowledged
                    )
                    checked += 1
    assert checked == len(payments.users) * (len(program.projects) + 1) * 4
    assert not problems, "\n".join(problems)


def test_every_type_method_and_atom_agrees_with_the_evaluator(
    pg_server: PgServer, people: list[str]
) -> None:
    example = payments_program()
    program = kitchen_program(example.users, example.groups)
    [table] = program.tables
    problems: list[str] = []
    with temporary_database(pg_server) as db:
        d = deploy(db, program, people)
        for zone in ("UTC", "Asia/Kathmandu"):  # masks and today() ignore the session zone
            for user in people:
                for project in [None, *(p.name for p in program.projects)]:
                    with db.connect_as(user) as conn:
                        fetch_all(conn, "SELECT set_config('TimeZone', %s, false)", (zone,))
                        select_project(conn, program, user, project)
                        problems += compare_with_evaluator(
                            conn, program, user, project, table, d.rows[KITCHEN], frozenset()
                        )
        visible = db.query_as(
            "erin",
            "SELECT count(*) FROM lab_protected.kitchen",
            setup=["SELECT veil.use_project('lab_audit')"],
        )
    assert not problems, "\n".join(problems)
    assert visible[0][0] > 0


def test_the_sample_rows_exercise_every_decision(payments: Deployment) -> None:
    """Guards the key test against vacuous data: some rows visible and hidden, cells clear and
    masked, for the contexts the scenarios below rely on."""
    tx = payments.program.table(("sales", "transactions"))
    assert tx is not None
    rows = payments.rows[tx.key]
    for user, project in (("alice", None), ("alice", "fraud_q4"), ("chris", "fraud_q4")):
        shown = evaluate_table(payments.program, tx.key, rows, Context(user=user, project=project))
        visible = [r for r in shown if r is not None]
        assert 0 < len(visible) <= len(rows)
    assert any(r["created_at"] is None for r in rows)
    assert {r["region"] for r in rows} >= set(REGIONS)


# ============================================================================= scenarios


def cards(d: Deployment, user: str, project: str | None) -> list[Any]:
    return query(
        d,
        user,
        "SELECT id, credit_card FROM sales_protected.transactions ORDER BY id",
        project=project,
    )


def clear_cards(d: Deployment) -> dict[object, object]:
    return {r["id"]: r["credit_card"] for r in d.rows[("sales", "transactions")]}


def test_a_member_under_an_approved_purpose_sees_clear_values(payments: Deployment) -> None:
    shown = cards(payments, "alice", "fraud_q4")
    assert len(shown) == 48  # Fraud Detection lifts both filters
    assert dict(shown) == clear_cards(payments)


@pytest.mark.parametrize(
    ("user", "project"),
    [
        ("alice", None),  # no project
        ("maya", "fraud_q4"),  # a non-member who sets veil.active_project by hand
        ("erin", "audit_fy2026"),  # a member of a project whose approval is stale
        ("erin", "veil_e2e_pending"),  # a member of a pending project
        ("alice", "no_such_project"),  # an unknown project set by hand
    ],
)
def test_without_an_active_purpose_cards_are_masked(
    payments: Deployment, user: str, project: str | None
) -> None:
    shown = cards(payments, user, project)
    assert len(shown) < 48
    assert all(card is None for _, card in shown)


def test_a_table_outside_the_project_grants_nothing(payments: Deployment) -> None:
    # customers: `restrict to any purpose`; it is a source of fraud_q4, not of chargebacks
    count = "SELECT count(*) FROM sales_protected.customers"
    assert query(payments, "bob", count, project="fraud_q4") == [(48,)]
    assert query(payments, "bob", count, project="chargebacks") == [(0,)]


def test_a_sub_purpose_satisfies_its_parent_and_not_the_reverse(payments: Deployment) -> None:
    # chargebacks acts under "Fraud Detection.Chargebacks": the card mask needs "Fraud Detection"
    assert dict(cards(payments, "bob", "chargebacks")) == clear_cards(payments)
    # refunds are restricted to the sub-purpose: "Fraud Detection" alone does not satisfy it
    count = "SELECT count(*) FROM sales_protected.refunds"
    assert query(payments, "bob", count, project="chargebacks") == [(48,)]
    assert query(payments, "alice", count, project="veil_e2e_wide") == [(0,)]


def test_group_exceptions(payments: Deployment) -> None:
    survey = "SELECT count(*), count(DISTINCT employee_id) FROM hr_protected.survey"
    [(rows, _)] = query(payments, "dana", survey)  # hr_admins: every row, no project needed
    assert rows == 48
    assert query(payments, "alice", survey) == [(0, 0)]
    emails = "SELECT email FROM sales_protected.transactions WHERE email LIKE '%@%'"
    assert query(payments, "sam", emails)  # stewards read checkout emails in clear


def test_use_project_errors_and_audit(payments: Deployment) -> None:
    with payments.db.connect_as("maya") as conn:
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege,
            match='user "maya" is not a member of project "fraud_q4"',
        ):
            fetch_all(conn, "SELECT veil.use_project('fraud_q4')")
        with pytest.raises(
            psycopg.errors.InsufficientPrivilege, match='project "nope" does not exist'
        ):
            fetch_all(conn, "SELECT veil.use_project('nope')")
        assert fetch_all(conn, "SELECT veil.use_project('campaign')") == [("campaign",)]
        assert fetch_all(conn, "SELECT current_setting('veil.active_project')") == [("campaign",)]
        assert fetch_all(
            conn, "SELECT veil.has_purpose('maya', 'Marketing', 'sales.customers')"
        ) == [(True,)]
        assert fetch_all(conn, "SELECT veil.use_project(NULL)") == [(None,)]
        assert fetch_all(conn, "SELECT current_setting('veil.active_project')") == [("",)]
    log = payments.db.query_as(
        None,
        "SELECT who, event, project FROM veil.audit_log WHERE who = 'maya' ORDER BY id",
    )
    assert log[-2:] == [("maya", "switch", "campaign"), ("maya", "switch", None)]


def test_users_cannot_write_or_read_the_governance_tables(payments: Deployment) -> None:
    for statement in (
        "SELECT * FROM veil.project_member",
        "INSERT INTO veil.project_member VALUES ('fraud_q4', 'maya')",
        "SELECT * FROM veil.audit_log",
        "INSERT INTO veil.audit_log (event, project) VALUES ('switch', 'x')",
        "SELECT * FROM veil.member_acknowledgement",
        "INSERT INTO veil.member_acknowledgement (member, project, purpose, acknowledgement,"
        " digest) SELECT 'chris', project, purpose, acknowledgement, '' FROM veil.project_purpose",
        "SELECT veil.require_member('fraud_q4')",
        "SELECT set_config('search_path', 'veil', false); DELETE FROM project",
    ):
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            query(payments, "maya", statement)


# ============================================================================= acknowledgements


def test_a_member_who_has_not_acknowledged_gets_no_purpose(payments: Deployment) -> None:
    """chris, a member of fraud_q4 (approved), never acknowledged its text: masked, as the
    evaluator says for `acknowledged=frozenset()`. Acknowledging (rolled back here, so that the
    other tests keep the deployment as it is) lifts the masks at once."""
    program = payments.program
    tx, fd = program.table(("sales", "transactions")), program.purpose("Fraud Detection")
    assert tx is not None and fd is not None and fd.acknowledgement is not None
    text = fd.acknowledgement
    assert payments.acknowledged("chris") == frozenset()
    notices: list[str] = []
    with payments.db.connect_as("chris", autocommit=False) as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        select_project(conn, program, "chris", "fraud_q4")
        rows = payments.rows[tx.key]
        assert (
            compare_with_evaluator(conn, program, "chris", "fraud_q4", tx, rows, frozenset()) == []
        )
        shown = fetch_all(conn, "SELECT id, credit_card FROM sales_protected.transactions")
        assert len(shown) < 48 and all(card is None for _, card in shown)
        assert fetch_all(conn, "SELECT * FROM veil.acknowledgement_texts('fraud_q4')") == [
            ("Fraud Detection", text, False)
        ]
        assert fetch_all(conn, "SELECT veil.acknowledge('fraud_q4')") == [(1,)]
        assert fetch_all(conn, "SELECT * FROM veil.acknowledgement_texts('fraud_q4')") == [
            ("Fraud Detection", text, True)
        ]
        done = frozenset({("fraud_q4", "Fraud Detection", text)})
        assert compare_with_evaluator(conn, program, "chris", "fraud_q4", tx, rows, done) == []
        assert len(fetch_all(conn, "SELECT id FROM sales_protected.transactions")) == 48
        conn.rollback()
    assert notices == [
        "purpose 'Fraud Detection' grants nothing until you acknowledge its current text: read it"
        " with SELECT * FROM veil.acknowledgement_texts('fraud_q4'), then"
        " SELECT veil.acknowledge('fraud_q4')"
    ]
    assert payments.acknowledged("chris") == frozenset()


def test_acknowledge_errors(payments: Deployment) -> None:
    with payments.db.connect_as("maya") as conn:
        for call in ("acknowledge", "acknowledgement_texts"):
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege,
                match='user "maya" is not a member of project "fraud_q4"',
            ):
                fetch_all(conn, f"SELECT * FROM veil.{call}('fraud_q4')")
            with pytest.raises(
                psycopg.errors.InsufficientPrivilege, match='project "nope" does not exist'
            ):
                fetch_all(conn, f"SELECT * FROM veil.{call}('nope')")
            with pytest.raises(psycopg.errors.NullValueNotAllowed, match="no project given"):
                fetch_all(conn, f"SELECT * FROM veil.{call}(NULL)")
    # acknowledging again is allowed, and audited again
    before = payments.acknowledged("alice")
    count = "SELECT count(*) FROM veil.audit_log WHERE who = 'alice' AND event = 'acknowledge'"
    [(n,)] = payments.db.query_as(None, count)
    assert query(payments, "alice", "SELECT veil.acknowledge('fraud_q4')") == [(1,)]
    assert payments.db.query_as(None, count) == [(n + 1,)]
    assert payments.acknowledged("alice") == before


def test_column_grants_and_grant_option_chains_move_to_the_views(payments: Deployment) -> None:
    columns = "SELECT id, region, amount FROM sales_protected.transactions"
    # readable (no permission error); no rows: a user without `region` values passes no filter
    assert query(payments, COLUMNS, columns) == []
    with pytest.raises(psycopg.errors.InsufficientPrivilege):
        query(payments, COLUMNS, "SELECT credit_card FROM sales_protected.transactions")
    assert query(payments, COLUMNS, "SELECT count(*) FROM sales_protected.refunds") == [(0,)]
    acl = payments.db.query_as(
        None,
        "SELECT a.attname, a.attacl::text[] FROM pg_attribute a"
        " WHERE a.attrelid = 'sales_protected.transactions'::regclass AND a.attacl IS NOT NULL"
        " ORDER BY a.attnum",
    )
    assert acl == [(c, [f"{COLUMNS}=r/{TARGET.view_role}"]) for c in ("id", "amount", "region")]


def test_base_tables_are_unreadable_by_consumers(payments: Deployment) -> None:
    for tb in payments.program.protected_tables:
        for user in ("alice", "dana", NOBODY, COLUMNS):
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                query(payments, user, f"SELECT 1 FROM {TARGET.table_sql(tb.key)} LIMIT 1")
    acl = payments.db.query_as(
        None,
        "SELECT c.relname, c.relacl::text[] FROM pg_class c"
        " WHERE c.relnamespace IN ('sales'::regnamespace, 'hr'::regnamespace)"
        "   AND c.relkind = 'r' ORDER BY 1",
    )
    for relname, entries in acl:
        grantees = {e.split("=")[0] for e in entries}
        assert grantees == {TABLE_OWNER, TARGET.view_role}, (relname, entries)


def test_the_purpose_check_runs_once_per_query(payments: Deployment) -> None:
    with payments.db.connect_as("alice", autocommit=False) as conn:
        select_project(conn, payments.program, "alice", "fraud_q4")
        plan = [
            r[0]
            for r in fetch_all(
                conn, "EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM sales_protected.transactions"
            )
        ]
        rows = fetch_all(conn, "SELECT * FROM sales_protected.transactions")
        [(calls,)] = fetch_all(
            conn,
            "SELECT calls FROM pg_stat_xact_user_functions"
            " WHERE schemaname = 'veil' AND funcname = 'has_purpose'",
        )
        conn.rollback()
    calling = [line for line in plan if "has_purpose" in line]
    assert calling and all(line.strip().startswith("Output: veil.has_purpose") for line in calling)
    assert any("InitPlan" in line for line in plan)
    assert not any("has_purpose" in line for line in plan if "Filter:" in line)
    sites = len(calling)
    assert len(rows) == 48
    assert 0 < calls <= sites < len(rows)


def test_protected_reads_keep_parallel_plans(payments: Deployment) -> None:
    """The functions views and row policies call are PARALLEL SAFE: a PARALLEL UNSAFE one (the
    default) makes every query that reaches it serial. The costs are zeroed so that 48 rows get
    a parallel plan; `debug_parallel_query` then runs the whole read in a worker, which must see
    what the leader sees (session user, active project)."""
    count = "SELECT count(*), count(credit_card), sum(amount) FROM sales_protected.transactions"
    every = "SELECT * FROM sales_protected.transactions ORDER BY id"
    for user, project in (("alice", "fraud_q4"), ("alice", None), ("chris", "fraud_q4")):
        with payments.db.connect_as(user, autocommit=False) as conn:
            select_project(conn, payments.program, user, project)
            for setting in ("parallel_setup_cost", "parallel_tuple_cost"):
                conn.execute(f"SET LOCAL {setting} = 0")
            conn.execute("SET LOCAL min_parallel_table_scan_size = 0")
            plan = [r[0] for r in fetch_all(conn, f"EXPLAIN (COSTS OFF) {count}")]
            assert any("Gather" in line for line in plan), (user, project, plan)
            conn.execute("SET LOCAL debug_parallel_query = on")
            in_worker = fetch_all(conn, every), fetch_all(conn, count)
            conn.execute("SET LOCAL debug_parallel_query = off")
            conn.execute("SET LOCAL max_parallel_workers_per_gather = 0")
            serial = fetch_all(conn, every), fetch_all(conn, count)
            conn.rollback()
        assert in_worker == serial, (user, project)
        assert serial[0], (user, project)


#: Who reads in the plan-shape test: a purpose, row rules, masks (hash among them), a group.
PLAN_READERS = (
    ("alice", "fraud_q4"),
    ("alice", None),
    ("chris", "fraud_q4"),
    ("erin", None),
    ("bob", "chargebacks"),
    ("dana", None),
    ("morgan", "retention_2026"),
)
#: Read shapes, `{}` the relation: a count, every column, and an aggregate over every column.
PLAN_READS = (
    "SELECT count(*) FROM {}",
    "SELECT * FROM {}",
    "SELECT count(*), max(CAST(r AS text)) FROM {} AS r",
)
#: A plan line that may name a veil function, pg_has_role or the hash key: the output of an
#: InitPlan's Result (evaluated once per query) or its scan of the one-row key table.
ONCE_PER_QUERY = re.compile(
    r"^\s*(->\s+)?"
    r"(Output: (veil\.\w+|pg_has_role)\(|(Parallel )?Seq Scan on veil\.hash_key |InitPlan )"
)


#: How EXPLAIN prints an InitPlan's value: `(InitPlan 1).col1` (PostgreSQL 18), `$0` (16).
INITPLAN_VALUE = r"(\(InitPlan \d+\)\.col\d+|\$\d+)"


def zero_parallel_costs(conn: Connection) -> None:
    """Make the planner consider workers on 48 rows, as it does for a large table."""
    for setting in ("parallel_setup_cost", "parallel_tuple_cost", "min_parallel_table_scan_size"):
        conn.execute(f"SET {setting} = 0")


def test_protected_plans_have_the_shape_of_the_bare_read(payments: Deployment) -> None:
    """What decides a protected read's cost on a large table (docs/performance.md): every
    per-user check, lookup and the hash key are InitPlans (once per query, never a per-row call
    or SubPlan), the view is flattened into the query (no `Subquery Scan`: a `security_barrier`
    view projects every row twice), and wherever the bare table read gets a parallel plan the
    view read does too."""
    with payments.db.admin_connect() as conn:
        zero_parallel_costs(conn)
        bare = {
            (tb.key, read): explain_text(conn, read.format(TARGET.table_sql(tb.key)))
            for tb in payments.program.protected_tables
            for read in PLAN_READS
        }
    assert any("Gather" in plan for plan in bare.values())
    checked = 0
    for user, project in PLAN_READERS:
        with payments.db.connect_as(user, autocommit=False) as conn:
            select_project(conn, payments.program, user, project)
            zero_parallel_costs(conn)
            for (key, read), bare_plan in bare.items():
                view = read.format(".".join(map(TARGET.ident, TARGET.view_of(key))))
                plan = [r[0] for r in fetch_all(conn, f"EXPLAIN (VERBOSE, COSTS OFF) {view}")]
                where = (user, project, view, "\n".join(plan))
                assert not any("SubPlan" in line for line in plan), where
                assert not any("Subquery Scan" in line for line in plan), where
                for line in plan:
                    if re.search(r"\bveil\.|pg_has_role", line):
                        assert ONCE_PER_QUERY.match(line), (line, *where)
                if "Gather" in bare_plan:
                    assert any("Gather" in line for line in plan), (*where, bare_plan)
                    checked += 1
            conn.rollback()
    assert checked >= len(PLAN_READERS) * len(payments.program.protected_tables)


def test_a_revealing_mask_costs_one_test_per_row(payments: Deployment) -> None:
    """Plan shapes behind the column-read figures of docs/performance.md: a mask's CASE is not
    wrapped in a cast (each masked value has the column's type, so a revealed value is not
    length-checked per row), and a conditional mask tests its leading reveal arm, an InitPlan
    value, before its `when`, which reads the row."""
    for user, project, view in (
        ("alice", "fraud_q4", "sales_protected.transactions"),
        ("erin", None, "sales_protected.transactions"),
        ("dana", None, "hr_protected.survey"),
    ):
        with payments.db.connect_as(user, autocommit=False) as conn:
            select_project(conn, payments.program, user, project)
            plan = [
                r[0] for r in fetch_all(conn, f"EXPLAIN (VERBOSE, COSTS OFF) SELECT * FROM {view}")
            ]
            conn.rollback()
        output = next(line for line in plan if line.strip().startswith("Output:"))
        assert "END)::" not in output, (user, output)
        assert "CASE WHEN (NOT COALESCE" not in output, (user, output)
        assert len(re.findall(rf"CASE WHEN {INITPLAN_VALUE}", output)) >= 2, (user, output)


def test_script_notices_and_warnings(payments: Deployment, pg_server: PgServer) -> None:
    assert "ERROR" not in payments.apply_stderr
    warnings = [line for line in payments.apply_stderr.splitlines() if "WARNING" in line]
    # the one warning a server may owe to itself: PostgreSQL 16.2 (pgserver) has CVE-2024-4317
    if pg_server.server_version_num < 160003:
        warnings = [w for w in warnings if "CVE-2024-4317" not in w]
    assert warnings == []


def runtime_rows(db: PgDatabase) -> list[Any]:
    """The runtime data (audit log, acknowledgements), which no script may change."""
    return [
        db.query_as(None, f"SELECT *, xmin::text FROM veil.{name} ORDER BY 1, 2, 3, 4")
        for name in ("audit_log", "member_acknowledgement")
    ]


def test_applying_twice_changes_nothing(payments: Deployment) -> None:
    before, xmins = snapshot(payments.db), governance_xmins(payments.db)
    runtime = runtime_rows(payments.db)
    assert runtime[0] and runtime[1]
    payments.db.apply_script(payments.script)
    assert snapshot(payments.db) == before
    assert governance_xmins(payments.db) == xmins
    assert runtime_rows(payments.db) == runtime


# ============================================================================= convergence


def older_program(newer: model.Program) -> model.Program:
    """An earlier version of the policies: an extra protected table, rule, project and group, a
    customers catalog listing columns in another order, refunds without its last column."""
    legacy = model.CatalogTable(
        key=("sales", "legacy"),
        columns=(
            model.CatalogColumn(name="id", type=model.SqlType(name="bigint")),
            model.CatalogColumn(name="secret", type=model.SqlType(name="text")),
        ),
    )
    tables = []
    for tb in newer.tables:
        if tb.key == ("sales", "customers"):
            tb = dataclasses.replace(tb, columns=tuple(reversed(tb.columns)))
        elif tb.key == ("sales", "refunds"):
            tb = dataclasses.replace(tb, columns=tb.columns[:-1])
        tables.append(tb)
    tables.append(legacy)
    legacy_mask = model.ColumnMask(
        table=legacy.key,
        column="secret",
        type=legacy.columns[1].type,
        arms=(model.MaskArm(action=methods.MaskNull(), cond=None),),
    )
    survey_score = model.ColumnMask(
        table=("hr", "survey"),
        column="score",
        type=model.SqlType(name="integer"),
        arms=(model.MaskArm(action=methods.MaskNull(), cond=None),),
    )
    extra_rule = dataclasses.replace(
        newer.row_rules[0], table=("sales", "transactions"), kind="restrict", where=None
    )
    fraud = newer.project("fraud_q4")
    assert fraud is not None
    legacy_project = dataclasses.replace(
        fraud, name="legacy_project", members=("sam",), sources=(legacy.key,)
    )
    projects = tuple(
        dataclasses.replace(p, members=(*p.members, "maya")) if p.name == "fraud_q4" else p
        for p in newer.projects
    )
    return dataclasses.replace(
        newer,
        tables=tuple(sorted(tables, key=lambda tb: tb.key)),
        masks=(*newer.masks, legacy_mask, survey_score),
        row_rules=(*newer.row_rules, extra_rule),
        projects=(*projects, legacy_project),
        groups=(*newer.groups, "veil_e2e_legacy"),
    )


def test_a_newer_script_over_an_older_one_converges(pg_server: PgServer, people: list[str]) -> None:
    newer = payments_program()
    older = older_program(newer)
    legacy = older.table(("sales", "legacy"))
    assert legacy is not None
    tables = [*newer.tables, legacy]
    with temporary_database(pg_server) as upgraded, temporary_database(pg_server) as fresh:
        deploy(fresh, newer, people, tables)
        deploy(upgraded, older, people, tables)
        # scripts before this one made the views security_barrier views: the snapshots below
        # compare reloptions, so the barrier must be gone after the newer apply
        upgraded.apply_script(
            "".join(
                f"ALTER VIEW {'.'.join(map(TARGET.ident, TARGET.view_of(tb.key)))}"
                " SET (security_barrier = true);\n"
                for tb in older.protected_tables
            )
        )
        # a consumer built a view on refunds: CREATE OR REPLACE must keep it working
        upgraded.apply_script(
            "CREATE VIEW public.refund_ids AS SELECT id FROM sales_protected.refunds;\n"
        )
        before = snapshot(upgraded)["views"]
        runtime = runtime_rows(upgraded)
        assert ("maya", "fraud_q4") in {(r[0], r[1]) for r in runtime[1]}
        result = upgraded.apply_script(TARGET.render(newer))
        # runtime data outlives the projects and members it names
        assert runtime_rows(upgraded) == runtime
        assert "veil no longer protects sales.legacy" in result.stderr
        protected = [
            f"{s}.{t}" for s, t, *_ in fresh.query_as(None, "SELECT * FROM veil.protected_table")
        ]
        assert snapshot(upgraded, acl_of=protected) == snapshot(fresh, acl_of=protected)
        # customers' view was re-created (its columns moved) and kept its grants
        after = snapshot(upgraded)["views"]
        assert [v[3] for v in after if v[1] == "customers"] == [
            v[3] for v in before if v[1] == "customers"
        ]
        assert upgraded.query_as(None, "SELECT to_regclass('sales_protected.legacy')") == [(None,)]
        # it still works; read through veil's view, even a superuser gets the policies
        assert upgraded.query_as(None, "SELECT count(*) FROM public.refund_ids") == [(0,)]


#: The governance tables the first PostgreSQL script (before acknowledgements) created, as far as
#: they changed since: no acknowledgement column, no `auditors` kind, a switch_log; owned by
#: veil_owner, as that script left them.
FIRST_SCRIPT_SCHEMA = """
CREATE SCHEMA veil;
CREATE TABLE veil.managed_role (
  role_name text PRIMARY KEY,
  kind text NOT NULL CHECK (kind IN ('owner', 'views', 'group'))
);
CREATE TABLE veil.project (project text PRIMARY KEY, documentation text);
CREATE TABLE veil.project_purpose (
  project text NOT NULL REFERENCES veil.project ON DELETE CASCADE,
  purpose text NOT NULL,
  approved boolean NOT NULL,
  state text NOT NULL,
  approved_by text,
  approved_at timestamptz,
  PRIMARY KEY (project, purpose)
);
CREATE TABLE veil.switch_log (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  who name NOT NULL DEFAULT session_user,
  project text,
  at timestamptz NOT NULL DEFAULT pg_catalog.now()
);
INSERT INTO veil.managed_role VALUES ('veil_owner', 'owner'), ('veil_views', 'views');
INSERT INTO veil.project VALUES ('fraud_q4', 'Q4');
INSERT INTO veil.project_purpose
  VALUES ('fraud_q4', 'Fraud Detection', true, 'approved', 'carol', '2026-11-20T10:00:00Z');
INSERT INTO veil.switch_log (who, project, at) VALUES
  ('bob', 'fraud_q4', '2026-12-01T10:00:00Z'), ('alice', NULL, '2026-12-01T09:00:00Z');
DO $$ BEGIN
  IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'veil_owner') THEN
    CREATE ROLE veil_owner NOLOGIN;
  END IF;
END $$;
ALTER SCHEMA veil OWNER TO veil_owner;
ALTER TABLE veil.managed_role OWNER TO veil_owner;
ALTER TABLE veil.project OWNER TO veil_owner;
ALTER TABLE veil.project_purpose OWNER TO veil_owner;
ALTER TABLE veil.switch_log OWNER TO veil_owner;
"""


def test_upgrading_from_the_first_script_keeps_the_switch_log(
    pg_server: PgServer, people: list[str]
) -> None:
    program = small_program()
    with temporary_database(pg_server) as upgraded, temporary_database(pg_server) as fresh:
        for db in (upgraded, fresh):
            db.apply_script(table_ddl(program.tables))
        upgraded.apply_script(FIRST_SCRIPT_SCHEMA)
        script = TARGET.render(program)
        for db in (upgraded, fresh):
            db.apply_script(script)
        assert snapshot(upgraded) == snapshot(fresh)
        assert upgraded.query_as(None, "SELECT to_regclass('veil.switch_log')") == [(None,)]
        assert upgraded.query_as(
            None, "SELECT id, at, who, event, project, purpose FROM veil.audit_log ORDER BY id"
        ) == [
            (1, dt.datetime(2026, 12, 1, 10, tzinfo=dt.UTC), "bob", "switch", "fraud_q4", None),
            (2, dt.datetime(2026, 12, 1, 9, tzinfo=dt.UTC), "alice", "switch", None, None),
        ]
        before = runtime_rows(upgraded)
        upgraded.apply_script(script)
        assert runtime_rows(upgraded) == before
        assert snapshot(upgraded) == snapshot(fresh)


def test_upgrading_from_a_policy_per_row_rule(pg_server: PgServer, people: list[str]) -> None:
    """A veil before one policy per table wrote a RESTRICTIVE policy per row rule
    (`veil_<kind>_<n>_<hash of its USING>`) and recorded their names: the next apply replaces
    them by the table's one `veil_rows_…`, as a fresh apply has it."""
    base = payments_program()
    program = dataclasses.replace(
        base,
        row_rules=(
            *base.row_rules,
            model.RowRule(table=("sales", "customers"), kind="restrict", allow=group("analysts")),
        ),
    )
    script = TARGET.render(program)
    earlier = []
    for tb in program.protected_tables:
        table, where = TARGET.table_sql(tb.key), TARGET.predicate_columns
        names = ["veil_base"]
        row_policy = TARGET.row_policy(program, tb.key)
        if row_policy is not None:
            earlier.append(f"DROP POLICY {TARGET.ident(row_policy[0])} ON {table};")
        for i, rule in enumerate(program.rules_of(tb.key), start=1):
            using = TARGET.rule_sql(rule, where(program, tb.key, TARGET.ident))
            names.append(f"veil_{rule.kind}_{i}_{digest(using)[:8]}")
            earlier.append(
                f"CREATE POLICY {TARGET.ident(names[-1])} ON {table} AS RESTRICTIVE FOR SELECT"
                f" TO PUBLIC USING ({using});"
            )
        schema, name = TARGET.schema_and_name(tb.key)
        earlier.append(
            "UPDATE veil.protected_table SET policies = ARRAY["
            + ", ".join(TARGET.literal(n) for n in sorted(names))
            + f"]::text[] WHERE table_schema = {TARGET.literal(schema)}"
            f" AND table_name = {TARGET.literal(name)};"
        )
    with temporary_database(pg_server) as upgraded, temporary_database(pg_server) as fresh:
        for db in (upgraded, fresh):
            db.apply_script(table_ddl(program.tables))
            db.apply_script(script)
        upgraded.apply_script("\n".join(earlier))
        before = upgraded.query_as(
            None, "SELECT polname FROM pg_policy WHERE polrelid = 'sales.customers'::regclass"
        )
        assert sorted(n[:15] for (n,) in before if n != "veil_base") == [
            "veil_restrict_1",
            "veil_restrict_2",
        ]
        upgraded.apply_script(script)
        assert snapshot(upgraded) == snapshot(fresh)
        policies = upgraded.query_as(
            None,
            "SELECT c.relname, p.polname FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid"
            " JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'sales'"
            " AND NOT p.polpermissive ORDER BY 1",
        )
        assert [(t, n[: len("veil_rows_")]) for t, n in policies] == [
            (tb.key[1], "veil_rows_")
            for tb in sorted(program.protected_tables, key=lambda tb: tb.key)
            if program.rules_of(tb.key) and tb.key[0] == "sales"
        ]


def test_no_base_schema_usage_needed_and_own_permissive_policies_reported(
    pg_server: PgServer, people: list[str]
) -> None:
    program = small_program()
    now = dt.datetime.now(dt.UTC)
    with temporary_database(pg_server) as db:
        db.apply_script(
            table_ddl(program.tables)
            + "REVOKE USAGE ON SCHEMA sales FROM PUBLIC;\n"
            + "ALTER TABLE sales.transactions ENABLE ROW LEVEL SECURITY;\n"
            + "CREATE POLICY mine ON sales.transactions USING (amount > 0);\n"
            + "GRANT SELECT ON sales.transactions, sales.customers TO alice, bob;\n"
        )
        rows = {}
        for tb in program.tables:
            insert_rows(
                db,
                tb,
                [
                    {c.name: sample_value(c, i, j, now) for j, c in enumerate(tb.columns)}
                    for i in range(1, 49)
                ],
            )
            rows[tb.key] = base_rows(db, tb)
        result = db.apply_script(TARGET.render(program))
        use_test_hash_key(db)
        assert "WARNING:  policy mine on sales.transactions is permissive" in result.stderr
        problems = []
        for user in ("alice", "bob"):
            for project in (None, "fraud_q4"):
                with db.connect_as(user) as conn:
                    select_project(conn, program, user, project)
                    for tb in program.protected_tables:
                        problems += compare_with_evaluator(
                            conn, program, user, project, tb, rows[tb.key], frozenset()
                        )
        assert not problems, "\n".join(problems)


# ============================================================================= hostile text


def test_hostile_names_and_values_round_trip(pg_db: PgDatabase, pg_login_role: RoleFactory) -> None:
    program = hostile_program()
    [user] = program.users
    [table] = program.tables
    owner = pg_login_role("veil_e2e_hostile_owner", login=False)
    pg_login_role(HOSTILE_GROUP, login=False)
    pg_login_role(user.name)  # not in the group: the regex mask applies
    pg_db.apply_script(table_ddl(program.tables, owner))
    secret = "a$b'c;d\"e\\f $$ \u2603"
    insert_rows(
        pg_db,
        table,
        [
            {"id": 1, HOSTILE_NAME: "secret-1", "note": secret, "tag": HOSTILE},
            {"id": 2, HOSTILE_NAME: "secret-2", "note": "plain", "tag": "other"},
            {"id": 3, HOSTILE_NAME: None, "note": None, "tag": None},
        ],
    )
    pg_db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(HOSTILE_TABLE)} TO PUBLIC;\n")
    script = TARGET.render(program)
    pg_db.apply_script(script)
    use_test_hash_key(pg_db)
    pg_db.apply_script(script)
    rows = base_rows(pg_db, table)
    view = sql.Identifier(*TARGET.view_of(HOSTILE_TABLE)).as_string()
    with pg_db.connect_as(user.name) as conn:
        assert fetch_all(conn, f"SELECT * FROM {view}") == [
            (1, HOSTILE, "a\\&b\\&c\\&d\\&e\\&f \\&\\& \u2603", HOSTILE)
        ]
        nothing: Acknowledged = frozenset()
        assert compare_with_evaluator(conn, program, user.name, None, table, rows, nothing) == []
        assert fetch_all(conn, "SELECT veil.use_project(%s)", (HOSTILE_NAME,)) == [(HOSTILE_NAME,)]
        # the purpose's text is not acknowledged yet: no purpose
        assert (
            compare_with_evaluator(conn, program, user.name, HOSTILE_NAME, table, rows, nothing)
            == []
        )
        assert len(fetch_all(conn, f"SELECT * FROM {view}")) == 1
        assert fetch_all(conn, "SELECT * FROM veil.acknowledgement_texts(%s)", (HOSTILE_NAME,)) == [
            (HOSTILE_NAME, HOSTILE, False)
        ]
        assert fetch_all(conn, "SELECT veil.acknowledge(%s)", (HOSTILE_NAME,)) == [(1,)]
        done = acknowledged_by(pg_db, user.name)
        assert done == {(HOSTILE_NAME, HOSTILE_NAME, HOSTILE)}
        assert (
            compare_with_evaluator(conn, program, user.name, HOSTILE_NAME, table, rows, done) == []
        )
        assert len(fetch_all(conn, f"SELECT * FROM {view}")) == 3
    assert pg_db.query_as(None, "SELECT documentation FROM veil.project") == [(HOSTILE,)]
    assert pg_db.query_as(
        None, "SELECT who, event, project, purpose, acknowledgement FROM veil.audit_log ORDER BY id"
    ) == [
        (HOSTILE_NAME, "switch", HOSTILE_NAME, None, None),
        (HOSTILE_NAME, "acknowledge", HOSTILE_NAME, HOSTILE_NAME, HOSTILE),
    ]
    assert pg_db.query_as(
        None, "SELECT rolcanlogin FROM pg_roles WHERE rolname = %s", (HOSTILE_GROUP,)
    ) == [(False,)]
    assert pg_db.query_as(None, "SELECT count(*) FROM pg_tables WHERE tablename = 'x'") == [(0,)]


def test_the_script_refuses_to_run_outside_one_transaction(
    pg_db: PgDatabase, tmp_path: Path
) -> None:
    script = tmp_path / "veil.sql"
    script.write_text(TARGET.render(hostile_program()), encoding="utf-8")
    done = subprocess.run(
        [str(pg_db.server.psql), "-X", "-v", "ON_ERROR_STOP=1", "-f", str(script), "-d", pg_db.dsn],
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 3
    assert re.search(r"SAVEPOINT can only be used in transaction blocks", done.stderr)
    assert pg_db.query_as(None, "SELECT to_regnamespace('veil')") == [(None,)]
