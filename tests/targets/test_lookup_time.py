"""Time in Snowflake and Databricks bodies is UTC, whatever the session's time zone, as on
PostgreSQL (tests/targets/test_postgres_time.py) and in the evaluator.

`now()` is UTC and a `timestamptz` column is read as its UTC wall-clock time. Rows sit a few
hours on either side of each boundary (`now() - 90 days`); the bodies run in DuckDB (Snowflake's,
through sqlglot) and in a local Spark (Databricks' functions) under several session time zones
and must keep exactly the rows the evaluator keeps.
"""

from __future__ import annotations

import datetime as dt

import pytest

from tests.targets.scenarios import check_text
from tests.verify.snowflake_duck import SnowflakeDuck
from tests.verify.spark_local import LocalSpark, function_statements, require_spark
from veil import model
from veil.evaluator import Context, evaluate_table
from veil.targets.databricks import DatabricksTarget
from veil.targets.snowflake import SnowflakeTarget

POLICIES = """
table app.instant { id bigint; ts timestamptz }
table app.naive { id bigint; ts timestamp }
table app.noted { id bigint; ts timestamptz; note text }
filter app.instant where ts >= now() - 90 days
filter app.naive where ts >= now() - 90 days
mask app.noted.note with null when ts < now() - 1 days
"""
#: Offsets (hours) around each boundary: more than the seconds a test takes, less than any
#: time zone's offset.
HOURS = (-30, -15, -11, -5, -1, 1, 5, 11, 15, 30)
ZONES = ("UTC", "America/Los_Angeles", "Asia/Kolkata", "Pacific/Kiritimati", "Etc/GMT+12")


@pytest.fixture(scope="module")
def program() -> model.Program:
    return check_text(POLICIES)


def values(table: str, now: dt.datetime) -> list[dt.datetime]:
    """The `ts` of each row: instants (aware, UTC) or UTC wall-clock times (naive)."""
    days = 1 if table == "noted" else 90
    out = [now - dt.timedelta(days=days) + dt.timedelta(hours=h) for h in HOURS]
    return out if table != "naive" else [v.replace(tzinfo=None) for v in out]


def expected(program: model.Program, table: str, now: dt.datetime) -> list[object]:
    """Per row: kept (rows) or the note shown (mask), as the evaluator says."""
    key = ("app", table)
    rows = [{"id": i, "ts": v, "note": f"n{i}"} for i, v in enumerate(values(table, now))]
    seen = evaluate_table(program, key, rows, Context(user="u", now=now))
    if table == "noted":
        return [None if r is None else r["note"] for r in seen]
    return [r is not None for r in seen]


@pytest.mark.parametrize("zone", ZONES)
def test_snowflake_bodies_do_not_depend_on_the_session_time_zone(
    program: model.Program, zone: str
) -> None:
    target = SnowflakeTarget()
    duck = SnowflakeDuck({})
    duck.con.execute(f"SET TimeZone = '{zone}'")
    now = dt.datetime.now(dt.UTC)
    for table in ("instant", "naive"):
        policy = target.rows_policy(program, ("app", table))
        got = duck.evaluate_rows(
            policy.body, [(v,) for v in values(table, now)], signature=policy.params, user="U"
        )
        assert got == expected(program, table, now), (zone, table)
    [mask] = program.masks
    policy = target.mask_policy(program, mask, exempt=False)
    rows = [(f"n{i}", v) for i, v in enumerate(values("noted", now))]
    got = duck.evaluate_rows(policy.body, rows, signature=policy.params, user="U")
    assert got == expected(program, "noted", now), zone
    assert None in got and any(got)  # both sides of the boundary


@pytest.fixture(scope="module")
def spark() -> LocalSpark:
    return require_spark()


def test_databricks_functions_do_not_depend_on_the_session_time_zone(
    program: model.Program, spark: LocalSpark
) -> None:
    script = DatabricksTarget().render(program)
    for statement in function_statements(script):
        if "veil.rows__app__" in statement or "veil.mask__app__" in statement:
            spark.create_function(statement)
    conf = spark.spark.conf
    before = conf.get("spark.sql.session.timeZone")
    try:
        for zone in ZONES:
            conf.set("spark.sql.session.timeZone", zone)
            now = dt.datetime.now(dt.UTC)
            for table in ("instant", "naive"):
                got = spark.evaluate(
                    f"veil.rows__app__{table}",
                    [(v,) for v in values(table, now)],
                    arg_types=["TIMESTAMP" if table == "instant" else "TIMESTAMP_NTZ"],
                )
                assert got == expected(program, table, now), (zone, table)
            rows = [(f"n{i}", v) for i, v in enumerate(values("noted", now))]
            got = spark.evaluate(
                "veil.mask__app__noted__note", rows, arg_types=["STRING", "TIMESTAMP"]
            )
            assert got == expected(program, "noted", now), zone
    finally:
        conf.set("spark.sql.session.timeZone", before)


TRUNCATED = """
table app.stamped {
  id bigint; y timestamptz; q timestamptz; m timestamptz; d timestamptz; h timestamptz
  ny timestamp; nq timestamp; nm timestamp; nd timestamp; nh timestamp
  dy date; dq date; dm date
}
mask app.stamped.y with truncate(year)
mask app.stamped.q with truncate(quarter)
mask app.stamped.m with truncate(month)
mask app.stamped.d with truncate(day)
mask app.stamped.h with truncate(hour)
mask app.stamped.ny with truncate(year)
mask app.stamped.nq with truncate(quarter)
mask app.stamped.nm with truncate(month)
mask app.stamped.nd with truncate(day)
mask app.stamped.nh with truncate(hour)
mask app.stamped.dy with truncate(year)
mask app.stamped.dq with truncate(quarter)
mask app.stamped.dm with truncate(month)
"""
#: Instants a few hours from a year, quarter, month and day boundary in UTC, one at a wall-clock
#: time that does not exist in Los Angeles (the switch to daylight saving time), one before
#: 1970, and NULL; the `timestamp` columns hold their UTC wall-clock times, the dates their days.
INSTANTS = (
    dt.datetime(2025, 12, 31, 22, 30, 5, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 1, 2, 15, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 1, 0, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 8, 2, 30, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 0, 1, tzinfo=dt.UTC),
    None,
)
#: column -> (its type in Spark, how the query reads the function's result)
STAMPED = {
    **{c: ("TIMESTAMP", "unix_micros({})") for c in ("y", "q", "m", "d", "h")},
    **{c: ("TIMESTAMP_NTZ", "CAST({} AS STRING)") for c in ("ny", "nq", "nm", "nd", "nh")},
    **{c: ("DATE", "CAST({} AS STRING)") for c in ("dy", "dq", "dm")},
}


def _shown(value: object) -> object:
    """A value of the evaluator as the query reads it back."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return int(value.timestamp() * 1_000_000)
    return None if value is None else str(value)


def test_databricks_truncate_does_not_depend_on_the_session_time_zone(spark: LocalSpark) -> None:
    """`truncate` cuts a `timestamptz` in UTC and a `timestamp` or a date as written, as the
    evaluator does, whatever `spark.sql.session.timeZone` is: `date_trunc` would read it (it
    returns a `TIMESTAMP`), so readers in two zones would see different values, and a
    wall-clock time that does not exist in the session's zone would move by an hour."""
    program = check_text(TRUNCATED)
    rows = []
    for i, v in enumerate(INSTANTS):
        naive = None if v is None else v.replace(tzinfo=None)
        values = {"TIMESTAMP": v, "TIMESTAMP_NTZ": naive, "DATE": naive and naive.date()}
        rows.append({"id": i, **{c: values[ty] for c, (ty, _) in STAMPED.items()}})
    seen = evaluate_table(program, ("app", "stamped"), rows, Context(user="u"))
    want = [tuple(_shown(r[c]) for c in STAMPED) for r in seen if r is not None]
    new_year = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
    assert want[1][3] == new_year and want[4][9] == "2026-03-08 02:00:00"  # as said above
    # the UTC wall-clock time `ts` as each type: an instant at that time in UTC, or as written
    arg = {"TIMESTAMP": "CAST(ts || '+00:00' AS TIMESTAMP)"}
    calls = ", ".join(
        read.format(f"veil.mask__app__stamped__{c}({arg.get(ty, f'CAST(ts AS {ty})')})")
        for c, (ty, read) in STAMPED.items()
    )
    values = ", ".join(
        f"({i}, {'NULL' if v is None else repr(v.replace(tzinfo=None).isoformat(sep=' '))})"
        for i, v in enumerate(INSTANTS)
    )
    query = f"SELECT {calls} FROM VALUES {values} AS a(i, ts) ORDER BY i"
    conf = spark.spark.conf
    before = conf.get("spark.sql.session.timeZone")
    try:
        # A local Spark keeps the session time zone a SQL function was created under (so
        # create them away from UTC), Databricks' pages do not say: query under two zones.
        conf.set("spark.sql.session.timeZone", "America/Los_Angeles")
        for statement in function_statements(DatabricksTarget().render(program)):
            if "veil.mask__app__stamped__" in statement:
                spark.create_function(statement)
        for zone in ("America/Los_Angeles", "Pacific/Kiritimati"):
            conf.set("spark.sql.session.timeZone", zone)
            got = [tuple(r) for r in spark.sql(query)]
            assert got == want, zone
    finally:
        conf.set("spark.sql.session.timeZone", before)
