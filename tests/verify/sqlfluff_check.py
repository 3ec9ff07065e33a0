"""Grammar checks of generated Snowflake / Databricks SQL with sqlfluff's parser, offline.

* :func:`split_statements` cuts a generated script into statements on top-level ``;``.
* :func:`parse_statement` parses one statement and raises :class:`SqlParseError` (naming the
  unparsable section) when sqlfluff cannot parse it; :func:`check_statement` does the same and
  returns a :class:`ParseReport`; :func:`parse_script` checks every statement of a script.
* :data:`KNOWN_GAPS` lists syntax that the vendor documents as valid but sqlfluff cannot parse
  yet. A statement that fails only because of such a construct is rewritten by the gap's
  ``replacement`` into syntax sqlfluff parses (so the rest of it is still checked); a gap without a
  replacement accepts the statement when it matches the gap's pattern as a whole.
* :data:`SQLFLUFF_SUPPORT` records, for every construct veil emits, whether the installed sqlfluff
  parses it (measured with sqlfluff 4.5.0; ``tests/verify/test_verify.py`` re-checks every row).

Snowflake bodies in ``$$ … $$`` (or ``'…'``) are string literals to sqlfluff, so a broken
Snowflake Scripting procedure would pass unnoticed: :func:`check_statement` extracts the body of a
``LANGUAGE SQL`` procedure, of a SQL UDF and of ``EXECUTE IMMEDIATE`` and parses it too.
Databricks procedure bodies (``AS BEGIN … END``) are plain SQL and parsed with the statement.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import cache

from sqlfluff.core import FluffConfig, Linter

__all__ = [
    "KNOWN_GAPS",
    "SQLFLUFF_SUPPORT",
    "KnownGap",
    "ParseReport",
    "SqlParseError",
    "SupportRow",
    "check_statement",
    "parse_script",
    "parse_statement",
    "split_statements",
    "sqlfluff_parses",
]

# -------------------------------------------------------------------------------------------------
# Splitting scripts
# -------------------------------------------------------------------------------------------------

_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
_DOLLAR_TAG = re.compile(r"\$(?:[A-Za-z_][A-Za-z0-9_]*)?\$")
# `BEGIN` followed by one of these starts a transaction, not a block.
_BEGIN_TRANSACTION = frozenset({"", ";", "TRANSACTION", "WORK", "NAME", "ISOLATION"})
# `END` followed by one of these closes a construct that was not counted as an opener.
_END_UNCOUNTED = frozenset({"IF", "LOOP", "WHILE", "FOR", "REPEAT"})


def _skip_string(script: str, i: int, quote: str, backslash_escapes: bool) -> int:
    """Index just past the quoted token that starts at ``script[i] == quote``."""
    j = i + 1
    n = len(script)
    while j < n:
        c = script[j]
        if c == "\\" and backslash_escapes and quote == "'":
            j += 2
            continue
        if c == quote:
            if j + 1 < n and script[j + 1] == quote:  # doubled quote = escaped quote
                j += 2
                continue
            return j + 1
        j += 1
    line = script.count("\n", 0, i) + 1
    raise ValueError(f"unterminated {quote}-quoted text starting on line {line}")


def _skip_space_and_comments(script: str, i: int) -> int:
    n = len(script)
    while i < n:
        if script[i].isspace():
            i += 1
        elif script.startswith("--", i):
            end = script.find("\n", i)
            i = n if end < 0 else end + 1
        elif script.startswith("/*", i):
            end = script.find("*/", i + 2)
            if end < 0:
                line = script.count("\n", 0, i) + 1
                raise ValueError(f"unterminated /* comment starting on line {line}")
            i = end + 2
        else:
            break
    return i


def _next_token(script: str, i: int) -> str:
    """The next word (upper-cased) or punctuation character after ``i``; ``""`` at the end."""
    i = _skip_space_and_comments(script, i)
    if i >= len(script):
        return ""
    m = _WORD.match(script, i)
    return m.group(0).upper() if m else script[i]


def split_statements(
    script: str, *, backslash_escapes: bool = True, strip_comments: bool = True
) -> list[str]:
    """Split ``script`` on top-level ``;`` into statements (without the ``;``, stripped).

    Respects ``'…'`` strings (doubled quotes and, if ``backslash_escapes`` — Snowflake and
    Databricks, not PostgreSQL — backslash escapes), ``"…"`` and ```…``` identifiers,
    ``$$ … $$`` / ``$tag$ … $tag$`` bodies, ``--`` and ``/* */`` comments, and ``;`` inside
    ``BEGIN … END`` compound statements (Databricks procedures, Snowflake anonymous blocks) and
    ``CASE … END``. ``BEGIN;`` / ``BEGIN TRANSACTION`` stay transaction statements. Not
    supported: a top-level Snowflake ``DECLARE … BEGIN … END`` block (its ``DECLARE`` section
    ends at the first ``;``) — wrap it in ``EXECUTE IMMEDIATE $$ … $$``.

    Chunks holding only comments are dropped; with ``strip_comments`` (the default) comments
    before a statement's first token are removed too, so each item starts with its keyword.
    """
    statements: list[str] = []
    n = len(script)
    i = 0
    start = 0
    depth = 0
    code_start = -1  # index of the first token of the current statement
    prev_sig = ""  # previous significant character (to tell `a.end` from `END`)

    def flush(end: int) -> None:
        nonlocal code_start
        if code_start >= 0:
            text = script[code_start if strip_comments else start : end].strip()
            if text:
                statements.append(text)
        code_start = -1

    while i < n:
        c = script[i]
        if c.isspace():
            i += 1
            continue
        if script.startswith("--", i) or script.startswith("/*", i):
            i = _skip_space_and_comments(script, i)
            continue
        if code_start < 0 and c != ";":
            code_start = i
        if c in "'\"`":
            i = _skip_string(script, i, c, backslash_escapes)
            prev_sig = c
            continue
        if c == "$":
            m = _DOLLAR_TAG.match(script, i)
            if m is not None and not (i > 0 and (script[i - 1].isalnum() or script[i - 1] == "_")):
                tag = m.group(0)
                end = script.find(tag, m.end())
                if end < 0:
                    line = script.count("\n", 0, i) + 1
                    raise ValueError(f"unterminated {tag} body starting on line {line}")
                i = end + len(tag)
                prev_sig = "$"
                continue
        m = _WORD.match(script, i)
        if m is not None:
            word = m.group(0).upper()
            if prev_sig != ".":
                if word == "BEGIN":
                    if _next_token(script, m.end()) not in _BEGIN_TRANSACTION:
                        depth += 1
                elif word == "CASE":
                    depth += 1
                elif (
                    word == "END"
                    and depth > 0
                    and _next_token(script, m.end()) not in _END_UNCOUNTED
                ):
                    depth -= 1
            i = m.end()
            prev_sig = "w"
            continue
        if c == ";" and depth == 0:
            flush(i)
            start = i + 1
        prev_sig = c
        i += 1
    flush(n)
    return statements


# -------------------------------------------------------------------------------------------------
# Known sqlfluff gaps
# -------------------------------------------------------------------------------------------------

# One argument of Databricks `USING COLUMNS (…)` / `ON (…)`: a name or a constant literal.
_ARG = r"(?:[^,()'`]|'(?:[^'\\]|\\.)*'|`[^`]*`)+"
_NAME = r"(?:[A-Za-z_][\w$]*|\"(?:[^\"]|\"\")*\"|`[^`]*`)"
_QNAME = rf"{_NAME}(?:\s*\.\s*{_NAME})*"


@dataclass(frozen=True)
class KnownGap:
    """Syntax that the vendor documents as valid but sqlfluff cannot parse yet.

    ``pattern`` (case-insensitive, ``re.DOTALL``) detects the construct in one statement.
    ``replacement`` (``re.sub`` template) turns it into syntax sqlfluff parses, so the rest of the
    statement is still checked; with ``replacement=None`` the whole statement must match
    ``pattern`` (``re.fullmatch``) and is then accepted without sqlfluff.
    ``example`` is a vendor-documented statement that sqlfluff rejects (re-checked by the tests).
    ``scope`` (optional regex) restricts the gap to statements it matches.
    """

    name: str
    dialect: str
    construct: str
    pattern: str
    doc_url: str
    example: str
    replacement: str | None = None
    scope: str | None = None  # if set, the gap applies only to statements matching it (search)

    def regex(self) -> re.Pattern[str]:
        return re.compile(self.pattern, re.IGNORECASE | re.DOTALL)

    def applies_to(self, statement: str) -> bool:
        if self.scope is not None and not re.search(
            self.scope, statement, re.IGNORECASE | re.DOTALL
        ):
            return False
        rx = self.regex()
        if self.replacement is None:
            return rx.fullmatch(statement.strip()) is not None
        return rx.search(statement) is not None

    def rewrite(self, statement: str) -> str:
        if self.replacement is None:
            return statement
        return self.regex().sub(self.replacement, statement)


KNOWN_GAPS: tuple[KnownGap, ...] = (
    KnownGap(
        name="sf_exempt_other_policies",
        dialect="snowflake",
        construct="CREATE MASKING POLICY … EXEMPT_OTHER_POLICIES = TRUE|FALSE",
        pattern=r"\s+EXEMPT_OTHER_POLICIES\s*=\s*(?:TRUE|FALSE)\b",
        replacement="",
        doc_url="https://docs.snowflake.com/en/sql-reference/sql/create-masking-policy",
        example=(
            "CREATE MASKING POLICY IF NOT EXISTS veil.mp AS (val STRING) RETURNS STRING -> val "
            "COMMENT = 'x' EXEMPT_OTHER_POLICIES = TRUE"
        ),
    ),
    KnownGap(
        name="sf_create_or_alter_masking_policy",
        dialect="snowflake",
        construct="CREATE OR ALTER MASKING POLICY (a documented variant of CREATE MASKING POLICY)",
        pattern=r"^(\s*CREATE\s+)OR\s+ALTER(\s+MASKING\s+POLICY\b)",
        replacement=r"\1OR REPLACE\2",
        doc_url="https://docs.snowflake.com/en/sql-reference/sql/create-masking-policy",
        example="CREATE OR ALTER MASKING POLICY veil.mp AS (val STRING) RETURNS STRING -> val",
    ),
    KnownGap(
        name="sf_create_or_alter_row_access_policy",
        dialect="snowflake",
        construct="CREATE OR ALTER ROW ACCESS POLICY (a documented variant of CREATE ROW ACCESS"
        " POLICY)",
        pattern=r"^(\s*CREATE\s+)OR\s+ALTER(\s+ROW\s+ACCESS\s+POLICY\b)",
        replacement=r"\1OR REPLACE\2",
        doc_url="https://docs.snowflake.com/en/sql-reference/sql/create-row-access-policy",
        example=(
            "CREATE OR ALTER ROW ACCESS POLICY veil.rap AS (region VARCHAR) RETURNS BOOLEAN -> TRUE"
        ),
    ),
    KnownGap(
        name="sf_drop_masking_policy",
        dialect="snowflake",
        construct="DROP MASKING POLICY IF EXISTS <name> / DROP MASKING POLICY <qualified name>"
        " (sqlfluff parses only `DROP MASKING POLICY <unqualified name>`)",
        pattern=rf"^(\s*DROP\s+MASKING\s+POLICY\s+)(?:IF\s+EXISTS\s+)?(?:{_NAME}\s*\.\s*)*({_NAME})",
        replacement=r"\1\2",
        doc_url="https://docs.snowflake.com/en/sql-reference/sql/drop-masking-policy",
        example="DROP MASKING POLICY IF EXISTS gov.policies.mp_credit_card",
    ),
    KnownGap(
        name="sf_alter_tag_set_masking_policy_force",
        dialect="snowflake",
        construct="ALTER TAG … SET MASKING POLICY … FORCE",
        pattern=r"^(\s*ALTER\s+TAG\b.*\bSET\s+MASKING\s+POLICY\b.*?)\s+FORCE\s*$",
        replacement=r"\1",
        doc_url="https://docs.snowflake.com/en/sql-reference/sql/alter-tag",
        example="ALTER TAG gov.tags.pii SET MASKING POLICY mp_string FORCE",
    ),
    KnownGap(
        name="sf_alter_tag_qualified_masking_policy",
        dialect="snowflake",
        construct="ALTER TAG … SET|UNSET MASKING POLICY <qualified name>"
        " (sqlfluff parses only unqualified policy names there)",
        scope=r"^\s*ALTER\s+TAG\b",
        pattern=rf"(\bMASKING\s+POLICY\s+)(?:{_NAME}\s*\.\s*)+({_NAME})",
        replacement=r"\1\2",
        doc_url="https://docs.snowflake.com/en/sql-reference/sql/alter-tag",
        example="ALTER TAG gov.tags.pii SET MASKING POLICY gov.policies.mp_string",
    ),
    KnownGap(
        name="dbx_using_columns_many",
        dialect="databricks",
        construct="ALTER COLUMN … SET MASK f USING COLUMNS (a, b, …) — more than one argument"
        " (one argument parses)",
        pattern=rf"(\bUSING\s+COLUMNS\s*\(\s*{_ARG}?)(?:\s*,\s*{_ARG})+(\s*\))",
        replacement=r"\1\2",
        doc_url="https://docs.databricks.com/aws/en/sql/language-manual/sql-ref-syntax-ddl-column-mask",
        example=(
            "ALTER TABLE main.s.cards ALTER COLUMN email SET MASK veil.mask_email "
            "USING COLUMNS (visibility, 'Fraud Detection')"
        ),
    ),
    KnownGap(
        name="dbx_create_table_with_row_filter",
        dialect="databricks",
        construct="CREATE TABLE … WITH ROW FILTER f ON (…)",
        pattern=rf"\s+WITH\s+ROW\s+FILTER\s+{_QNAME}\s+ON\s*\((?:\s*{_ARG}(?:\s*,\s*{_ARG})*)?\s*\)",
        replacement="",
        doc_url="https://docs.databricks.com/aws/en/sql/language-manual/sql-ref-syntax-ddl-row-filter",
        example=(
            "CREATE TABLE main.s.persons (name STRING, region STRING) "
            "WITH ROW FILTER veil.rf_persons ON (region)"
        ),
    ),
    KnownGap(
        name="dbx_create_procedure_no_parameters",
        dialect="databricks",
        construct="CREATE PROCEDURE p() … — an empty parameter list",
        pattern=rf"^(\s*CREATE\s+(?:OR\s+REPLACE\s+)?PROCEDURE\s+(?:IF\s+NOT\s+EXISTS\s+)?{_QNAME}\s*)"
        r"\(\s*\)",
        replacement=r"\1(veil_sqlfluff_placeholder INT)",
        doc_url="https://docs.databricks.com/aws/en/sql/language-manual/sql-ref-syntax-ddl-create-procedure",
        example="CREATE PROCEDURE veil.p() LANGUAGE SQL SQL SECURITY INVOKER "
        "AS BEGIN SELECT 1; END",
    ),
    KnownGap(
        name="dbx_create_policy",
        dialect="databricks",
        construct="CREATE [OR REPLACE] POLICY … ON {CATALOG|SCHEMA|TABLE} … (ABAC)",
        pattern=rf"\s*CREATE\s+(?:OR\s+REPLACE\s+)?POLICY\s+{_NAME}\s+ON\s+(?:CATALOG|SCHEMA|TABLE)"
        rf"\s+{_QNAME}\s+(?:COMMENT\s+'(?:[^'\\]|\\.)*'\s+)?(?:ROW\s+FILTER|COLUMN\s+MASK)\s+{_QNAME}"
        r"\s+TO\s+.+\s+FOR\s+TABLES\b.*",
        doc_url="https://docs.databricks.com/aws/en/sql/language-manual/sql-ref-syntax-ddl-create-policy",
        example=(
            "CREATE POLICY mask_ssn ON SCHEMA prod.customers COLUMN MASK veil.ssn_mask "
            "TO `account users` EXCEPT admins FOR TABLES "
            "MATCH COLUMNS has_tag_value('pii', 'ssn') AS ssn ON COLUMN ssn"
        ),
    ),
    KnownGap(
        name="dbx_drop_policy",
        dialect="databricks",
        construct="DROP POLICY p ON {CATALOG|SCHEMA|TABLE} … (ABAC)",
        pattern=rf"\s*DROP\s+POLICY\s+(?:IF\s+EXISTS\s+)?{_NAME}\s+ON\s+"
        rf"(?:METASTORE|(?:CATALOG|SCHEMA|TABLE)\s+{_QNAME})\s*",
        doc_url="https://docs.databricks.com/aws/en/sql/language-manual/sql-ref-syntax-ddl-drop-policy",
        example="DROP POLICY mask_ssn ON SCHEMA prod.customers",
    ),
)


# -------------------------------------------------------------------------------------------------
# What sqlfluff 4.5.0 parses (measured; re-checked by test_verify.py)
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SupportRow:
    """One construct veil may emit, and whether plain sqlfluff parses it.

    ``gap`` names the :data:`KNOWN_GAPS` entry that covers a construct sqlfluff rejects although
    the vendor documents it; ``note`` explains anything else (e.g. a rejected statement that the
    vendor does *not* document, which is then a real error, not a gap).
    """

    dialect: str
    construct: str
    example: str
    parses: bool
    gap: str | None = None
    note: str = ""


_SF_PROC = """CREATE OR REPLACE PROCEDURE veil.use_project(project_id VARCHAR)
RETURNS VARCHAR
LANGUAGE SQL
EXECUTE AS OWNER
AS
$$
BEGIN
  IF (NOT EXISTS (SELECT 1 FROM veil.project_member m
                  WHERE m.project_id = :project_id AND m.user_name = CURRENT_USER())) THEN
    RETURN 'not a member';
  END IF;
  MERGE INTO veil.active_project t
    USING (SELECT CURRENT_USER() AS user_name, :project_id AS project_id) s
    ON t.user_name = s.user_name
    WHEN MATCHED THEN UPDATE SET project_id = s.project_id
    WHEN NOT MATCHED THEN INSERT (user_name, project_id) VALUES (s.user_name, s.project_id);
  RETURN 'ok';
END;
$$"""

_DBX_PROC = """CREATE OR REPLACE PROCEDURE veil.use_project(project STRING)
LANGUAGE SQL
SQL SECURITY DEFINER
AS BEGIN
  IF NOT EXISTS (SELECT 1 FROM veil.project_member m
                 WHERE m.project_id = project AND m.user_name = current_user()) THEN
    SIGNAL SQLSTATE '42501' SET MESSAGE_TEXT = 'not a member';
  END IF;
  MERGE INTO veil.active_project t
    USING (SELECT current_user() AS user_name, project AS project_id) s
    ON t.user_name = s.user_name
    WHEN MATCHED THEN UPDATE SET t.project_id = s.project_id
    WHEN NOT MATCHED THEN INSERT (user_name, project_id) VALUES (s.user_name, s.project_id);
END"""


def _example(gap_name: str) -> str:
    return next(g.example for g in KNOWN_GAPS if g.name == gap_name)


SQLFLUFF_SUPPORT: tuple[SupportRow, ...] = (
    # ---- Snowflake ------------------------------------------------------------------------------
    SupportRow(
        "snowflake",
        "CREATE MASKING POLICY IF NOT EXISTS … COMMENT = '…'",
        "CREATE MASKING POLICY IF NOT EXISTS GOV.P.MP AS (val STRING) RETURNS STRING -> "
        "CASE WHEN EXISTS (SELECT 1 FROM veil.active_project ap "
        "WHERE ap.user_name = CURRENT_USER()) THEN val ELSE '****' END COMMENT = 'veil'",
        True,
    ),
    SupportRow(
        "snowflake",
        "CREATE MASKING POLICY … EXEMPT_OTHER_POLICIES = …",
        _example("sf_exempt_other_policies"),
        False,
        gap="sf_exempt_other_policies",
    ),
    SupportRow(
        "snowflake",
        "CREATE OR REPLACE MASKING POLICY",
        "CREATE OR REPLACE MASKING POLICY veil.mp AS (val NUMBER(38,0), r VARCHAR) "
        "RETURNS NUMBER(38,0) -> IFF(IS_ROLE_IN_SESSION('ADMIN'), val, NULL)",
        True,
    ),
    SupportRow(
        "snowflake",
        "CREATE OR ALTER MASKING POLICY",
        _example("sf_create_or_alter_masking_policy"),
        False,
        gap="sf_create_or_alter_masking_policy",
    ),
    SupportRow(
        "snowflake",
        "ALTER MASKING POLICY [IF EXISTS] … SET BODY ->",
        "ALTER MASKING POLICY IF EXISTS veil.mp SET BODY -> "
        "CASE WHEN IS_ROLE_IN_SESSION('ANALYST') THEN val ELSE SHA2(val, 256) END",
        True,
    ),
    SupportRow(
        "snowflake",
        "ALTER MASKING POLICY … SET COMMENT = '…'",
        "ALTER MASKING POLICY veil.mp SET COMMENT = 'veil'",
        True,
    ),
    SupportRow(
        "snowflake",
        "ALTER MASKING POLICY … SET BODY -> … COMMENT = '…' (one statement)",
        "ALTER MASKING POLICY veil.mp SET BODY -> val COMMENT = 'x'",
        False,
        note="not documented either (SET BODY and SET COMMENT are separate statements): a real"
        " error, not a gap",
    ),
    SupportRow(
        "snowflake",
        "ALTER TABLE … MODIFY COLUMN … SET MASKING POLICY … USING (…) FORCE",
        "ALTER TABLE DB.S.CARDS MODIFY COLUMN CREDIT_CARD SET MASKING POLICY GOV.P.MP "
        "USING (CREDIT_CARD, REGION) FORCE",
        True,
    ),
    SupportRow(
        "snowflake",
        "ALTER TABLE … MODIFY COLUMN a SET …, COLUMN b SET … / UNSET MASKING POLICY",
        "ALTER TABLE t MODIFY COLUMN a SET MASKING POLICY p FORCE, COLUMN b UNSET MASKING POLICY",
        True,
    ),
    SupportRow(
        "snowflake",
        "CREATE ROW ACCESS POLICY IF NOT EXISTS … COMMENT",
        "CREATE ROW ACCESS POLICY IF NOT EXISTS GOV.P.RAP AS (region VARCHAR) RETURNS BOOLEAN -> "
        "IS_ROLE_IN_SESSION('ADMIN') OR region = 'EU' COMMENT = 'veil'",
        True,
    ),
    SupportRow(
        "snowflake",
        "CREATE OR ALTER ROW ACCESS POLICY",
        _example("sf_create_or_alter_row_access_policy"),
        False,
        gap="sf_create_or_alter_row_access_policy",
    ),
    SupportRow(
        "snowflake",
        "ALTER ROW ACCESS POLICY [IF EXISTS] … SET BODY ->",
        "ALTER ROW ACCESS POLICY IF EXISTS GOV.P.RAP SET BODY -> region = 'EU' AND EXISTS "
        "(SELECT 1 FROM veil.active_project a WHERE a.user_name = CURRENT_USER())",
        True,
    ),
    SupportRow(
        "snowflake",
        "ALTER TABLE … DROP ROW ACCESS POLICY a, ADD ROW ACCESS POLICY b ON (c)",
        "ALTER TABLE DB.S.CARDS DROP ROW ACCESS POLICY GOV.P.RAP_A, "
        "ADD ROW ACCESS POLICY GOV.P.RAP_B ON (REGION)",
        True,
    ),
    SupportRow(
        "snowflake",
        "ALTER TABLE … ADD ROW ACCESS POLICY … ON (a, b) / DROP ALL ROW ACCESS POLICIES",
        "ALTER TABLE DB.S.CARDS ADD ROW ACCESS POLICY GOV.P.RAP ON (REGION, COUNTRY)",
        True,
    ),
    SupportRow(
        "snowflake",
        "DROP ROW ACCESS POLICY IF EXISTS <qualified name>",
        "DROP ROW ACCESS POLICY IF EXISTS gov.policies.rap_cards",
        True,
    ),
    SupportRow(
        "snowflake",
        "DROP MASKING POLICY IF EXISTS / qualified name",
        _example("sf_drop_masking_policy"),
        False,
        gap="sf_drop_masking_policy",
    ),
    SupportRow(
        "snowflake",
        "ALTER TAG … SET MASKING POLICY … FORCE",
        _example("sf_alter_tag_set_masking_policy_force"),
        False,
        gap="sf_alter_tag_set_masking_policy_force",
    ),
    SupportRow(
        "snowflake",
        "ALTER TAG … SET MASKING POLICY <qualified name>",
        _example("sf_alter_tag_qualified_masking_policy"),
        False,
        gap="sf_alter_tag_qualified_masking_policy",
    ),
    SupportRow(
        "snowflake",
        "CREATE PROCEDURE … LANGUAGE SQL EXECUTE AS OWNER AS $$ <Snowflake Scripting> $$",
        _SF_PROC,
        True,
        note="sqlfluff sees the $$ body as a string literal (garbage inside passes);"
        " check_statement parses the body separately, and sqlfluff does parse Snowflake"
        " Scripting (BEGIN/IF/LET/RETURN/:bind) there",
    ),
    SupportRow(
        "snowflake",
        "CREATE FUNCTION … RETURNS ARRAY MEMOIZABLE AS $$ … $$",
        "CREATE OR REPLACE FUNCTION veil.active_purposes() RETURNS ARRAY MEMOIZABLE AS "
        "$$ SELECT ARRAY_AGG(purpose) FROM veil.project_purpose $$",
        True,
    ),
    SupportRow(
        "snowflake",
        "MERGE INTO … USING (SELECT … FROM VALUES …) … WHEN MATCHED / NOT MATCHED",
        "MERGE INTO veil.project t USING (SELECT column1 AS project_id FROM VALUES ('p1'), ('p2')) "
        "s ON t.project_id = s.project_id WHEN MATCHED THEN UPDATE SET t.project_id = "
        "s.project_id WHEN NOT MATCHED THEN INSERT (project_id) VALUES (s.project_id)",
        True,
    ),
    SupportRow(
        "snowflake",
        "CREATE TABLE IF NOT EXISTS (… DEFAULT CURRENT_TIMESTAMP(), PRIMARY KEY)",
        "CREATE TABLE IF NOT EXISTS veil.project_member (project_id VARCHAR NOT NULL, "
        "user_name VARCHAR NOT NULL, added_at TIMESTAMP_LTZ DEFAULT CURRENT_TIMESTAMP(), "
        "PRIMARY KEY (project_id, user_name))",
        True,
    ),
    SupportRow(
        "snowflake",
        "CREATE SCHEMA IF NOT EXISTS (qualified)",
        "CREATE SCHEMA IF NOT EXISTS gov.veil",
        True,
    ),
    SupportRow(
        "snowflake",
        "DELETE … WHERE (a, b) NOT IN ((…), (…))",
        "DELETE FROM veil.project_member WHERE (project_id, user_name) NOT IN "
        "(('p1', 'ALICE'), ('p2', 'BOB'))",
        True,
    ),
    SupportRow(
        "snowflake",
        "INSERT … SELECT … WHERE NOT EXISTS",
        "INSERT INTO veil.project (project_id) SELECT v.project_id FROM (VALUES ('p1'), ('p2')) "
        "AS v (project_id) WHERE NOT EXISTS "
        "(SELECT 1 FROM veil.project p WHERE p.project_id = v.project_id)",
        True,
    ),
    SupportRow(
        "snowflake",
        "GRANT USAGE ON PROCEDURE … / REVOKE ALL … FROM ROLE",
        "GRANT USAGE ON PROCEDURE veil.use_project(VARCHAR) TO ROLE PUBLIC",
        True,
    ),
    # ---- Databricks -----------------------------------------------------------------------------
    SupportRow(
        "databricks",
        "CREATE OR REPLACE FUNCTION … RETURNS … RETURN <expr with EXISTS>",
        "CREATE OR REPLACE FUNCTION veil.purpose_active(p STRING) RETURNS BOOLEAN RETURN EXISTS "
        "(SELECT 1 FROM veil.active_project ap JOIN veil.project_member m ON m.project_id = "
        "ap.project_id AND m.user_name = ap.user_name WHERE ap.user_name = current_user())",
        True,
    ),
    SupportRow(
        "databricks",
        "CREATE FUNCTION … COMMENT '…' / [NOT] DETERMINISTIC / READS SQL DATA",
        "CREATE OR REPLACE FUNCTION veil.f(val STRING) RETURNS STRING NOT DETERMINISTIC "
        "READS SQL DATA COMMENT 'veil' RETURN val",
        True,
    ),
    SupportRow(
        "databricks",
        "CREATE FUNCTION … SQL SECURITY DEFINER",
        "CREATE OR REPLACE FUNCTION veil.f(val STRING) RETURNS STRING SQL SECURITY DEFINER "
        "RETURN val",
        False,
        note="not a documented characteristic of CREATE FUNCTION (only of CREATE PROCEDURE):"
        " a real error, not a gap",
    ),
    SupportRow(
        "databricks",
        "ALTER TABLE … ALTER COLUMN … SET MASK f",
        "ALTER TABLE main.s.cards ALTER COLUMN credit_card SET MASK veil.mask_str",
        True,
    ),
    SupportRow(
        "databricks",
        "… SET MASK f USING COLUMNS (<one argument>)",
        "ALTER TABLE main.s.cards ALTER COLUMN credit_card SET MASK veil.mask_str "
        "USING COLUMNS ('Fraud Detection')",
        True,
    ),
    SupportRow(
        "databricks",
        "… SET MASK f USING COLUMNS (<two or more arguments>)",
        _example("dbx_using_columns_many"),
        False,
        gap="dbx_using_columns_many",
    ),
    SupportRow(
        "databricks",
        "ALTER TABLE … ALTER COLUMN … DROP MASK / DROP ROW FILTER",
        "ALTER TABLE main.s.cards ALTER COLUMN credit_card DROP MASK",
        True,
    ),
    SupportRow(
        "databricks",
        "ALTER TABLE … SET ROW FILTER f ON (col, 'literal', 1) / ON ()",
        "ALTER TABLE main.s.cards SET ROW FILTER veil.rf_cards ON (region, 'Fraud Detection', 1)",
        True,
    ),
    SupportRow(
        "databricks",
        "CREATE TABLE … WITH ROW FILTER f ON (…)",
        _example("dbx_create_table_with_row_filter"),
        False,
        gap="dbx_create_table_with_row_filter",
    ),
    SupportRow(
        "databricks",
        "CREATE PROCEDURE p(x …) LANGUAGE SQL SQL SECURITY DEFINER AS BEGIN … END",
        _DBX_PROC,
        True,
        note="the compound body is parsed (IF/SIGNAL/MERGE); garbage inside fails",
    ),
    SupportRow(
        "databricks",
        "CREATE PROCEDURE p() … (no parameters)",
        _example("dbx_create_procedure_no_parameters"),
        False,
        gap="dbx_create_procedure_no_parameters",
    ),
    SupportRow(
        "databricks",
        "MERGE INTO … USING (VALUES …) … WHEN NOT MATCHED BY SOURCE THEN DELETE",
        "MERGE INTO veil.project t USING (VALUES ('p1'), ('p2')) AS s(project_id) "
        "ON t.project_id = s.project_id WHEN NOT MATCHED THEN INSERT (project_id) "
        "VALUES (s.project_id) WHEN NOT MATCHED BY SOURCE THEN DELETE",
        True,
    ),
    SupportRow(
        "databricks",
        "CREATE TABLE / CREATE SCHEMA IF NOT EXISTS, DELETE … NOT IN, INSERT … WHERE NOT EXISTS",
        "INSERT INTO veil.project (project_id) SELECT 'p1' WHERE NOT EXISTS "
        "(SELECT 1 FROM veil.project WHERE project_id = 'p1')",
        True,
    ),
    SupportRow(
        "databricks",
        "GRANT EXECUTE ON FUNCTION … TO `group` / REVOKE ALL PRIVILEGES",
        "GRANT EXECUTE ON FUNCTION veil.purpose_active TO `account users`",
        True,
    ),
    SupportRow(
        "databricks",
        "CREATE [OR REPLACE] POLICY … (ABAC)",
        _example("dbx_create_policy"),
        False,
        gap="dbx_create_policy",
    ),
    SupportRow(
        "databricks",
        "DROP POLICY … ON … (ABAC)",
        _example("dbx_drop_policy"),
        False,
        gap="dbx_drop_policy",
    ),
)


# -------------------------------------------------------------------------------------------------
# Parsing
# -------------------------------------------------------------------------------------------------


class SqlParseError(AssertionError):
    """sqlfluff could not parse a statement (an ``AssertionError``, so pytest shows it plainly)."""

    def __init__(
        self,
        statement: str,
        dialect: str,
        problems: Sequence[str],
        unparsable: Sequence[str],
        *,
        parsed_text: str | None = None,
        context: str = "",
    ) -> None:
        self.statement = statement
        self.dialect = dialect
        self.problems = tuple(problems)
        self.unparsable = tuple(unparsable)
        self.parsed_text = parsed_text if parsed_text is not None else statement
        where = f" ({context})" if context else ""
        lines = [f"sqlfluff ({dialect}) cannot parse the statement{where}:"]
        lines += [f"  {p}" for p in self.problems]
        if self.unparsable:
            lines.append("unparsable section(s):")
            lines += [f"  {u!r}" for u in self.unparsable]
        lines.append("statement:")
        lines.append(_indent(statement))
        if self.parsed_text != statement:
            lines.append("as rewritten for known sqlfluff gaps:")
            lines.append(_indent(self.parsed_text))
        super().__init__("\n".join(lines))


@dataclass(frozen=True)
class ParseReport:
    """The result of :func:`check_statement` for a statement that parsed."""

    statement: str
    dialect: str
    segment_type: str  # sqlfluff's type of the statement, e.g. "alter_table_statement"
    gaps: tuple[str, ...] = ()  # names of the KNOWN_GAPS that were applied
    bodies_checked: int = 0  # nested $$ bodies parsed separately (Snowflake)
    parsed_text: str = field(default="", repr=False)  # the text sqlfluff parsed


def _indent(text: str) -> str:
    return "\n".join("    " + line for line in text.splitlines())


@cache
def _linter(dialect: str) -> Linter:
    config = FluffConfig(
        overrides={"dialect": dialect, "templater": "raw", "large_file_skip_byte_limit": 0},
        ignore_local_config=True,
    )
    return Linter(config=config)


@dataclass(frozen=True)
class _RawParse:
    ok: bool
    problems: tuple[str, ...]
    unparsable: tuple[str, ...]
    segment_types: tuple[str, ...]


@cache
def _raw_parse(sql: str, dialect: str) -> _RawParse:
    """sqlfluff's parse of one statement. Cached: every scenario's script repeats the same
    runtime statements, and a sqlfluff parse costs 10-100 ms, so each distinct statement is
    parsed once per test session (the result is immutable)."""
    text = sql.rstrip()
    if not text.endswith(";"):
        text += "\n;"  # on its own line: the statement may end with a -- comment
    parsed = _linter(dialect).parse_string(text + "\n")
    problems = tuple(v.desc() for v in parsed.violations)
    variant = parsed.root_variant()
    tree = variant.tree if variant is not None else None
    unparsable: tuple[str, ...] = ()
    types: tuple[str, ...] = ()
    if tree is not None:
        unparsable = tuple(s.raw for s in tree.recursive_crawl("unparsable"))
        types = tuple(
            child.get_type()
            for stmt in tree.recursive_crawl("statement", recurse_into=False)
            for child in stmt.segments
            if not child.is_meta and child.get_type() not in ("whitespace", "newline", "comment")
        )
    ok = not problems and not unparsable and tree is not None
    return _RawParse(ok, problems, unparsable, types)


def sqlfluff_parses(sql: str, dialect: str) -> bool:
    """Whether plain sqlfluff (no gap rewrites, no body checks) parses ``sql`` without errors."""
    return _raw_parse(sql, dialect).ok


# Snowflake routine bodies that sqlfluff sees as string literals.
_SF_ROUTINE = re.compile(
    r"^\s*CREATE\s+(?:OR\s+(?:REPLACE|ALTER)\s+)?(?:SECURE\s+)?(?:TEMP(?:ORARY)?\s+)?"
    r"(?P<kind>PROCEDURE|FUNCTION)\b",
    re.IGNORECASE,
)
_SF_LANGUAGE = re.compile(r"\bLANGUAGE\s+(\w+)", re.IGNORECASE)
_SF_BODY = re.compile(
    r"\bAS\s*(?:\$\$(?P<dollar>.*)\$\$|'(?P<quoted>(?:[^'\\]|\\.|'')*)')\s*;?\s*$",
    re.IGNORECASE | re.DOTALL,
)
_SF_EXECUTE_IMMEDIATE = re.compile(
    r"^\s*EXECUTE\s+IMMEDIATE\s+\$\$(?P<dollar>.*)\$\$\s*;?\s*$", re.IGNORECASE | re.DOTALL
)
_SF_QUERY_START = re.compile(r"^\s*(?:\(\s*)*(?:SELECT|WITH)\b", re.IGNORECASE)


def _unquote_sf_literal(body: str) -> str:
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c == "\\" and i + 1 < len(body):
            nxt = body[i + 1]
            out.append({"n": "\n", "t": "\t", "r": "\r", "0": "\0"}.get(nxt, nxt))
            i += 2
        elif c == "'" and body.startswith("''", i):
            out.append("'")
            i += 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def _snowflake_bodies(statement: str) -> list[tuple[str, str]]:
    """(kind, text) of the SQL bodies inside a Snowflake statement that sqlfluff treats as text.

    kind is "script" (Snowflake Scripting block: procedure, EXECUTE IMMEDIATE) or "expression"
    (SQL UDF body: an expression or a query).
    """
    m = _SF_EXECUTE_IMMEDIATE.match(statement)
    if m is not None:
        return [("script", m.group("dollar"))]
    routine = _SF_ROUTINE.match(statement)
    if routine is None:
        return []
    language = _SF_LANGUAGE.search(statement)
    if language is not None and language.group(1).upper() != "SQL":
        return []
    body = _SF_BODY.search(statement)
    if body is None:
        return []
    text = body.group("dollar")
    if text is None:
        text = _unquote_sf_literal(body.group("quoted") or "")
    kind = "script" if routine.group("kind").upper() == "PROCEDURE" else "expression"
    return [(kind, text)]


def check_statement(
    statement: str, dialect: str, *, gaps: Sequence[KnownGap] = KNOWN_GAPS
) -> ParseReport:
    """Parse one statement with sqlfluff; return a :class:`ParseReport` or raise SqlParseError.

    A statement that fails is retried after applying every gap of ``dialect`` whose pattern
    matches; the report lists the gaps used. ``ValueError`` if ``statement`` holds more or less
    than one statement.
    """
    parts = split_statements(statement, backslash_escapes=dialect != "postgres")
    if len(parts) != 1:
        raise ValueError(f"expected exactly one statement, got {len(parts)}: {statement!r}")
    stmt = parts[0]
    raw = _raw_parse(stmt, dialect)
    used: list[str] = []
    text = stmt
    if not raw.ok:
        whole: KnownGap | None = None
        for gap in gaps:
            if gap.dialect != dialect or not gap.applies_to(text):
                continue
            if gap.replacement is None:
                whole = gap
                break
            text = gap.rewrite(text)
            used.append(gap.name)
        if whole is not None:
            return ParseReport(stmt, dialect, "unparsed (known gap)", (whole.name,), 0, stmt)
        if used:
            raw = _raw_parse(text, dialect)
        if not raw.ok:
            raise SqlParseError(stmt, dialect, raw.problems, raw.unparsable, parsed_text=text)
    bodies = 0
    if dialect == "snowflake":
        for kind, body in _snowflake_bodies(stmt):
            _check_snowflake_body(stmt, kind, body)
            bodies += 1
    segment = raw.segment_types[0] if raw.segment_types else "?"
    return ParseReport(stmt, dialect, segment, tuple(used), bodies, text)


def _check_snowflake_body(statement: str, kind: str, body: str) -> None:
    text = body.strip().rstrip(";").rstrip()
    if not text:
        raise SqlParseError(statement, "snowflake", ["empty routine body"], [])
    if kind == "expression" and not _SF_QUERY_START.match(text):
        text = f"SELECT {text}"
    raw = _raw_parse(text, "snowflake")
    if not raw.ok:
        raise SqlParseError(
            statement,
            "snowflake",
            raw.problems,
            raw.unparsable,
            context=f"in the $$ {kind} body, parsed on its own as:\n{_indent(text)}",
        )


def parse_statement(statement: str, dialect: str) -> None:
    """Raise :class:`SqlParseError` (naming the unparsable section) if sqlfluff cannot parse it.

    Known sqlfluff gaps (:data:`KNOWN_GAPS`) are tolerated; Snowflake routine bodies are parsed
    too. ``dialect`` is a sqlfluff dialect name: ``"snowflake"``, ``"databricks"``, …
    """
    check_statement(statement, dialect)


def parse_script(
    script: str, dialect: str, *, gaps: Sequence[KnownGap] = KNOWN_GAPS
) -> list[ParseReport]:
    """Check every statement of a generated script; raise one SqlParseError listing all failures."""
    reports: list[ParseReport] = []
    failures: list[tuple[int, SqlParseError]] = []
    for index, stmt in enumerate(
        split_statements(script, backslash_escapes=dialect != "postgres"), start=1
    ):
        try:
            reports.append(check_statement(stmt, dialect, gaps=gaps))
        except SqlParseError as exc:
            failures.append((index, exc))
    if failures:
        if len(failures) == 1:
            raise failures[0][1]
        first = failures[0][1]
        message = "\n\n".join(f"statement #{i}: {exc}" for i, exc in failures)
        error = SqlParseError(first.statement, dialect, first.problems, first.unparsable)
        error.args = (f"{len(failures)} statements do not parse\n\n{message}",)
        raise error
    return reports
