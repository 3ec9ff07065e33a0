"""Snowflake native tag policies (`native_tags`): "a column tagged after the apply".

The tag-based masking policies of a script are evaluated in DuckDB (tests/verify/snowflake_duck.py)
for columns the repository does not know, on tables it knows and on a table it does not know,
under every (user, project) context, and compared with the reference evaluator's answer for such
a column (`evaluator.native_cell`). DuckDB has no tags: the two Snowflake functions that read
them, `SYSTEM$GET_TAG_ON_CURRENT_COLUMN` and `SYSTEM$GET_TAG_ON_CURRENT_TABLE`, are the only stub
(replaced by the tag value the case sets, or NULL). Each script is also replayed against the
attach-rule model, which decides which policy masks a column: its own, else its tag's.
"""

from __future__ import annotations

import datetime as dt
import re
from decimal import Decimal

import duckdb
import pytest

from tests.targets import scenarios
from tests.targets.scenarios import Scenario
from tests.targets.test_snowflake import (
    DOCUMENTED_GAPS,
    acknowledgements,
    active_project,
    governance,
)
from tests.targets.test_verify_sql import Account
from tests.verify.attach_rules import replay
from tests.verify.snowflake_duck import SnowflakeDuck
from tests.verify.sqlfluff_check import parse_script, split_statements
from veil import model
from veil.evaluator import mask_value, native_cell
from veil.model import SqlType
from veil.targets.base import Options
from veil.targets.drift import drift_script
from veil.targets.script import PlanNotes
from veil.targets.snowflake import SnowflakeTarget
from veil.targets.snowflake_tags import CLASSIFICATION, SOURCE, tag_lookup

NOW = dt.datetime(2026, 12, 1, 12, 0, tzinfo=dt.UTC)
UNKNOWN_TABLE: model.TableKey = ("zz", "copied_later")
LATE_COLUMN = "late_column"

#: Values of a late column of each policy type (DuckDB has no VARIANT and no Snowflake BINARY
#: literals: those two bodies are checked by the grammar and the attach rules only).
VALUES: dict[str, list[object]] = {
    "text": ["4111111111111111", "ann@example.com", "", None],
    # whole numbers: whether a NUMBER(p, s) column reaches a NUMBER policy with its scale is
    # not documented (docs/targets/snowflake.md), and DuckDB reads NUMBER as DECIMAL(38, 0)
    "decimal": [Decimal("12345"), Decimal("-501"), None],
    "double": [1234.5, None],
    "boolean": [True, None],
    "date": [dt.date(2026, 5, 17), None],
    "timestamp": [dt.datetime(2026, 5, 17, 14, 23, 5), None],
    "timestamptz": [dt.datetime(2026, 5, 17, 14, 23, 5, tzinfo=dt.UTC), None],
}


@pytest.fixture(scope="module")
def target() -> SnowflakeTarget:
    return SnowflakeTarget(Options(native_tags=True))


@pytest.fixture(scope="module", params=["payments", "case:tag_native", "dotted"])
def scenario(request: pytest.FixtureRequest) -> Scenario:
    return scenarios.build(request.param, NOW)


def tag_values(program: model.Program) -> list[str | None]:
    """Each masked tag, a tag under it, one that only shares its first letters, and none."""
    out: list[str | None] = [None, "unrelated"]
    for tm in program.tag_masks:
        out += [str(tm.tag), f"{tm.tag}.later", f"{tm.tag}x"]
    return out


def stubbed(target: SnowflakeTarget, body: str) -> str:
    """The body with the tag lookups DuckDB lacks read from two more arguments instead, which
    hold the values the platform's tags would (NULL for no tag)."""
    column = tag_lookup(target, "COLUMN", CLASSIFICATION)
    source = tag_lookup(target, "TABLE", SOURCE)
    assert column in body
    return body.replace(column, "COLUMN_TAG").replace(source, "TABLE_TAG")


def test_tag_policies_agree_with_the_evaluator_on_late_columns(
    target: SnowflakeTarget, scenario: Scenario
) -> None:
    program = scenario.program
    native = target.lower(program).native
    assert native is not None
    bodies = {p.returns: stubbed(target, p.body) for p in native.policies}
    known = [tb.key for tb in program.tables if any(tb.key in p.sources for p in program.projects)]
    tables: list[model.TableKey] = [*known[:2], UNKNOWN_TABLE]
    cases = [
        (key, tag, value, type_name)
        for type_name, values in VALUES.items()
        for key in tables
        for tag in tag_values(program)
        for value in values
    ]
    problems: list[str] = []
    tables_sql = {
        **governance(target, program),
        **acknowledgements(target, scenarios.acknowledgement_rows(scenario), NOW),
    }
    with SnowflakeDuck(tables_sql) as duck:
        duck.set_tables(active_project(target, []))
        duck.define_functions(target.render(program))
        duck.query("SET TimeZone = 'UTC'")
        # the example's many contexts differ mostly in what the per-column tests already cover
        contexts = scenario.contexts[::4] if scenario.name == "payments" else scenario.contexts
        for ctx in contexts:
            active = [(ctx.user, ctx.project, NOW)] if ctx.project else []
            duck.set_tables(active_project(target, active))
            for type_name in VALUES:
                sql_type = target.sql_type(SqlType(name=type_name))
                these = [c for c in cases if c[3] == type_name]
                got = duck.evaluate_rows(
                    bodies[sql_type],
                    [
                        (value, tag, None if key == UNKNOWN_TABLE else model.table_id(key))
                        for key, tag, value, _ in these
                    ],
                    signature=[
                        ("VAL", sql_type),
                        ("COLUMN_TAG", "VARCHAR"),
                        ("TABLE_TAG", "VARCHAR"),
                    ],
                    user=ctx.user,
                    returns=sql_type,
                )
                for (key, tag, value, _), engine in zip(these, got, strict=True):
                    ref = native_cell(program, key, LATE_COLUMN, type_name, tag, value, ctx).value
                    if not scenarios.same(engine, ref):
                        problems.append(
                            f"{ctx.user}/{ctx.project} {model.table_str(key)} {type_name} "
                            f"tag={tag} {value!r}: duckdb {engine!r}, evaluator {ref!r}"
                        )
    assert not problems, "\n".join(problems[:20]) + f"\n({len(problems)} mismatches)"


def test_an_unknown_table_acts_under_no_purpose() -> None:
    """A member acting under the purpose sees a late card column in clear on the source table,
    and masked on a table the repository does not know (no source tag: no purpose)."""
    program = scenarios.build("case:tag_native", NOW).program
    ctx = next(
        c for c in scenarios.contexts(program, NOW) if (c.user, c.project) == ("ann", "helpdesk")
    )
    card = "4111111111111111"
    here = native_cell(program, ("app", "people"), LATE_COLUMN, "text", "pii.card", card, ctx)
    elsewhere = native_cell(program, UNKNOWN_TABLE, LATE_COLUMN, "text", "pii.card", card, ctx)
    assert (here.value, here.masked) == (card, False)
    assert (elsewhere.value, elsewhere.masked) == ("************1111", True)
    hashed = native_cell(program, UNKNOWN_TABLE, LATE_COLUMN, "text", "contact.x", card, ctx)
    assert (hashed.value, hashed.masked) == (None, True)  # no table name to salt with


def test_a_column_with_its_own_mask_keeps_it() -> None:
    """Snowflake: a policy set on the column takes precedence over a tag-based one; so does
    veil's named column over any tag. The evaluator answers with the column's own mask."""
    program = scenarios.build("case:tag_native", NOW).program
    ctx = scenarios.contexts(program, NOW)[0]
    own = next(m for m in program.masks if m.column == "email")
    cell = native_cell(program, ("app", "people"), "email", "text", "pii", "a@b.c", ctx)
    assert cell == mask_value(program, own, "a@b.c", {"email": "a@b.c"}, ctx)
    assert cell.method == "hash"


@pytest.mark.parametrize("name", ["payments", "edge", *scenarios.golden_cases()])
def test_native_scripts_obey_the_attach_rules(target: SnowflakeTarget, name: str) -> None:
    program = scenarios.build(name, NOW).program
    if any(d.is_error for d in target.check(program)):
        pytest.skip("the target refuses this program (its own test covers it)")
    script = target.render(program)
    result = replay(script, "snowflake")
    assert not result.violations, "\n".join(map(str, result.violations))
    native = target.lower(program).native
    if native is None:
        assert not program.tag_masks
        return
    # every column the repository tags keeps its own policy; every other tagged column of a
    # type the policies cover is masked by the tag's policy of its type
    classification = target.gov(CLASSIFICATION).upper()
    assert set(result.tags) == {classification}
    for a in native.assignments:
        if a.column is None:
            continue
        table = a.table.upper()
        column = a.column.upper()
        own = result.masks.get((table, column))
        effective = result.effective_mask(table, column, "VARCHAR")
        assert effective == (own[0] if own else result.tags[classification]["VARCHAR"])
    late = result.effective_mask("ZZ.COPIED_LATER", "NEW", "NUMBER(10,2)")
    assert late is None  # not tagged: the platform leaves it alone, as veil does


SMALL = "table a.b {\n  c varchar(10) tags pii\n}\nmask tagged pii\n"


def test_every_native_statement_parses_with_sqlfluff(target: SnowflakeTarget) -> None:
    """On the smallest repository with a tag mask: every kind of native statement, once."""
    program = scenarios.check_text(SMALL)
    reports = parse_script(target.render(program), "snowflake")
    assert {gap for r in reports for gap in r.gaps} <= DOCUMENTED_GAPS
    statements = [r.statement for r in reports]
    assert any(s.startswith("CREATE TAG IF NOT EXISTS VEIL.CLASSIFICATION") for s in statements)
    assert any("SET TAG VEIL.SOURCE = 'a.b'" in s for s in statements)
    assert any("SET TAG VEIL.CLASSIFICATION = 'pii'" in s for s in statements)


def test_the_drift_query_checks_the_tag_policies(target: SnowflakeTarget) -> None:
    """`veil verify --emit-sql`: in an emulated account (tests/targets/test_verify_sql.py) where
    the script was applied, no row; a tag policy unbound, or bound with another body, or a veil
    policy bound to the tag that the repository does not produce, is one row each."""
    program = scenarios.build("case:tag_native", NOW).program
    account = Account(target, program)
    native = target.lower(program).native
    assert native is not None
    tag = native.policies[0].table
    for p in native.policies:
        account.db.execute(
            "INSERT INTO stub_refs VALUES (?, 'tag mask', ?, ?, ?, NULL)",
            [tag, account.catalog, account.gov, p.bare],
        )
        account.db.execute(
            "INSERT INTO stub_bodies VALUES (?, ?, ?, ?)",
            [account.catalog, account.gov, p.bare, f"\n  {p.body}\n"],
        )
    assert account.differences() == []
    first = native.policies[0]
    account.db.execute("DELETE FROM stub_refs WHERE POLICY_NAME = ?", [first.bare])
    assert account.differences() == [
        ("tag mask", first.target, f"none attached; expected {first.bare}")
    ]
    account.db.execute(
        "INSERT INTO stub_refs VALUES (?, 'tag mask', ?, ?, ?, NULL)",
        [tag, account.catalog, account.gov, first.bare],
    )
    account.db.execute("UPDATE stub_bodies SET BODY = 'VAL' WHERE POLICY_NAME = ?", [first.bare])
    assert account.differences() == [
        ("tag mask", first.target, f"the body of {first.bare} is not the repository's")
    ]
    account.db.execute(
        "UPDATE stub_bodies SET BODY = ? WHERE POLICY_NAME = ?", [first.body, first.bare]
    )
    account.db.execute(
        "INSERT INTO stub_refs VALUES (?, 'tag mask', ?, ?, 'MASK__TAG__OLD', NULL)",
        [tag, account.catalog, account.gov],
    )
    assert account.differences() == [
        (
            "tag mask",
            tag,
            "veil policy MASK__TAG__OLD is attached, but the repository does not produce it",
        )
    ]


def test_a_script_without_native_tags_removes_the_tag_policies(target: SnowflakeTarget) -> None:
    """The tag policies are recorded in VEIL.APPLIED_OBJECT; a later script without
    `native_tags` keeps none of them, so its clean-up unsets each from the tag and drops it."""
    program = scenarios.build("case:tag_native", NOW).program
    recorded = target.lower(program).table("applied_object").rows
    tag_rows = [r for r in recorded if r[1] == "tag masking policy"]
    assert len(tag_rows) == len(model.TAG_POLICY_TYPES)
    assert all(
        str(r[3]).startswith("ALTER TAG VEIL.CLASSIFICATION UNSET MASKING POLICY ")
        for r in tag_rows
    )
    plain = SnowflakeTarget().lower(program).table("applied_object").rows
    kept = {r[0] for r in plain}
    assert not kept & {r[0] for r in tag_rows}


def test_the_native_drift_query_parses_with_sqlfluff(target: SnowflakeTarget) -> None:
    """On the smallest repository with a tag mask (sqlfluff takes seconds per check)."""
    program = scenarios.check_text(SMALL)
    assert len(parse_script(drift_script(target, program), "snowflake")) == 1


def test_the_plan_names_the_tag_policies(target: SnowflakeTarget) -> None:
    """`veil plan` from a script without `native_tags` to one with them, and back."""
    program = scenarios.build("case:tag_native", NOW).program
    plain = SnowflakeTarget()
    on = target.plan(plain.lower(program), target.lower(program), [], PlanNotes())
    off = plain.plan(target.lower(program), plain.lower(program), [], PlanNotes())
    assert "--        + VEIL.MASK__TAG__VARCHAR (tag VEIL.CLASSIFICATION (VARCHAR))" in on
    assert (
        "--        - VEIL.MASK__TAG__VARCHAR (tag VEIL.CLASSIFICATION (VARCHAR)): ALTER TAG "
        "VEIL.CLASSIFICATION UNSET MASKING POLICY VEIL.MASK__TAG__VARCHAR; DROP MASKING POLICY "
        "VEIL.MASK__TAG__VARCHAR"
    ) in off


def test_the_preflight_refuses_a_foreign_policy_on_the_classification_tag(
    target: SnowflakeTarget,
) -> None:
    """The pre-flight block's query on the tag (run in DuckDB over a stand-in for
    POLICY_REFERENCES): veil's own tag policies pass, any other masking policy on the tag stops
    the script before it changes anything."""
    block = split_statements(target.render(scenarios.check_text(SMALL)))[0]
    assert "pre-flight passed" in block and "RAISE foreign_tag" in block
    found = re.search(
        r"SELECT COUNT\(\*\) INTO :found\s+FROM TABLE\(INFORMATION_SCHEMA\.POLICY_REFERENCES\("
        r"REF_ENTITY_NAME => 'VEIL.CLASSIFICATION', REF_ENTITY_DOMAIN => 'tag'\)\)\s+WHERE (.*?);",
        block,
        re.DOTALL,
    )
    assert found is not None
    where = (
        found.group(1).replace("CURRENT_DATABASE()", "'DB'").replace("STARTSWITH", "starts_with")
    )
    con = duckdb.connect()
    con.execute("CREATE TABLE refs (POLICY_DB VARCHAR, POLICY_SCHEMA VARCHAR, POLICY_NAME VARCHAR)")
    for row, refused in [
        (("DB", "VEIL", "MASK__TAG__VARCHAR"), False),
        (("DB", "SEC", "PII_STRING"), True),
        (("OTHER", "VEIL", "MASK__TAG__VARCHAR"), True),
        (("DB", "VEIL", "HAND_MADE"), True),
    ]:
        con.execute("DELETE FROM refs")
        con.execute("INSERT INTO refs VALUES (?, ?, ?)", list(row))
        count = con.execute(f"SELECT COUNT(*) FROM refs WHERE {where}").fetchone()
        assert count is not None and (count[0] > 0) is refused, row
