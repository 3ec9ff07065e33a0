"""`veil plan` on a real server: OLD applied, then the plan, must equal NEW applied fresh.

Each case edits a temporary copy of examples/payments (its policy tests removed: they describe
the example as it is) into OLD and NEW. Two databases get the same tables and rows, readable by
every user as a DBA would have granted them. One gets OLD's script, its members acknowledge,
then the plan (`veil plan` on the command line); the other gets NEW's script. Then they must
hold the same governance rows, row policies, views (definitions, owners, grants), function
definitions and privileges on the protected tables; and every user, with no project and in
every project of NEW, must read the same rows through every protected view of both — which are
also what the reference evaluator says. The plan applied again changes nothing.
"""

from __future__ import annotations

import datetime as dt
import re
import shutil
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from psycopg import sql

from tests.pg import PgDatabase, PgServer, fetch_all, temporary_database
from tests.targets.test_postgres_e2e import (
    acknowledge_all,
    acknowledged_by,
    base_rows,
    canonical,
    compare_with_evaluator,
    insert_rows,
    sample_value,
    select_project,
    snapshot,
    table_ddl,
    use_test_hash_key,
    view_name,
)
from veil import model
from veil.api import check
from veil.cli import main
from veil.targets.postgres import PostgresTarget
from veil.targets.postgres_plan import recorded_rows

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "payments"
TARGET = PostgresTarget()
OWNER = "veil_plan_owner"  # owns the tables
SKIP = frozenset({("chris", "fraud_q4")})  # a member who never acknowledges


# ============================================================================= edits


def edit(path: Path, old: str, new: str) -> None:
    text = path.read_text(encoding="utf-8")
    assert text.count(old) == 1, (path, old)
    path.write_text(text.replace(old, new), encoding="utf-8")


def remove(path: Path, pattern: str) -> None:
    text = path.read_text(encoding="utf-8")
    text, n = re.subn(pattern, "", text, flags=re.MULTILINE | re.DOTALL)
    assert n == 1, (path, pattern)
    path.write_text(text, encoding="utf-8")


def unprotect_survey(repo: Path) -> None:
    """hr.survey loses every mask and its row rule (its comment was masked by the pii tag)."""
    (repo / "policies" / "hr.veil").unlink()
    edit(repo / "catalog" / "hr.veil", "tags pii.free_text   #", "#")


def drop_mask(repo: Path) -> None:
    """sales.customers.phone is shown to everyone: its mask and its pii tag go."""
    remove(repo / "policies" / "payments.veil", r"^mask sales\.customers\.phone .*?\n")
    edit(repo / "catalog" / "sales.veil", "varchar(32)   tags pii.phone  #", "varchar(32)  #")


def change_methods(repo: Path) -> None:
    edit(repo / "policies" / "payments.veil", "with round(100)", "with round(1000)")
    edit(
        repo / "policies" / "payments.veil",
        "mask sales.transactions.email with hash",
        "mask sales.transactions.email with show_first(2)",
    )


def add_row_rule(repo: Path) -> None:
    with (repo / "policies" / "payments.veil").open("a", encoding="utf-8") as f:
        f.write('\nfilter sales.customers where country in ("DE", "US") unless purpose Marketing\n')


def remove_project_and_member(repo: Path) -> None:
    projects = repo / "projects.veil"
    remove(projects, r"^project campaign \{.*?^\}\n")
    remove(projects, r"^approve campaign .*?^\}\n")
    edit(projects, "members  alice, bob, chris\n", "members  alice, bob\n")


def drop_column_and_rule(repo: Path) -> None:
    """sales.transactions.notes leaves the catalog (its view is re-created without it) with its
    mask; the 90-day filter goes (the other filter's policy keeps its number)."""
    edit(repo / "catalog" / "sales.veil", "  notes        text", "")
    payments = repo / "policies" / "payments.veil"
    remove(payments, r"^mask sales\.transactions\.notes .*?Fraud Detection\n")
    remove(payments, r"^filter sales\.transactions where created_at .*?Fraud Detection\n")


EVERYTHING = (
    unprotect_survey,
    drop_mask,
    change_methods,
    add_row_rule,
    remove_project_and_member,
    drop_column_and_rule,
)

Edit = Callable[[Path], None]
CASES: dict[str, tuple[Sequence[Edit], Sequence[Edit]]] = {
    "unprotect a table": ((), (unprotect_survey,)),
    "protect a table": ((unprotect_survey,), ()),
    "drop a mask": ((), (drop_mask,)),
    "change mask methods": ((), (change_methods,)),
    "add a row rule": ((), (add_row_rule,)),
    "remove a project and a member": ((), (remove_project_and_member,)),
    "drop a column and a row rule": ((), (drop_column_and_rule,)),
    "everything at once": ((), EVERYTHING),
    "everything back": (EVERYTHING, ()),
}


def repository(tmp_path: Path, name: str, edits: Sequence[Edit]) -> Path:
    repo = tmp_path / name
    shutil.copytree(EXAMPLE, repo)
    shutil.rmtree(repo / "tests")
    for e in edits:
        e(repo)
    return repo


def program_of(repo: Path) -> model.Program:
    checked = check([repo])
    assert checked.program is not None, [d.message for d in checked.diagnostics if d.is_error]
    return checked.program


def physical_tables(*programs: model.Program) -> list[model.CatalogTable]:
    """The tables as they exist in the database: each catalog table, with every column any of
    the programs names (a column dropped from the catalog is still in the table)."""
    out: dict[model.TableKey, model.CatalogTable] = {}
    for program in programs:
        for tb in program.tables:
            known = out.get(tb.key)
            if known is None:
                out[tb.key] = tb
            else:
                names = {c.name for c in known.columns}
                extra = tuple(c for c in tb.columns if c.name not in names)
                out[tb.key] = model.CatalogTable(key=tb.key, columns=known.columns + extra)
    return sorted(out.values(), key=lambda tb: tb.key)


# ============================================================================= databases


@pytest.fixture(scope="module")
def users(pg_server: PgServer) -> Iterator[list[str]]:
    """The example's groups and users as roles (users log in), and the tables' owner."""
    program = program_of(EXAMPLE)
    created = [pg_server.create_role(OWNER, login=False)]
    created += [pg_server.create_role(g, login=False) for g in program.groups]
    logins = [pg_server.create_role(u.name, member_of=u.groups) for u in program.users]
    try:
        yield logins
    finally:
        for role in (*reversed(logins), *reversed(created), *TARGET.own_roles):
            pg_server.drop_role(role)


def prepare(
    db: PgDatabase, tables: Sequence[model.CatalogTable], users: Sequence[str]
) -> dict[model.TableKey, list[dict[str, object]]]:
    """The tables with the same rows in every database, SELECT granted to every user."""
    db.apply_script(table_ddl(tables, OWNER))
    now = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)  # rows are the same in both databases
    grants = ", ".join(TARGET.ident(u) for u in users)
    rows = {}
    for tb in tables:
        values = [
            {c.name: sample_value(c, i, j, now) for j, c in enumerate(tb.columns)}
            for i in range(1, 49)
        ]
        insert_rows(db, tb, values)
        db.apply_script(f"GRANT SELECT ON {TARGET.table_sql(tb.key)} TO {grants};\n")
        rows[tb.key] = base_rows(db, tb)
    return rows


def plan_cli(old: Path, new: Path, out: Path) -> str:
    result = CliRunner().invoke(
        main,
        ["plan", "--from", str(old), "--to", str(new), "--target", "postgres", "-o", str(out)],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return out.read_text(encoding="utf-8")


def answers(
    db: PgDatabase,
    program: model.Program,
    users: Sequence[str],
    rows: dict[model.TableKey, list[dict[str, object]]],
) -> tuple[dict[tuple[str, str | None, str], Any], list[str]]:
    """What each user reads from each protected view, with no project and in each project of
    `program`; and the differences with the evaluator (hashes with the evaluator's key)."""
    use_test_hash_key(db)
    seen: dict[tuple[str, str | None, str], Any] = {}
    problems: list[str] = []
    for user in users:
        acknowledged = acknowledged_by(db, user)
        for project in [None, *(p.name for p in program.projects)]:
            with db.connect_as(user) as conn:
                select_project(conn, program, user, project)
                for tb in program.protected_tables:
                    query = sql.SQL("SELECT * FROM {}").format(view_name(tb.key)).as_string()
                    got = fetch_all(conn, query)
                    seen[(user, project, tb.name)] = canonical(got)
                    mine = [{c.name: r[c.name] for c in tb.columns} for r in rows[tb.key]]
                    problems += compare_with_evaluator(
                        conn, program, user, project, tb, mine, acknowledged, got
                    )
    return seen, problems


# ============================================================================= the cases


@pytest.mark.parametrize("case", sorted(CASES))
def test_old_then_plan_equals_new(
    case: str, pg_server: PgServer, users: list[str], tmp_path: Path
) -> None:
    old_edits, new_edits = CASES[case]
    old_repo = repository(tmp_path, "old", old_edits)
    new_repo = repository(tmp_path, "new", new_edits)
    old, new = program_of(old_repo), program_of(new_repo)
    tables = physical_tables(old, new)
    plan = plan_cli(old_repo, new_repo, tmp_path / "plan.sql")
    assert plan == plan_cli(old_repo, new_repo, tmp_path / "again.sql")  # deterministic

    with temporary_database(pg_server) as planned, temporary_database(pg_server) as fresh:
        rows = prepare(planned, tables, users)
        assert prepare(fresh, tables, users) == rows
        planned.apply_script(TARGET.render(old))
        acknowledge_all(planned, old, users, SKIP)
        result = planned.apply_script(plan)
        assert "does not hold what OLD" not in result.stderr, result.stderr
        acknowledge_all(planned, new, users, SKIP)
        fresh.apply_script(TARGET.render(new))
        acknowledge_all(fresh, new, users, SKIP)

        protected = [f"{tb.key[-2]}.{tb.key[-1]}" for tb in new.protected_tables]
        after = snapshot(planned, acl_of=protected)
        assert after == snapshot(fresh, acl_of=protected)
        seen, problems = answers(planned, new, users, rows)
        assert not problems, "\n".join(problems)
        seen_fresh, problems = answers(fresh, new, users, rows)
        assert not problems, "\n".join(problems)
        assert seen == seen_fresh
        assert len(seen) == len(users) * (len(new.projects) + 1) * len(new.protected_tables)

        # idempotent: the plan again changes nothing, and says the database is not OLD
        again = planned.apply_script(plan)
        assert snapshot(planned, acl_of=protected) == after
        differs = recorded_rows(TARGET.lower(old)) != recorded_rows(TARGET.lower(new))
        assert ("does not hold what OLD" in again.stderr) == differs

        # what disappeared is gone, what was dropped is named in the header
        for tb in old.protected_tables:
            if tb.key in {t.key for t in new.protected_tables}:
                continue
            view = ".".join(TARGET.view_of(tb.key))
            assert f"DROP VIEW IF EXISTS {TARGET.qualified(TARGET.view_of(tb.key))};" in plan
            assert f"view {view} and veil's row policies on {tb.name}" in plan
            assert planned.query_as(None, "SELECT to_regclass(%s)", (view,)) == [(None,)]
            assert planned.query_as(
                None,
                "SELECT relrowsecurity FROM pg_class WHERE oid = %s::regclass",
                (tb.name,),
            ) == [(False,)]
            assert f"veil no longer protects {tb.name}" in result.stderr


def test_the_header_of_everything(tmp_path: Path) -> None:
    old_repo = repository(tmp_path, "old", ())
    new_repo = repository(tmp_path, "new", EVERYTHING)
    plan = plan_cli(old_repo, new_repo, tmp_path / "plan.sql")
    header = plan.split("SAVEPOINT veil_plan;")[0]
    for line in (
        "--   - protected table hr.survey",
        "--   - column sales.transactions.notes",
        "--   - mask sales.customers.phone",
        "--   ~ mask sales.transactions.amount",
        "--       was: mask sales.transactions.amount with round(100) for group contractors",
        "--       now: mask sales.transactions.amount with round(1000) for group contractors",
        "--   + row rule sales.customers",
        "--       now: filter sales.customers where country in "
        '("DE", "US") unless purpose Marketing',
        "--   - project campaign",
        "--   - project member fraud_q4: chris",
        "--   ~ approval fraud_q4: Fraud Detection",
        "--   view sales_protected.transactions is dropped and re-created",
        "--   project campaign (with its purposes, members and sources;",
    ):
        assert line in header, line
    assert header.count("DROP POLICY IF EXISTS") == 0  # the statements come after the header
    # a table's one row policy holds all its rules: a rule dropped replaces it, and says so
    replaced = re.search(
        r"--   row policy (veil_rows_[0-9a-f]{8}) on sales\.transactions \(its USING changed — a "
        r"row rule, or how veil writes it: NEW's script creates (veil_rows_[0-9a-f]{8}) in its "
        r"place, the one policy of all the table's rules\)\n",
        header,
    )
    assert replaced is not None, header
    old_policy, new_policy = replaced.groups()
    assert old_policy != new_policy
    assert f'DROP POLICY IF EXISTS "{old_policy}" ON "sales"."transactions";' in plan
    assert f'CREATE POLICY "{new_policy}" ON "sales"."transactions"' in plan
