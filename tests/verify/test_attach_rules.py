"""The attach-rule model (tests/verify/attach_rules.py): its rules on hand-written scripts, then
every Snowflake and Databricks script the tests generate (goldens, the example repository, the
scenarios) replayed against it."""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path

import pytest

from tests.goldens import full_script
from tests.targets import scenarios
from tests.verify.attach_rules import RULES, Replay, replay
from veil import model
from veil.targets import get_target
from veil.targets.lookup import LookupTarget

ROOT = Path(__file__).resolve().parents[2]
PLATFORMS = ("snowflake", "databricks")


def rules(result: Replay) -> list[str]:
    return sorted(f.rule for f in result.violations)


# -------------------------------------------------------------------------------------------------
# Snowflake rules on hand-written scripts

SF_POLICIES = """
CREATE MASKING POLICY IF NOT EXISTS VEIL.M_NOTE AS (NOTE VARCHAR, REGION VARCHAR) RETURNS VARCHAR ->
  CASE WHEN REGION = 'EU' THEN NULL ELSE NOTE END;
CREATE MASKING POLICY IF NOT EXISTS VEIL.M_REGION AS (REGION VARCHAR) RETURNS VARCHAR ->
  REGION COMMENT = 'x' EXEMPT_OTHER_POLICIES = TRUE;
CREATE ROW ACCESS POLICY IF NOT EXISTS VEIL.R AS (REGION VARCHAR) RETURNS BOOLEAN ->
  EXISTS (SELECT 1 FROM VEIL.USER_GROUP g WHERE g.PRINCIPAL = CURRENT_USER());
"""


def test_sf_rap_and_conditional_column_is_refused() -> None:
    script = (
        SF_POLICIES
        + """
ALTER TABLE S.T MODIFY COLUMN NOTE SET MASKING POLICY VEIL.M_NOTE USING (NOTE, REGION) FORCE;
ALTER TABLE S.T ADD ROW ACCESS POLICY VEIL.R ON (REGION);
"""
    )
    assert rules(replay(script, "snowflake")) == ["sf-rap-and-mask-column"]


def test_sf_exempt_policy_on_the_shared_column_is_accepted() -> None:
    script = (
        SF_POLICIES
        + """
ALTER TABLE S.T MODIFY COLUMN REGION SET MASKING POLICY VEIL.M_REGION FORCE;
ALTER TABLE S.T MODIFY COLUMN NOTE SET MASKING POLICY VEIL.M_NOTE USING (NOTE, REGION) FORCE;
EXECUTE IMMEDIATE $$
BEGIN
  ALTER TABLE S.T ADD ROW ACCESS POLICY VEIL.R ON (REGION);
END;
$$;
"""
    )
    result = replay(script, "snowflake")
    assert result.violations == []
    assert result.rows == {"S.T": ("VEIL.R", ["REGION"])}


def test_sf_one_policy_per_column_and_table_and_arity() -> None:
    script = (
        SF_POLICIES
        + """
ALTER TABLE S.T MODIFY COLUMN REGION SET MASKING POLICY VEIL.M_REGION;
ALTER TABLE S.T MODIFY COLUMN REGION SET MASKING POLICY VEIL.M_NOTE USING (REGION, NOTE);
ALTER TABLE S.T MODIFY COLUMN NOTE SET MASKING POLICY VEIL.M_NOTE;
ALTER TABLE S.U ADD ROW ACCESS POLICY VEIL.R ON (A, B);
ALTER TABLE S.U ADD ROW ACCESS POLICY VEIL.R ON (A);
ALTER TABLE S.U MODIFY COLUMN X SET MASKING POLICY VEIL.MISSING;
DROP MASKING POLICY VEIL.M_NOTE;
"""
    )
    assert rules(replay(script, "snowflake")) == [
        "sf-conditional-masked-column",  # NOTE, read by the mask of REGION, is masked too
        "sf-drop-attached",
        "sf-one-mask-per-column",
        "sf-one-rap-per-table",
        "sf-policy-exists",
        "sf-rap-args",
        "sf-using-arity",
    ]


def test_sf_types_returns_and_protected_lookup_tables() -> None:
    script = """
CREATE MASKING POLICY IF NOT EXISTS VEIL.M AS (A NUMBER(12, 2)) RETURNS VARCHAR -> NULL;
CREATE MASKING POLICY IF NOT EXISTS VEIL.G AS (P VARCHAR) RETURNS VARCHAR -> P;
CREATE ROW ACCESS POLICY IF NOT EXISTS VEIL.R AS (B VARCHAR) RETURNS BOOLEAN ->
  EXISTS (SELECT 1 FROM VEIL.USER_GROUP g);
ALTER TABLE S.T MODIFY COLUMN A SET MASKING POLICY VEIL.M;
ALTER TABLE VEIL.USER_GROUP MODIFY COLUMN PRINCIPAL SET MASKING POLICY VEIL.G;
ALTER TABLE S.T ADD ROW ACCESS POLICY VEIL.R ON (B);
"""
    types = {("S.T", "A"): "NUMBER(12,2)", ("S.T", "B"): "DATE"}
    result = replay(script, "snowflake", catalog=types)
    assert rules(result) == ["sf-column-type", "sf-lookup-unprotected", "sf-returns-first-arg"]


def test_sf_tables_read_through_a_function_count() -> None:
    script = """
CREATE OR REPLACE FUNCTION VEIL.LOOKUP(S VARCHAR)
RETURNS ARRAY
AS
$$
  SELECT ARRAY_AGG(g.GROUP_NAME) FROM VEIL.USER_GROUP g
$$;
CREATE MASKING POLICY IF NOT EXISTS VEIL.M AS (V VARCHAR) RETURNS VARCHAR ->
  CASE WHEN ARRAY_SIZE(VEIL.LOOKUP('x')) > 0 THEN V END;
CREATE MASKING POLICY IF NOT EXISTS VEIL.G AS (P VARCHAR) RETURNS VARCHAR -> P;
ALTER TABLE S.T MODIFY COLUMN V SET MASKING POLICY VEIL.M;
ALTER TABLE VEIL.USER_GROUP MODIFY COLUMN PRINCIPAL SET MASKING POLICY VEIL.G;
"""
    assert rules(replay(script, "snowflake")) == ["sf-lookup-unprotected"]


def test_sf_tag_policies_one_per_type() -> None:
    script = """
CREATE TAG IF NOT EXISTS VEIL.PII;
CREATE MASKING POLICY IF NOT EXISTS VEIL.A AS (V VARCHAR) RETURNS VARCHAR -> V;
CREATE MASKING POLICY IF NOT EXISTS VEIL.B AS (V VARCHAR) RETURNS VARCHAR -> NULL;
ALTER TAG VEIL.PII SET MASKING POLICY VEIL.A;
ALTER TAG VEIL.PII SET MASKING POLICY VEIL.B;
ALTER TAG VEIL.PII SET MASKING POLICY VEIL.A FORCE;
"""
    assert rules(replay(script, "snowflake")) == ["sf-tag-one-per-type"]


def test_sf_tags_exist_and_are_read_by_masks_only() -> None:
    script = """
CREATE MASKING POLICY IF NOT EXISTS VEIL.A AS (V VARCHAR) RETURNS VARCHAR ->
  CASE WHEN SYSTEM$GET_TAG_ON_CURRENT_COLUMN('VEIL.CLASS') = 'pii' THEN NULL ELSE V END;
CREATE ROW ACCESS POLICY IF NOT EXISTS VEIL.R AS (B VARCHAR) RETURNS BOOLEAN ->
  SYSTEM$GET_TAG_ON_CURRENT_COLUMN('VEIL.CLASS') IS NULL;
ALTER TAG VEIL.CLASS SET MASKING POLICY VEIL.A;
ALTER TABLE S.T MODIFY COLUMN C SET TAG VEIL.CLASS = 'pii';
ALTER TABLE S.T ADD ROW ACCESS POLICY VEIL.R ON (B);
"""
    # the tag was never created: neither binding happens, and the row policy reads it anyway
    assert rules(replay(script, "snowflake")) == [
        "sf-get-tag-column-in-mask",
        "sf-get-tag-exists",
        "sf-tag-exists",
        "sf-tag-exists",
    ]


def test_sf_a_column_policy_takes_precedence_over_a_tag_policy() -> None:
    script = """
CREATE TAG IF NOT EXISTS VEIL.CLASS;
CREATE MASKING POLICY IF NOT EXISTS VEIL.T AS (V VARCHAR) RETURNS VARCHAR -> NULL;
CREATE MASKING POLICY IF NOT EXISTS VEIL.N AS (V NUMBER) RETURNS NUMBER -> NULL;
CREATE MASKING POLICY IF NOT EXISTS VEIL.OWN AS (V VARCHAR) RETURNS VARCHAR -> V;
EXECUTE IMMEDIATE $$
BEGIN
  ALTER TAG VEIL.CLASS SET MASKING POLICY VEIL.T;
  ALTER TAG VEIL.CLASS SET MASKING POLICY VEIL.N;
END;
$$;
ALTER TABLE S.T MODIFY COLUMN A SET TAG VEIL.CLASS = 'pii';
ALTER TABLE S.T MODIFY COLUMN B SET TAG VEIL.CLASS = 'pii';
ALTER TABLE S.T MODIFY COLUMN B SET MASKING POLICY VEIL.OWN;
ALTER TABLE S.U SET TAG VEIL.CLASS = 'pii';
"""
    result = replay(script, "snowflake")
    assert result.violations == []
    assert result.effective_mask("S.T", "A", "VARCHAR(10)") == "VEIL.T"
    assert result.effective_mask("S.T", "A", "NUMBER") == "VEIL.N"
    assert result.effective_mask("S.T", "A", "DATE") is None  # no DATE policy on the tag
    assert result.effective_mask("S.T", "B", "VARCHAR") == "VEIL.OWN"
    assert result.effective_mask("S.T", "C", "VARCHAR") is None


# -------------------------------------------------------------------------------------------------
# Databricks rules on hand-written scripts


def test_dbx_rules() -> None:
    script = """
CREATE OR REPLACE FUNCTION veil.m(v STRING, r STRING) RETURNS STRING RETURN v;
CREATE OR REPLACE FUNCTION veil.f(r STRING) RETURNS STRING RETURN r;
ALTER TABLE s.t ALTER COLUMN note SET MASK veil.m USING COLUMNS (region);
ALTER TABLE s.t ALTER COLUMN memo SET MASK veil.m;
ALTER TABLE s.t ALTER COLUMN memo SET MASK veil.m USING COLUMNS (memo);
ALTER TABLE s.t SET ROW FILTER veil.f ON (region);
ALTER TABLE s.t SET ROW FILTER veil.nothing ON ();
MERGE INTO veil.user_group AS t
USING (VALUES
  ('ana@example.com', 'analysts'),
  ('bo', 'analysts')
) AS s(principal, group_name)
ON t.principal = s.principal
WHEN NOT MATCHED THEN INSERT (principal, group_name) VALUES (s.principal, s.group_name);
"""
    result = replay(script, "databricks")
    assert rules(result) == [
        "dbx-filter-boolean",
        "dbx-function-exists",
        "dbx-mask-arity",
        "dbx-principal-email",
        "dbx-using-columns",
    ]
    assert "`bo`" in result.violations[3].detail or any(
        "`bo`" in v.detail for v in result.violations
    )
    assert {f.rule for f in result.open} == {"dbx-owner-removable", "dbx-second-set"}


def test_dbx_abac_rules() -> None:
    """Unity Catalog ABAC policies (veil does not compile them yet: docs/targets/databricks.md);
    the model knows their documented restrictions."""
    script = """
CREATE OR REPLACE FUNCTION veil.m(v STRING) RETURNS STRING RETURN NULL;
CREATE OR REPLACE FUNCTION veil.m2(v STRING, k STRING) RETURNS STRING RETURN NULL;
CREATE POLICY p ON SCHEMA c.s COLUMN MASK veil.m TO `account users` FOR TABLES
  MATCH COLUMNS has_tag_value('veil_classification', 'pii') AS c ON COLUMN c;
CREATE POLICY p ON SCHEMA c.s COLUMN MASK veil.m TO `account users` FOR TABLES
  MATCH COLUMNS has_tag('veil_classification') AS c ON COLUMN c;
CREATE OR REPLACE POLICY p ON SCHEMA c.s COLUMN MASK veil.m2 TO `account users` EXCEPT admins
  FOR TABLES WHEN has_tag_value('veil_source', 'sales.orders')
  MATCH COLUMNS has_tag('veil_classification') AS c ON COLUMN c USING COLUMNS ('x', d);
CREATE POLICY q ON SCHEMA c.s COLUMN MASK veil.missing TO `account users` FOR TABLES
  MATCH COLUMNS has_tag('k') AS c ON COLUMN c;
CREATE POLICY r ON SCHEMA c.s COLUMN MASK veil.m2 TO `account users` FOR TABLES
  MATCH COLUMNS has_tag('pii.card') AS c ON COLUMN c USING COLUMNS ('sales_orders');
"""
    assert rules(replay(script, "databricks")) == [
        "dbx-abac-exists",
        "dbx-abac-function-exists",
        "dbx-abac-on-column",  # d is no alias, and m2 takes two parameters, not three
        "dbx-tag-characters",  # 'sales.orders'
        "dbx-tag-characters",  # 'pii.card'
    ]


def test_every_rule_cites_a_page_and_is_exercised() -> None:
    assert all(r.page.startswith("https://") for r in RULES.values())
    assert {r.platform for r in RULES.values()} == set(PLATFORMS)


# -------------------------------------------------------------------------------------------------
# Every generated script


def catalog(
    target: LookupTarget, program: model.Program, platform: str
) -> dict[tuple[str, str], str]:
    """(table, column) as the platform stores them -> the type the script writes."""
    fold = platform == "snowflake"
    out = {}
    for table in program.protected_tables:
        name = ".".join(target.stored_name(p) if fold else p.lower() for p in table.key)
        for col in table.columns:
            stored = target.stored_name(col.name) if fold else col.name.lower()
            out[(name, stored)] = target.sql_type(col.type).replace(" ", "").upper()
    return out


GOLDENS = sorted((ROOT / "tests" / "cases").glob("[!_]*/expected.*.sql"))


@pytest.mark.parametrize(
    "golden",
    [g for g in GOLDENS if g.name.split(".")[1] in PLATFORMS],
    ids=lambda p: f"{p.parent.name}-{p.name.split('.')[1]}",
)
def test_golden_scripts_obey_the_attach_rules(golden: Path) -> None:
    platform = golden.name.split(".")[1]
    result = replay(full_script(golden), platform)
    # the goldens use names such as `ana` on purpose: the warning T0205 covers them
    problems = [v for v in result.violations if v.rule != "dbx-principal-email"]
    assert not problems, "\n".join(map(str, problems))


@pytest.mark.parametrize("platform", PLATFORMS)
@pytest.mark.parametrize("name", ["payments", "edge", *scenarios.golden_cases()])
def test_generated_scripts_obey_the_attach_rules(platform: str, name: str) -> None:
    scenario = scenarios.build(name, dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    target = get_target(platform)
    assert isinstance(target, LookupTarget)
    program = scenario.program
    result = replay(target.render(program), platform, catalog=catalog(target, program, platform))
    ignore = set() if name == "payments" else {"dbx-principal-email"}
    problems = [v for v in result.violations if v.rule not in ignore]
    # what the target refuses at compile time is exactly what the platform would refuse
    refused = {d.code for d in target.check(program) if d.is_error}
    if refused == {"T0105"}:
        assert {v.rule for v in problems} == {"sf-rap-and-mask-column"}
        return
    assert not refused
    assert not problems, "\n".join(map(str, problems))
    if platform == "databricks":  # the owner can undo each one: docs/targets say how to see it
        assert len([f for f in result.open if f.rule == "dbx-owner-removable"]) == len(
            result.masks
        ) + len(result.rows)


def test_the_snowflake_conflict_of_the_golden_case_is_one_the_platform_refuses() -> None:
    """platform_conflicts compiles to an error (T0105) on Snowflake; rendered anyway, the script
    is one that Snowflake would refuse, and for that reason only."""
    checked = scenarios.build("case:platform_conflicts", dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    target = get_target("snowflake")
    assert [d.code for d in target.check(checked.program) if d.is_error] == ["T0105"]
    result = replay(target.render(checked.program), "snowflake")
    assert rules(result) == ["sf-rap-and-mask-column"]
    assert "REGION" in result.violations[0].detail


# -------------------------------------------------------------------------------------------------
# A script applied over the script of an earlier veil

OLD_SCRIPTS = sorted((ROOT / "tests" / "verify" / "old_scripts").glob("*.sql"))
#: What a script creates in veil's schema that lives on until something drops it (policies are
#: removed by the clean-up block, from `applied_object`, and are not listed here).
_OBJECT = re.compile(
    r"^CREATE (?:OR REPLACE )?(?:SECURE )?(FUNCTION|PROCEDURE|TABLE)(?: IF NOT EXISTS)? "
    r"([\w.`\"]+)",
    re.IGNORECASE | re.MULTILINE,
)


def created(script: str) -> set[tuple[str, str]]:
    return {(kind.upper(), name.lower()) for kind, name in _OBJECT.findall(script)}


@pytest.mark.parametrize("old", OLD_SCRIPTS, ids=lambda p: p.name)
def test_a_script_over_an_older_one_leaves_nothing_stale(old: Path) -> None:
    """`old_scripts/<case>.<platform>.sql` is the golden script of that case as an earlier veil
    compiled it (before `active_purposes`, commit f54230b). Every function, procedure or table
    it created in veil's schema is created again by today's script, or dropped by it; on
    Databricks, replaying the old script then today's leaves exactly the functions today's
    script alone leaves, and no attached mask or filter calls a function that is gone."""
    case, platform = old.name.split(".")[:2]
    target = get_target(platform)
    assert isinstance(target, LookupTarget)
    program = scenarios.build(f"case:{case}", dt.datetime(2026, 12, 1, tzinfo=dt.UTC)).program
    new = target.render(program)
    dropped = {
        (kind.upper(), name.lower())
        for kind, name in re.findall(
            r"^DROP (FUNCTION|PROCEDURE|TABLE)(?: IF EXISTS)? (\S+?);", new, re.MULTILINE
        )
    }
    dropped |= {("TABLE", target.gov("project_switch").lower())}  # moved to the audit log
    assert created(old.read_text(encoding="utf-8")) <= created(new) | dropped
    if platform != "databricks":
        return
    before = replay(old.read_text(encoding="utf-8"), platform)
    assert "veil.purpose_active" in before.policies  # the case this test is about
    after = replay(new, platform, after=before)
    assert set(after.policies) == set(replay(new, platform).policies)
    for name, _ in [*after.masks.values(), *after.rows.values()]:
        called = set(
            re.findall(r"\b(veil\.\w+)\s*\(", after.policies[name].body.split("RETURN", 1)[1])
        )
        assert called <= set(after.policies), f"{name} calls {called - set(after.policies)}"
