"""`veil verify --target snowflake|databricks --emit-sql`: the drift query, checked offline.

* grammar: every statement parses with sqlfluff in the platform's dialect;
* semantics: the query runs in DuckDB (through sqlglot, from the platform's dialect) over an
  emulated account — veil's governance tables holding exactly the repository's rows, and the
  two platform sources (`refs`: where policies are attached, `bodies`: their text) replaced by
  tables holding what the script attaches. It returns no row; then each kind of drift, made one
  at a time, returns exactly its row.
"""

from __future__ import annotations

import datetime as dt
import functools
import typing as t

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner
from sqlglot import exp

from tests.targets import scenarios
from tests.targets.scenarios import Scenario
from tests.verify.sqlfluff_check import parse_script
from veil import model
from veil.cli import main
from veil.targets.databricks import DatabricksTarget
from veil.targets.drift import drift_script
from veil.targets.lookup import LookupTarget
from veil.targets.script import Policy, Script
from veil.targets.snowflake import SnowflakeTarget

TARGETS: dict[str, LookupTarget] = {
    "snowflake": SnowflakeTarget(),
    "databricks": DatabricksTarget(),
}
NOW = dt.datetime(2026, 12, 1, 12, tzinfo=dt.UTC)


@pytest.fixture(scope="module", params=["payments", "edge", *scenarios.golden_cases()])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return scenarios.build(request.param, NOW)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_query_parses_with_sqlfluff(name: str) -> None:
    """On the edge scenario: every shape of check, with hostile names and values (the checks
    of a larger repository only repeat these shapes; sqlfluff takes seconds per check)."""
    program = scenarios.build("edge", NOW).program
    reports = parse_script(drift_script(TARGETS[name], program), name)
    assert len(reports) == 1  # one statement: the DBA runs one query


def policies(script: Script) -> tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]]:
    """The masks and the row policies of a script, with the protected table's key."""

    def row(key: model.TableKey, p: Policy) -> dict[str, t.Any]:
        return {"key": key, "column_name": p.column_name, "bare": p.bare, "body": p.body}

    return (
        [row(tb.key, p) for tb in script.tables for p in tb.masks],
        [row(tb.key, p) for tb in script.tables for p in tb.rows],
    )


class Account:
    """An emulated account in DuckDB: veil's tables and the two platform sources."""

    def __init__(self, target: LookupTarget, program: model.Program) -> None:
        self.target = target
        self.program = program
        self.dialect = target.name
        self.db = duckdb.connect()
        [(self.catalog,)] = self.run(f"SELECT {target.current_catalog_sql}")
        script = target.lower(program)
        self.masks, self.rows = policies(script)
        self.gov = target.catalog_name(target.options.governance_schema)
        self.run(f"CREATE SCHEMA {target.ident(target.options.governance_schema)}")
        for tb in target.lookup_tables(script):
            cols = ", ".join(f"{c} {ty}" for c, ty in tb.columns)
            self.run(f"CREATE TABLE {tb.name} ({cols})")
            for values in tb.rows:
                self.run(f"INSERT INTO {tb.name} VALUES ({', '.join(values)})")
        self.db.execute(
            "CREATE TABLE stub_refs (TABLE_REF VARCHAR, KIND VARCHAR, POLICY_CATALOG VARCHAR,"
            " POLICY_SCHEMA VARCHAR, POLICY_NAME VARCHAR, COLUMN_NAME VARCHAR)"
        )
        self.db.execute(
            "CREATE TABLE stub_bodies (POLICY_CATALOG VARCHAR, POLICY_SCHEMA VARCHAR,"
            " POLICY_NAME VARCHAR, BODY VARCHAR)"
        )
        for m in self.masks:
            self.attach(m, "mask", target.catalog_name(m["column_name"]))
        for r in self.rows:
            self.attach(r, "rows", None)

    def attach(self, policy: dict[str, t.Any], kind: str, column: str | None) -> None:
        name = self.target.catalog_name(policy["bare"])
        self.db.execute(
            "INSERT INTO stub_refs VALUES (?, ?, ?, ?, ?, ?)",
            [model.table_str(policy["key"]), kind, self.catalog, self.gov, name, column],
        )
        self.db.execute(
            "INSERT INTO stub_bodies VALUES (?, ?, ?, ?)",
            [self.catalog, self.gov, name, f"\n  {policy['body']}\n"],
        )

    def duck(self, sql: str) -> str:
        """`sql` in DuckDB's dialect, the platform sources replaced by the stub tables."""
        tree = sqlglot.parse_one(sql, read=self.dialect)
        for cte in tree.find_all(exp.CTE):
            if cte.alias in ("refs", "bodies", "abac", "tagged"):
                cte.set("this", sqlglot.parse_one(f"SELECT * FROM stub_{cte.alias}"))
        return tree.sql(dialect="duckdb")

    def run(self, sql: str) -> list[tuple[t.Any, ...]]:
        return [tuple(r) for r in self.db.execute(self.duck(sql)).fetchall()]

    @functools.cached_property
    def query(self) -> str:
        return self.duck(drift_script(self.target, self.program))

    def differences(self) -> list[tuple[t.Any, ...]]:
        return [tuple(r) for r in self.db.execute(self.query).fetchall()]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_a_matching_account_returns_no_row(name: str, scenario: Scenario) -> None:
    if scenario.name == "edge":
        pytest.skip("DuckDB folds the case of names the edge scenario keeps apart")
    assert Account(TARGETS[name], scenario.program).differences() == []


def _payments(name: str) -> Account:
    return Account(TARGETS[name], scenarios.build("payments", NOW).program)


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_each_drift_is_one_row(name: str) -> None:
    a = _payments(name)
    t_ = a.target
    member = t_.gov("project_member")
    principal, project = t_.ident("principal"), t_.ident("project_name")
    [(count,)] = a.run(f"SELECT COUNT(*) FROM {member}")
    assert count > 0

    [(p, who)] = a.run(f"SELECT {project}, {principal} FROM {member} ORDER BY 1, 2 LIMIT 1")
    a.run(f"DELETE FROM {member} WHERE {principal} = '{who}' AND {project} = '{p}'")
    assert a.differences() == [
        ("governance-row", member, f"row ({p}, {who}) of the repository is missing")
    ]
    a.run(f"INSERT INTO {member} VALUES ('{p}', '{who}'), ('fraud_q4', 'mallory')")
    assert a.differences() == [
        ("governance-row", member, "row (fraud_q4, mallory) is not in the repository")
    ]
    a.run(f"DELETE FROM {member} WHERE {principal} = 'mallory'")
    assert a.differences() == []

    card = next(m for m in a.masks if m["column_name"] == "credit_card")
    bare = t_.catalog_name(card["bare"])
    a.db.execute(
        "UPDATE stub_refs SET POLICY_SCHEMA = 'ops', POLICY_NAME = 'HAND_MADE'"
        " WHERE POLICY_NAME = ?",
        [bare],
    )
    assert a.differences() == [
        (
            "mask",
            "column sales.transactions.credit_card",
            f"attached: {a.catalog}.ops.HAND_MADE; expected {bare}",
        )
    ]
    a.db.execute("DELETE FROM stub_refs WHERE POLICY_NAME = 'HAND_MADE'")
    assert a.differences() == [
        ("mask", "column sales.transactions.credit_card", f"none attached; expected {bare}")
    ]
    a.attach(card, "mask", t_.catalog_name("credit_card"))
    a.db.execute("DELETE FROM stub_bodies WHERE POLICY_NAME = ? AND BODY <> 'x'", [bare])
    a.db.execute("INSERT INTO stub_bodies VALUES (?, ?, ?, 'NULL')", [a.catalog, a.gov, bare])
    assert a.differences() == [
        (
            "mask",
            "column sales.transactions.credit_card",
            f"the body of {bare} is not the repository's",
        )
    ]
    a.db.execute("UPDATE stub_bodies SET BODY = ? WHERE POLICY_NAME = ?", [card["body"], bare])
    assert a.differences() == []

    a.db.execute(
        "INSERT INTO stub_refs VALUES ('sales.refunds', 'mask', ?, ?, ?, ?)",
        [a.catalog, a.gov, t_.catalog_name("MASK__OLD"), t_.catalog_name("reason")],
    )
    old = t_.catalog_name("MASK__OLD")
    assert a.differences() == [
        (
            "mask",
            "sales.refunds",
            f"veil policy {old} is attached, but the repository does not produce it",
        )
    ]


@pytest.mark.parametrize("name", sorted(TARGETS))
def test_the_cli_writes_the_query(name: str, tmp_path: t.Any) -> None:
    out = tmp_path / "verify.sql"
    result = CliRunner().invoke(
        main,
        ["verify", str(scenarios.PAYMENTS), "-t", name, "--emit-sql", "-o", str(out)],
    )
    assert result.exit_code == 0, result.output
    program = scenarios.build("payments", NOW).program
    assert out.read_text(encoding="utf-8") == drift_script(TARGETS[name], program)
    result = CliRunner().invoke(main, ["verify", str(scenarios.PAYMENTS), "-t", name])
    assert result.exit_code == 2 and "use --emit-sql" in result.output


def spark_workspace(target: DatabricksTarget, program: model.Program) -> tuple[t.Any, str]:
    """A local Spark holding veil's tables with the repository's rows and the two sources
    `refs` / `bodies` as views of what the script attaches; the query as generated, but for
    those two sources."""
    from tests.verify.spark_local import require_spark

    spark = require_spark()
    spark.reset()
    script = target.lower(program)
    masks, rows = policies(script)
    spark.ensure_schema(target.ident(target.options.governance_schema))
    for tb in target.lookup_tables(script):
        spark_view(spark, tb.name, tb.columns, tb.rows)
    [(catalog,)] = spark.sql("SELECT current_catalog()")
    gov = target.catalog_name(target.options.governance_schema)
    s = target.string_literal
    refs = [
        (
            s(model.table_str(m["key"])),
            "'mask'",
            s(catalog),
            s(gov),
            s(m["bare"]),
            s(m["column_name"]),
        )
        for m in masks
    ] + [
        (s(model.table_str(r["key"])), "'rows'", s(catalog), s(gov), s(r["bare"]), "NULL")
        for r in rows
    ]
    ref_columns = [
        (c, "STRING")
        for c in (
            "TABLE_REF",
            "KIND",
            "POLICY_CATALOG",
            "POLICY_SCHEMA",
            "POLICY_NAME",
            "COLUMN_NAME",
        )
    ]
    spark_view(spark, "default.stub_refs", ref_columns, refs)
    native = [p for p in script.native.policies] if script.native else []
    functions = [p for p in native if p.kind == "tag mask function"]
    bodies = [
        (s(catalog), s(gov), s(p["bare"]), s(p["body"]))
        for p in [*masks, *rows, *({"bare": f.bare, "body": f.body} for f in functions)]
    ]
    spark_view(
        spark,
        "default.stub_bodies",
        [(c, "STRING") for c in ("POLICY_CATALOG", "POLICY_SCHEMA", "POLICY_NAME", "BODY")],
        bodies,
    )
    query = drift_script(target, program)
    start = query.index("refs AS (")
    end = query.index("\n-- Native tag policies" if native else "\nSELECT d.KIND")
    stubs = (
        "refs AS (SELECT * FROM default.stub_refs), bodies AS (SELECT * FROM default.stub_bodies)"
    )
    return spark, query[:start] + stubs + ("," if native else "") + query[end:]


def spark_view(
    spark: t.Any, name: str, columns: t.Sequence[tuple[str, str]], values: t.Sequence[t.Any]
) -> None:
    aliases = ", ".join(f"c{i}" for i in range(len(columns)))
    select = ", ".join(f"CAST(c{i} AS {ty}) AS {c}" for i, (c, ty) in enumerate(columns))
    if values:
        body = ", ".join(f"({', '.join(v)})" for v in values)
        values_sql = f"SELECT {select} FROM VALUES {body} AS t({aliases})"
        spark.sql(f"CREATE OR REPLACE VIEW {name} AS {values_sql}")
    else:
        nulls = ", ".join(f"CAST(NULL AS {ty}) AS {c}" for c, ty in columns)
        spark.sql(f"CREATE OR REPLACE VIEW {name} AS SELECT {nulls} WHERE FALSE")


def test_the_databricks_query_runs_in_spark() -> None:
    """The query as generated, with `native_tags` (only the sources `refs` and `bodies`
    replaced by views; information_schema's ABAC policies and column tags are views in a schema
    of that name, in the columns and types their pages give) runs in local Spark: over a
    matching workspace only the `not-checked` row; a member added by hand and a tagged column
    of a table the repository does not declare are one row each. On the tag_native case:
    Spark takes about a minute to plan the query of examples/payments."""
    from veil.targets.base import Options

    target = DatabricksTarget(Options(native_tags=True))
    program = scenarios.build("case:tag_native", NOW).program
    spark, query = spark_workspace(target, program)
    native = target.lower(program).native
    assert native is not None
    spark.ensure_schema("information_schema")
    s = target.string_literal
    # SECURABLE_NAME qualified: the query compares its last part
    where = ("'TABLE'", "array('account users')", "array()")
    spark_view(
        spark,
        "information_schema.abac_policy_definitions",
        [
            ("policy_name", "STRING"),
            ("policy_type", "STRING"),
            ("catalog_name", "STRING"),
            ("schema_name", "STRING"),
            ("securable_name", "STRING"),
            ("on_securable_type", "STRING"),
            ("to_principals", "ARRAY<STRING>"),
            ("except_principals", "ARRAY<STRING>"),
        ],
        [
            (s(p.bare), "'COLUMN_MASK'", "current_catalog()", "'app'", "'app.people'", *where)
            for p in native.policies
            if p.kind == "column mask policy"
        ],
    )
    tag_columns = [
        (c, "STRING")
        for c in ("catalog_name", "schema_name", "table_name", "column_name", "tag_name")
    ] + [("tag_value", "STRING")]
    spark_view(spark, "information_schema.column_tags", tag_columns, [])
    unchecked = (
        "not-checked",
        "ABAC policies",
        "the function each policy calls, the table name it passes (USING COLUMNS) and its "
        "MATCH COLUMNS condition: information_schema.abac_policy_definitions does not show them",
    )
    assert spark.sql(query) == [unchecked]
    late = ("current_catalog()", "'app'", "'late'", "'ssn'", "'veil_class'", "'pii'")
    spark_view(spark, "information_schema.column_tags", tag_columns, [late])
    member = next(
        tb for tb in target.lookup_tables(target.lower(program)) if tb.name.endswith("member")
    )
    spark_view(spark, member.name, member.columns, [*member.rows, ("'p'", "'mallory'")])
    assert spark.sql(query) == [
        ("governance-row", member.name, "row (p, mallory) is not in the repository"),
        unchecked,
        (
            "tag mask",
            "app.late",
            "column ssn is tagged veil_class = pii, but the repository does not declare the "
            "table: no policy of veil masks it",
        ),
    ]


def test_the_databricks_abac_policies_are_checked() -> None:
    """With `native_tags`: over a workspace with every ABAC policy and tag mask function of the
    repository the query returns only its `not-checked` row (what the information schema does
    not show); then each drift, made one at a time, returns exactly its row."""
    from veil.targets.base import Options

    target = DatabricksTarget(Options(native_tags=True))
    program = scenarios.build("case:tag_native", NOW).program
    a = Account(target, program)
    native = target.lower(program).native
    assert native is not None
    a.db.execute(
        "CREATE TABLE stub_abac (CATALOG_NAME VARCHAR, SCHEMA_NAME VARCHAR, TABLE_NAME VARCHAR,"
        " POLICY_NAME VARCHAR, POLICY_TYPE VARCHAR, PRINCIPALS VARCHAR, EXCEPTED INTEGER)"
    )
    a.db.execute(
        "CREATE TABLE stub_tagged (CATALOG_NAME VARCHAR, SCHEMA_NAME VARCHAR,"
        " TABLE_NAME VARCHAR, COLUMN_NAME VARCHAR, TAG_VALUE VARCHAR)"
    )
    policies = [p for p in native.policies if p.kind == "column mask policy"]
    functions = [p for p in native.policies if p.kind == "tag mask function"]
    for p in policies:
        a.db.execute(
            "INSERT INTO stub_abac VALUES"
            " (?, 'app', 'people', ?, 'COLUMN_MASK', 'account users', 0)",
            [a.catalog, p.bare],
        )
    for f in functions:
        a.db.execute(
            "INSERT INTO stub_bodies VALUES (?, ?, ?, ?)", [a.catalog, a.gov, f.bare, f.body]
        )
    unchecked = (
        "not-checked",
        "ABAC policies",
        "the function each policy calls, the table name it passes (USING COLUMNS) and its "
        "MATCH COLUMNS condition: information_schema.abac_policy_definitions does not show them",
    )
    assert a.differences() == [unchecked]
    pii = "table app.people tag veil_class = pii"

    def drift(change: str, undo: str, *rows: tuple[str, str, str]) -> None:
        a.db.execute(change)
        assert a.differences() == sorted([*rows, unchecked]), change
        a.db.execute(undo)
        assert a.differences() == [unchecked]

    drift(
        "UPDATE stub_abac SET POLICY_NAME = 'gone' WHERE POLICY_NAME = 'veil_tag__pii'",
        "UPDATE stub_abac SET POLICY_NAME = 'veil_tag__pii' WHERE POLICY_NAME = 'gone'",
        ("tag mask", pii, "none attached; expected veil_tag__pii"),
    )
    drift(
        "UPDATE stub_abac SET EXCEPTED = 1 WHERE POLICY_NAME = 'veil_tag__pii'",
        "UPDATE stub_abac SET EXCEPTED = 0",
        ("tag mask", pii, "applies to account users except 1 principals; expected account users"),
    )
    drift(
        "INSERT INTO stub_abac VALUES ('" + a.catalog + "', 'app', 'old', 'veil_tag__pii',"
        " 'COLUMN_MASK', 'account users', 0)",
        "DELETE FROM stub_abac WHERE TABLE_NAME = 'old'",
        (
            "tag mask",
            "app.old",
            "veil policy veil_tag__pii is attached, but the repository does not produce it",
        ),
    )
    drift(
        "INSERT INTO stub_tagged VALUES ('" + a.catalog + "', 'app', 'late', 'ssn', 'pii')",
        "DELETE FROM stub_tagged",
        (
            "tag mask",
            "app.late",
            "column ssn is tagged veil_class = pii, but the repository "
            "does not declare the table: no policy of veil masks it",
        ),
    )
    drift(
        "INSERT INTO stub_tagged VALUES ('" + a.catalog + "', 'app', 'people', 'card', 'pii')",
        "DELETE FROM stub_tagged",
        (
            "mask",
            "column app.people.card",
            "carries veil_class = pii: its own mask and the "
            "policy of that tag are two masks, and every query of it fails",
        ),
    )
    # a tagged column of a declared table that veil does not mask is the policy's to mask
    a.db.execute("INSERT INTO stub_tagged VALUES (?, 'app', 'people', 'notes', 'pii')", [a.catalog])
    assert a.differences() == [unchecked]
    f = functions[0]
    a.db.execute("UPDATE stub_bodies SET BODY = 'NULL' WHERE POLICY_NAME = ?", [f.bare])
    assert a.differences() == [
        unchecked,
        ("tag mask", f.target, f"the body of {f.bare} is not the repository's"),
    ]
    a.db.execute("UPDATE stub_bodies SET BODY = ? WHERE POLICY_NAME = ?", [f"\n{f.body} ", f.bare])
    assert a.differences() == [unchecked]  # the blanks around a body do not count
    drift(
        f"UPDATE stub_bodies SET POLICY_NAME = 'x' WHERE POLICY_NAME = '{f.bare}'",
        f"UPDATE stub_bodies SET POLICY_NAME = '{f.bare}' WHERE POLICY_NAME = 'x'",
        ("tag mask", f.target, f"function {f.bare} is missing"),
    )
    assert parse_script(drift_script(target, program), "databricks")
