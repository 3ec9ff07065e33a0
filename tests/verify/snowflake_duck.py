"""Evaluate Snowflake policy bodies offline: sqlglot (snowflake → duckdb) + an in-memory DuckDB.

A Snowflake masking / row access policy body (the expression after ``->``) is evaluated for a
simulated user, set of roles and governance-table contents, over many argument rows in ONE query::

    duck = SnowflakeDuck({
        "veil.active_project": (["user_name", "project_id"], [("ALICE", "fraud_q4")]),
        "veil.project_member": (["project_id", "user_name"], [("fraud_q4", "ALICE")]),
    })
    duck.evaluate_rows(body, [("4111111111111111",), (None,)], signature=[("val", "STRING")],
                       user="ALICE", roles={"ANALYST"})      # -> ['4111111111111111', None]

How Snowflake's context is simulated (rewrites of the sqlglot AST before generating DuckDB SQL):

* ``CURRENT_USER()`` → the ``user`` string literal (DuckDB's own returns ``'duckdb'``).
* ``IS_ROLE_IN_SESSION(r)`` → ``r IN (<roles>)`` (``FALSE`` for no roles); pass every role the
  session's active role hierarchy holds, inherited ones included. Names compare exactly as
  given (whether Snowflake folds case here is not documented): pass them upper case, as
  Snowflake stores unquoted identifiers.
* ``CURRENT_ROLE()`` → the ``current_role`` literal; an error when the body uses it and no
  ``current_role`` was given.

Functions whose sqlglot transpilation is silently wrong or missing, rewritten here:

* ``SHA2(x [, 256])`` / ``SHA2_HEX`` → ``SHA256(CAST(x AS VARCHAR))`` (sqlglot emits
  ``SHA256(x)``, which DuckDB rejects for numbers; Snowflake hashes the text form).
  ``SHA2(x, 224|384|512)`` → a Python UDF ``veil_sha2`` (hashlib; sqlglot would emit SHA256 for
  every length with only a log warning). Lower-case hex of the UTF-8 bytes, like Snowflake.
* ``MD5(x)`` → ``MD5(CAST(x AS VARCHAR))`` (same reason as SHA2).
* ``REGEXP_REPLACE(s, p, r, pos, occurrence ≠ 0 [, params])`` → a Python UDF
  ``veil_regexp_replace`` (sqlglot drops the occurrence; Python ``re`` instead of Snowflake's
  engine, fine for the usual patterns). The two- to four-argument forms and ``occurrence = 0``
  stay on DuckDB's ``REGEXP_REPLACE(…, 'g')``.
* ``HASH(…)`` is refused: Snowflake's 64-bit hash cannot be reproduced offline.

Everything else is sqlglot's transpilation, generated with ``unsupported_level=RAISE`` so that a
construct sqlglot cannot express in DuckDB raises instead of silently changing meaning. Checked to
give Snowflake's results: ``LEFT/RIGHT`` (incl. negative lengths), ``REPEAT``, ``LENGTH/LEN``,
``CONCAT/||``, ``DATE_TRUNC`` (DATE stays DATE), ``ROUND`` (half away from zero;
``'HALF_TO_EVEN'`` → ``ROUND_EVEN``), ``IFF``, ``NVL``, ``DECODE``, ``ARRAYS_OVERLAP``
(parenthesised here: sqlglot's DuckDB form is an unparenthesised OR), ``ARRAY_CONTAINS`` +
``ARRAY_CONSTRUCT`` / ``ARRAY_AGG``, ``EXISTS`` subqueries over the governance tables, Snowflake
string escapes (``'\\d'`` is ``d``, ``'\\\\d'`` is ``\\d``). Not available: ``INVOKER_ROLE()``,
``SYS_CONTEXT``, ``$session_variables`` / ``GETVARIABLE`` (DuckDB raises, wrapped in
:class:`SnowflakeEvaluationError`).
"""

from __future__ import annotations

import datetime as dt
import decimal
import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from types import TracebackType
from typing import Any

import duckdb
import sqlglot
from sqlglot import TokenType, exp
from sqlglot.dialects.snowflake import Snowflake
from sqlglot.errors import ErrorLevel, SqlglotError

__all__ = [
    "PolicyDDL",
    "SnowflakeDuck",
    "SnowflakeEvaluationError",
    "TableSpec",
    "Tables",
    "evaluate_body",
    "parse_policy_ddl",
    "to_duckdb_sql",
]

Row = Sequence[Any]
TableSpec = tuple[Sequence[str], Sequence[Row]]
"""(columns, rows); a column is ``"name"`` (type inferred from the values) or ``"name TYPE"``
with a Snowflake type (``"approved BOOLEAN"``, ``"set_at TIMESTAMP_NTZ"``)."""
Tables = Mapping[str, TableSpec]
"""Qualified table name (``"veil.project_member"``, ``"GOV.POLICIES.ACTIVE_PROJECT"``) → spec."""
Signature = Sequence[tuple[str, str]] | Sequence[str]
"""Argument names, optionally with their Snowflake types: ``[("val", "STRING"), ("region",
"VARCHAR")]`` or ``["val", "region"]`` (values then keep the types DuckDB infers)."""

_ARGS_CTE = "__veil_args"
_IDX = "__veil_idx"
_RESULT = "__veil_result"


class SnowflakeEvaluationError(AssertionError):
    """A body could not be transpiled or evaluated; the message shows both SQL texts."""


# -------------------------------------------------------------------------------------------------
# Policy DDL → signature + body
# -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class PolicyDDL:
    """The parts of a ``CREATE … POLICY`` / ``ALTER … POLICY … SET BODY`` statement."""

    kind: str  # "MASKING POLICY" or "ROW ACCESS POLICY"
    name: str
    signature: tuple[tuple[str, str], ...]  # () for ALTER … SET BODY
    returns: str | None  # None for ALTER … SET BODY
    body: str
    comment: str | None = None


def _depth_zero_split(tokens: Sequence[Any], sep: TokenType) -> list[list[Any]]:
    parts: list[list[Any]] = [[]]
    depth = 0
    for tok in tokens:
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        if tok.token_type == sep and depth == 0:
            parts.append([])
        else:
            parts[-1].append(tok)
    return parts


def parse_policy_ddl(statement: str) -> PolicyDDL:
    """Split a Snowflake masking / row access policy statement into signature and body.

    Handles ``CREATE [OR REPLACE | OR ALTER] {MASKING | ROW ACCESS} POLICY [IF NOT EXISTS] name
    AS (args) RETURNS type -> body [COMMENT = '…'] [EXEMPT_OTHER_POLICIES = …]`` and
    ``ALTER {MASKING | ROW ACCESS} POLICY [IF EXISTS] name SET BODY -> body``.
    """
    sql = statement.strip().rstrip(";").rstrip()
    tokens = Snowflake().tokenize(sql)
    words = [t.text.upper() for t in tokens]
    if "MASKING" in words[:5] and "POLICY" in words[:6]:
        kind = "MASKING POLICY"
    elif words[:6].count("ROW") and "ACCESS" in words[:7]:
        kind = "ROW ACCESS POLICY"
    else:
        raise ValueError(f"not a masking / row access policy statement: {statement!r}")
    arrows = [i for i, t in enumerate(tokens) if t.token_type == TokenType.ARROW]
    if not arrows:
        raise ValueError(f"no '->' body in: {statement!r}")
    arrow = arrows[0]
    policy_at = words.index("POLICY")
    name_start = policy_at + 1
    if words[name_start : name_start + 3] == ["IF", "NOT", "EXISTS"]:
        name_start += 3
    elif words[name_start : name_start + 2] == ["IF", "EXISTS"]:
        name_start += 2
    # body: after '->' up to a top-level COMMENT = / EXEMPT_OTHER_POLICIES =
    depth = 0
    body_end = len(tokens)
    comment: str | None = None
    for i in range(arrow + 1, len(tokens)):
        tok = tokens[i]
        if tok.token_type in (TokenType.L_PAREN, TokenType.L_BRACKET):
            depth += 1
        elif tok.token_type in (TokenType.R_PAREN, TokenType.R_BRACKET):
            depth -= 1
        elif (
            depth == 0
            and words[i] in ("COMMENT", "EXEMPT_OTHER_POLICIES")
            and tok.token_type != TokenType.STRING
            and i + 1 < len(tokens)
            and tokens[i + 1].token_type == TokenType.EQ
        ):
            body_end = min(body_end, i)
            if words[i] == "COMMENT" and i + 2 < len(tokens):
                comment = tokens[i + 2].text
    body_tokens = tokens[arrow + 1 : body_end]
    if not body_tokens:
        raise ValueError(f"empty policy body in: {statement!r}")
    body = sql[body_tokens[0].start : body_tokens[-1].end + 1].strip()
    if words[0] == "ALTER":
        name_end = words.index("SET", name_start)
        name = sql[tokens[name_start].start : tokens[name_end - 1].end + 1]
        return PolicyDDL(kind, name, (), None, body, None)
    as_at = next(i for i in range(name_start, arrow) if tokens[i].token_type == TokenType.ALIAS)
    name = sql[tokens[name_start].start : tokens[as_at - 1].end + 1]
    open_at = as_at + 1
    depth = 0
    close_at = open_at
    for i in range(open_at, arrow):
        if tokens[i].token_type == TokenType.L_PAREN:
            depth += 1
        elif tokens[i].token_type == TokenType.R_PAREN:
            depth -= 1
            if depth == 0:
                close_at = i
                break
    signature: list[tuple[str, str]] = []
    for part in _depth_zero_split(tokens[open_at + 1 : close_at], TokenType.COMMA):
        if not part:
            continue
        arg_name = part[0].text
        arg_type = sql[part[1].start : part[-1].end + 1] if len(part) > 1 else ""
        signature.append((arg_name, arg_type))
    returns_at = close_at + 1
    if words[returns_at] != "RETURNS":
        raise ValueError(f"expected RETURNS after the signature in: {statement!r}")
    returns = sql[tokens[returns_at + 1].start : tokens[arrow - 1].end + 1]
    return PolicyDDL(kind, name, tuple(signature), returns, body, comment)


# -------------------------------------------------------------------------------------------------
# Transpilation
# -------------------------------------------------------------------------------------------------


def _duck_type(snowflake_type: str) -> str:
    return exp.DataType.build(snowflake_type, dialect="snowflake").sql(dialect="duckdb")


def _is_literal_int(node: exp.Expression | None, *values: int) -> bool:
    return (
        isinstance(node, exp.Literal)
        and not node.is_string
        and node.this.lstrip("-").isdigit()
        and int(node.this) in values
    )


def _to_varchar(node: exp.Expression) -> exp.Expression:
    return exp.Cast(this=node, to=exp.DataType.build("VARCHAR"))


def _rewrite(
    node: exp.Expression, user: str | None, roles: tuple[str, ...], current_role: str | None
) -> exp.Expression:
    if isinstance(node, exp.CurrentUser):
        return exp.Literal.string(user) if user is not None else exp.null()
    if isinstance(node, exp.CurrentRole):
        if current_role is None:
            raise SnowflakeEvaluationError(
                "the body calls CURRENT_ROLE(): pass current_role=… to simulate it"
            )
        return exp.Literal.string(current_role)
    if isinstance(node, (exp.Parameter, exp.SessionParameter, exp.Placeholder)):
        raise SnowflakeEvaluationError(
            f"session variables / parameters ({node.sql(dialect='snowflake')}) are not simulated"
        )
    if isinstance(node, exp.Anonymous):
        name = node.name.upper()
        if name == "IS_ROLE_IN_SESSION":
            (arg,) = node.expressions
            if not roles:
                return exp.false()
            return exp.paren(
                exp.In(this=arg.copy(), expressions=[exp.Literal.string(r) for r in roles])
            )
        if name == "HASH":
            raise SnowflakeEvaluationError(
                "HASH() is Snowflake's proprietary 64-bit hash: it cannot be evaluated offline"
            )
    if isinstance(node, exp.ArrayOverlaps) and not isinstance(node.parent, exp.Paren):
        # sqlglot writes `(a && b) OR (…)` for DuckDB without outer parentheses, so an
        # enclosing AND would bind to the second disjunct only
        return exp.paren(node.copy())
    if isinstance(node, exp.SHA2):
        length = node.args.get("length")
        text = _to_varchar(node.this.copy())
        if length is None or _is_literal_int(length, 256):
            return exp.Anonymous(this="SHA256", expressions=[text])
        return exp.Anonymous(this="veil_sha2", expressions=[text, length.copy()])
    if isinstance(node, exp.MD5):
        return exp.Anonymous(this="MD5", expressions=[_to_varchar(node.this.copy())])
    if isinstance(node, exp.RegexpReplace):
        occurrence = node.args.get("occurrence")
        if occurrence is not None and not _is_literal_int(occurrence, 0):
            position = node.args.get("position") or exp.Literal.number(1)
            modifiers = node.args.get("modifiers") or exp.Literal.string("c")
            replacement = node.args.get("replacement") or exp.Literal.string("")
            return exp.Anonymous(
                this="veil_regexp_replace",
                expressions=[
                    node.this.copy(),
                    node.expression.copy(),
                    replacement.copy(),
                    position.copy(),
                    occurrence.copy(),
                    modifiers.copy(),
                ],
            )
    return node


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


@lru_cache(maxsize=4096)
def _transpile(
    body: str,
    names: tuple[str, ...],
    types: tuple[str | None, ...],
    user: str | None,
    roles: tuple[str, ...],
    current_role: str | None,
    returns: str | None,
) -> str:
    source = f"SELECT {body} AS {_RESULT} FROM {_ARGS_CTE} ORDER BY {_IDX}"
    try:
        tree = sqlglot.parse_one(source, read="snowflake")
    except SqlglotError as exc:
        raise SnowflakeEvaluationError(f"sqlglot cannot parse the body:\n{body}\n{exc}") from exc
    if returns is not None:
        alias = tree.expressions[0]
        alias.set("this", exp.cast(alias.this, exp.DataType.build(returns, dialect="snowflake")))
    # Give sqlglot the declared argument types (it then emits e.g. CAST(DATE_TRUNC(…) AS DATE) for
    # a DATE argument: DuckDB's DATE_TRUNC returns a TIMESTAMP). Only for references outside
    # subqueries, where an unqualified name can only be an argument.
    typed = {n.lower(): t for n, t in zip(names, types, strict=True) if t}
    for col in list(tree.find_all(exp.Column)):
        if col.table or col.name.lower() not in typed or col.find_ancestor(exp.Select) is not tree:
            continue
        declared = exp.DataType.build(typed[col.name.lower()], dialect="snowflake")
        col.replace(exp.cast(col.copy(), declared))
    # Reversed pre-order visits every node after all of its descendants, so a rewritten node
    # (e.g. SHA2) copies arguments that are already rewritten (e.g. CURRENT_USER()).
    for node in reversed(list(tree.walk())):
        if not isinstance(node, exp.Expression):
            continue
        new = _rewrite(node, user, roles, current_role)
        if new is not node:
            node.replace(new)
    try:
        duck = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
    except SqlglotError as exc:
        raise SnowflakeEvaluationError(
            f"sqlglot cannot express the body in DuckDB ({exc}):\n{body}"
        ) from exc
    columns = [f"UNNEST(?) AS {_IDX}"]
    for name, typ in zip(names, types, strict=True):
        cast = f"::{_duck_type(typ)}[]" if typ else ""
        columns.append(f"UNNEST(?{cast}) AS {_quote(name)}")
    return f"WITH {_ARGS_CTE} AS (SELECT {', '.join(columns)}) {duck}"


def _normalise_signature(signature: Signature) -> tuple[tuple[str, ...], tuple[str | None, ...]]:
    names: list[str] = []
    types: list[str | None] = []
    for item in signature:
        if isinstance(item, str):
            names.append(item)
            types.append(None)
        else:
            names.append(item[0])
            types.append(item[1] or None)
    return tuple(names), tuple(types)


def to_duckdb_sql(
    body: str,
    signature: Signature,
    *,
    user: str | None,
    roles: Iterable[str] = (),
    current_role: str | None = None,
    returns: str | None = None,
) -> str:
    """The DuckDB query that :meth:`SnowflakeDuck.evaluate_rows` runs (for debugging).

    Its parameters are: the row indexes, then one list per argument, in signature order.
    """
    names, types = _normalise_signature(signature)
    return _transpile(body, names, types, user, tuple(sorted(set(roles))), current_role, returns)


# -------------------------------------------------------------------------------------------------
# Python UDFs for functions DuckDB lacks
# -------------------------------------------------------------------------------------------------


def _udf_sha2(text: str, bits: int) -> str:
    if bits not in (224, 256, 384, 512):
        raise ValueError(f"SHA2: unsupported digest size {bits}")
    return hashlib.new(f"sha{bits}", text.encode("utf-8")).hexdigest()


def _udf_regexp_replace(
    subject: str, pattern: str, replacement: str, position: int, occurrence: int, params: str
) -> str:
    flags = 0
    for p in params:
        if p == "i":
            flags |= re.IGNORECASE
        elif p == "c":
            flags &= ~re.IGNORECASE
        elif p == "m":
            flags |= re.MULTILINE
        elif p == "s":
            flags |= re.DOTALL
    rx = re.compile(pattern, flags)
    head, tail = subject[: max(position, 1) - 1], subject[max(position, 1) - 1 :]
    if occurrence <= 0:
        return head + rx.sub(replacement, tail)
    count = 0

    def repl(m: re.Match[str]) -> str:
        nonlocal count
        count += 1
        return m.expand(replacement) if count == occurrence else m.group(0)

    return head + rx.sub(repl, tail)


# -------------------------------------------------------------------------------------------------
# The evaluator
# -------------------------------------------------------------------------------------------------


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
            return "TIMESTAMPTZ" if v.tzinfo is not None else "TIMESTAMP"
        if isinstance(v, dt.date):
            return "DATE"
        if isinstance(v, bytes):
            return "BLOB"
        if isinstance(v, str):
            return "VARCHAR"
        raise TypeError(f"cannot infer a column type for {v!r}: declare it as 'name TYPE'")
    return "VARCHAR"


def _split_column(spec: str) -> tuple[str, str | None]:
    parts = spec.strip().split(None, 1)
    return parts[0], (parts[1] if len(parts) > 1 else None)


class SnowflakeDuck:
    """One DuckDB connection holding governance tables; evaluates Snowflake policy bodies.

    A new connection costs 20 to 50 ms here: for many test cases share one instance (e.g. a
    module-scoped fixture) and call :meth:`reset` / :meth:`set_tables` per case. Every
    ``evaluate*`` call is one DuckDB query; transpilations are cached. Not thread-safe.
    """

    def __init__(self, tables: Tables | None = None) -> None:
        self.con = duckdb.connect(":memory:")
        self.con.create_function("veil_sha2", _udf_sha2, ["VARCHAR", "INTEGER"], "VARCHAR")
        self.con.create_function(
            "veil_regexp_replace",
            _udf_regexp_replace,
            ["VARCHAR", "VARCHAR", "VARCHAR", "BIGINT", "BIGINT", "VARCHAR"],
            "VARCHAR",
        )
        self._catalogs: set[str] = set()
        self._schemas: set[str] = set()
        self._tables: set[str] = set()
        if tables:
            self.set_tables(tables)

    # -- governance tables ------------------------------------------------------------------------

    def set_tables(self, tables: Tables) -> None:
        """Create or replace each table of ``tables`` with exactly the given rows."""
        for name, (columns, rows) in tables.items():
            self.set_table(name, columns, rows)

    def set_table(self, name: str, columns: Sequence[str], rows: Sequence[Row]) -> None:
        """Create or replace one table (``schema.table`` or ``db.schema.table``)."""
        parts = [p.strip().strip('"') for p in name.split(".")]
        if len(parts) == 3:
            catalog = parts[0].lower()
            if catalog not in self._catalogs:
                self.con.execute(f"ATTACH IF NOT EXISTS ':memory:' AS {_quote(catalog)}")
                self._catalogs.add(catalog)
        if len(parts) >= 2:
            schema = ".".join(_quote(p) for p in parts[:-1])
            if schema.lower() not in self._schemas:
                self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
                self._schemas.add(schema.lower())
        qualified = ".".join(_quote(p) for p in parts)
        specs = [_split_column(c) for c in columns]
        for row in rows:
            if len(row) != len(specs):
                raise ValueError(f"{name}: row {row!r} does not have {len(specs)} values")
        column_values = [[row[i] for row in rows] for i in range(len(specs))]
        types = [
            _duck_type(t) if t else _infer_type(vals)
            for (_, t), vals in zip(specs, column_values, strict=True)
        ]
        ddl = ", ".join(f"{_quote(n)} {t}" for (n, _), t in zip(specs, types, strict=True))
        self.con.execute(f"CREATE OR REPLACE TABLE {qualified} ({ddl})")
        self._tables.add(qualified)
        if rows:
            unnests = ", ".join(f"UNNEST(?::{t}[])" for t in types)
            self.con.execute(f"INSERT INTO {qualified} SELECT {unnests}", column_values)

    def define_functions(self, script: str) -> None:
        """Define the scalar SQL functions of a script that return an ARRAY
        (`CREATE OR REPLACE FUNCTION s.f(P TYPE) RETURNS ARRAY … AS $$ <query> $$`) as DuckDB
        macros, so that policy bodies can call them. `CURRENT_USER()` in them is the `user` of
        each evaluation; an empty result is an empty list, as Snowflake's ARRAY_AGG gives."""
        pattern = re.compile(
            r"CREATE OR REPLACE FUNCTION (\S+)\(([\w ,]*)\)\s+RETURNS ARRAY\b.*?\$\$(.*?)\$\$",
            re.DOTALL,
        )
        for name, params, query in pattern.findall(script):
            names = ", ".join(p.split()[0].lower() for p in params.split(","))
            tree = sqlglot.parse_one(query.strip(), read="snowflake")
            for node in list(tree.find_all(exp.CurrentUser)):
                node.replace(
                    exp.Anonymous(this="getvariable", expressions=[exp.Literal.string("veil_user")])
                )
            duck = tree.sql(dialect="duckdb", unsupported_level=ErrorLevel.RAISE)
            self.con.execute(f"CREATE OR REPLACE MACRO {name}({names}) AS (COALESCE(({duck}), []))")

    def reset(self) -> None:
        """Drop every table made by :meth:`set_table` (much cheaper than a new connection)."""
        for qualified in sorted(self._tables):
            self.con.execute(f"DROP TABLE IF EXISTS {qualified}")
        self._tables.clear()

    def query(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run DuckDB SQL on the connection (e.g. to inspect the governance tables)."""
        return self.con.execute(sql, params or []).fetchall()

    # -- evaluation -------------------------------------------------------------------------------

    def evaluate_rows(
        self,
        body: str,
        rows: Sequence[Row] | Sequence[Mapping[str, Any]],
        *,
        signature: Signature | None = None,
        user: str | None,
        roles: Iterable[str] = (),
        current_role: str | None = None,
        returns: str | None = None,
    ) -> list[Any]:
        """The body's value for each row of arguments, in order, computed in ONE query.

        ``rows`` are tuples in ``signature`` order, or mappings name → value (then
        ``signature`` may be omitted: the first row's keys name the arguments, untyped).
        ``returns`` (a Snowflake type) casts the result like a policy's RETURNS would.
        """
        if not rows:
            return []
        first = rows[0]
        if signature is None:
            if not isinstance(first, Mapping):
                raise ValueError("signature is required when rows are sequences")
            signature = list(first.keys())
        names, types = _normalise_signature(signature)
        columns: list[list[Any]] = [[] for _ in names]
        for row in rows:
            if isinstance(row, Mapping):
                values = [row[n] for n in names]
            else:
                values = list(row)
                if len(values) != len(names):
                    raise ValueError(f"row {row!r} does not match the signature {names}")
            for col, value in zip(columns, values, strict=True):
                col.append(value)
        sql = _transpile(body, names, types, user, tuple(sorted(set(roles))), current_role, returns)
        self.con.execute("SET VARIABLE veil_user = ?", [user])
        try:
            result = self.con.execute(sql, [list(range(len(rows))), *columns]).fetchall()
        except duckdb.Error as exc:
            raise SnowflakeEvaluationError(
                f"DuckDB could not evaluate the body: {exc}\n"
                f"Snowflake body:\n{body}\nDuckDB SQL:\n{sql}"
            ) from exc
        return [r[0] for r in result]

    def evaluate(
        self,
        body: str,
        args: Mapping[str, Any],
        *,
        user: str | None,
        roles: Iterable[str] = (),
        current_role: str | None = None,
        arg_types: Mapping[str, str] | None = None,
        returns: str | None = None,
    ) -> Any:
        """The body's value for one set of arguments (``{"val": "4111…", "region": "EU"}``)."""
        signature = [(n, (arg_types or {}).get(n, "")) for n in args]
        return self.evaluate_rows(
            body,
            [tuple(args.values())],
            signature=signature,
            user=user,
            roles=roles,
            current_role=current_role,
            returns=returns,
        )[0]

    def evaluate_policy(
        self,
        policy: PolicyDDL | str,
        rows: Sequence[Row] | Sequence[Mapping[str, Any]],
        *,
        user: str | None,
        roles: Iterable[str] = (),
        current_role: str | None = None,
    ) -> list[Any]:
        """Evaluate a ``CREATE … POLICY`` statement (or :class:`PolicyDDL`) over argument rows,
        typed by its signature and cast to its RETURNS type."""
        ddl = parse_policy_ddl(policy) if isinstance(policy, str) else policy
        if not ddl.signature:
            raise ValueError("an ALTER … SET BODY statement has no signature: pass the CREATE")
        return self.evaluate_rows(
            ddl.body,
            rows,
            signature=ddl.signature,
            user=user,
            roles=roles,
            current_role=current_role,
            returns=ddl.returns,
        )

    # -- lifecycle --------------------------------------------------------------------------------

    def close(self) -> None:
        self.con.close()

    def __enter__(self) -> SnowflakeDuck:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()


def evaluate_body(
    body: str,
    args: Mapping[str, Any],
    *,
    user: str | None,
    roles: Iterable[str] = (),
    tables: Tables | None = None,
    current_role: str | None = None,
    arg_types: Mapping[str, str] | None = None,
    returns: str | None = None,
) -> Any:
    """One-shot: a fresh DuckDB with ``tables``, one evaluation. Prefer :class:`SnowflakeDuck`
    (and :meth:`SnowflakeDuck.evaluate_rows`) when evaluating more than a handful of values."""
    with SnowflakeDuck(tables) as duck:
        return duck.evaluate(
            body,
            args,
            user=user,
            roles=roles,
            current_role=current_role,
            arg_types=arg_types,
            returns=returns,
        )
