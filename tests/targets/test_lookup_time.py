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
}
mask app.stamped.y with truncate(year)
mask app.stamped.q with truncate(quarter)
mask app.stamped.m with truncate(month)
mask app.stamped.d with truncate(day)
mask app.stamped.h with truncate(hour)
"""
#: Instants a few hours from a year, quarter, month and day boundary in UTC (and one across
#: the switch to daylight saving time in Los Angeles), and NULL.
INSTANTS = (
    dt.datetime(2025, 12, 31, 22, 30, 5, tzinfo=dt.UTC),
    dt.datetime(2026, 1, 1, 2, 15, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 31, 23, 59, 59, 999999, tzinfo=dt.UTC),
    dt.datetime(2026, 4, 1, 0, 30, tzinfo=dt.UTC),
    dt.datetime(2026, 3, 8, 10, 30, tzinfo=dt.UTC),
    dt.datetime(1969, 12, 31, 23, 0, 1, tzinfo=dt.UTC),
    None,
)


def test_databricks_truncate_of_a_timestamptz_is_utc(spark: LocalSpark) -> None:
    """`truncate` of a `timestamptz` cuts the instant in UTC, as the evaluator does, whatever
    `spark.sql.session.timeZone` is: readers in two zones see the same values."""
    program = check_text(TRUNCATED)
    units = ("y", "q", "m", "d", "h")
    conf = spark.spark.conf
    before = conf.get("spark.sql.session.timeZone")
    rows = [{"id": i, **dict.fromkeys(units, v)} for i, v in enumerate(INSTANTS)]
    seen = evaluate_table(program, ("app", "stamped"), rows, Context(user="u"))
    want = [
        tuple(None if r[u] is None else int(r[u].timestamp() * 1_000_000) for u in units)
        for r in seen
        if r is not None
    ]
    new_year = int(dt.datetime(2026, 1, 1, tzinfo=dt.UTC).timestamp()) * 1_000_000
    assert want[1][3] == new_year  # the evaluator cuts in UTC
    calls = ", ".join(f"unix_micros(veil.mask__app__stamped__{u}(ts))" for u in units)
    values = ", ".join(
        f"({i}, CAST({'NULL' if v is None else repr(v.isoformat(sep=' '))} AS TIMESTAMP))"
        for i, v in enumerate(INSTANTS)
    )
    query = f"SELECT {calls} FROM VALUES {values} AS a(i, ts) ORDER BY i"
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
