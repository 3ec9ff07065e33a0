"""Databricks native tag policies (`native_tags`): "a column tagged after the apply".

The tag mask functions of a script run in a local Spark for a column the repository does not
know, on a table it knows, of each type, under every (user, project) context, and are compared
with the reference evaluator's answer for such a column (`evaluator.abac_cell`). Spark has no
Unity Catalog: what the policy does around the function is the only stub — the column's value
cast to the function's VARIANT parameter, the table's name as the constant `USING COLUMNS`
passes, and the result cast back to the column's type. Which columns a policy matches, and that
a column with its own mask and a matching policy fails its queries, are the evaluator's and the
attach-rule model's (replayed here) to say.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from decimal import Decimal

import duckdb
import pytest

from tests.targets import scenarios
from tests.targets.test_databricks import (
    DOCUMENTED_GAPS,
    JSON_OPTIONS,
    fast,
    from_json,
    install,
    literal,
    set_active,
    spark,  # noqa: F401 (the shared session fixture)
)
from tests.verify.attach_rules import replay
from tests.verify.spark_local import LocalSpark
from tests.verify.sqlfluff_check import parse_script, split_statements
from veil import model
from veil.diagnostics import Severity
from veil.evaluator import Context, EvaluationError, abac_cell
from veil.model import SqlType
from veil.targets.base import Options
from veil.targets.databricks import DatabricksTarget
from veil.targets.databricks_tags import decode_tag, encode_tag
from veil.targets.script import PlanNotes

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
LATE = "late_column"

#: A late column's type as Databricks declares it, its veil type, and sample values.
VALUES: list[tuple[str, str, list[object]]] = [
    ("STRING", "text", ["4111111111111111", "ann@example.com", "", None]),
    ("DECIMAL(10,2)", "decimal", [Decimal("12345.67"), Decimal("-501.00"), None]),
    ("BIGINT", "decimal", [Decimal("123456"), None]),
    ("DOUBLE", "double", [1234.5, None]),
    ("BOOLEAN", "boolean", [True, None]),
    ("DATE", "date", [dt.date(2026, 5, 17), None]),
    ("TIMESTAMP_NTZ", "timestamp", [dt.datetime(2026, 5, 17, 14, 23, 5), None]),
]


@pytest.fixture(scope="module")
def target() -> DatabricksTarget:
    return DatabricksTarget(Options(native_tags=True))


def test_tag_encoding_is_injective_and_allowed() -> None:
    paths = ["pii", "pii.card", "pii_card", "pii__card", "a.b_c", "a_b.c", "x-y", "é.z", "_u", "."]
    encoded = [encode_tag(p) for p in paths]
    assert len(set(encoded)) == len(paths)
    assert [decode_tag(e) for e in encoded] == paths
    for e in encoded:  # letters, digits and `_` only: nothing a tag value may not hold
        assert all(c.isascii() and (c.isalnum() or c == "_") for c in e), e


def test_script_replays_against_the_attach_rules(target: DatabricksTarget) -> None:
    program = scenarios.build("case:tag_native", NOW).program
    script = target.render(program)
    first = replay(script, "databricks")
    # the case's users are not email addresses (warning T0205, as on every such case)
    assert not [v for v in first.violations if v.rule != "dbx-principal-email"], first.violations
    policies = {k for k in first.abac}
    assert len(policies) == len(program.tag_masks) * len(program.tables)
    again = replay(script, "databricks", after=first)  # CREATE OR REPLACE: a re-apply passes
    assert not [v for v in again.violations if v.rule != "dbx-principal-email"]


def test_every_statement_parses_with_sqlfluff(target: DatabricksTarget) -> None:
    program = scenarios.build("case:tag_native", NOW).program
    reports = parse_script(target.render(program), "databricks")
    used = {gap for r in reports for gap in r.gaps}
    assert "dbx_create_policy" in used
    assert used <= {*DOCUMENTED_GAPS, "dbx_create_policy"}


def test_quota_and_tied_masks_are_compile_errors(target: DatabricksTarget) -> None:
    tags = "\n".join(f"mask tagged t{i} with null" for i in range(51))
    program = scenarios.check_text(f"table s.t {{ a text tags t0 }}\n{tags}\n")
    diags = target.check(program)
    assert [d.code for d in diags if d.severity is Severity.ERROR] == ["T0207"]
    assert "databricks" in (diags[-1].help or "")
    tied = scenarios.check_text(
        "table s.t { a text }\nmask tagged p with null unless group g\n"
        "mask tagged p with hash unless group h\ngroup g\ngroup h\n"
    )
    assert "T0206" in [d.code for d in target.check(tied)]


def test_abac_cell_differs_from_snowflake_where_the_platform_does() -> None:
    program = scenarios.build("case:tag_native", NOW).program
    bob = Context(user="bob", project=None, now=NOW)
    people: model.TableKey = ("app", "people")
    masked = abac_cell(program, people, LATE, "text", "pii", "v", bob)
    assert masked.masked and masked.value is None
    # a tag under a masked one is not matched by has_tag_value: clear (the governed tag's
    # allowed values keep such a value from being set)
    assert abac_cell(program, people, LATE, "text", "pii.card.pan", "v", bob).value == "v"
    # a table the catalog does not declare has no policy
    assert abac_cell(program, ("zz", "later"), LATE, "text", "pii", "v", bob).value == "v"
    # a column with its own mask that a policy also matches: two masks, the query fails
    with pytest.raises(EvaluationError):
        abac_cell(program, people, "email", "text", "pii", "a@b.c", bob)
    # its own mask alone still decides
    own = abac_cell(program, people, "email", "text", None, "a@b.c", bob)
    assert own.masked


@pytest.mark.spark
def test_tag_functions_agree_with_the_evaluator_on_late_columns(
    spark: LocalSpark,  # noqa: F811
    target: DatabricksTarget,
) -> None:
    scenario = scenarios.build("case:tag_native", NOW)
    program = scenario.program
    script = target.render(program)
    install(spark, target, scenario, script, NOW)
    login = target.logins(program)
    key = program.tables[0].key
    source = literal(target, model.table_id(key))
    rows = [(sql_type, type_name, v) for sql_type, type_name, values in VALUES for v in values]
    # Every type under a project that exists (where purposes reveal); under no project and an
    # unknown one (nothing revealed by a purpose) the text and decimal types only: the
    # function's condition is one for every type, and what differs by type (each method's SQL)
    # is checked under the project. Optimising each call costs seconds in local Spark.
    projects = {p.name for p in program.projects}
    few = {sql_type for sql_type, _, _ in VALUES[:2]}

    def query(tag: str, types: set[str]) -> str:
        """One call of the tag's function per type (the planner inlines each call's body),
        over that type's sample values."""
        fn = target.gov(target.object_name("mask", "tag", tag))
        parts = []
        for sql_type, _, values in VALUES:
            if sql_type not in types:
                continue
            first = sum(len(v) for t, _, v in VALUES[: [x[0] for x in VALUES].index(sql_type)])
            data = ", ".join(f"({first + n}, {literal(target, v)})" for n, v in enumerate(values))
            # Unity Catalog casts the column to VARIANT and the result back to its type
            shown = f"CAST({fn}(CAST(CAST(v AS {sql_type}) AS VARIANT), {source}) AS {sql_type})"
            parts.append(
                f"SELECT idx, to_json(named_struct('v', {shown}), {JSON_OPTIONS}) "
                f"FROM VALUES {data} AS t(idx, v)"
            )
        return " UNION ALL ".join(parts)

    problems: list[str] = []
    users = sorted({c.user for c in scenario.contexts})
    for project in dict.fromkeys(c.project for c in scenario.contexts):
        set_active(
            spark, target, [(login.get(u, u), project, NOW) for u in users] if project else []
        )
        types = {t for t, _, _ in VALUES} if project in projects else few
        for tm in program.tag_masks:
            tag = str(tm.tag)
            # analysed once per round; Spark puts current_user() in at optimisation
            analysed = spark.spark.sql(query(tag, types))
            for ctx in (c for c in scenario.contexts if c.project == project):
                with spark.as_user(login.get(ctx.user, ctx.user)), fast(spark):
                    got = dict(tuple(r) for r in analysed.select("*").collect())
                for idx, (sql_type, type_name, value) in enumerate(rows):
                    if sql_type not in types:
                        continue
                    ref = abac_cell(program, key, LATE, type_name, tag, value, ctx).value
                    raw = json.loads(got[idx], parse_float=Decimal).get("v")
                    engine = from_json(raw, SqlType(name=type_name))
                    if not scenarios.same(engine, ref):
                        problems.append(
                            f"{ctx.user}/{ctx.project} {tag} {sql_type} {value!r}: "
                            f"spark {engine!r}, evaluator {ref!r}"
                        )
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} mismatches)"


@pytest.mark.parametrize("schema", ["veil", "Gov"])
def test_a_script_without_native_tags_drops_the_policies_then_the_functions(schema: str) -> None:
    """The clean-up query of a script without `native_tags` (run in DuckDB over
    veil.applied_object as the native script left it) selects every ABAC policy, with nothing
    to detach, before the functions they name, also where the functions' names sort first
    (`Gov.mask__…` < `POLICY …`); the plan's header lists the same."""
    from tests.test_plan import databricks_cleanup, databricks_merge_source

    program = scenarios.build("case:tag_native", NOW).program
    target = DatabricksTarget(Options(native_tags=True, governance_schema=schema))
    plain = DatabricksTarget(Options(governance_schema=schema))
    applied = target.qualified((schema, "applied_object"))
    rows = databricks_merge_source(target.render(program), applied)
    statements = split_statements(plain.render(program))
    cleanup = next(s for s in statements if "FOR stale AS" in s)
    select = re.search(r"FOR stale AS\s+(SELECT .*?ORDER BY [^\n]*)\s+DO", cleanup, re.S)
    assert select is not None
    got = databricks_cleanup(select.group(1).replace(applied, "veil.applied_object"), rows)
    drops = [d for _, detach, d in got if detach is None]
    assert len(got) == len(drops) == len(program.tag_masks) * (len(program.tables) + 1)
    policies = [d for d in drops if d.startswith("DROP POLICY ")]
    assert drops[: len(policies)] == policies  # every policy before any function
    assert all(
        d.startswith(f"DROP FUNCTION IF EXISTS {target.qualified((schema, 'mask__tag__'))}")
        for d in drops[len(policies) :]
    )
    header = plain.plan(target.lower(program), plain.lower(program), [], PlanNotes())
    assert (
        "- POLICY veil_tag__pii ON TABLE app.people (table app.people tag veil_class = pii): "
        "DROP POLICY veil_tag__pii ON TABLE app.people\n"
    ) in header


def test_the_preflight_refuses_a_masked_column_that_carries_the_tag(
    target: DatabricksTarget,
) -> None:
    """The pre-flight block's query on information_schema.column_tags (run in DuckDB over a
    stand-in): `veil_class` on a column veil masks stops the script before it changes anything;
    on another column, or another tag on a masked column, it passes."""
    program = scenarios.build("case:tag_native", NOW).program
    block = split_statements(target.render(program))[0]
    found = re.search(
        r"IF EXISTS \((SELECT 1 FROM information_schema\.column_tags.*?)\) THEN", block, re.S
    )
    assert found is not None
    query = found.group(1).replace("information_schema.column_tags", "ct")
    query = query.replace("current_catalog()", "'main'")
    for row, refused in [
        (("main", "app", "people", "card", "veil_class", "pii__card"), True),
        (("MAIN", "App", "People", "Email", "veil_class", "pii"), True),
        (("main", "app", "people", "notes", "veil_class", "pii"), False),  # not masked by veil
        (("main", "app", "people", "card", "other_tag", "pii"), False),
        (("other", "app", "people", "card", "veil_class", "pii"), False),
    ]:
        with duckdb.connect() as duck:
            duck.execute(
                "CREATE TABLE ct (catalog_name VARCHAR, schema_name VARCHAR, table_name VARCHAR, "
                "column_name VARCHAR, tag_name VARCHAR, tag_value VARCHAR)"
            )
            duck.execute("INSERT INTO ct VALUES (?, ?, ?, ?, ?, ?)", row)
            assert bool(duck.execute(query).fetchall()) is refused, row
    without = split_statements(DatabricksTarget().render(program))[0]
    assert "column_tags" not in without  # only with native_tags


def test_the_preflight_refuses_a_governed_tag_that_does_not_exist(
    target: DatabricksTarget,
) -> None:
    """The pre-flight block reads system.tags.governed_tags (run in DuckDB over a stand-in):
    without a live governed tag `veil_class` the script stops before it changes anything, not
    at its first `CREATE POLICY` after sections 1 to 5 have run."""
    program = scenarios.build("case:tag_native", NOW).program
    statements = split_statements(target.render(program))
    found = re.search(
        r"IF NOT EXISTS \((SELECT 1 FROM system\.tags\.governed_tags.*?)\) THEN\s+SIGNAL",
        statements[0],
        re.S,
    )
    assert found is not None and "pre-flight passed" in statements[0]
    assert not any("governed_tags" in s for s in statements[1:])
    query = found.group(1).replace("system.tags.governed_tags", "gt")
    for rows, refused in [
        ([("veil_class", None)], False),
        ([("veil_class", dt.datetime(2026, 1, 1)), ("veil_class", None)], False),  # made again
        ([("veil_class", dt.datetime(2026, 1, 1))], True),  # deleted
        ([("VEIL_CLASS_OTHER", None)], True),
        ([], True),
    ]:
        with duckdb.connect() as duck:
            duck.execute("CREATE TABLE gt (tag_key VARCHAR, deleted_at TIMESTAMP)")
            if rows:
                duck.executemany("INSERT INTO gt VALUES (?, ?)", rows)
            assert (not duck.execute(query).fetchall()) is refused, rows
    without = split_statements(DatabricksTarget().render(program))[0]
    assert "governed_tags" not in without  # only with native_tags


def test_the_preflight_refuses_a_tagged_column_of_a_table_the_repository_does_not_declare(
    target: DatabricksTarget,
) -> None:
    """veil's ABAC policies sit on the tables the repository declares; a column of another table
    of the catalog tagged with a value veil masks would stay clear, so the pre-flight (run in
    DuckDB over a stand-in of information_schema.column_tags) names that table and stops. A
    tag value veil does not mask, another catalog, or a declared table do not stop it."""
    from tests.targets.test_preflight import _dbx_checks

    program = scenarios.build("case:tag_native", NOW).program
    block = split_statements(target.render(program))[0]
    [query] = [q for relation, q in _dbx_checks(block) if relation == "column_tags"]
    for row, refused in [
        (("main", "app", "late", "ssn", "veil_class", "pii"), True),
        (("MAIN", "Other", "Late", "Card", "veil_class", "pii__card"), True),
        (("main", "app", "late", "ssn", "veil_class", "pii__name"), False),  # not masked
        (("main", "app", "late", "ssn", "other_tag", "pii"), False),
        (("other", "app", "late", "ssn", "veil_class", "pii"), False),  # another catalog
        (("main", "App", "People", "notes", "veil_class", "pii"), False),  # declared: a policy
    ]:
        with duckdb.connect() as duck:
            duck.execute(
                "CREATE TABLE column_tags (catalog_name VARCHAR, schema_name VARCHAR, "
                "table_name VARCHAR, column_name VARCHAR, tag_name VARCHAR, tag_value VARCHAR)"
            )
            duck.execute("INSERT INTO column_tags VALUES (?, ?, ?, ?, ?, ?)", row)
            assert duck.execute(query).fetchall()[0][0] == refused, row


def test_the_attach_rules_allow_50_policies_per_table() -> None:
    """The quota T0207 keeps veil under, as the attach-rule model applies it."""
    function = (
        "CREATE OR REPLACE FUNCTION veil.f(val VARIANT, source STRING) RETURNS VARIANT "
        "RETURN val;\n"
    )

    def policy(i: int) -> str:
        return (
            f"CREATE OR REPLACE POLICY p{i} ON TABLE app.people COLUMN MASK veil.f "
            "TO `account users` FOR TABLES MATCH COLUMNS has_tag_value('veil_class', 'x') AS c "
            "ON COLUMN c USING COLUMNS ('app.people');\n"
        )

    fifty = function + "".join(policy(i) for i in range(50))
    assert not replay(fifty, "databricks").violations
    over = replay(fifty + policy(50), "databricks").violations
    assert [v.rule for v in over] == ["dbx-abac-quotas"]


def test_the_attach_rules_refuse_a_masked_column_that_a_policy_also_matches(
    target: DatabricksTarget,
) -> None:
    """A column tagged after the apply: on a column veil does not mask, the policy is its one
    mask; on a column veil masks, two masks reach it and its queries fail (as
    `evaluator.abac_cell` says), which is why the pre-flight refuses such a column."""
    program = scenarios.build("case:tag_native", NOW).program
    applied = replay(target.render(program), "databricks")
    for column, refused in [("notes", False), ("card", True)]:
        account = dataclasses.replace(
            applied, tag_values={("app.people", column): {"veil_class": "pii"}}
        )
        found = [v.rule for v in replay("", "databricks", after=account).violations]
        assert ("dbx-two-masks" in found) is refused, (column, found)
