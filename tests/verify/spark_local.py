"""A local Spark (OSS pyspark ≥ 4) for executing generated Databricks SQL functions offline.

OSS Spark 4 runs Databricks-style SQL UDFs (``CREATE FUNCTION … RETURNS … RETURN …``) with
``EXISTS`` subqueries over tables, ``current_user()`` and everything else a veil mask or row
filter body uses. It does NOT run ``ALTER TABLE … SET MASK / SET ROW FILTER``, ``CREATE POLICY``,
procedures, nor ``MERGE`` / ``DELETE`` on plain (non-Delta) tables: tests run the generated
``CREATE FUNCTION`` statements (:func:`function_statements`) and evaluate the functions over rows
(:meth:`LocalSpark.evaluate`), with governance rows put in place by :meth:`LocalSpark.set_table`.

* One session per test process (:func:`get_local_spark`; :func:`require_spark` for tests: it
  skips without pyspark/Java, and fails instead when ``CI=true``), ``local[1]``, in-memory catalog,
  warehouse in a temporary directory removed at exit.
* Simulated users: ``current_user()`` / ``user()`` / ``session_user()`` read Spark's
  ``CurrentUserContext.CURRENT_USER`` thread-local when set (the Thrift server's mechanism), else
  the OS user. :meth:`LocalSpark.as_user` sets it on the JVM thread that serves this Python thread
  (pyspark's default pinned-thread mode), so generated bodies run UNCHANGED.
* ``is_account_group_member(g)`` / ``is_member(g)`` are not in OSS Spark: PERSISTENT SQL stubs
  (a temporary function cannot be referenced from a persistent one — INVALID_TEMP_OBJ_REFERENCE)
  in schema ``default`` read ``veil_test.group_member(user_name, group_name, scope)``, filled by
  :meth:`LocalSpark.set_groups`. An unqualified function name in a SQL UDF body is resolved in the
  schema that was current when the UDF was created, so keep ``default`` current (the helpers do).
* Names: ``schema.object`` and ``spark_catalog.schema.object`` work; another catalog
  (``main.veil.f``) does not exist here — compile test inputs with catalog ``spark_catalog`` or
  with two-part names.
* A SQL UDF's body is analysed when it is created: the tables it reads must exist by then.

Measured here (2 cores, pyspark 4.3.0): session start 4 to 8 s (+ about 1 s for the stubs and
the user check); a query calling a UDF with an ``EXISTS`` over governance views 0.1 to 0.5 s
(up to 1.3 s on a busy machine), about the same for 1 or 1,000 rows: evaluate many rows per call.
:meth:`LocalSpark.reset` (between test cases) takes about 0.3 s.
"""

from __future__ import annotations

import atexit
import contextlib
import datetime as dt
import decimal
import importlib.util
import logging
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

from tests.verify.sqlfluff_check import split_statements

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

__all__ = [
    "GROUP_TABLE",
    "LocalSpark",
    "SparkSQLError",
    "SparkUnavailable",
    "TableSpec",
    "function_statements",
    "get_local_spark",
    "require_spark",
    "spark_unavailable_reason",
    "sql_literal",
]

GROUP_TABLE = "veil_test.group_member"
STUB_SCHEMA = "default"
Row = Sequence[Any]
TableSpec = tuple[Sequence[str], Sequence[Row]]


class SparkUnavailable(RuntimeError):
    """pyspark or Java is missing, or the local session cannot start."""


class SparkSQLError(AssertionError):
    """Spark rejected a statement; ``condition`` is Spark's error class (PARSE_SYNTAX_ERROR, …)."""

    def __init__(self, statement: str, condition: str | None, message: str) -> None:
        self.statement = statement
        self.condition = condition
        self.message = message
        super().__init__(f"Spark error {condition or ''}: {message}\nstatement:\n{statement}")


def spark_unavailable_reason() -> str | None:
    """Why a local Spark cannot run here (``None`` if pyspark and Java are present)."""
    if importlib.util.find_spec("pyspark") is None:
        return "pyspark is not installed (pip install 'veil[spark]' or 'pyspark>=4')"
    java_home = os.environ.get("JAVA_HOME")
    if shutil.which("java") is None and not (java_home and Path(java_home, "bin", "java").exists()):
        return "no Java runtime (java not on PATH and JAVA_HOME unset)"
    import pyspark

    major = int(pyspark.__version__.split(".")[0])
    if major < 4:
        return f"pyspark {pyspark.__version__} has no SQL UDFs; need pyspark >= 4"
    return None


def _fail_or_skip(reason: str) -> NoReturn:
    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"a local Spark is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"local Spark unavailable: {reason}")


# -------------------------------------------------------------------------------------------------
# SQL literals and types
# -------------------------------------------------------------------------------------------------


def sql_literal(value: Any) -> str:
    """A Spark SQL literal for a Python value (str, bool, int, float, Decimal, date, datetime,
    bytes, None)."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        return f"{value}L" if not -(2**31) <= value < 2**31 else str(value)
    if isinstance(value, float):
        return f"CAST('{value!r}' AS DOUBLE)"
    if isinstance(value, decimal.Decimal):
        return f"{value}BD"
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP'{value.isoformat(sep=' ')}'"
    if isinstance(value, dt.date):
        return f"DATE'{value.isoformat()}'"
    if isinstance(value, bytes):
        return f"X'{value.hex()}'"
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    raise TypeError(f"no Spark SQL literal for {value!r}")


def _infer_type(values: Iterable[Any]) -> str:
    for v in values:
        if v is None:
            continue
        if isinstance(v, bool):
            return "BOOLEAN"
        if isinstance(v, int):
            return "BIGINT"
        if isinstance(v, float):
            return "DOUBLE"
        if isinstance(v, decimal.Decimal):
            return "DECIMAL(38, 10)"
        if isinstance(v, dt.datetime):
            return "TIMESTAMP"
        if isinstance(v, dt.date):
            return "DATE"
        if isinstance(v, bytes):
            return "BINARY"
        if isinstance(v, str):
            return "STRING"
        raise TypeError(f"cannot infer a column type for {v!r}: declare it as 'name TYPE'")
    return "STRING"


def _split_column(spec: str) -> tuple[str, str | None]:
    parts = spec.strip().split(None, 1)
    return parts[0], (parts[1] if len(parts) > 1 else None)


_CREATE_FUNCTION = re.compile(
    r"^\s*CREATE\s+(?:OR\s+REPLACE\s+)?(?:TEMP(?:ORARY)?\s+)?FUNCTION\b", re.IGNORECASE
)


def function_statements(script: str) -> list[str]:
    """The ``CREATE [OR REPLACE] FUNCTION`` statements of a generated Databricks script."""
    return [s for s in split_statements(script) if _CREATE_FUNCTION.match(s)]


# -------------------------------------------------------------------------------------------------
# The session
# -------------------------------------------------------------------------------------------------


@dataclass
class _Timing:
    start_seconds: float = 0.0
    queries: int = 0
    query_seconds: float = 0.0


class LocalSpark:
    """A local SparkSession plus helpers for governance tables, group stubs and users."""

    def __init__(self, spark: SparkSession, warehouse: Path, start_seconds: float) -> None:
        self.spark = spark
        self.warehouse = warehouse
        self.timing = _Timing(start_seconds=start_seconds)
        jvm = spark.sparkContext._jvm
        assert jvm is not None
        self._user_context = jvm.org.apache.spark.sql.catalyst.CurrentUserContext.CURRENT_USER()
        self.os_user = str(self.sql("SELECT current_user()")[0][0])
        self._install_stubs()
        self._check_user_simulation()

    # -- running SQL ------------------------------------------------------------------------------

    def sql(self, statement: str) -> list[tuple[Any, ...]]:
        """Run one statement (a trailing ``;`` is allowed) and return its rows as tuples."""
        from pyspark.errors import PySparkException

        text = statement.strip().rstrip(";").rstrip()
        started = time.perf_counter()
        try:
            rows = self.spark.sql(text).collect()
        except PySparkException as exc:
            raise SparkSQLError(text, exc.getCondition(), str(exc).strip()[:4000]) from None
        finally:
            self.timing.queries += 1
            self.timing.query_seconds += time.perf_counter() - started
        return [tuple(r) for r in rows]

    def run_script(self, script: str) -> None:
        """Run every statement of ``script`` in order (stop at the first error)."""
        for statement in split_statements(script):
            self.sql(statement)

    def create_function(self, statement: str) -> None:
        """Run one ``CREATE [OR REPLACE] FUNCTION`` statement (a generated mask / filter / helper).

        The current schema is ``default`` while it runs, so the body's unqualified
        ``is_account_group_member`` / ``is_member`` resolve to the stubs.
        """
        if not _CREATE_FUNCTION.match(statement):
            raise ValueError(f"not a CREATE FUNCTION statement: {statement[:80]!r}")
        self._ensure_schema_of_function(statement)
        self.sql("USE spark_catalog.default")
        self.sql(statement)

    def create_functions(self, script: str) -> list[str]:
        """Run every CREATE FUNCTION statement of a generated script; return them."""
        statements = function_statements(script)
        for statement in statements:
            self.create_function(statement)
        return statements

    def _ensure_schema_of_function(self, statement: str) -> None:
        m = re.search(
            r"\bFUNCTION\s+(?:IF\s+NOT\s+EXISTS\s+)?((?:[\w`]+\s*\.\s*)+)[\w`]+\s*\(",
            statement,
            re.IGNORECASE,
        )
        if m is not None:
            self.ensure_schema(m.group(1).rstrip(". \t\n"))

    def ensure_schema(self, schema: str) -> None:
        self.sql(f"CREATE SCHEMA IF NOT EXISTS {schema}")

    # -- governance tables ------------------------------------------------------------------------

    def set_table(self, name: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Make ``name`` hold exactly ``rows``.

        A column is ``"name"`` (type inferred from the values) or ``"name TYPE"`` (Spark type).
        If ``name`` is an existing TABLE (e.g. created by the generated DDL) it is truncated and
        filled; otherwise a view over ``VALUES`` replaces it (much faster, no files written).
        """
        specs = [_split_column(c) for c in columns]
        for row in rows:
            if len(row) != len(specs):
                raise ValueError(f"{name}: row {row!r} does not have {len(specs)} values")
        schema = name.rsplit(".", 1)[0] if "." in name else None
        if schema:
            self.ensure_schema(schema)
        kind = self._object_kind(name)
        values = ", ".join("(" + ", ".join(sql_literal(v) for v in row) + ")" for row in rows)
        if kind == "TABLE":
            self.sql(f"TRUNCATE TABLE {name}")
            if rows:
                self.sql(f"INSERT INTO {name} VALUES {values}")
            return
        types = [t or _infer_type(row[i] for row in rows) for i, (_, t) in enumerate(specs)]
        names = [n for n, _ in specs]
        if rows:
            aliases = ", ".join(f"c{i}" for i in range(len(specs)))
            select = ", ".join(
                f"CAST(c{i} AS {t}) AS {n}"
                for i, (n, t) in enumerate(zip(names, types, strict=True))
            )
            body = f"SELECT {select} FROM VALUES {values} AS t({aliases})"
        else:
            select = ", ".join(
                f"CAST(NULL AS {t}) AS {n}" for n, t in zip(names, types, strict=True)
            )
            body = f"SELECT {select} WHERE FALSE"
        self.sql(f"CREATE OR REPLACE VIEW {name} AS {body}")

    def set_tables(self, tables: Mapping[str, TableSpec]) -> None:
        for name, (columns, rows) in tables.items():
            self.set_table(name, columns, rows)

    def _object_kind(self, name: str) -> str | None:
        from pyspark.errors import AnalysisException

        try:
            rows = self.spark.sql(f"DESCRIBE TABLE EXTENDED {name}").collect()
        except AnalysisException:
            return None
        for r in rows:
            if r[0] == "Type":  # VIEW, or MANAGED / EXTERNAL for tables
                return "VIEW" if str(r[1]).upper() == "VIEW" else "TABLE"
        return "TABLE"

    # -- groups and users -------------------------------------------------------------------------

    def set_groups(
        self,
        account: Iterable[tuple[str, str]] = (),
        workspace: Iterable[tuple[str, str]] = (),
    ) -> None:
        """Group memberships, as (user, group) pairs: ``account`` ones answer
        ``is_account_group_member``, ``workspace`` ones answer ``is_member``."""
        rows = [(u, g, "account") for u, g in account] + [(u, g, "workspace") for u, g in workspace]
        self.set_table(GROUP_TABLE, ["user_name STRING", "group_name STRING", "scope STRING"], rows)

    def _install_stubs(self) -> None:
        self.set_groups()
        for function, scope in (("is_account_group_member", "account"), ("is_member", "workspace")):
            self.sql(
                f"CREATE OR REPLACE FUNCTION {STUB_SCHEMA}.{function}(requested_group STRING) "
                "RETURNS BOOLEAN "
                f"COMMENT 'veil test stub: {GROUP_TABLE} rows with scope = {scope}' "
                f"RETURN EXISTS (SELECT 1 FROM {GROUP_TABLE} gm "
                "WHERE gm.user_name = current_user() AND gm.group_name = requested_group "
                f"AND gm.scope = '{scope}')"
            )

    def set_user(self, user: str | None) -> None:
        """Make ``current_user()`` return ``user`` (``None``: back to the OS user) for the
        queries this Python thread runs."""
        if user is None:
            self._user_context.remove()
        else:
            self._user_context.set(user)

    @contextlib.contextmanager
    def as_user(self, user: str) -> Iterator[None]:
        self.set_user(user)
        try:
            yield
        finally:
            self.set_user(None)

    def current_user(self) -> str:
        return str(self.sql("SELECT current_user()")[0][0])

    def _check_user_simulation(self) -> None:
        probe = "veil_probe_user"
        with self.as_user(probe):
            seen = self.current_user()
        if seen != probe:
            raise SparkUnavailable(
                f"cannot simulate users: current_user() returned {seen!r} after setting "
                "CurrentUserContext (is PYSPARK_PIN_THREAD=false?)"
            )

    # -- evaluating functions ---------------------------------------------------------------------

    def evaluate(
        self,
        function: str,
        rows: Sequence[Row],
        *,
        user: str | None = None,
        arg_types: Sequence[str] | None = None,
    ) -> list[Any]:
        """``function(args…)`` for every row of arguments, in order, in ONE query.

        ``function`` is a qualified name (``veil.mask_str``); a row holds the arguments
        (values or constants such as the purpose name that ``USING COLUMNS`` would pass).
        ``arg_types`` casts the arguments (``["STRING", "STRING"]``) — needed when a column is
        all NULL or its literal type differs from the parameter's. ``user`` simulates
        ``current_user()`` for this query.
        """
        if not rows:
            return []
        width = len(rows[0])
        if any(len(r) != width for r in rows):
            raise ValueError("all rows must have the same number of arguments")
        if arg_types is not None and len(arg_types) != width:
            raise ValueError(f"arg_types has {len(arg_types)} types for {width} arguments")
        cols = [f"c{i}" for i in range(width)]
        args = (
            [f"CAST({c} AS {t})" for c, t in zip(cols, arg_types, strict=True)]
            if arg_types
            else cols
        )
        values = ", ".join(
            "(" + ", ".join([str(i), *(sql_literal(v) for v in row)]) + ")"
            for i, row in enumerate(rows)
        )
        query = (
            f"SELECT {function}({', '.join(args)}) FROM VALUES {values} "
            f"AS __veil_args(__veil_idx{''.join(', ' + c for c in cols)}) ORDER BY __veil_idx"
        )
        if user is None:
            return [r[0] for r in self.sql(query)]
        with self.as_user(user):
            return [r[0] for r in self.sql(query)]

    def filter_rows(
        self,
        function: str,
        rows: Sequence[Row],
        *,
        user: str | None = None,
        arg_types: Sequence[str] | None = None,
    ) -> list[Row]:
        """The rows a row filter keeps (Databricks drops rows where it is FALSE or NULL)."""
        verdicts = self.evaluate(function, rows, user=user, arg_types=arg_types)
        return [row for row, keep in zip(rows, verdicts, strict=True) if keep is True]

    def describe_function(self, function: str) -> str:
        """``DESCRIBE FUNCTION EXTENDED`` as text (body, parameters, determinism)."""
        return "\n".join(str(r[0]) for r in self.sql(f"DESCRIBE FUNCTION EXTENDED {function}"))

    # -- isolation --------------------------------------------------------------------------------

    def reset(self) -> None:
        """Drop every schema but ``default`` (and its non-stub functions); reinstall the stubs."""
        self.set_user(None)
        self.sql("USE spark_catalog.default")
        for (schema,) in self.sql("SHOW SCHEMAS"):
            if schema != "default":
                self.sql(f"DROP SCHEMA IF EXISTS {schema} CASCADE")
        for (name,) in self.sql("SHOW USER FUNCTIONS IN default"):
            short = str(name).rsplit(".", 1)[-1]
            if short not in ("is_account_group_member", "is_member"):
                self.sql(f"DROP FUNCTION IF EXISTS default.{short}")
        for row in self.sql("SHOW TABLES IN default"):
            table, is_temporary = row[1], row[2]
            if is_temporary:
                self.sql(f"DROP VIEW IF EXISTS {table}")
            elif self._object_kind(f"default.{table}") == "VIEW":
                self.sql(f"DROP VIEW IF EXISTS default.{table}")
            else:
                self.sql(f"DROP TABLE IF EXISTS default.{table}")
        self._install_stubs()

    def stop(self) -> None:
        self.spark.stop()
        shutil.rmtree(self.warehouse, ignore_errors=True)


_SESSION: LocalSpark | None = None


def get_local_spark() -> LocalSpark:
    """The process-wide :class:`LocalSpark` (started on first use, stopped at exit).

    Raises :class:`SparkUnavailable` when pyspark or Java is missing.
    """
    global _SESSION
    if _SESSION is not None:
        return _SESSION
    reason = spark_unavailable_reason()
    if reason is not None:
        raise SparkUnavailable(reason)
    from pyspark.sql import SparkSession

    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        logging.getLogger(name).setLevel(logging.CRITICAL)
    warehouse = Path(tempfile.mkdtemp(prefix="veil-spark-"))
    started = time.perf_counter()
    try:
        spark = (
            SparkSession.builder.master("local[1]")
            .appName("veil-tests")
            .config("spark.sql.warehouse.dir", str(warehouse / "warehouse"))
            .config("spark.local.dir", str(warehouse / "tmp"))
            .config("spark.sql.catalogImplementation", "in-memory")
            .config("spark.ui.enabled", "false")
            .config("spark.ui.showConsoleProgress", "false")
            .config("spark.sql.shuffle.partitions", "1")
            .config("spark.default.parallelism", "1")
            .config("spark.driver.host", "127.0.0.1")
            .config("spark.driver.bindAddress", "127.0.0.1")
            .config("spark.sql.session.timeZone", "UTC")
            # Optimising the larger test queries (every tag function inlined for seven types)
            # outgrew the default 1 GB heap; the machines have 24 GB for at most four workers.
            .config("spark.driver.memory", "2g")
            # Every hash relation a broadcast join builds takes at least one memory page, and the
            # default page is the execution pool / cores / 16, rounded up: 64 MB here. A query
            # over every table of a scenario broadcasts dozens of governance look-ups, one page
            # each, on four threads at once, and a 2 GB heap ran out ("Not enough memory to
            # build and broadcast the table"). The tables are a few rows; 1 MB pages hold them.
            .config("spark.buffer.pageSize", "1m")
            # The JVM's default collector (G1) works on other threads as it goes; on two cores
            # shared with the other test worker that costs the Spark tests about a tenth more
            # CPU than the throughput collector (payments' agreement test 121 -> 105 s of CPU,
            # the tag functions' 115 -> 106 s; C1-only JIT and the serial collector were slower).
            .config("spark.driver.extraJavaOptions", "-XX:+UseParallelGC")
            .getOrCreate()
        )
    except Exception as exc:  # JVM start failures come in many types
        shutil.rmtree(warehouse, ignore_errors=True)
        raise SparkUnavailable(f"the local SparkSession did not start: {exc}") from exc
    spark.sparkContext.setLogLevel("ERROR")
    session = LocalSpark(spark, warehouse, time.perf_counter() - started)
    _SESSION = session
    atexit.register(_stop_session)
    return session


def _stop_session() -> None:
    global _SESSION
    if _SESSION is not None:
        with contextlib.suppress(Exception):
            _SESSION.stop()
        _SESSION = None


def require_spark() -> LocalSpark:
    """For tests: the shared :class:`LocalSpark`; skip without pyspark/Java (fail if CI=true).

    Use it in a session-scoped fixture of the test module::

        @pytest.fixture(scope="session")
        def spark() -> LocalSpark:
            return require_spark()
    """
    try:
        return get_local_spark()
    except SparkUnavailable as exc:
        _fail_or_skip(str(exc))
