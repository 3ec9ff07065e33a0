"""Tests of the offline verification toolkit itself (tests/verify), on hand-written SQL shaped
as the platforms document them."""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import importlib.util
import re

import pytest

from tests.verify import spark_local
from tests.verify.snowflake_duck import (
    PolicyDDL,
    SnowflakeDuck,
    SnowflakeEvaluationError,
    Tables,
    evaluate_body,
    parse_policy_ddl,
    to_duckdb_sql,
)
from tests.verify.spark_local import (
    LocalSpark,
    SparkSQLError,
    function_statements,
    require_spark,
    sql_literal,
)
from tests.verify.sqlfluff_check import (
    KNOWN_GAPS,
    SQLFLUFF_SUPPORT,
    SqlParseError,
    SupportRow,
    check_statement,
    parse_script,
    parse_statement,
    split_statements,
    sqlfluff_parses,
)

# =================================================================================================
# Sample generated SQL
# =================================================================================================

SF_PURPOSE_BODY = """CASE
    WHEN EXISTS (SELECT 1
                 FROM GOV.POLICIES.ACTIVE_PROJECT ap
                 JOIN GOV.POLICIES.PROJECT_MEMBER  m  ON m.project_id = ap.project_id
                                                     AND m.user_name = ap.user_name
                 JOIN GOV.POLICIES.PROJECT_PURPOSE pp ON pp.project_id = ap.project_id
                                                     AND pp.approved
                 WHERE ap.user_name = CURRENT_USER() AND pp.purpose = 'Fraud Detection')
      THEN val
    ELSE '****'                                  -- type-specific mask expression
  END"""

SF_CREATE_MASK = f"""CREATE MASKING POLICY IF NOT EXISTS GOV.POLICIES.MP_FRAUD_DETECTION__STRING
  AS (val STRING) RETURNS STRING ->
  {SF_PURPOSE_BODY}
  COMMENT = 'pac: rule=r1 hash=abc; -> not the body'"""

SF_RAP_BODY = (
    "IS_ROLE_IN_SESSION('ADMIN') OR (region = 'EU' AND EXISTS (SELECT 1 "
    "FROM GOV.POLICIES.ACTIVE_PROJECT ap WHERE ap.user_name = CURRENT_USER()))"
)

SNOWFLAKE_SCRIPT = f"""
-- governance objects
CREATE SCHEMA IF NOT EXISTS GOV.POLICIES;
CREATE TABLE IF NOT EXISTS GOV.POLICIES.PROJECT_MEMBER (project_id VARCHAR NOT NULL,
  user_name VARCHAR NOT NULL, PRIMARY KEY (project_id, user_name));
DELETE FROM GOV.POLICIES.PROJECT_MEMBER WHERE (project_id, user_name) NOT IN (('p1', 'ALICE'));
INSERT INTO GOV.POLICIES.PROJECT_MEMBER (project_id, user_name)
  SELECT 'p1', 'ALICE' WHERE NOT EXISTS (SELECT 1 FROM GOV.POLICIES.PROJECT_MEMBER
  WHERE project_id = 'p1' AND user_name = 'ALICE');
MERGE INTO GOV.POLICIES.PROJECT_PURPOSE t USING (SELECT 'p1' AS project_id,
  'Fraud Detection' AS purpose, TRUE AS approved) s
  ON t.project_id = s.project_id AND t.purpose = s.purpose
  WHEN MATCHED THEN UPDATE SET approved = s.approved
  WHEN NOT MATCHED THEN INSERT (project_id, purpose, approved)
  VALUES (s.project_id, s.purpose, s.approved);
CREATE OR REPLACE PROCEDURE GOV.POLICIES.USE_PROJECT(project_id VARCHAR)
RETURNS VARCHAR LANGUAGE SQL EXECUTE AS OWNER AS
$$
BEGIN
  IF (NOT EXISTS (SELECT 1 FROM GOV.POLICIES.PROJECT_MEMBER m
                  WHERE m.project_id = :project_id AND m.user_name = CURRENT_USER())) THEN
    RETURN 'not a member; nothing changed';
  END IF;
  DELETE FROM GOV.POLICIES.ACTIVE_PROJECT WHERE user_name = CURRENT_USER();
  INSERT INTO GOV.POLICIES.ACTIVE_PROJECT (user_name, project_id)
    SELECT CURRENT_USER(), :project_id;
  RETURN 'ok';
END;
$$;
-- purpose check
{SF_CREATE_MASK};
ALTER MASKING POLICY GOV.POLICIES.MP_FRAUD_DETECTION__STRING SET BODY -> {SF_PURPOSE_BODY};
ALTER TABLE DB.S.CARDS MODIFY COLUMN CREDIT_CARD
  SET MASKING POLICY GOV.POLICIES.MP_FRAUD_DETECTION__STRING FORCE;
ALTER TABLE DB.S.CARDS MODIFY COLUMN CREDIT_CARD UNSET MASKING POLICY;
CREATE ROW ACCESS POLICY IF NOT EXISTS GOV.POLICIES.RAP_CARDS AS (region VARCHAR)
  RETURNS BOOLEAN -> {SF_RAP_BODY};
ALTER TABLE DB.S.CARDS ADD ROW ACCESS POLICY GOV.POLICIES.RAP_CARDS ON (REGION);
ALTER TABLE DB.S.CARDS DROP ROW ACCESS POLICY GOV.POLICIES.RAP_CARDS;
DROP MASKING POLICY IF EXISTS GOV.POLICIES.MP_OLD;
"""

DATABRICKS_SCRIPT = """
CREATE OR REPLACE FUNCTION veil.purpose_active(p STRING) RETURNS BOOLEAN
  RETURN EXISTS (SELECT 1 FROM veil.active_project ap
                 JOIN veil.project_member  m  ON m.project_id = ap.project_id
                                             AND m.user_name = ap.user_name
                 JOIN veil.project_purpose pp ON pp.project_id = ap.project_id AND pp.approved
                 WHERE ap.user_name = current_user() AND pp.purpose = p);
CREATE OR REPLACE FUNCTION veil.mask_string_unless_purpose(val STRING, purpose STRING)
  RETURNS STRING
  RETURN CASE WHEN veil.purpose_active(purpose) THEN val ELSE '****' END;
ALTER TABLE main.s.cards ALTER COLUMN credit_card SET MASK veil.mask_string_unless_purpose
  USING COLUMNS ('Fraud Detection');
ALTER TABLE main.s.cards ALTER COLUMN email SET MASK veil.mask_email
  USING COLUMNS (visibility, 'Fraud Detection');
ALTER TABLE main.s.cards ALTER COLUMN credit_card DROP MASK;
CREATE OR REPLACE FUNCTION veil.rf_cards(region STRING) RETURNS BOOLEAN
  RETURN is_account_group_member('admins') OR region = 'EU';
ALTER TABLE main.s.cards SET ROW FILTER veil.rf_cards ON (region);
ALTER TABLE main.s.cards DROP ROW FILTER;
CREATE OR REPLACE PROCEDURE veil.use_project(project STRING)
LANGUAGE SQL
SQL SECURITY DEFINER
AS BEGIN
  IF NOT EXISTS (SELECT 1 FROM veil.project_member m
                 WHERE m.project_id = project AND m.user_name = current_user()) THEN
    SIGNAL SQLSTATE '42501' SET MESSAGE_TEXT = 'not a member';
  END IF;
  DELETE FROM veil.active_project WHERE user_name = current_user();
  INSERT INTO veil.active_project VALUES (current_user(), project,
    CASE WHEN project IS NULL THEN 'cleared' ELSE 'set' END);
END;
"""

# =================================================================================================
# split_statements
# =================================================================================================


def test_split_respects_quotes_bodies_and_comments() -> None:
    script = """
    -- leading comment; with a semicolon
    SELECT 'a;b', 'it''s; here', 'back\\'slash;' FROM t;  /* block; comment */
    SELECT "we;ird", `back;tick` FROM u;
    CREATE PROCEDURE p() AS $$ BEGIN RETURN 'x;'; END; $$;
    CREATE FUNCTION f() RETURNS INT AS $body$ SELECT 1; $body$;
    SELECT $1, $v FROM t2;
    SELECT 1 -- trailing comment; not a statement
    """
    assert split_statements(script) == [
        "SELECT 'a;b', 'it''s; here', 'back\\'slash;' FROM t",
        'SELECT "we;ird", `back;tick` FROM u',
        "CREATE PROCEDURE p() AS $$ BEGIN RETURN 'x;'; END; $$",
        "CREATE FUNCTION f() RETURNS INT AS $body$ SELECT 1; $body$",
        "SELECT $1, $v FROM t2",
        "SELECT 1 -- trailing comment; not a statement",
    ]


def test_split_keeps_compound_statements_together() -> None:
    statements = split_statements(DATABRICKS_SCRIPT)
    assert len(statements) == 9
    proc = statements[-1]
    assert proc.startswith("CREATE OR REPLACE PROCEDURE veil.use_project")
    assert proc.endswith("END")
    assert "END IF;" in proc and "'cleared' ELSE 'set' END);" in proc


def test_split_transactions_cases_and_qualified_end() -> None:
    script = (
        "BEGIN; SELECT CASE WHEN a THEN 1 END, t.end, t.begin FROM t; BEGIN TRANSACTION; "
        "COMMIT;\nBEGIN\n  SELECT 1;\n  LOOP x := 1; END LOOP;\nEND;\nSELECT 2"
    )
    assert split_statements(script) == [
        "BEGIN",
        "SELECT CASE WHEN a THEN 1 END, t.end, t.begin FROM t",
        "BEGIN TRANSACTION",
        "COMMIT",
        "BEGIN\n  SELECT 1;\n  LOOP x := 1; END LOOP;\nEND",
        "SELECT 2",
    ]


def test_split_options_and_errors() -> None:
    assert split_statements("-- c\nSELECT 1;", strip_comments=False) == ["-- c\nSELECT 1"]
    assert split_statements("  ;; -- only comments\n/* x */ ;") == []
    # PostgreSQL: a backslash does not escape a quote
    assert split_statements("SELECT 'a\\'; SELECT 2", backslash_escapes=False) == [
        "SELECT 'a\\'",
        "SELECT 2",
    ]
    with pytest.raises(ValueError, match="unterminated '-quoted"):
        split_statements("SELECT 'abc")
    with pytest.raises(ValueError, match=r"unterminated \$\$ body"):
        split_statements("CREATE PROCEDURE p() AS $$ BEGIN")
    with pytest.raises(ValueError, match="unterminated /"):
        split_statements("SELECT 1 /* open")


# =================================================================================================
# sqlfluff parsing
# =================================================================================================


def test_snowflake_skeleton_parses() -> None:
    reports = parse_script(SNOWFLAKE_SCRIPT, "snowflake")
    assert len(reports) == 14
    types = [r.segment_type for r in reports]
    assert "create_procedure_statement" in types
    assert "alter_masking_policy" in types
    proc = next(r for r in reports if r.segment_type == "create_procedure_statement")
    assert proc.bodies_checked == 1
    drop = reports[-1]
    assert drop.gaps == ("sf_drop_masking_policy",)
    assert "DROP MASKING POLICY MP_OLD" in drop.parsed_text


def test_databricks_skeleton_parses() -> None:
    reports = parse_script(DATABRICKS_SCRIPT, "databricks")
    assert [r.gaps for r in reports if r.gaps] == [("dbx_using_columns_many",)]
    assert reports[-1].segment_type == "create_procedure_statement"


BROKEN: list[tuple[str, str, str]] = [
    # (dialect, statement, expected fragment of the unparsable section)
    ("snowflake", "CREATE MASKING POLICY p AS (val STRING) RETURNS STRING => val", "=>"),
    ("snowflake", "CREATE MASKING POLICY p AS (val STRING) -> val", "(val STRING) ->"),
    (
        "snowflake",
        "CREATE MASKING POLICY p AS (val STRING) RETURNS STRING -> CASE WHEN THEN val END",
        "WHEN THEN",
    ),
    ("snowflake", "ALTER TABLE t ADD ROW ACCESS POLICY rap (a)", "ALTER TABLE"),
    ("snowflake", "ALTER TABLE t MODIFY COLUMN c SET MASKNG POLICY p", "MODIFY"),
    ("databricks", "CREATE OR REPLACE FUNCTION f(val STRING) RETURNS STRING", "CREATE"),
    ("databricks", "ALTER TABLE t ALTER COLUMN c SET MASKK f", "ALTER TABLE"),
    ("databricks", "ALTER TABLE t SET ROW FILTER f (a)", "ALTER TABLE"),
    ("databricks", "CREATE PROCEDURE p(x STRING) AS BEGIN garbage (((; END", "CREATE PROCEDURE"),
    # a known gap must not hide an error elsewhere in the statement
    (
        "snowflake",
        "CREATE OR ALTER MASKING POLICY p AS (val STRING) RETURNS STRING -> CASE WHEN THEN val END",
        "WHEN THEN",
    ),
    (
        "databricks",
        "ALTER TABLE t ALTER COLUMN c SET MASK f USING COLUMNS (a, 'b') EXTRA",
        "EXTRA",
    ),
]


@pytest.mark.parametrize(("dialect", "statement", "fragment"), BROKEN)
def test_broken_statements_fail(dialect: str, statement: str, fragment: str) -> None:
    with pytest.raises(SqlParseError) as info:
        parse_statement(statement, dialect)
    error = info.value
    assert error.unparsable, str(error)
    assert any(fragment in u for u in error.unparsable), str(error)
    assert "unparsable section" in str(error)


def test_broken_snowflake_procedure_body_fails() -> None:
    """sqlfluff alone accepts garbage inside $$ … $$; the body check catches it."""
    statement = (
        "CREATE OR REPLACE PROCEDURE veil.p() RETURNS VARCHAR LANGUAGE SQL EXECUTE AS OWNER AS "
        "$$ BEGIN IF (TRUE) THEN RETURN 'x'; END IF; RETRUN 'y'; END; $$"
    )
    assert sqlfluff_parses(statement, "snowflake")
    with pytest.raises(SqlParseError, match=r"\$\$ script body") as info:
        parse_statement(statement, "snowflake")
    assert any("RETRUN" in u for u in info.value.unparsable)


def test_snowflake_udf_bodies_are_checked() -> None:
    ok = "CREATE OR REPLACE FUNCTION veil.f(x VARCHAR) RETURNS VARCHAR AS $$ UPPER(x) || 'a' $$"
    assert check_statement(ok, "snowflake").bodies_checked == 1
    quoted = (
        "CREATE OR REPLACE FUNCTION veil.ap() RETURNS ARRAY MEMOIZABLE AS "
        "'SELECT ARRAY_AGG(purpose) FROM veil.project_purpose WHERE approved = ''yes'''"
    )
    assert check_statement(quoted, "snowflake").bodies_checked == 1
    with pytest.raises(SqlParseError, match="expression body"):
        parse_statement(
            "CREATE FUNCTION veil.f(x VARCHAR) RETURNS VARCHAR AS $$ UPPER(x || $$", "snowflake"
        )
    js = "CREATE FUNCTION veil.f() RETURNS VARCHAR LANGUAGE JAVASCRIPT AS $$ return 'a;(' $$"
    assert check_statement(js, "snowflake").bodies_checked == 0


def test_parse_statement_wants_one_statement() -> None:
    with pytest.raises(ValueError, match="exactly one statement"):
        parse_statement("SELECT 1; SELECT 2", "snowflake")
    with pytest.raises(ValueError, match="exactly one statement"):
        parse_statement("-- nothing", "snowflake")


def test_parse_script_lists_every_failure() -> None:
    script = "SELECT 1;\nSELECT FROM WHERE;\nSELECT 2;\nALTER TABLE t SET MASKNG POLICY p;"
    with pytest.raises(SqlParseError, match="2 statements do not parse") as info:
        parse_script(script, "snowflake")
    assert "statement #2" in str(info.value) and "statement #4" in str(info.value)


@pytest.mark.parametrize(
    "row", SQLFLUFF_SUPPORT, ids=[f"{r.dialect}:{r.construct[:50]}" for r in SQLFLUFF_SUPPORT]
)
def test_sqlfluff_support_table(row: SupportRow) -> None:
    """Every row of the recorded table still holds for the installed sqlfluff."""
    raw = sqlfluff_parses(row.example, row.dialect)
    if row.parses:
        assert raw, f"sqlfluff no longer parses: {row.example}"
        check_statement(row.example, row.dialect)
        return
    if raw:
        pytest.skip(f"sqlfluff now parses {row.construct!r}: update SQLFLUFF_SUPPORT/KNOWN_GAPS")
    if row.gap is None:
        with pytest.raises(SqlParseError):
            parse_statement(row.example, row.dialect)
    else:
        assert row.gap in check_statement(row.example, row.dialect).gaps


def test_known_gaps_are_documented_and_covered() -> None:
    names = [g.name for g in KNOWN_GAPS]
    assert len(names) == len(set(names))
    covered = {r.gap for r in SQLFLUFF_SUPPORT if r.gap}
    assert covered == set(names)
    for gap in KNOWN_GAPS:
        assert re.fullmatch(r"https://docs\.(snowflake|databricks)\.com/\S+", gap.doc_url), gap.name
        assert gap.applies_to(gap.example), gap.name
        report = check_statement(gap.example, gap.dialect)
        assert gap.name in report.gaps


def test_gap_rewrites_do_not_touch_other_dialects() -> None:
    # USING COLUMNS with two arguments is a Databricks gap only.
    with pytest.raises(SqlParseError):
        parse_statement("ALTER TABLE t ALTER COLUMN c SET MASK f USING COLUMNS (a, b)", "ansi")


# =================================================================================================
# Snowflake bodies in DuckDB
# =================================================================================================

GOV_TABLES: Tables = {
    "GOV.POLICIES.ACTIVE_PROJECT": (["user_name", "project_id"], [("ALICE", "p1")]),
    "GOV.POLICIES.PROJECT_MEMBER": (
        ["project_id", "user_name"],
        [("p1", "ALICE"), ("p1", "BOB")],
    ),
    "GOV.POLICIES.PROJECT_PURPOSE": (
        ["project_id", "purpose", "approved BOOLEAN"],
        [("p1", "Fraud Detection", True), ("p1", "Marketing", False)],
    ),
}

CARDS = [("4111111111111111",), ("5500000000000004",), (None,)]


@pytest.fixture
def duck() -> SnowflakeDuck:
    return SnowflakeDuck(GOV_TABLES)


def test_parse_policy_ddl() -> None:
    ddl = parse_policy_ddl(SF_CREATE_MASK + ";")
    assert ddl == PolicyDDL(
        kind="MASKING POLICY",
        name="GOV.POLICIES.MP_FRAUD_DETECTION__STRING",
        signature=(("val", "STRING"),),
        returns="STRING",
        body=SF_PURPOSE_BODY,
        comment="pac: rule=r1 hash=abc; -> not the body",
    )
    rap = parse_policy_ddl(
        "CREATE OR ALTER ROW ACCESS POLICY r AS (a NUMBER(10, 2), b VARCHAR) RETURNS BOOLEAN "
        "-> a > 1 AND b = 'COMMENT = x' EXEMPT_OTHER_POLICIES = TRUE"
    )
    assert rap.kind == "ROW ACCESS POLICY"
    assert rap.signature == (("a", "NUMBER(10, 2)"), ("b", "VARCHAR"))
    assert rap.body == "a > 1 AND b = 'COMMENT = x'"
    alter = parse_policy_ddl("ALTER MASKING POLICY IF EXISTS a.b SET BODY -> SHA2(val);")
    assert (alter.name, alter.signature, alter.returns, alter.body) == (
        "a.b",
        (),
        None,
        "SHA2(val)",
    )
    with pytest.raises(ValueError):
        parse_policy_ddl("CREATE TABLE t (a INT)")


def test_mask_flips_with_governance_rows(duck: SnowflakeDuck) -> None:
    ddl = parse_policy_ddl(SF_CREATE_MASK)
    clear = ["4111111111111111", "5500000000000004", "****"]
    masked = ["****", "****", "****"]
    # NULL is not `val`: the ELSE branch would mask it; the body returns val only when allowed
    assert duck.evaluate_policy(ddl, CARDS, user="ALICE") == [
        "4111111111111111",
        "5500000000000004",
        None,
    ]
    assert duck.evaluate_policy(ddl, CARDS, user="BOB") == masked  # member, no active project
    assert duck.evaluate_policy(ddl, CARDS, user="MALLORY") == masked  # nobody
    duck.set_table(*_spec("GOV.POLICIES.ACTIVE_PROJECT", []))
    assert duck.evaluate_policy(ddl, CARDS, user="ALICE") == masked  # negative control
    duck.set_table(*_spec("GOV.POLICIES.ACTIVE_PROJECT", [("ALICE", "p1"), ("BOB", "p1")]))
    assert duck.evaluate_policy(ddl, CARDS, user="BOB")[:2] == clear[:2]
    # purpose no longer approved => masked again
    duck.set_table(
        "GOV.POLICIES.PROJECT_PURPOSE",
        ["project_id", "purpose", "approved BOOLEAN"],
        [("p1", "Fraud Detection", False)],
    )
    assert duck.evaluate_policy(ddl, CARDS, user="BOB") == masked
    # a spoofed selector (active project the user is not a member of) grants nothing
    duck.set_tables(GOV_TABLES)
    duck.set_table(*_spec("GOV.POLICIES.ACTIVE_PROJECT", [("MALLORY", "p1")]))
    assert duck.evaluate_policy(ddl, CARDS, user="MALLORY") == masked


def _spec(name: str, rows: list[tuple[str, str]]) -> tuple[str, list[str], list[tuple[str, str]]]:
    return name, ["user_name", "project_id"], rows


def test_row_access_policy_with_roles(duck: SnowflakeDuck) -> None:
    regions = [("EU",), ("US",), (None,)]
    sig = [("region", "VARCHAR")]
    assert duck.evaluate_rows(SF_RAP_BODY, regions, signature=sig, user="ALICE") == [
        True,
        False,
        None,
    ]
    assert duck.evaluate_rows(SF_RAP_BODY, regions, signature=sig, user="BOB") == [
        False,
        False,
        False,
    ]
    assert duck.evaluate_rows(
        SF_RAP_BODY, regions, signature=sig, user="BOB", roles={"ADMIN", "PUBLIC"}
    ) == [True, True, True]
    # the simulation compares role names exactly
    lower = duck.evaluate_rows(SF_RAP_BODY, regions, signature=sig, user="BOB", roles={"admin"})
    assert lower == [False, False, False]


def test_context_functions(duck: SnowflakeDuck) -> None:
    body = "CURRENT_USER() || ':' || CURRENT_ROLE() || ':' || IFF(IS_ROLE_IN_SESSION(r), 'y', 'n')"
    rows = [("ANALYST",), ("OTHER",)]
    values = duck.evaluate_rows(
        body, rows, signature=["r"], user="ALICE", roles=["ANALYST"], current_role="PUBLIC"
    )
    assert values == ["ALICE:PUBLIC:y", "ALICE:PUBLIC:n"]
    with pytest.raises(SnowflakeEvaluationError, match="current_role"):
        duck.evaluate("CURRENT_ROLE()", {}, user="ALICE")


EMAIL = "john.doe@example.com"
CARD = "4111111111111111"

FUNCTION_CASES: list[tuple[str, dict[str, object], dict[str, str], object]] = [
    ("SHA2(val)", {"val": CARD}, {}, hashlib.sha256(CARD.encode()).hexdigest()),
    ("SHA2(val, 256)", {"val": "é"}, {}, hashlib.sha256("é".encode()).hexdigest()),
    ("SHA2_HEX(val, 512)", {"val": CARD}, {}, hashlib.sha512(CARD.encode()).hexdigest()),
    ("SHA2(val, 224)", {"val": CARD}, {}, hashlib.sha224(CARD.encode()).hexdigest()),
    ("SHA2(val)", {"val": 123}, {"val": "NUMBER"}, hashlib.sha256(b"123").hexdigest()),
    ("SHA2(val)", {"val": None}, {"val": "STRING"}, None),
    ("MD5(val)", {"val": CARD}, {}, hashlib.md5(CARD.encode()).hexdigest()),
    ("REGEXP_REPLACE(val, '.+\\@', '*****@')", {"val": EMAIL}, {}, "*****@example.com"),
    ("REGEXP_REPLACE(val, '\\\\d', '#')", {"val": "a1b22"}, {}, "a#b##"),
    ("REGEXP_REPLACE(val, '\\d', '#')", {"val": "a1dd"}, {}, "a1##"),  # '\d' is 'd' in Snowflake
    ("REGEXP_REPLACE(val, 'X', '-', 1, 2)", {"val": "aXbXcX"}, {}, "aXb-cX"),
    ("REGEXP_REPLACE(val, 'x', '-', 3, 0, 'i')", {"val": "XaXbX"}, {}, "Xa-b-"),
    (
        "CONCAT(LEFT(val, 2), REPEAT('*', LENGTH(val) - 6), RIGHT(val, 4))",
        {"val": CARD},
        {},
        "41**********1111",
    ),
    ("LEFT(val, -1) || RIGHT(val, 0)", {"val": "abc"}, {}, ""),
    ("LENGTH(val)", {"val": "héllo"}, {}, 5),
    (
        "DATE_TRUNC('YEAR', val)",
        {"val": dt.date(2024, 5, 17)},
        {"val": "DATE"},
        dt.date(2024, 1, 1),
    ),
    (
        "DATE_TRUNC('MONTH', val)",
        {"val": dt.datetime(2024, 5, 17, 10, 11, 12)},
        {"val": "TIMESTAMP_NTZ"},
        dt.datetime(2024, 5, 1),
    ),
    ("ROUND(val)", {"val": 2.5}, {"val": "FLOAT"}, 3.0),
    ("ROUND(val)", {"val": -2.5}, {"val": "FLOAT"}, -3.0),
    (
        "ROUND(val, 1)",
        {"val": decimal.Decimal("-2.25")},
        {"val": "NUMBER(10,2)"},
        decimal.Decimal("-2.3"),
    ),
    ("ROUND(val, -2)", {"val": 1250}, {"val": "NUMBER"}, 1300),
    ("IFF(val > 10, 'big', 'small')", {"val": 11}, {"val": "NUMBER"}, "big"),
    ("NVL(val, 'none')", {"val": None}, {"val": "STRING"}, "none"),
    (
        "ARRAY_CONTAINS(val::VARIANT, ARRAY_CONSTRUCT('Fraud Detection', 'Marketing'))",
        {"val": "Marketing"},
        {},
        True,
    ),
    (
        "ARRAY_CONTAINS(val::VARIANT, (SELECT ARRAY_AGG(purpose) FROM GOV.POLICIES.PROJECT_PURPOSE"
        " WHERE approved))",
        {"val": "Marketing"},
        {},
        False,
    ),
]


@pytest.mark.parametrize(
    ("body", "args", "types", "expected"),
    FUNCTION_CASES,
    ids=[f"{i}:{c[0][:40]}" for i, c in enumerate(FUNCTION_CASES)],
)
def test_function_results_match_snowflake(
    duck: SnowflakeDuck, body: str, args: dict[str, object], types: dict[str, str], expected: object
) -> None:
    assert duck.evaluate(body, args, user="ALICE", arg_types=types) == expected


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("HASH(val)", "proprietary"),
        ("INVOKER_ROLE() = 'X'", "invoker_role"),
        ("$active_project = val", "session variables"),
        ("NO_SUCH_FN(val)", "no_such_fn"),
        ("CASE WHEN THEN val END", "cannot parse"),
    ],
)
def test_unsupported_bodies_fail_loudly(duck: SnowflakeDuck, body: str, message: str) -> None:
    with pytest.raises(SnowflakeEvaluationError, match=re.compile(message, re.IGNORECASE)):
        duck.evaluate(body, {"val": "x"}, user="ALICE")


def test_many_rows_in_one_query_keep_order(duck: SnowflakeDuck) -> None:
    rows = [{"val": f"v{i}", "n": i} for i in range(2000)]
    values = duck.evaluate_rows("val || ':' || TO_VARCHAR(n * 2)", rows, user="ALICE")
    assert values == [f"v{i}:{2 * i}" for i in range(2000)]
    assert duck.evaluate_rows("val", [], signature=["val"], user="ALICE") == []
    with pytest.raises(ValueError, match="signature"):
        duck.evaluate_rows("val", [("a",)], user="ALICE")


def test_returns_cast_and_two_part_tables() -> None:
    tables: Tables = {
        "veil.user_attribute": (["user_name", "attr", "value"], [("ALICE", "r", "EU")])
    }
    body = (
        "CASE WHEN EXISTS (SELECT 1 FROM veil.user_attribute a WHERE a.user_name = CURRENT_USER()"
        " AND a.value = region) THEN amount ELSE 0 END"
    )
    sig = [("amount", "NUMBER(10,2)"), ("region", "VARCHAR")]
    with SnowflakeDuck(tables) as duck:
        values = duck.evaluate_rows(
            body,
            [(12.345, "EU"), (12.345, "US")],
            signature=sig,
            user="ALICE",
            returns="NUMBER(10,2)",
        )
    assert values == [decimal.Decimal("12.35"), decimal.Decimal("0.00")]
    assert evaluate_body("CURRENT_USER() = u", {"u": "BOB"}, user="BOB", tables=tables) is True


def test_reset_drops_governance_tables(duck: SnowflakeDuck) -> None:
    body = (
        "EXISTS (SELECT 1 FROM GOV.POLICIES.ACTIVE_PROJECT ap WHERE ap.user_name = CURRENT_USER())"
    )
    assert duck.evaluate(body, {}, user="ALICE") is True
    duck.reset()
    with pytest.raises(SnowflakeEvaluationError, match="ACTIVE_PROJECT"):
        duck.evaluate(body, {}, user="ALICE")
    duck.set_tables(GOV_TABLES)
    assert duck.evaluate(body, {}, user="ALICE") is True


def test_transpiled_sql_is_inspectable() -> None:
    sql = to_duckdb_sql(SF_PURPOSE_BODY, [("val", "STRING")], user="ALICE", roles=["R"])
    assert "'ALICE'" in sql
    assert "CURRENT_USER" not in sql.upper()


# =================================================================================================
# Databricks functions in a local Spark
# =================================================================================================

DBX_TABLES: Tables = {
    "veil.active_project": (["user_name", "project_id"], [("alice", "p1")]),
    "veil.project_member": (["project_id", "user_name"], [("p1", "alice"), ("p1", "bob")]),
    "veil.project_purpose": (
        ["project_id", "purpose", "approved BOOLEAN"],
        [("p1", "Fraud Detection", True)],
    ),
}


@pytest.fixture(scope="session")
def spark_session() -> LocalSpark:
    return require_spark()


@pytest.fixture
def spark(spark_session: LocalSpark) -> LocalSpark:
    spark_session.reset()
    return spark_session


def test_require_spark_skips_or_fails_without_pyspark(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(spark_local, "_SESSION", None)
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *args: None)
    monkeypatch.setenv("CI", "false")
    with pytest.raises(pytest.skip.Exception, match="pyspark is not installed"):
        require_spark()
    monkeypatch.setenv("CI", "true")
    with pytest.raises(pytest.fail.Exception, match="required when CI=true"):
        require_spark()


def test_function_statements() -> None:
    names = [
        m.group(1)
        for s in function_statements(DATABRICKS_SCRIPT)
        if (m := re.search(r"FUNCTION\s+(\S+)\(", s)) is not None
    ]
    assert names == ["veil.purpose_active", "veil.mask_string_unless_purpose", "veil.rf_cards"]


@pytest.mark.spark
def test_spark_mask_flips_with_user_and_rows(spark: LocalSpark) -> None:
    spark.set_tables(DBX_TABLES)
    spark.create_functions(DATABRICKS_SCRIPT)
    rows = [("4111", "Fraud Detection"), (None, "Fraud Detection"), ("4111", "Marketing")]
    fn = "veil.mask_string_unless_purpose"
    assert spark.evaluate(fn, rows, user="alice") == ["4111", None, "****"]
    assert spark.evaluate(fn, rows, user="bob") == ["****", "****", "****"]
    spark.set_table("veil.active_project", ["user_name", "project_id"], [("bob", "p1")])
    assert spark.evaluate(fn, rows, user="bob") == ["4111", None, "****"]
    assert spark.evaluate(fn, rows, user="alice") == ["****", "****", "****"]  # negative control
    assert spark.current_user() == spark.os_user  # user simulation does not leak


@pytest.mark.spark
def test_spark_row_filter_with_group_stubs(spark: LocalSpark) -> None:
    spark.set_tables(DBX_TABLES)
    spark.create_functions(DATABRICKS_SCRIPT)
    regions = [("EU",), ("US",), (None,)]
    assert spark.filter_rows("veil.rf_cards", regions, user="carol") == [("EU",)]
    spark.set_groups(account=[("carol", "admins")], workspace=[("dave", "admins")])
    assert spark.filter_rows("veil.rf_cards", regions, user="carol") == regions
    assert spark.filter_rows("veil.rf_cards", regions, user="dave") == [("EU",)]
    assert spark.sql("SELECT is_member('admins')") == [(False,)]
    with spark.as_user("dave"):
        assert spark.sql("SELECT is_member('admins'), current_user()") == [(True, "dave")]


@pytest.mark.spark
def test_spark_rejects_broken_and_temp_references(spark: LocalSpark) -> None:
    with pytest.raises(SparkSQLError) as info:
        spark.create_function(
            "CREATE FUNCTION veil.bad(val STRING) RETURNS STRING RETURN CASE WHEN THEN val END"
        )
    assert info.value.condition == "PARSE_SYNTAX_ERROR"
    spark.sql("CREATE OR REPLACE TEMPORARY FUNCTION tmp_fn() RETURNS STRING RETURN 'x'")
    with pytest.raises(SparkSQLError) as info:
        spark.create_function("CREATE FUNCTION veil.uses_tmp() RETURNS STRING RETURN tmp_fn()")
    assert info.value.condition == "INVALID_TEMP_OBJ_REFERENCE"
    with pytest.raises(SparkSQLError) as info:
        spark.sql("ALTER TABLE t ALTER COLUMN c SET MASK veil.f USING COLUMNS ('x')")
    assert info.value.condition == "PARSE_SYNTAX_ERROR"


@pytest.mark.spark
def test_spark_set_table_fills_existing_tables(spark: LocalSpark) -> None:
    spark.ensure_schema("veil")
    spark.sql(
        "CREATE TABLE veil.project_member (project_id STRING, user_name STRING) USING parquet"
    )
    spark.set_table("veil.project_member", ["project_id", "user_name"], [("p1", "erin")])
    spark.set_table("veil.project_member", ["project_id", "user_name"], [("p2", "erin")])
    assert spark.sql("SELECT * FROM veil.project_member") == [("p2", "erin")]
    spark.set_table("veil.empty_view", ["a STRING", "b BOOLEAN"], [])
    assert spark.sql("SELECT count(*) FROM veil.empty_view") == [(0,)]


@pytest.mark.spark
def test_spark_literals_round_trip(spark: LocalSpark) -> None:
    values: list[object] = [
        "it's a \\ back'slash",
        "ünïcode ✓",
        "",
        None,
        True,
        7,
        2**40,
        1.5,
        decimal.Decimal("12.34"),
        dt.date(2024, 2, 29),
        dt.datetime(2024, 2, 29, 12, 30, 1),
    ]
    for value in values:
        assert spark.sql(f"SELECT {sql_literal(value)}") == [(value,)], value
