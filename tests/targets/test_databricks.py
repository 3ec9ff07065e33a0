"""The Databricks target: grammar (sqlfluff), semantics (the generated mask and row-filter
functions run in a local Spark and compared with the reference evaluator), acknowledgements (the
body of veil.acknowledge run in Spark) and the audit log, re-apply safety, determinism, hostile
strings and the target's own diagnostics.

Spark tests share one session (tests/verify/spark_local.py) and run one query per (user, project):
every function of every table over every sample row, analysed once per project and optimised and
run once per user. Without pyspark they skip, except when CI=true, where they fail.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import hashlib
import json
import re
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import pytest

from tests.targets import scenarios
from tests.targets.scenarios import Scenario
from tests.verify.spark_local import (
    LocalSpark,
    SparkSQLError,
    function_statements,
    require_spark,
    sql_literal,
)
from tests.verify.sqlfluff_check import parse_script, split_statements
from veil import methods, model
from veil.diagnostics import Severity
from veil.evaluator import Context, mask_value
from veil.masking import TEST_HASH_KEY
from veil.targets import get_target, governance
from veil.targets.databricks import DatabricksTarget

#: sqlfluff gaps a generated Databricks script may need (docs/targets/databricks.md lists them).
DOCUMENTED_GAPS = {"dbx_using_columns_many"}
#: Contexts queried at once (each thread simulates its own user; planning dominates, and it runs
#: in parallel even on `local[1]`).
THREADS = 4
JSON_OPTIONS = (
    "map('timestampFormat', 'yyyy-MM-dd\\'T\\'HH:mm:ss.SSSSSSXXX', "
    "'timestampNTZFormat', 'yyyy-MM-dd\\'T\\'HH:mm:ss.SSSSSS')"
)

#: The governance tables the script synchronises, and the runtime tables the procedures write
#: (the active project is set directly by the tests).
SYNCED = governance.tables("lookup", "repository")
RUNTIME = {
    tb.name: tb for tb in governance.tables("lookup", "runtime") if tb.name != "active_project"
}


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
SCENARIOS = ["payments", "edge", "dotted", "case:hostile", "case:every_form"]


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


def set_view(
    spark: LocalSpark,
    target: DatabricksTarget,
    name: str,
    columns: Sequence[tuple[str, str]],
    rows: Sequence[Sequence[object]],
) -> None:
    spark.ensure_schema(name.rsplit(".", 1)[0])
    select = ", ".join(
        f"CAST(c{i} AS {ty}) AS {target.ident(c)}" for i, (c, ty) in enumerate(columns)
    )
    if rows:
        values = ", ".join("(" + ", ".join(literal(target, v) for v in r) + ")" for r in rows)
        aliases = ", ".join(f"c{i}" for i in range(len(columns)))
        body = f"SELECT {select} FROM VALUES {values} AS t({aliases})"
    else:
        body = (
            "SELECT "
            + ", ".join(f"CAST(NULL AS {ty}) AS {target.ident(c)}" for c, ty in columns)
            + " WHERE FALSE"
        )
    spark.sql(f"CREATE OR REPLACE VIEW {name} AS {body}")


def set_governance(spark: LocalSpark, target: DatabricksTarget, program: model.Program) -> None:
    rows = target.governance_rows(program)
    for tb in SYNCED:
        typed = [(c.name, "BOOLEAN" if c.type == "boolean" else "STRING") for c in tb.columns]
        set_view(spark, target, target.gov(tb.name), typed, rows[tb.name])
    # the hash key, set to the evaluator's as the tests of a real workspace would
    set_view(spark, target, target.gov("hash_key"), [("key_hex", "STRING")], [(TEST_HASH_KEY,)])


def runtime_columns(name: str) -> list[tuple[str, str]]:
    return [
        (c.name, "TIMESTAMP" if c.type == "timestamptz" else "STRING")
        for c in RUNTIME[name].columns
    ]


def install(
    spark: LocalSpark, target: DatabricksTarget, scenario: Scenario, script: str, now: dt.datetime
) -> None:
    spark.reset()
    set_governance(spark, target, scenario.program)
    set_active(spark, target, [])
    login = target.logins(scenario.program)
    set_view(
        spark,
        target,
        target.gov("member_acknowledgement"),
        runtime_columns("member_acknowledgement"),
        [(login.get(r[0], r[0]), *r[1:], now) for r in scenarios.acknowledgement_rows(scenario)],
    )
    spark.set_groups(account=[(login[u.name], g) for u in scenario.program.users for g in u.groups])
    spark.create_functions(script)


def set_active(
    spark: LocalSpark, target: DatabricksTarget, rows: Sequence[tuple[str, str, dt.datetime]]
) -> None:
    set_view(
        spark,
        target,
        target.gov("active_project"),
        [("principal", "STRING"), ("project_name", "STRING"), ("set_at", "TIMESTAMP")],
        rows,
    )


def table_query(
    target: DatabricksTarget,
    program: model.Program,
    key: model.TableKey,
    rows: Sequence[dict[str, object]],
    tag: int,
) -> str:
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
    values = ", ".join(
        "(" + ", ".join([str(n), *(literal(target, r[c.name]) for c in table.columns)]) + ")"
        for n, r in enumerate(rows)
    )
    casts = ", ".join(
        f"CAST({cols[c.name]} AS {target.sql_type(c.type)}) AS {cols[c.name]}"
        for c in table.columns
    )
    raw = ", ".join(cols[c.name] for c in table.columns)
    return (
        f"SELECT {tag} AS t, idx, to_json(named_struct({', '.join(fields)}), {JSON_OPTIONS}), "
        f"current_user() FROM (SELECT idx, {casts} FROM VALUES {values} AS v(idx, {raw}))"
    )


def from_json(value: Any, ty: model.SqlType) -> object:
    if value is None:
        return None
    if ty.family is model.Family.DATE:
        return dt.date.fromisoformat(value)
    if ty.family is model.Family.TIMESTAMP:
        return dt.datetime.fromisoformat(value)
    return value


@pytest.mark.spark
def test_functions_agree_with_the_evaluator(
    spark: LocalSpark, target: DatabricksTarget, scenario: Scenario, script: str, now: dt.datetime
) -> None:
    program = scenario.program
    install(spark, target, scenario, script, now)
    keys = list(scenario.rows)
    query = " UNION ALL ".join(
        table_query(target, program, k, scenario.rows[k], i) for i, k in enumerate(keys)
    )
    users = sorted({c.user for c in scenario.contexts})
    projects = list(dict.fromkeys(c.project for c in scenario.contexts))
    problems: list[str] = []

    login = target.logins(program)

    for project in projects:  # one round per project: every user has it selected
        set_active(
            spark, target, [(login.get(u, u), project, now) for u in users] if project else []
        )
        round_contexts = [c for c in scenario.contexts if c.project == project]
        with fast(spark):
            # Analysed once per round (the governance views, active_project included, are read
            # here), optimised and run once per user: Spark puts current_user() in at
            # optimisation, from the thread's user. Each row says whose it was, to prove it.
            analysed = spark.spark.sql(query)

            def run(ctx: Context, analysed: Any = analysed) -> list[tuple[Any, ...]]:
                # current_user() is per JVM thread: one per Python thread
                with spark.as_user(login.get(ctx.user, ctx.user)):
                    return [tuple(r) for r in analysed.select("*").collect()]

            with ThreadPoolExecutor(THREADS) as pool:
                results = list(pool.map(run, round_contexts))
        for ctx, result in zip(round_contexts, results, strict=True):
            assert {r[3] for r in result} == {login.get(ctx.user, ctx.user)}, "ran as another user"
            for i, key in enumerate(keys):
                got = sorted(
                    (r[1], json.loads(r[2], parse_float=Decimal)) for r in result if r[0] == i
                )
                masks = program.masks_of(key)
                cells = {
                    m.column: [from_json(j.get(f"m{n}"), m.type) for _, j in got]
                    for n, m in enumerate(masks)
                }
                visible = (
                    [j.get("visible") for _, j in got]
                    if program.rules_of(key)
                    else [True] * len(got)
                )
                problems += scenarios.mismatches(scenario, key, ctx, visible, cells)
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} mismatches)"


# -------------------------------------------------------------------------------------------------
# Acknowledgements and the audit log


ACK_VEIL = """
table t.x { id bigint; secret varchar(20) }
purpose P { acknowledgement "v1: I will be careful." }
user ann
user bob
project p { purposes P; members ann; sources t.x }
mask t.x.secret unless purpose P
"""


def procedure_body(script: str, name: str, argument: str) -> str:
    """The body of a generated procedure as a compound statement that local Spark runs: its
    parameter declared with `argument`, and SIGNAL (not in OSS Spark) as raise_error."""
    statement = next(
        s for s in split_statements(script) if s.startswith(f"CREATE OR REPLACE PROCEDURE {name}(")
    )
    param = re.search(r"\((\w+) STRING\)", statement)
    assert param is not None
    body = statement.split("\nAS BEGIN\n", 1)[1]
    body = re.sub(
        r"SIGNAL SQLSTATE '\d+' SET MESSAGE_TEXT = ('[^']*');", r"SELECT raise_error(\1);", body
    )
    return f"BEGIN\n  DECLARE {param.group(1)} STRING DEFAULT {argument};\n{body}"


@pytest.mark.spark
def test_acknowledge_procedure_runs_in_spark(
    spark: LocalSpark, target: DatabricksTarget, now: dt.datetime
) -> None:
    """veil.acknowledge, run as a member and as a non-member, then again after the text changed;
    after each step the mask and veil.acknowledgement_texts agree with the evaluator given what
    the table records, and the audit log holds every call."""
    program = scenarios.approve_all(scenarios.check_text(ACK_VEIL))
    v2 = "v2: I will be careful, and say so."
    changed = dataclasses.replace(
        program,
        purposes=tuple(dataclasses.replace(p, acknowledgement=v2) for p in program.purposes),
    )
    script = target.render(program)
    spark.reset()
    set_governance(spark, target, program)
    set_active(spark, target, [("ann", "p", now), ("bob", "p", now)])
    for name in RUNTIME:  # real tables, as the script creates them
        spark.sql(
            next(
                s
                for s in split_statements(script)
                if s.startswith(f"CREATE TABLE IF NOT EXISTS {target.gov(name)} (")
            )
        )
    spark.create_functions(script)
    acknowledge = procedure_body(script, target.gov("acknowledge"), target.literal("p"))
    mask = program.masks[0]
    function = target.gov(target.object_name("mask", *mask.table, mask.column))

    def check(prog: model.Program, user: str, texts: list[tuple[object, ...]]) -> None:
        """One query: the mask, the texts function and the recorded acknowledgements."""
        texts_function = target.gov("acknowledgement_texts")
        with spark.as_user(user):
            [(shown, listed, recorded)] = spark.sql(
                f"SELECT {function}('s3cret'), "
                f"(SELECT collect_list(struct(*)) FROM {texts_function}('p')), "
                "(SELECT collect_list(struct(principal, project_name, purpose_name, "
                f"acknowledgement)) FROM {target.gov('member_acknowledgement')})"
            )
        done = frozenset((p, pu, t) for u, p, pu, t in recorded if u == user)
        ctx = Context(user=user, project="p", now=now, acknowledged=done)
        assert shown == mask_value(prog, mask, "s3cret", {"secret": "s3cret"}, ctx).value
        assert [tuple(r) for r in listed] == texts

    with fast(spark):
        check(program, "ann", [("P", "v1: I will be careful.", False)])
        with spark.as_user("ann"):
            spark.sql(acknowledge)
            spark.sql(acknowledge)  # again: audited again, recorded once
        check(program, "ann", [("P", "v1: I will be careful.", True)])
        with spark.as_user("bob"), pytest.raises(SparkSQLError, match="not a member"):
            spark.sql(acknowledge)
        check(program, "bob", [])
        purposes = governance.table("lookup", "project_purpose").columns  # a newer text
        set_view(
            spark,
            target,
            target.gov("project_purpose"),
            [(c.name, "BOOLEAN" if c.type == "boolean" else "STRING") for c in purposes],
            target.governance_rows(changed)["project_purpose"],
        )
        check(changed, "ann", [("P", v2, False)])
        with spark.as_user("ann"):
            spark.sql(acknowledge)
        check(changed, "ann", [("P", v2, True)])
        audit = spark.sql(f"SELECT * FROM {target.gov('audit_log')} ORDER BY event_at")
    assert [r[1:] for r in audit] == [
        ("ann", "acknowledge", "p", "P", "v1: I will be careful.", "acknowledged"),
        ("ann", "acknowledge", "p", "P", "v1: I will be careful.", "acknowledged"),
        ("bob", "acknowledge", "p", None, None, "refused: not a member"),
        ("ann", "acknowledge", "p", "P", v2, "acknowledged"),
    ]


#: What the first Databricks script of veil (before acknowledgements) created for these two.
FIRST_SCRIPT_TABLES = (
    "CREATE TABLE veil.project_purpose (project_name STRING NOT NULL, purpose_name STRING NOT NULL,"
    " approved BOOLEAN, state STRING, approved_by STRING, approved_at STRING)",
    "CREATE TABLE veil.project_switch (switched_at TIMESTAMP NOT NULL, principal STRING NOT NULL, "
    "project_name STRING, outcome STRING NOT NULL)",
)


@pytest.mark.spark
def test_upgrade_from_the_first_script_in_spark(
    spark: LocalSpark, target: DatabricksTarget, now: dt.datetime
) -> None:
    """The upgrade block of section 1, run in Spark over the tables of the first script (with
    views standing in for Unity Catalog's information_schema): the new column is added, the
    switch log moves to the audit log and is dropped; run again, it changes nothing."""
    script = target.render(scenarios.payments(now).program)
    block = next(s for s in split_statements(script) if "table_name = 'project_switch'" in s)
    spark.reset()
    spark.ensure_schema("veil")
    for statement in FIRST_SCRIPT_TABLES:
        spark.sql(statement)
    spark.sql(
        "INSERT INTO veil.project_switch VALUES "
        "(TIMESTAMP'2026-01-01 10:00:00', 'ann', 'p', 'switched'), "
        "(TIMESTAMP'2026-01-02 10:00:00', 'bob', NULL, 'cleared')"
    )
    spark.sql(
        next(
            s
            for s in split_statements(script)
            if s.startswith(f"CREATE TABLE IF NOT EXISTS {target.gov('audit_log')} (")
        )
    )

    def information_schema() -> None:
        tables = [r[1] for r in spark.sql("SHOW TABLES IN veil")]
        columns = [("project_purpose", r[0]) for r in spark.sql("DESCRIBE veil.project_purpose")]
        set_view(
            spark,
            target,
            "information_schema.tables",
            [("table_schema", "STRING"), ("table_name", "STRING")],
            [("veil", t) for t in tables],
        )
        set_view(
            spark,
            target,
            "information_schema.columns",
            [("table_schema", "STRING"), ("table_name", "STRING"), ("column_name", "STRING")],
            [("veil", t, c) for t, c in columns],
        )

    with fast(spark):
        for _ in range(2):  # the second time, nothing is left to upgrade
            information_schema()
            spark.sql(block)
            assert [r[0] for r in spark.sql("DESCRIBE veil.project_purpose")][-1] == (
                "acknowledgement"
            )
            assert [r[1] for r in spark.sql("SHOW TABLES IN veil")] == [
                "audit_log",
                "project_purpose",
            ]
            assert spark.sql("SELECT * FROM veil.audit_log ORDER BY event_at") == [
                (dt.datetime(2026, 1, 1, 10), "ann", "switch", "p", None, None, "switched"),
                (dt.datetime(2026, 1, 2, 10), "bob", "switch", None, None, None, "cleared"),
            ]
    spark.reset()


def test_runtime_tables_are_written_only_by_the_procedures(
    target: DatabricksTarget, script: str
) -> None:
    """The script creates them and never writes them (but for moving the old switch log into the
    audit log); it grants nothing on them but SELECT on the audit log to the auditors' group,
    as its last statement."""
    names = "|".join(re.escape(target.gov(t)) for t in ("active_project", *RUNTIME))
    writes = re.compile(
        rf"\b(INSERT INTO|MERGE INTO|DELETE FROM|UPDATE|TRUNCATE TABLE|"
        rf"DROP TABLE)\s+({names})\b"
    )
    statements = split_statements(script)
    for statement in statements:
        if statement.startswith("CREATE OR REPLACE PROCEDURE veil."):
            continue
        found = [m.group(0) for m in writes.finditer(statement)]
        if statement.startswith(f"INSERT INTO {target.gov('hash_key')} "):  # seeded once
            assert statement.endswith(f"WHERE NOT EXISTS (SELECT 1 FROM {target.gov('hash_key')})")
            continue
        if "table_name = 'project_switch'" in statement:  # the upgrade block
            assert found == [f"INSERT INTO {target.gov('audit_log')}"]
            continue
        assert found == [], (found, statement[:100])
    grants = [s for s in statements if s.startswith(("GRANT", "REVOKE"))]
    assert grants == [
        "GRANT USE SCHEMA ON SCHEMA veil TO `account users`",
        "GRANT EXECUTE ON PROCEDURE veil.use_project TO `account users`",
        "GRANT EXECUTE ON PROCEDURE veil.acknowledge TO `account users`",
        "GRANT EXECUTE ON FUNCTION veil.acknowledgement_texts TO `account users`",
        "GRANT SELECT ON TABLE veil.audit_log TO `veil_auditors`",
    ]
    assert statements[-1] == grants[-1]


def test_procedures_audit_every_call(script: str) -> None:
    """Each path of use_project and acknowledge writes the audit log before what it records
    (Delta has no transaction across statements) and before it raises."""
    for name, events in (
        ("use_project", ("'cleared'", "'refused: not a member'", "'switched'")),
        ("acknowledge", ("'refused: not a member'", "'acknowledged'")),
    ):
        body = next(
            s
            for s in split_statements(script)
            if s.startswith(f"CREATE OR REPLACE PROCEDURE veil.{name}(")
        )
        for event in events:
            at = body.index(event)
            start = body.rfind("INSERT INTO veil.audit_log", 0, at)
            assert start > 0 and ";" not in body[start:at]
            nxt = body.find(";", at)
            assert not re.search(
                r"MERGE INTO|DELETE FROM|SIGNAL|INSERT INTO veil.member", body[start:nxt]
            )


@pytest.mark.spark
def test_string_literals_round_trip(spark: LocalSpark, target: DatabricksTarget) -> None:
    values = [
        scenarios.HOSTILE,
        "'",
        "\\",
        "\\'",
        "''",
        "\n\t\r",
        "${spark.app.name}",
        "$${x}",
        "$\\{",
        "\u2028é漢😀",
        "a\\'; DROP TABLE t; --",
        "%_\\%\\_",
    ]
    query = "SELECT " + ", ".join(f"{target.literal(v)} AS v{i}" for i, v in enumerate(values))
    assert list(spark.sql(query)[0]) == values
    parse_script(query + ";", "databricks")


def merge_source(spark: LocalSpark, script: str, table: str) -> list[tuple[object, ...]]:
    """The rows the `MERGE INTO <table>` of a script writes, read back through Spark."""
    merge = next(
        (s for s in split_statements(script) if s.startswith(f"MERGE INTO {table} ")), None
    )
    if merge is None:
        return []
    source = re.search(r"USING (\(VALUES\n.*?\n\) AS s\(.*?\))\n", merge, re.S)
    assert source is not None
    return spark.sql(f"SELECT * FROM {source.group(1)}")


@pytest.mark.spark
def test_governance_rows_round_trip(
    spark: LocalSpark, target: DatabricksTarget, scenario: Scenario, script: str
) -> None:
    rows = target.governance_rows(scenario.program)
    for name in (tb.name for tb in SYNCED):
        got = merge_source(spark, script, target.gov(name))
        assert sorted(got, key=repr) == sorted(rows[name], key=repr)


@pytest.mark.spark
def test_cleanup_selects_only_what_the_script_no_longer_attaches(
    spark: LocalSpark, target: DatabricksTarget, script: str
) -> None:
    block = next(s for s in split_statements(script) if "FOR stale AS" in s)
    select = re.search(r"FOR stale AS\s+(SELECT .*?ORDER BY [^\n]*)\s+DO", block, re.S)
    assert select is not None
    current = merge_source(spark, script, target.gov("applied_object"))
    assert current
    rows = [
        *current,
        ("veil.mask__old", "column mask", current[0][2], "DETACH A", "DROP A"),
        ("veil.rows__gone", "row filter", "table gone.t", "DETACH B", "DROP B"),
    ]
    spark.reset()
    set_view(
        spark,
        target,
        target.gov("applied_object"),
        [(c, "STRING") for c in ("object_name", "object_kind", "target", "detach_sql", "drop_sql")],
        rows,
    )
    assert spark.sql(select.group(1)) == [
        ("veil.mask__old", None, "DROP A"),
        ("veil.rows__gone", "DETACH B", "DROP B"),
    ]


# -------------------------------------------------------------------------------------------------
# (c) re-apply safety and determinism


def test_every_statement_can_run_again(script: str) -> None:
    allowed = (
        r"CREATE SCHEMA IF NOT EXISTS ",
        r"CREATE TABLE IF NOT EXISTS ",
        r"MERGE INTO ",
        r"DELETE FROM ",
        r"CREATE OR REPLACE (FUNCTION|PROCEDURE) ",
        r"GRANT ",
        r"ALTER TABLE .+? ALTER COLUMN .+? SET MASK ",
        r"ALTER TABLE .+? SET ROW FILTER ",
        r"BEGIN\n",
        r"DROP FUNCTION IF EXISTS ",
        r"INSERT INTO \S+ \(\S+\)\s+SELECT .*\s+WHERE NOT EXISTS \(SELECT 1 FROM \S+\)$",
    )
    for statement in split_statements(script):
        assert any(re.match(p, statement, re.S) for p in allowed), statement[:200]


def key_statements(target: DatabricksTarget, script: str) -> list[str]:
    """The statements of `script` that create and seed the hash key table."""
    key_table = target.gov("hash_key")
    return [
        s
        for s in split_statements(script)
        if s.startswith((f"CREATE TABLE IF NOT EXISTS {key_table} ", f"INSERT INTO {key_table} "))
    ]


def test_every_script_draws_the_key_alike(
    target: DatabricksTarget, script: str, now: dt.datetime
) -> None:
    """Every script's key statements are the example's (a part no policy changes), which
    Spark runs below; no script holds a key."""
    example = target.render(scenarios.payments(now).program)
    assert key_statements(target, script) == key_statements(target, example)
    assert TEST_HASH_KEY not in script


@pytest.mark.spark
def test_the_hash_key_is_drawn_once_and_kept(
    spark: LocalSpark, target: DatabricksTarget, now: dt.datetime
) -> None:
    """The key statements, run twice in Spark: one random key of 64 lowercase hex characters,
    kept by the second run. Once, on the example's script: every script has the same
    statements (test_every_script_draws_the_key_alike)."""
    key_table = target.gov("hash_key")
    statements = key_statements(target, target.render(scenarios.payments(now).program))
    assert len(statements) == 2
    spark.reset()
    spark.ensure_schema(key_table.rsplit(".", 1)[0])
    for statement in statements:
        spark.sql(statement)
    [(first,)] = spark.sql(f"SELECT * FROM {key_table}")
    for statement in statements:
        spark.sql(statement)
    assert spark.sql(f"SELECT * FROM {key_table}") == [(first,)]
    assert re.fullmatch(r"[0-9a-f]{64}", first)


@pytest.mark.spark
def test_a_string_of_invalid_utf8_is_hashed_as_its_bytes(
    spark: LocalSpark, target: DatabricksTarget
) -> None:
    """What docs/security.md ("`hash` is keyed") says of Databricks: a STRING cast from BINARY
    keeps bytes that are not UTF-8 (here 0x80, which starts no character), and the keyed hash
    hashes them as they are, so such a string's input may extend a valid value's."""
    table_key = methods.table_key(TEST_HASH_KEY, "s.t")
    value = "CAST(X'61806263' AS STRING)"
    [(digest, invalid)] = spark.sql(
        f"SELECT {target.keyed_hash_sql(target.literal(table_key), value)},"
        f" try_validate_utf8({value}) IS NULL"
    )
    assert invalid
    assert digest == hashlib.sha256(table_key.encode() + b"a\x80bc").hexdigest()


@pytest.mark.spark
def test_without_a_key_or_a_table_every_hash_is_null(
    spark: LocalSpark, target: DatabricksTarget
) -> None:
    """Fail-closed in Spark, ANSI mode or not: with no row in the key table, or (in a tag mask
    function) no table name, the table's key is NULL and so is the hash (`||` of NULL is NULL),
    never the hash of the bare value."""
    key_table = target.gov("hash_key")
    tagged = model.table_id(model.TAGGED_TABLE)
    source = target.tagged_source_sql()
    select = (
        f"SELECT {target.hash_sql(target.literal('a@b.c'), 's.t')},"
        f" {target.hash_sql(target.literal('a@b.c'), tagged)}"
        f" FROM (SELECT CAST(%s AS STRING) AS {source})"
    )
    spark.reset()
    conf = spark.spark.conf
    ansi = conf.get("spark.sql.ansi.enabled", None)
    try:
        for mode in ("true", "false"):
            conf.set("spark.sql.ansi.enabled", mode)
            set_view(spark, target, key_table, [("key_hex", "STRING")], [(TEST_HASH_KEY,)])
            hashed = methods.hash_text("s.t", "a@b.c")
            assert spark.sql(select % "'s.t'") == [(hashed, hashed)]
            assert spark.sql(select % "NULL") == [(hashed, None)]
            set_view(spark, target, key_table, [("key_hex", "STRING")], [])
            assert spark.sql(select % "'s.t'") == [(None, None)]
    finally:
        if ansi is None:
            conf.unset("spark.sql.ansi.enabled")
        else:
            conf.set("spark.sql.ansi.enabled", ansi)


def test_output_is_deterministic(target: DatabricksTarget, scenario: Scenario, script: str) -> None:
    assert target.render(scenario.program) == script


def test_using_columns_follow_the_rules(target: DatabricksTarget, script: str) -> None:
    """No duplicates, never the masked column itself, single-part names (ROW_COLUMN_ACCESS)."""
    for m in re.finditer(r"ALTER COLUMN (\S+) SET MASK \S+ USING COLUMNS \((.*?)\);", script):
        names = [n.strip() for n in m.group(2).split(",")]
        assert len({n.lower() for n in names}) == len(names)
        assert m.group(1).lower() not in {n.lower() for n in names}
        assert all("." not in n for n in names)


def lookup_counts(target: DatabricksTarget, script: str) -> list[tuple[int, str]]:
    """How many times each function of `script` but the lookup itself names the purpose
    lookup `veil.active_purposes`, with the function's first line."""
    call = target.gov("active_purposes") + "("
    return [
        (statement.count(call), statement.split("\n", 1)[0])
        for statement in function_statements(script)
        if not statement.startswith(f"CREATE OR REPLACE FUNCTION {call}")
    ]


def test_every_body_names_the_purpose_lookup_once(target: DatabricksTarget, script: str) -> None:
    """One purpose lookup per policy body (issue 10): no mask or row-filter function names
    `veil.active_purposes` twice."""
    counts = lookup_counts(target, script)
    assert counts
    assert [(n, first) for n, first in counts if n > 1] == []


def test_several_purpose_checks_read_one_lookup(target: DatabricksTarget) -> None:
    """A mask and a row filter with several purpose checks each bind the lookup once and read
    it at every check; a column named like the bound lookup is passed under another argument
    name, so the body never confuses the two. (The tag mask functions of `native_tags` call
    the lookup at each check: see `databricks_tags.function_body`.)"""
    program = scenarios.check_text(
        "table t.x { id bigint; veil_purposes text; secret text }\n"
        "purpose P\npurpose Q\n"
        "mask t.x.secret {\n  reveal for purpose P\n  with hash for purpose Q\n"
        "  with null for any purpose\n  with show_last(2) otherwise\n}\n"
        'filter t.x where veil_purposes = "x" unless purpose P or purpose Q\n'
    )
    script = target.render(program)
    assert sorted(n for n, _ in lookup_counts(target, script) if n) == [1, 1]
    bound = f"{target.lookup_alias}.{target.purposes_column}"
    mask = next(s for s in function_statements(script) if "mask__t__x__secret(" in s)
    assert mask.count(bound) == 3
    rows = next(s for s in function_statements(script) if "rows__t__x(" in s)
    assert rows.count(bound) == 2
    assert rows.startswith("CREATE OR REPLACE FUNCTION veil.rows__t__x(arg1 STRING)")
    assert re.search(r"SET ROW FILTER \S+ ON \(veil_purposes\);", script)


# -------------------------------------------------------------------------------------------------
# (d) names


@pytest.mark.parametrize(
    "name, sql",
    [
        ("credit_card", "credit_card"),
        ("Order Note", "`Order Note`"),
        ("a`b", "`a``b`"),
        ("order", "`order`"),
        ("x$1", "`x$1`"),
        ("CamelCase", "CamelCase"),
        ("1x", "`1x`"),
    ],
)
def test_identifiers(target: DatabricksTarget, name: str, sql: str) -> None:
    assert target.ident(name) == sql


# -------------------------------------------------------------------------------------------------
# The target's own checks


def test_payments_compiles_cleanly(target: DatabricksTarget, now: dt.datetime) -> None:
    assert target.check(scenarios.payments(now).program) == []


def test_decimal_without_precision_is_an_error(target: DatabricksTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; amount decimal }\nmask t.x.amount with round(10)\n"
    )
    diags = target.check(program)
    assert [d.code for d in diags] == ["T0201"]
    assert "`DECIMAL(10, 0)` on databricks" in diags[0].message


def test_value_longer_than_column_is_a_warning(target: DatabricksTarget) -> None:
    program = scenarios.check_text(
        'table t.x { id bigint; code varchar(8) }\nmask t.x.code with constant("abc")\n'
    )
    mask = program.masks[0]
    arm = mask.arms[0]
    longer = methods.MaskConstant(value="longer than eight")
    program = dataclasses.replace(
        program,
        masks=(dataclasses.replace(mask, arms=(dataclasses.replace(arm, action=longer),)),),
    )
    diags = target.check(program)
    assert [d.code for d in diags] == ["T0202"]
    assert diags[0].severity is Severity.WARNING


def test_names_with_variable_substitution_and_case_collisions(target: DatabricksTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; `a${b}` varchar; Region varchar; region varchar }\n"
        "user ann\nuser Ann\nmask t.x.`a${b}`\nmask t.x.region\n"
    )
    codes = sorted(d.code for d in target.check(program))
    # ann and Ann are no email addresses either (T0205)
    assert codes == ["T0203", "T0203", "T0204", "T0205", "T0205"]
