"""Sample data for `veil sandbox`: every user meets at least one row the policies let through,
and date and time columns keep their declared order."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from tests.pg import PgDatabase
from veil import model, sample_data
from veil.api import check, compile_program
from veil.evaluator import Context, eval_condition, visible_row
from veil.rowexpr import as_utc
from veil.sample_data import keep_order, sample_rows
from veil.sandbox import observe, prepare

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "payments"
NOW = dt.datetime(2026, 1, 15, 9, 30, tzinfo=dt.UTC)

HOSPITAL = """\
table care.stays {
  id            bigint
  patient       varchar(40)
  ward          varchar(8)
  clinician     varchar(16)
  severity      integer
  admitted_at   timestamp
  discharged_at timestamptz
  follow_up     date
}
group nurses
user alice { groups nurses; ward "ONC", "PED" }
user bob   { ward "CAR" }
user carol { ward "ICU" }
user dave
filter care.stays where ward in user.ward unless group nurses
filter care.stays where clinician = user.name or severity > 4
filter care.stays where admitted_at >= now() - 7 days and admitted_at < now() - 1 day
"""


def program_of(tmp_path: Path, text: str) -> model.Program:
    (tmp_path / "p.veil").write_text(text, encoding="utf-8")
    checked = check([tmp_path])
    assert checked.program is not None, [d.message for d in checked.diagnostics if d.is_error]
    return checked.program


def as_dicts(table: model.CatalogTable, rows: list[tuple[object, ...]]) -> list[dict[str, object]]:
    return [{c.name: v for c, v in zip(table.columns, r, strict=True)} for r in rows]


@pytest.mark.parametrize("n", [3, 5, 20])
def test_every_user_sees_a_row_where_the_policies_allow(tmp_path: Path, n: int) -> None:
    program = program_of(tmp_path, HOSPITAL)
    table = program.tables[0]
    rows = as_dicts(table, sample_rows(program, table, n, NOW.date(), NOW))
    for user in ("alice", "bob", "carol"):
        ctx = Context(user=user, now=NOW)
        assert any(visible_row(program, table.key, r, ctx).visible for r in rows), (user, rows)
    # dave has no ward: `ward in user.ward` hides every row from him, whatever the data
    dave = Context(user="dave", now=NOW)
    assert not any(visible_row(program, table.key, r, dave).visible for r in rows)
    # bob's row names him or is severe, and falls in the window
    bob = [
        r for r in rows if visible_row(program, table.key, r, Context(user="bob", now=NOW)).visible
    ]
    assert all(r["ward"] == "CAR" for r in bob)
    assert all(r["clinician"] == "bob" or t_severe(r) for r in bob)


def t_severe(row: dict[str, object]) -> bool:
    value = row["severity"]
    return isinstance(value, int) and value > 4


def test_without_the_rewrite_some_user_would_see_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above can fail: the plain sample rows miss a user."""
    program = program_of(tmp_path, HOSPITAL)
    table = program.tables[0]
    monkeypatch.setattr(sample_data, "_reach_every_user", lambda *_: None)
    rows = as_dicts(table, sample_rows(program, table, 5, NOW.date(), NOW))
    missed = [
        user
        for user in ("alice", "bob", "carol")
        if not any(
            visible_row(program, table.key, r, Context(user=user, now=NOW)).visible for r in rows
        )
    ]
    assert missed


def test_date_and_time_columns_keep_their_declared_order(tmp_path: Path) -> None:
    program = program_of(tmp_path, HOSPITAL)
    table = program.tables[0]
    for row in as_dicts(table, sample_rows(program, table, 40, NOW.date(), NOW)):
        admitted, discharged, follow_up = (
            row["admitted_at"],
            row["discharged_at"],
            row["follow_up"],
        )
        assert isinstance(admitted, dt.datetime) and admitted.tzinfo is None
        assert isinstance(discharged, dt.datetime) and discharged.tzinfo is not None
        assert isinstance(follow_up, dt.date)
        assert as_utc(admitted) <= as_utc(discharged) <= as_utc(follow_up) + dt.timedelta(days=1)
        assert as_utc(follow_up) >= as_utc(discharged.date())


def test_keep_order_moves_a_later_column_after_the_earlier_one(tmp_path: Path) -> None:
    program = program_of(tmp_path, HOSPITAL)
    table = program.tables[0]
    row: list[object] = [1, "p", "ONC", "c", 1, dt.datetime(2026, 1, 10, 12), None, None]
    row[6] = dt.datetime(2026, 1, 9, tzinfo=dt.UTC)  # discharged before admitted
    row[7] = dt.date(2026, 1, 1)
    keep_order(table, row, 0, NOW)
    assert row[6] == dt.datetime(2026, 1, 10, 13, tzinfo=dt.UTC)
    assert row[7] == dt.date(2026, 1, 11)
    near = [1, "p", "ONC", "c", 1, NOW.replace(tzinfo=None) - dt.timedelta(minutes=30), None, None]
    near[6] = NOW - dt.timedelta(days=1)
    keep_order(table, near, 71, NOW)  # 72 hours later would be in the future: halfway to now
    assert near[6] == NOW - dt.timedelta(minutes=15)


def test_the_payments_example(tmp_path: Path) -> None:
    checked = check([EXAMPLE])
    assert checked.program is not None
    program = checked.program
    for table in program.protected_tables:
        rows = as_dicts(table, sample_rows(program, table, 20, NOW.date(), NOW))
        for user in program.users:
            for project in (None, *(p.name for p in program.projects if user.name in p.members)):
                ctx = Context(user=user.name, project=project, now=NOW)
                rules = program.rules_of(table.key)
                if not all(
                    r.where is not None or eval_condition(program, r.allow, ctx, table.key)
                    for r in rules
                ):
                    continue  # a restrict hides every row, whatever the data
                if project is None:
                    assert any(visible_row(program, table.key, r, ctx).visible for r in rows), (
                        user.name,
                        table.name,
                    )


# ============================================================================ on PostgreSQL


def test_every_user_sees_a_row_on_postgres(pg_db: PgDatabase, tmp_path: Path) -> None:
    """The sandbox on a real server, with the real clock: the time window is measured by
    PostgreSQL's now(), the rows were made from the instant the sandbox started."""
    people = {name: f"sbx_hosp_{name}" for name in ("alice", "bob", "carol", "dave")}
    text = HOSPITAL.replace("nurses", "sbx_hosp_nurses")
    for name, role in people.items():
        text = text.replace(f"user {name}", f"user {role}")
    program = program_of(tmp_path, text)
    script, diags = compile_program(program, "postgres")
    assert script is not None, diags
    try:
        prepare(pg_db.dsn, program, script, rows=4, psql=pg_db.server.psql, echo=lambda _: None)
        for name, role in people.items():
            problem, (view,) = observe(pg_db.dsn, program, role, None)
            assert problem is None and view.error is None, view.error
            seen = [r for r in view.shown if r is not None]
            if name == "dave":
                assert seen == []  # no ward: no row can reach him
            else:
                assert seen, (name, view.base)
    finally:
        for role in [*people.values(), "sbx_hosp_nurses"]:
            pg_db.server.drop_role(role)
