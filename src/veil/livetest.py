"""`veil test --dsn`: the repository's `test` blocks against a deployed PostgreSQL database, as
each test's user.

Each test runs in its own transaction, which is always rolled back: nothing it does persists.
In it the session becomes the test's user — `SET LOCAL SESSION AUTHORIZATION` when the DSN's role
is a superuser, or a login of its own when the DSN holds `{user}` — so `session_user` and
`current_user` are the user, privileges and row security are the user's, and a user who turns out
to be a superuser (or to bypass row security) is refused rather than read as. The user selects the
test's project (`veil.use_project` for a member, the setting itself for anyone else, as a
non-member would) and acknowledges its texts (`veil.acknowledge`), as the offline run assumes.

What the database decides, for each expectation, is read from the deployed objects, evaluated by
the server as the user:

* a column: the live definition of the protected view (`pg_get_viewdef`) is run over one row of
  sample values (the column's own value set, every other column NULL, the offline rule) instead
  of the table, so no row is ever written to a protected table. The cell is clear when the value
  comes back unchanged, else masked, and the method is named when the evaluator's reference
  implementation of one of the mask's methods gives the same value. A user who may `SELECT` the
  column of the base table directly sees it clear whatever the view does (a hand-made grant).
* a row: the live row policies of the table that apply to the view's owner (through whom the
  view reads), combined as PostgreSQL does (any permissive AND every restrictive one), evaluated
  over the row as the user; no row security, or a reader that bypasses it, means visible.

Time is the server's: row rules that read `now()` see the database's clock.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from decimal import Decimal

from veil import ir, methods, model
from veil.evaluator import mask_of
from veil.masking import TEST_HASH_KEY, apply_method
from veil.printer import action_to_source
from veil.rowexpr import coerce_value
from veil.targets.postgres import PostgresTarget
from veil.testrunner import (
    ExpectationResult,
    TestResult,
    _same_method,
    _same_value,
    _value_source,
    expectation_result,
)
from veil.verify import NotApplied, VerifyError, _first_line, _psycopg

__all__ = ["run_live_tests"]

_FROM = re.compile(r"\n\s*FROM\s+(?P<table>.+?)\s+t;?\s*\Z", re.DOTALL)


def samples(ty: model.SqlType) -> list[object]:
    """Two non-NULL values of the type that the usual masks change."""
    match ty.family:
        case model.Family.STRING:
            texts: list[object] = [
                "Ann Lee ann.lee4242@example.com 4111-1111-1111-1234",
                "x9@y.org 0171 555",
            ]
            if ty.length is not None:
                texts = [str(s)[: ty.length] for s in texts]
                if ty.name == "char":
                    texts = [str(s).ljust(ty.length) for s in texts]
            return texts
        case model.Family.INTEGER:
            return [12345, -321] if ty.name == "smallint" else [123457, -98765]
        case model.Family.DECIMAL:
            scale = ty.scale or 0
            whole = (ty.precision or 18) - scale
            big = Decimal(int("7" * min(max(whole, 0), 6) or "0")) + Decimal("0.123456789")
            return [round(big, scale), round(Decimal("0.55"), scale) if whole or scale else 0]
        case model.Family.FLOAT:
            return [1234.5678, -0.25]
        case model.Family.BOOLEAN:
            return [True, False]
        case model.Family.DATE:
            return [dt.date(2024, 2, 29), dt.date(1999, 12, 31)]
        case model.Family.TIMESTAMP:
            tz = dt.UTC if ty.name == "timestamptz" else None
            return [
                dt.datetime(2024, 2, 29, 13, 37, 11, 123456, tzinfo=tz),
                dt.datetime(1999, 12, 31, 23, 59, 59, tzinfo=tz),
            ]
        case model.Family.BINARY:
            return [b"\x00\x01veil", b"card 4111"]
        case model.Family.JSON:
            return [{"email": "ann@example.com"}, [1, 2, 3]]
        case _:
            t.assert_never(ty.family)


def _norm(v: object) -> object:
    if isinstance(v, Decimal):
        return ("number", v.normalize())
    if isinstance(v, int) and not isinstance(v, bool):
        return ("number", Decimal(v).normalize())
    if isinstance(v, dt.datetime) and v.tzinfo is not None:
        return v.astimezone(dt.UTC)
    if isinstance(v, memoryview):
        return bytes(v)
    if isinstance(v, dict | list):
        return json.dumps(v, sort_keys=True)
    return v


class _Session:
    """One test's transaction on the database, as its user."""

    def __init__(self, conn: t.Any, program: model.Program, target: PostgresTarget) -> None:
        self.conn = conn
        self.program = program
        self.target = target

    def one(self, text: str, params: t.Sequence[object] | None = None) -> t.Any:
        with self.conn.cursor() as cur:
            cur.execute(text, params)
            row = cur.fetchone()
            return None if row is None else row[0]

    def literal_row(self, table: model.CatalogTable, row: dict[str, object]) -> str:
        """`(SELECT CAST(v AS type) AS c, …)`: the row, every other column NULL."""
        _psycopg()  # a clear error without psycopg
        from psycopg import sql

        items = []
        for c in table.columns:
            value = row.get(c.name)
            if isinstance(value, dict | list):
                value = json.dumps(value)
            lit = "NULL" if value is None else sql.Literal(value).as_string(self.conn)
            items.append(
                f"CAST({lit} AS {self.target.sql_type(c.type)}) AS {self.target.ident(c.name)}"
            )
        return "(SELECT " + ", ".join(items) + ")"

    def switch(self, user: str, project: str | None, superuser_dsn: bool) -> str | None:
        """Become `user`, select `project`; None, or why the test cannot run."""
        if superuser_dsn:
            self.conn.execute(f"SET LOCAL SESSION AUTHORIZATION {self.target.ident(user)}")
        if self.one("SELECT pg_catalog.current_setting('is_superuser')") == "on" or self.one(
            "SELECT r.rolbypassrls FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user"
        ):
            return f"`{user}` is a superuser or bypasses row security: refusing to read as it"
        if project is None:
            return None
        gov = self.target.gov
        info = self.program.project(project)
        if info is not None and user in info.members:
            try:
                self.conn.execute("SAVEPOINT veil_test")
                self.one(f"SELECT {gov('use_project')}(%s)", (project,))
                self.one(f"SELECT {gov('acknowledge')}(%s)", (project,))
                self.conn.execute("RELEASE SAVEPOINT veil_test")
            except _psycopg().Error as e:
                self.conn.execute("ROLLBACK TO SAVEPOINT veil_test")
                return f"`{user}` cannot select project `{project}`: {_first_line(e)}"
        else:
            self.one("SELECT pg_catalog.set_config(%s, %s, true)", ("veil.active_project", project))
        return None

    # ------------------------------------------------------------------ a column
    def access(self, table_key: model.TableKey, column: str, user: str) -> str | None:
        """Why the view does not decide what `user` sees of the column (None: it does)."""
        base = self.target.table_sql(table_key)
        view = self.target.qualified(self.target.view_of(table_key))
        if self.one("SELECT pg_catalog.has_column_privilege(%s, %s, 'SELECT')", (base, column)):
            return f"`{user}` may SELECT `{model.table_str(table_key)}.{column}` directly"
        if not self.one("SELECT pg_catalog.has_table_privilege(%s, 'SELECT')", (view,)):
            return f"`{user}` may not SELECT `{view}`"
        return None

    def shown(
        self, table: model.CatalogTable, column: str, row: dict[str, object]
    ) -> tuple[bool, object]:
        """(True, what the deployed view shows of `column` in `row`), or (False, why not)."""
        base = self.target.table_sql(table.key)
        view = self.target.qualified(self.target.view_of(table.key))
        definition = self.one(
            "SELECT pg_catalog.pg_get_viewdef(pg_catalog.to_regclass(%s))", (view,)
        )
        # The hash key is read by the view's owner only: as the user, the sub-select reading it
        # (the table's key is derived from it there) would be refused. Hashes are compared by
        # shape (`_which`), so any well-formed key will do. (On one line: `_FROM` finds the
        # view's own FROM as the last line that starts with one.)
        gov = re.escape(self.target.options.governance_schema)
        definition = re.sub(
            rf"\s+FROM\s+{gov}\.hash_key\s+k\b",
            f" FROM (SELECT '{TEST_HASH_KEY}'::text AS key_hex) k",
            definition or "",
        )
        found = _FROM.search(definition)
        if found is None or self.one(
            "SELECT pg_catalog.to_regclass(%s) IS DISTINCT FROM pg_catalog.to_regclass(%s)",
            (found["table"], base),
        ):
            return False, f"`{view}` is missing or does not read `{base}`"
        select = definition[: found.start()]
        text = (
            f"SELECT v.{self.target.ident(column)} FROM ({select}\n FROM "
            f"{self.literal_row(table, row)} AS t) AS v"
        )
        return True, self.one(text)

    def column(self, e: ir.ExpectColumn, user: str) -> ExpectationResult:
        target = self.program.expect_target(e)
        table_key, column = target.table, target.column
        table = self.program.table(table_key)
        col = table.column(column) if table is not None and column is not None else None
        assert table is not None and column is not None and col is not None
        mask = mask_of(self.program, table_key, column)
        action: methods.MaskAction | None = None
        masked = False
        note = self.access(table_key, column, user)
        if note is not None:
            actual = "clear" if "directly" in note else "no access"
            masked = actual == "no access"
        else:
            actual = "clear"
            for value in samples(col.type):
                ok, shown = self.shown(table, column, {column: value})
                if not ok:
                    actual, note = "not evaluable", str(shown)
                    break
                if _norm(shown) != _norm(value):
                    masked = True
                    action = _which(mask, value, shown)
                    actual = f"masked with {action_to_source(action)}" if action else "masked"
                    break
        if e.outcome == "clear":
            passed = actual == "clear"
        else:
            passed = masked
            if passed and e.method is not None and actual != "no access":
                passed = _same_method(e.method, action, target.method)
        return expectation_result(
            e,
            (*table_key, column),
            actual=actual,
            passed=passed,
            note=note,
        )

    def cell(self, e: ir.ExpectCell, user: str) -> ExpectationResult:
        target = self.program.expect_target(e)
        table_key, column = target.table, target.column
        table = self.program.table(table_key)
        col = table.column(column) if table is not None and column is not None else None
        assert table is not None and column is not None and col is not None
        mask = mask_of(self.program, table_key, column)
        row: dict[str, object] = {f.column: f.value for f in e.row}
        value = coerce_value(row.get(column), col.type)
        note = self.access(table_key, column, user)
        action: methods.MaskAction | None = None
        shown: object = None
        ok = note is None
        if note is None:
            ok, shown = self.shown(table, column, row)
            if not ok:
                note = str(shown)
        elif "directly" in note:
            ok, shown = True, value
        masked = ok and _norm(shown) != _norm(value)
        if masked:
            action = _which(mask, value, shown)
        how = "clear"
        if masked:
            how = f"masked with {action_to_source(action)}" if action else "masked"
        if not ok:
            actual = "no access" if note and "may not" in note else "not evaluable"
            passed = e.outcome == "masked" and actual == "no access" and e.method is None
        elif e.outcome == "is":
            actual = f"is {_value_source(shown)} ({how})"
            passed = _same_value(coerce_value(e.value, col.type), shown)
        elif e.outcome == "clear":
            actual, passed = how, not masked
        else:
            actual, passed = how, masked
            if passed and e.method is not None:
                passed = _same_method(e.method, action, target.method)
        return expectation_result(
            e,
            (*table_key, column),
            actual=actual,
            passed=passed,
            note=note,
        )

    # ------------------------------------------------------------------ a row
    def row(self, e: ir.ExpectRow, user: str) -> ExpectationResult:
        table_key = self.program.expect_target(e).table
        table = self.program.table(table_key)
        assert table is not None
        base = self.target.table_sql(table_key)
        view = self.target.qualified(self.target.view_of(table_key))
        values: dict[str, object] = {f.column: f.value for f in e.row}
        note = None
        direct = self.one("SELECT pg_catalog.has_table_privilege(%s, 'SELECT')", (base,))
        if not direct and not self.one(
            "SELECT pg_catalog.has_table_privilege(%s, 'SELECT')", (view,)
        ):
            visible, note = False, f"`{user}` may not SELECT `{view}`"
        else:
            # Through the view, the table is read as the view's owner: its policies are the
            # ones that apply to that role; read directly, to the user.
            if direct:
                note = f"`{user}` may SELECT `{model.table_str(table_key)}` directly"
                reader = self.one(
                    "SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = current_user"
                )
            else:
                reader = self.one(
                    "SELECT c.relowner FROM pg_catalog.pg_class AS c"
                    " WHERE c.oid = pg_catalog.to_regclass(%s)",
                    (view,),
                )
            quals = self.conn.execute(
                "SELECT p.polpermissive, pg_catalog.pg_get_expr(p.polqual, p.polrelid)"
                " FROM pg_catalog.pg_policy AS p"
                " WHERE p.polrelid = pg_catalog.to_regclass(%s) AND p.polcmd IN ('r', '*')"
                "  AND (0 = ANY (p.polroles) OR EXISTS (SELECT 1 FROM pg_catalog.unnest("
                "p.polroles) AS r WHERE pg_catalog.pg_has_role(%s::oid, r, 'MEMBER')))"
                " ORDER BY p.polname",
                (base, reader),
            ).fetchall()
            applies = self.one(
                "SELECT c.relrowsecurity AND NOT r.rolbypassrls"
                " AND (c.relforcerowsecurity OR r.oid <> c.relowner)"
                " FROM pg_catalog.pg_class AS c, pg_catalog.pg_roles AS r"
                " WHERE c.oid = pg_catalog.to_regclass(%s) AND r.oid = %s::oid",
                (base, reader),
            )
            if not applies:
                visible = True
            else:
                permissive = [q for p, q in quals if p and q is not None]
                restrictive = [q for p, q in quals if not p and q is not None]
                test = "(" + (" OR ".join(f"({q})" for q in permissive) or "false") + ")"
                test += "".join(f" AND ({q})" for q in restrictive)
                visible = bool(
                    self.one(
                        f"SELECT COALESCE({test}, false) FROM "
                        f"{self.literal_row(table, values)} AS t"
                    )
                )
        actual = "visible" if visible else "hidden"
        return expectation_result(
            e,
            table_key,
            actual=actual,
            passed=actual == e.outcome,
            note=note,
        )


def _which(
    mask: model.ColumnMask | None, value: object, shown: object
) -> methods.MaskAction | None:
    """The mask's method whose reference implementation turns `value` into `shown`."""
    if mask is None:
        return None
    for arm in mask.arms:
        if arm.action is None:
            continue
        if shown is None and isinstance(arm.action, methods.MaskNull):
            return arm.action
        if isinstance(arm.action, methods.MaskHash):
            if isinstance(shown, str) and re.fullmatch(r"[0-9a-f]+", shown):
                return arm.action  # keyed by the deployment's secret: compared by shape
            continue
        try:
            if _norm(apply_method(arm.action, value, mask.type)) == _norm(shown):
                return arm.action
        except Exception:  # a method that does not apply to the sample
            continue
    return None


def run_live_tests(dsn: str, program: model.Program, target: PostgresTarget) -> list[TestResult]:
    """Every test of the program against the database, in source order."""
    psycopg = _psycopg()
    templated = "{user}" in dsn
    tests = sorted(program.tests, key=lambda tc: (tc.span.file, tc.span.line, tc.span.col))
    shared = None
    if not templated:
        try:
            shared = psycopg.connect(dsn, connect_timeout=10, autocommit=False)
        except psycopg.Error as e:
            raise VerifyError(f"cannot connect: {_first_line(e)}") from None
    try:
        probe = shared if shared is not None else None
        if probe is not None:
            applied = probe.execute(
                "SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                (f"{target.options.governance_schema}.protected_table",),
            ).fetchone()[0]
            superuser = probe.execute(
                "SELECT pg_catalog.current_setting('is_superuser')"
            ).fetchone()[0]
            probe.rollback()
            if not applied:
                raise NotApplied("veil was never applied to this database")
            if superuser != "on":
                raise VerifyError(
                    "the DSN's role must be a superuser (to become each test's user with SET "
                    "SESSION AUTHORIZATION), or the DSN must hold `{user}` to log in as each user"
                )
        return [_run(tc, program, target, shared, dsn) for tc in tests]
    finally:
        if shared is not None:
            shared.close()


def _run(
    tc: ir.TestCase,
    program: model.Program,
    target: PostgresTarget,
    shared: t.Any,
    dsn: str,
) -> TestResult:
    psycopg = _psycopg()
    user = tc.user.value if tc.user is not None else None
    project = tc.project.value if tc.project is not None else None

    def failed(why: str) -> TestResult:
        result = ExpectationResult(
            span=tc.span,
            source=f"test {ir.string_source(tc.name)}",
            expected=f"to run as `{user}`",
            actual="not run",
            passed=False,
            note=why,
        )
        return TestResult(
            name=tc.name, span=tc.span, user=user, project=project, expectations=(result,)
        )

    if user is None:
        return failed("a test acts as one user: write `as USER` or `as USER in project P`")
    conn = shared
    if conn is None:
        try:
            conn = psycopg.connect(dsn.replace("{user}", user), connect_timeout=10)
        except psycopg.Error as e:
            return failed(f"cannot log in as `{user}`: {_first_line(e)}")
    try:
        session = _Session(conn, program, target)
        try:
            conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            why = session.switch(user, project, superuser_dsn=shared is not None)
        except psycopg.Error as e:
            why = f"cannot become `{user}`: {_first_line(e)}"
        if why is not None:
            return failed(why)
        results = []
        for exp in tc.expectations:
            try:
                conn.execute("SAVEPOINT veil_expect")
                match exp:
                    case ir.ExpectColumn():
                        results.append(session.column(exp, user))
                    case ir.ExpectRow():
                        results.append(session.row(exp, user))
                    case ir.ExpectCell():
                        results.append(session.cell(exp, user))
                    case _:
                        t.assert_never(exp)
                conn.execute("RELEASE SAVEPOINT veil_expect")
            except psycopg.Error as err:
                conn.execute("ROLLBACK TO SAVEPOINT veil_expect")
                results.append(
                    expectation_result(
                        exp,
                        actual="a database error",
                        passed=False,
                        note=_first_line(err),
                    )
                )
        return TestResult(
            name=tc.name, span=tc.span, user=user, project=project, expectations=tuple(results)
        )
    finally:
        conn.rollback()
        if conn is not shared:
            conn.close()
