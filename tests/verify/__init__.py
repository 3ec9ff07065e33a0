"""Offline verification toolkit for generated Snowflake / Databricks SQL (no account needed).

* :mod:`tests.verify.sqlfluff_check` — split scripts, parse statements with sqlfluff, known gaps.
* :mod:`tests.verify.snowflake_duck` — evaluate Snowflake policy bodies in DuckDB via sqlglot.
* :mod:`tests.verify.spark_local` — run Databricks SQL functions in a local OSS Spark.
"""
