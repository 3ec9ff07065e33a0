"""The Databricks target: grammar (sqlfluff), semantics (the generated mask and row-filter
functions run in a local Spark and compared with the reference evaluator), re-apply safety,
determinism, hostile strings and the target's own diagnostics.

Spark tests share one session (tests/verify/spark_local.py) and run one query per (user, project):
every function of every table over every sample row. Without pyspark they skip, except when
CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from tests.targets import scenarios
from tests.targets.scenarios import Scenario
from tests.verify.spark_local import LocalSpark, require_spark, sql_literal
from tests.verify.sqlfluff_check import parse_script, split_statements
from veil import model
from veil.diagnostics import Severity
from veil.evaluator import Context
from veil.targets import get_target
from veil.targets.lookup import LOOKUP_TABLES
from veil.targets.databricks import DatabricksTarget

#: sqlfluff gaps a generated Databricks script may need (docs/targets/databricks.md lists them).
DOCUMENTED_GAPS = {"dbx_using_columns_many"}
#: Contexts queried at once (each thread simulates its own user; planning dominates, and it runs
#: in parallel even on `local[1]`).
THREADS = 4
JSON_OPTIONS = ("map('timestampFormat', 'yyyy-MM-dd\\'T\\'HH:mm:ss.SSSSSSXXX', "
                "'timestampNTZFormat', 'yyyy-MM-dd\\'T\\'HH:mm:ss.SSSSSS')")


@pytest.fixture(scope="module")
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def target() -> DatabricksTarget:
    tgt = get_target("databricks")
    assert isinstance(tgt, DatabricksTarget)
    return tgt


#: Scenarios run in Spark: the example, the edge cases, and the golden cases with hostile names and
#: every form of rule (the others are covered by the DuckDB run of the Snowflake target).
SCENARIOS = ["payments", "edge", "case:hostile", "case:every_form"]


@pytest.fixture(scope="module", params=SCENARIOS)
def scenario(request: pytest.FixtureRequest, now: dt.datetime) -> Scenario:
    return scenarios.build(request.param, now)


@pytest.fixture(scope="module")
def script(target: DatabricksTarget, scenario: Scenario) -> str:
    return target.render(scenario.program)


#: Session settings for the semantic test: interpreted expressions instead of generated Java, and
#: a lighter optimizer. Same answers, three times faster (planning dominates these small queries).
FAST_SETTINGS = {
    "spark.sql.codegen.factoryMode": "NO_CODEGEN",
    "spark.sql.codegen.wholeStage": "false",
    "spark.sql.adaptive.enabled": "false",
    "spark.sql.optimizer.maxIterations": "20",
}


@pytest.fixture(scope="module")
def spark() -> LocalSpark:
    return require_spark()


@contextlib.contextmanager
def fast(spark: LocalSpark) -> Iterator[None]:
    conf = spark.spark.conf
    before = {k: conf.get(k, None) for k in FAST_SETTINGS}
    for k, v in FAST_SETTINGS.items():
        conf.set(k, v)
    try:
        yield
    finally:
        for k, v in before.items():
            if v is None:
                conf.unset(k)
            else:
                conf.set(k, v)


# -------------------------------------------------------------------------------------------------
# (a) grammar


def test_every_statement_parses_with_sqlfluff(script: str) -> None:
    reports = parse_script(script, "databricks")
    used = {gap for r in reports for gap in r.gaps}
    assert used <= DOCUMENTED_GAPS, f"undocumented sqlfluff gaps: {used - DOCUMENTED_GAPS}"


# -------------------------------------------------------------------------------------------------
# (b) semantics in a local Spark


def literal(target: DatabricksTarget, value: object) -> str:
    """Strings through the target's own quoting (sql_literal does not guard `${`)."""
    return target.literal(value) if isinstance(value, str) else sql_literal(value)


def set_view(spark: LocalSpark, target: DatabricksTarget, name: str,
             columns: Sequence[tuple[str, str]], rows: Sequence[Sequence[object]]) -> None:
    spark.ensure_schema(name.rsplit(".", 1)[0])
    select = ", ".join(f"CAST(c{i} AS {ty}) AS {target.ident(c)}"
                       for i, (c, ty) in enumerate(columns))
    if rows:
        values = ", ".join("(" + ", ".join(literal(target, v) for v in r) + ")" for r in rows)
        aliases = ", ".join(f"c{i}" for i in range(len(columns)))
        body = f"SELECT {select} FROM VALUES {values} AS t({aliases})"
    else:
        body = "SELECT " + ", ".join(f"CAST(NULL AS {ty}) AS {target.ident(c)}"
                                     for c, ty in columns) + " WHERE FALSE"
    spark.sql(f"CREATE OR REPLACE VIEW {name} AS {body}")


def install(spark: LocalSpark, target: DatabricksTarget, scenario: Scenario, script: str) -> None:
    spark.reset()
    rows = target.governance_rows(scenario.program)
    for name, (columns, _) in LOOKUP_TABLES.items():
        typed = [(c, "BOOLEAN" if ty == "boolean" else "STRING") for c, ty in columns]
        set_view(spark, target, target.gov(name), typed, rows[name])
    set_active(spark, target, [])
    spark.set_groups(account=[(u.name, g) for u in scenario.program.users for g in u.groups])
    spark.create_functions(script)


def set_active(spark: LocalSpark, target: DatabricksTarget,
               rows: Sequence[tuple[str, str, dt.datetime]]) -> None:
    set_view(spark, target, target.gov("active_project"),
             [("principal", "STRING"), ("project_name", "STRING"), ("set_at", "TIMESTAMP")], rows)


def table_query(target: DatabricksTarget, program: model.Program, key: model.TableKey,
                rows: Sequence[dict[str, object]], tag: int) -> str:
    """One SELECT: every row of a table -> JSON of each mask function's value and the filter's."""
    table = program.table(key)
    assert table is not None
    cols = {c.name: f"c{i}" for i, c in enumerate(table.columns)}
    fields = []
    for i, mask in enumerate(program.masks_of(key)):
        args = ", ".join(cols[c.name] for c in target.mask_args(program, mask))
        function = target.gov(target.object_name("mask", *key, mask.column))
        fields.append(f"'m{i}', {function}({args})")
    if program.rules_of(key):
        args = ", ".join(cols[c.name] for c in target.row_args(program, key))
        fields.append(f"'visible', {target.gov(target.object_name('rows', *key))}({args})")
    values = ", ".join("(" + ", ".join([str(n), *(literal(target, r[c.name])
                                                    for c in table.columns)]) + ")"
                       for n, r in enumerate(rows))
    casts = ", ".join(f"CAST({cols[c.name]} AS {target.sql_type(c.type)}) AS {cols[c.name]}"
                      for c in table.columns)
    raw = ", ".join(cols[c.name] for c in table.columns)
    return (f"SELECT {tag} AS t, idx, to_json(named_struct({', '.join(fields)}), {JSON_OPTIONS}) "
            f"FROM (SELECT idx, {casts} FROM VALUES {values} AS v(idx, {raw}))")


def from_json(value: Any, ty: model.SqlType) -> object:
    if value is None:
        return None
    if ty.family is model.Family.DATE:
        return dt.date.fromisoformat(value)
    if ty.family is model.Family.TIMESTAMP:
        return dt.datetime.fromisoformat(value)
    return value


@pytest.mark.spark
def test_functions_agree_with_the_evaluator(spark: LocalSpark, target: DatabricksTarget,
                                            scenario: Scenario, script: str,
                                            now: dt.datetime) -> None:
    program = scenario.program
    install(spark, target, scenario, script)
    keys = list(scenario.rows)
    query = " UNION ALL ".join(table_query(target, program, k, scenario.rows[k], i)
                               for i, k in enumerate(keys))
    users = sorted({c.user for c in scenario.contexts})
    projects = list(dict.fromkeys(c.project for c in scenario.contexts))
    problems: list[str] = []

    def run(ctx: Context) -> list[tuple[Any, ...]]:
        with spark.as_user(ctx.user):  # current_user() is per JVM thread: one per Python thread
            return spark.sql(query)

    for project in projects:  # one round per project: every user has it selected
        set_active(spark, target, [(u, project, now) for u in users] if project else [])
        round_contexts = [c for c in scenario.contexts if c.project == project]
        with fast(spark), ThreadPoolExecutor(THREADS) as pool:
            results = list(pool.map(run, round_contexts))
        for ctx, result in zip(round_contexts, results, strict=True):
            for i, key in enumerate(keys):
                got = sorted((r[1], json.loads(r[2], parse_float=Decimal))
                             for r in result if r[0] == i)
                masks = program.masks_of(key)
                cells = {m.column: [from_json(j.get(f"m{n}"), m.type) for _, j in got]
                         for n, m in enumerate(masks)}
                visible = ([j.get("visible") for _, j in got] if program.rules_of(key)
                           else [True] * len(got))
                problems += scenarios.mismatches(scenario, key, ctx, visible, cells)
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} mismatches)"


@pytest.mark.spark
def test_string_literals_round_trip(spark: LocalSpark, target: DatabricksTarget) -> None:
    values = [scenarios.HOSTILE, "'", "\\", "\\'", "''", "\n\t\r", "${spark.app.name}",
              "$${x}", "$\\{", "\u2028é漢😀", "a\\'; DROP TABLE t; --", "%_\\%\\_"]
    query = "SELECT " + ", ".join(f"{target.literal(v)} AS v{i}" for i, v in enumerate(values))
    assert list(spark.sql(query)[0]) == values
    parse_script(query + ";", "databricks")


def merge_source(spark: LocalSpark, script: str, table: str) -> list[tuple[object, ...]]:
    """The rows the `MERGE INTO <table>` of a script writes, read back through Spark."""
    merge = next((s for s in split_statements(script) if s.startswith(f"MERGE INTO {table} ")),
                 None)
    if merge is None:
        return []
    source = re.search(r"USING (\(VALUES\n.*?\n\) AS s\(.*?\))\n", merge, re.S)
    assert source is not None
    return spark.sql(f"SELECT * FROM {source.group(1)}")


@pytest.mark.spark
def test_governance_rows_round_trip(spark: LocalSpark, target: DatabricksTarget,
                                    scenario: Scenario, script: str) -> None:
    rows = target.governance_rows(scenario.program)
    for name in LOOKUP_TABLES:
        got = merge_source(spark, script, target.gov(name))
        assert sorted(got, key=repr) == sorted(rows[name], key=repr)


@pytest.mark.spark
def test_cleanup_selects_only_what_the_script_no_longer_attaches(
        spark: LocalSpark, target: DatabricksTarget, script: str) -> None:
    block = next(s for s in split_statements(script) if s.startswith("BEGIN"))
    select = re.search(r"FOR stale AS\s+(SELECT .*?ORDER BY 1)\s+DO", block, re.S)
    assert select is not None
    current = merge_source(spark, script, target.gov("applied_object"))
    assert current
    rows = [*current,
            ("veil.mask__old", "column mask", current[0][2], "DETACH A", "DROP A"),
            ("veil.rows__gone", "row filter", "table gone.t", "DETACH B", "DROP B")]
    spark.reset()
    set_view(spark, target, target.gov("applied_object"),
             [(c, "STRING") for c in
              ("object_name", "object_kind", "target", "detach_sql", "drop_sql")], rows)
    assert spark.sql(select.group(1)) == [("veil.mask__old", None, "DROP A"),
                                          ("veil.rows__gone", "DETACH B", "DROP B")]


# -------------------------------------------------------------------------------------------------
# (c) re-apply safety and determinism


def test_every_statement_can_run_again(script: str) -> None:
    allowed = (
        r"CREATE SCHEMA IF NOT EXISTS ", r"CREATE TABLE IF NOT EXISTS ", r"MERGE INTO ",
        r"DELETE FROM ", r"CREATE OR REPLACE (FUNCTION|PROCEDURE) ", r"GRANT ",
        r"ALTER TABLE .+? ALTER COLUMN .+? SET MASK ", r"ALTER TABLE .+? SET ROW FILTER ",
        r"BEGIN\n",
    )
    for statement in split_statements(script):
        assert any(re.match(p, statement) for p in allowed), statement[:200]


def test_output_is_deterministic(target: DatabricksTarget, scenario: Scenario, script: str) -> None:
    assert target.render(scenario.program) == script


def test_output_does_not_depend_on_hash_seeds() -> None:
    code = ("import sys; from veil.api import check; from veil.targets import get_target; "
            "p = check([sys.argv[1]]).program; "
            "sys.stdout.write(get_target('databricks').render(p))")
    outputs = {
        subprocess.run([sys.executable, "-c", code, str(scenarios.PAYMENTS)], check=True,
                       capture_output=True, text=True,
                       env={**os.environ, "PYTHONHASHSEED": seed}).stdout
        for seed in ("1", "2")
    }
    assert len(outputs) == 1


def test_using_columns_follow_the_rules(target: DatabricksTarget, script: str) -> None:
    """No duplicates, never the masked column itself, single-part names (ROW_COLUMN_ACCESS)."""
    for m in re.finditer(r"ALTER COLUMN (\S+) SET MASK \S+ USING COLUMNS \((.*?)\);", script):
        names = [n.strip() for n in m.group(2).split(",")]
        assert len({n.lower() for n in names}) == len(names)
        assert m.group(1).lower() not in {n.lower() for n in names}
        assert all("." not in n for n in names)


# -------------------------------------------------------------------------------------------------
# (d) names


@pytest.mark.parametrize("name, sql", [
    ("credit_card", "credit_card"), ("Order Note", "`Order Note`"), ("a`b", "`a``b`"),
    ("order", "`order`"), ("x$1", "`x$1`"), ("CamelCase", "CamelCase"), ("1x", "`1x`"),
])
def test_identifiers(target: DatabricksTarget, name: str, sql: str) -> None:
    assert target.ident(name) == sql


# -------------------------------------------------------------------------------------------------
# The target's own checks


def test_payments_compiles_cleanly(target: DatabricksTarget, now: dt.datetime) -> None:
    assert target.check(scenarios.payments(now).program) == []


def test_decimal_without_precision_is_an_error(target: DatabricksTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; amount decimal }\nmask t.x.amount with round(10)\n")
    diags = target.check(program)
    assert [d.code for d in diags] == ["T0201"]
    assert "`DECIMAL(10, 0)` on databricks" in diags[0].message


def test_value_longer_than_column_is_a_warning(target: DatabricksTarget) -> None:
    program = scenarios.check_text(
        'table t.x { id bigint; code varchar(8) }\nmask t.x.code with constant("abc")\n')
    mask = program.masks[0]
    arm = mask.arms[0]
    longer = model.MaskConstant(value="longer than eight")
    program = program.__class__(**{**{f: getattr(program, f) for f in program.__dataclass_fields__},
                                   "masks": (mask.__class__(**{
                                       **{f: getattr(mask, f) for f in mask.__dataclass_fields__},
                                       "arms": (arm.__class__(action=longer, cond=None),)}),)})
    diags = target.check(program)
    assert [d.code for d in diags] == ["T0202"]
    assert diags[0].severity is Severity.WARNING


def test_names_with_variable_substitution_and_case_collisions(target: DatabricksTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; `a${b}` varchar; Region varchar; region varchar }\n"
        "user ann\nuser Ann\nmask t.x.`a${b}`\nmask t.x.region\n")
    assert sorted(d.code for d in target.check(program)) == ["T0203", "T0203", "T0204"]
