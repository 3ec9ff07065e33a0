"""The pre-flight block that starts every Snowflake and Databricks script: it comes before any
statement that changes something, and its queries find exactly the masks and row policies that
veil did not create on what veil protects (run in DuckDB over stand-ins for Snowflake's
POLICY_REFERENCES and Databricks' information_schema)."""

from __future__ import annotations

import datetime as dt
import re

import duckdb
import pytest

from tests.targets import scenarios
from tests.verify.sqlfluff_check import split_statements
from veil.targets import get_target

NOW = dt.datetime(2026, 12, 1, tzinfo=dt.UTC)


@pytest.fixture(scope="module")
def payments() -> scenarios.Scenario:
    return scenarios.payments(NOW)


@pytest.mark.parametrize("platform", ["snowflake", "databricks"])
def test_the_preflight_block_comes_first(platform: str, payments: scenarios.Scenario) -> None:
    statements = split_statements(get_target(platform).render(payments.program))
    assert "pre-flight passed" in statements[0]
    assert not any("pre-flight" in s for s in statements[1:])
    # it reads, and never changes anything
    assert not re.search(r"\b(CREATE|ALTER|DROP|INSERT|MERGE|DELETE|GRANT)\b", statements[0])


def _sf_queries(block: str) -> list[tuple[str, str]]:
    """(table, DuckDB query) for each row of the Snowflake block's cursors: its one
    POLICY_REFERENCES query with the row's values bound."""
    query = re.search(
        r"SELECT COUNT\(\*\) INTO :found\s+FROM TABLE\(\S+\.POLICY_REFERENCES\(REF_ENTITY_NAME => "
        r":tbl, REF_ENTITY_DOMAIN => 'table'\)\)\s+WHERE (.*?);",
        block,
        re.DOTALL,
    )
    assert query is not None
    where = (
        query.group(1)
        .replace("CURRENT_DATABASE()", "'DB'")
        .replace("STARTSWITH", "starts_with")
        .replace("REF_COLUMN_NAME::VARIANT", "REF_COLUMN_NAME")
        .replace(
            "ARRAY_CONTAINS(REF_COLUMN_NAME, PARSE_JSON(:masked))",
            "list_contains(CAST(:masked AS JSON)::VARCHAR[], REF_COLUMN_NAME)",
        )
    )
    out = []
    for values in re.findall(
        r"CURSOR FOR SELECT COLUMN1 AS TBL.*? FROM VALUES\s*(.*?);\n", block, re.S
    ):
        for table, rows_too, masked in re.findall(
            r"\('([^']+)', (TRUE|FALSE), '([^']*)'\)", values
        ):
            bound = where.replace(":rows_too", rows_too).replace(":masked", f"'{masked}'")
            out.append((table, f"SELECT COUNT(*) FROM refs WHERE ref = '{table}' AND ({bound})"))
    return out


SF_REFS = (
    "ref VARCHAR, POLICY_DB VARCHAR, POLICY_SCHEMA VARCHAR, POLICY_NAME VARCHAR, "
    "POLICY_KIND VARCHAR, REF_COLUMN_NAME VARCHAR"
)


def test_snowflake_preflight_finds_foreign_policies(payments: scenarios.Scenario) -> None:
    block = split_statements(get_target("snowflake").render(payments.program))[0]
    queries = dict(_sf_queries(block))
    assert set(queries) == {"HR.SURVEY", "SALES.CUSTOMERS", "SALES.REFUNDS", "SALES.TRANSACTIONS"}
    cases = [
        # (row of POLICY_REFERENCES, refused?)
        (
            (
                "SALES.TRANSACTIONS",
                "DB",
                "VEIL",
                "ROWS__SALES__TRANSACTIONS__1",
                "ROW_ACCESS_POLICY",
                None,
            ),
            False,
        ),
        (("SALES.TRANSACTIONS", "DB", "VEIL", "MASK__X", "MASKING_POLICY", "NOTES"), False),
        (("SALES.TRANSACTIONS", "DB", "SEC", "DBA_ROWS", "ROW_ACCESS_POLICY", None), True),
        (("SALES.TRANSACTIONS", "OTHER", "VEIL", "ROWS__X", "ROW_ACCESS_POLICY", None), True),
        (("SALES.TRANSACTIONS", "DB", "SEC", "STRICT_MASK", "MASKING_POLICY", "NOTES"), True),
        # a tag-based policy on a column veil masks: veil's direct policy would outrank it
        (("SALES.CUSTOMERS", "DB", "TAGS", "PII_MASK", "MASKING_POLICY", "EMAIL"), True),
        # a foreign mask on a column veil leaves alone is not veil's business
        (("SALES.TRANSACTIONS", "DB", "SEC", "M", "MASKING_POLICY", "MERCHANT"), False),
    ]
    con = duckdb.connect()
    con.execute(f"CREATE TABLE refs ({SF_REFS})")
    for row, refused in cases:
        con.execute("DELETE FROM refs")
        con.execute("INSERT INTO refs VALUES (?, ?, ?, ?, ?, ?)", list(row))
        found = con.execute(queries[row[0]]).fetchone()
        assert found is not None and (found[0] > 0) is refused, row


def _dbx_checks(block: str) -> list[tuple[str, str]]:
    """(relation, DuckDB query counting what it finds) for each `SET found = (…)` query of the
    Databricks block."""
    out = []
    for m in re.finditer(
        r"SET found = \(SELECT array_join\(.*?\)\)\), ', '\)\s+FROM information_schema\.(\w+) "
        r"(\w)\s(.*?)\);\n",
        block,
        re.DOTALL,
    ):
        query = f"SELECT count(*) FROM {m.group(1)} {m.group(2)} {m.group(3)}".replace(
            "current_catalog()", "'main'"
        ).replace("startswith", "starts_with")
        out.append((m.group(1), query))
    return out


def test_databricks_preflight_finds_foreign_masks_and_filters(
    payments: scenarios.Scenario,
) -> None:
    block = split_statements(get_target("databricks").render(payments.program))[0]
    checks = _dbx_checks(block)
    assert sorted({r for r, _ in checks}) == ["column_masks", "row_filters"]
    con = duckdb.connect()
    con.execute(
        "CREATE TABLE column_masks (catalog_name VARCHAR, schema_name VARCHAR, "
        "table_name VARCHAR, column_name VARCHAR, mask_catalog VARCHAR, mask_schema VARCHAR, "
        "mask_name VARCHAR)"
    )
    con.execute(
        "CREATE TABLE row_filters (catalog_name VARCHAR, schema_name VARCHAR, "
        "table_name VARCHAR, filter_catalog VARCHAR, filter_schema VARCHAR, filter_name VARCHAR)"
    )

    def refused() -> bool:
        return any(con.execute(q).fetchall()[0][0] for _, q in checks)

    assert not refused()
    con.execute(
        "INSERT INTO column_masks VALUES ('main', 'sales', 'transactions', 'notes', "
        "'main', 'veil', 'mask__sales__transactions__notes')"
    )
    con.execute(
        "INSERT INTO row_filters VALUES ('main', 'sales', 'transactions', "
        "'main', 'veil', 'rows__sales__transactions')"
    )
    assert not refused()
    con.execute(
        "INSERT INTO column_masks VALUES ('main', 'sales', 'transactions', 'merchant', "
        "'main', 'sec', 'm')"
    )
    assert not refused()  # a column veil does not mask
    con.execute(
        "INSERT INTO column_masks VALUES ('main', 'Sales', 'Transactions', 'Notes', "
        "'main', 'sec', 'strict')"
    )
    assert refused()
    con.execute("DELETE FROM column_masks WHERE mask_schema = 'sec'")
    con.execute("INSERT INTO row_filters VALUES ('main', 'hr', 'survey', 'main', 'sec', 'f')")
    assert refused()
    con.execute("DELETE FROM row_filters WHERE filter_schema = 'sec'")
    con.execute("INSERT INTO row_filters VALUES ('other', 'hr', 'survey', 'main', 'sec', 'f')")
    assert not refused()  # the same table name in another catalog
