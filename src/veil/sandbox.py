"""`veil sandbox`: try compiled policies on a real, throwaway PostgreSQL.

The command starts an embedded PostgreSQL (the `pgserver` package), creates the catalog's tables
filled with deterministic sample rows (or the CSV files of `--data`), creates the declared users
(LOGIN) and groups (NOLOGIN) as roles, lets the users read the base tables, applies the compiled
PostgreSQL script, and then shows, for every user — with no project and under each of their
projects — what they see through each protected view: masked cells marked, hidden rows listed.

Everything below `run_sandbox` works on any database reached with a superuser DSN, so the tests
can use their own server. psycopg and pgserver are imported lazily (both are optional).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import importlib.util
import shlex
import shutil
import subprocess
import tempfile
import typing as t
import urllib.parse
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path

from veil import model
from veil.model import SqlType
from veil.sample_data import sample_rows
from veil.targets.postgres import PostgresTarget

if t.TYPE_CHECKING:
    import psycopg

DEFAULT_ROWS = 20
SHOW_ROWS = 20  # rows printed per table and context
CELL_WIDTH = 22  # longer cells are cut with …
_TARGET = PostgresTarget()
GOVERNANCE_SCHEMA = _TARGET.options.governance_schema
DEFAULT_DATABASE = "veil_sandbox"
PSQL_TIMEOUT_S = 300

Row: t.TypeAlias = tuple[object, ...]
Echo: t.TypeAlias = Callable[[str], None]


class SandboxError(Exception):
    """Something the user can fix: a missing package, bad CSV data, a script that fails."""


def _require(module: str, hint: str) -> None:
    if importlib.util.find_spec(module) is None:
        raise SandboxError(f"`veil sandbox` needs {module}: pip install {hint}")


# --------------------------------------------------------------------------------------------
# Names and types


def pg_name(key: model.TableKey) -> tuple[str, str]:
    """(schema, table) of a catalog table in the sandbox database: `t` is public.t, and the
    database part of `db.schema.table` is the database itself."""
    return ("public", key[0]) if len(key) == 1 else (key[-2], key[-1])


def database_name(program: model.Program) -> str:
    """The sandbox database: the `db` of three-part table names, else veil_sandbox."""
    dbs = sorted({tb.key[-3] for tb in program.tables if len(tb.key) >= 3})
    if len(dbs) > 1:
        raise SandboxError(
            f"tables name several databases ({', '.join(dbs)}); the sandbox runs one"
        )
    return dbs[0] if dbs else DEFAULT_DATABASE


def pg_type(st: SqlType) -> str:
    """The column type, as the PostgreSQL target writes it in the views it casts to."""
    return _TARGET.sql_type(st)


# --------------------------------------------------------------------------------------------
# Setting up the database


def _qualified(schema: str, table: str) -> t.Any:
    from psycopg import sql

    return sql.SQL(".").join([sql.Identifier(schema), sql.Identifier(table)])


def create_tables(
    conn: psycopg.Connection[t.Any],
    program: model.Program,
    rows: int,
    data: Path | None,
    today: dt.date,
    echo: Echo,
    now: dt.datetime | None = None,
) -> None:
    """The catalog's tables with sample rows, or the rows of `data/<table>.csv`."""
    from psycopg import sql

    csv_files = {p.name: p for p in sorted(data.glob("*.csv"))} if data else {}
    used: set[str] = set()
    for tb in program.tables:
        schema, name = pg_name(tb.key)
        conn.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(schema)))
        columns = sql.SQL(", ").join(
            sql.SQL("{} {}").format(sql.Identifier(c.name), sql.SQL(pg_type(c.type)))
            for c in tb.columns
        )
        conn.execute(sql.SQL("CREATE TABLE {} ({})").format(_qualified(schema, name), columns))
        csv_path = csv_files.get(f"{tb.name}.csv")
        if csv_path is not None:
            used.add(csv_path.name)
            _load_csv(conn, tb, schema, name, csv_path)
            continue
        names = sql.SQL(", ").join(sql.Identifier(c.name) for c in tb.columns)
        copy = sql.SQL("COPY {} ({}) FROM STDIN").format(_qualified(schema, name), names)
        with conn.cursor() as cur, cur.copy(copy) as cp:
            for row in sample_rows(program, tb, rows, today, now):
                cp.write_row(row)
    for unused in sorted(set(csv_files) - used):
        echo(f"warning: {data}/{unused} names no catalog table (expected <schema>.<table>.csv)")


def _load_csv(
    conn: psycopg.Connection[t.Any], tb: model.CatalogTable, schema: str, name: str, path: Path
) -> None:
    from psycopg import sql

    with path.open(newline="", encoding="utf-8") as f:
        header = next(csv.reader(f), None)
    if not header:
        raise SandboxError(f"{path}: empty file; the first line names the columns")
    unknown = [h for h in header if tb.column(h) is None]
    if unknown:
        raise SandboxError(
            f"{path}: no column {', '.join(f'`{u}`' for u in unknown)} in table `{tb.name}`"
        )
    names = sql.SQL(", ").join(sql.Identifier(h) for h in header)
    copy = sql.SQL("COPY {} ({}) FROM STDIN WITH (FORMAT csv, HEADER true)").format(
        _qualified(schema, name), names
    )
    import psycopg as pg

    try:
        with conn.cursor() as cur, cur.copy(copy) as cp, path.open("rb") as f:
            while chunk := f.read(1 << 16):
                cp.write(chunk)
    except pg.Error as e:
        raise SandboxError(f"{path}: {str(e).strip()}") from None


def create_roles(conn: psycopg.Connection[t.Any], program: model.Program) -> None:
    """Groups as NOLOGIN roles, users as LOGIN roles in their groups, with SELECT on the base
    tables (the compiled script takes it away from the protected ones)."""
    from psycopg import sql

    existing = {r[0] for r in conn.execute("SELECT rolname FROM pg_catalog.pg_roles")}
    groups = sorted({*program.groups, *(g for u in program.users for g in u.groups)})
    for group in groups:
        if group not in existing:
            conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(sql.Identifier(group)))
    schemas = sorted({pg_name(tb.key)[0] for tb in program.tables})
    for user in program.users:
        ident = sql.Identifier(user.name)
        if user.name not in existing:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(ident))
        for group in user.groups:
            conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), ident))
        for schema in schemas:
            conn.execute(
                sql.SQL("GRANT USAGE ON SCHEMA {} TO {}").format(sql.Identifier(schema), ident)
            )
        for tb in program.tables:
            conn.execute(
                sql.SQL("GRANT SELECT ON {} TO {}").format(_qualified(*pg_name(tb.key)), ident)
            )


def find_psql() -> Path | None:
    """pgserver's bundled psql, else the one on PATH."""
    spec = importlib.util.find_spec("pgserver")
    if spec is not None and spec.origin is not None:
        bundled = Path(spec.origin).parent / "pginstall" / "bin" / "psql"
        if bundled.is_file():
            return bundled
    found = shutil.which("psql")
    return Path(found) if found else None


def apply_script(dsn: str, script: str, psql: Path | None) -> None:
    """Apply the compiled script as a DBA would (`psql -X -v ON_ERROR_STOP=1 -1 -f`); without
    psql, in one transaction through psycopg."""
    if psql is None:
        import psycopg as pg

        try:
            with pg.connect(dsn) as conn:  # one transaction, committed on success
                conn.execute(script)  # a whole script: no parameters, so several statements
        except pg.Error as e:
            raise SandboxError(f"the compiled script failed: {str(e).strip()}") from None
        return
    with tempfile.TemporaryDirectory(prefix="veil-sandbox-sql-") as tmp:
        path = Path(tmp) / "veil.sql"
        path.write_text(script, encoding="utf-8")
        done = subprocess.run(
            [
                str(psql),
                "-X",
                "-q",
                "-w",
                "-v",
                "ON_ERROR_STOP=1",
                "-1",
                "-f",
                str(path),
                "-d",
                dsn,
            ],
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=PSQL_TIMEOUT_S,
            check=False,
        )
    if done.returncode != 0:
        raise SandboxError(
            "the compiled script failed:\n" + (done.stderr.strip() or done.stdout.strip())
        )


# --------------------------------------------------------------------------------------------
# What each user sees


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class TableView:
    """One protected view as one user saw it: `shown[i]` is the view's row for base row i
    (None: hidden), `error` what PostgreSQL said instead of rows."""

    table: model.CatalogTable
    view: str
    base: list[Row]
    shown: list[Row | None]
    extra: list[Row]  # view rows that match no base row (a policy changed values)
    error: str | None = None


def _match(
    base: Sequence[Row], seen: Sequence[Row], keys: Sequence[int]
) -> tuple[list[Row | None], list[Row]]:
    """Line view rows up with base rows on the columns no mask touches, in scan order."""
    shown: list[Row | None] = [None] * len(base)
    extra: list[Row] = []
    last = -1
    for row in seen:
        candidates = [
            i for i, b in enumerate(base) if shown[i] is None and all(b[k] == row[k] for k in keys)
        ]
        if not candidates:
            extra.append(row)
            continue
        after = [i for i in candidates if i > last]
        last = after[0] if after else candidates[0]
        shown[last] = row
    return shown, extra


def observe(
    admin_dsn: str, program: model.Program, user: str, project: str | None
) -> tuple[str | None, list[TableView]]:
    """Log in as `user` (SET SESSION AUTHORIZATION, so no password is needed), select
    `project`, acknowledge its purposes' texts (as `veil explain` assumes), and read every
    protected view. Returns use_project's error, if any."""
    import psycopg as pg
    from psycopg import sql

    views: list[TableView] = []
    with (
        pg.connect(admin_dsn, autocommit=True) as admin,
        pg.connect(admin_dsn, autocommit=True) as conn,
    ):
        conn.execute(sql.SQL("SET SESSION AUTHORIZATION {}").format(sql.Identifier(user)))
        problem: str | None = None
        if project is not None:
            try:
                conn.execute(
                    sql.SQL("SELECT {}.use_project(%s)").format(sql.Identifier(GOVERNANCE_SCHEMA)),
                    [project],
                )
                conn.execute(
                    sql.SQL("SELECT {}.acknowledge(%s)").format(sql.Identifier(GOVERNANCE_SCHEMA)),
                    [project],
                )
            except pg.Error as e:
                problem = str(e).strip()
        view_of = {tb.key: tb.view for tb in _TARGET.lower(program).tables}
        for tb in program.protected_tables:
            schema, name = pg_name(tb.key)
            names = sql.SQL(", ").join(sql.Identifier(c.name) for c in tb.columns)
            base = [
                tuple(r)
                for r in admin.execute(
                    sql.SQL("SELECT {} FROM {} ORDER BY ctid").format(
                        names, _qualified(schema, name)
                    )
                )
            ]
            lowered = view_of[tb.key]
            assert lowered is not None  # every protected table has a view on PostgreSQL
            view = (lowered.schema, lowered.name)
            label = ".".join(view)
            try:
                seen = [
                    tuple(r)
                    for r in conn.execute(
                        sql.SQL("SELECT {} FROM {}").format(names, _qualified(*view))
                    )
                ]
            except pg.Error as e:
                views.append(
                    TableView(
                        table=tb,
                        view=label,
                        base=base,
                        shown=[None] * len(base),
                        extra=[],
                        error=str(e).strip().splitlines()[0],
                    )
                )
                continue
            masked = {m.column for m in program.masks_of(tb.key)}
            keys = [i for i, c in enumerate(tb.columns) if c.name not in masked]
            shown, extra = _match(base, seen, keys)
            views.append(TableView(table=tb, view=label, base=base, shown=shown, extra=extra))
    return problem, views


def _cell(value: object) -> str:
    if value is None:
        text = "NULL"
    elif isinstance(value, bytes):
        text = "\\x" + value.hex()
    elif isinstance(value, dt.datetime):
        text = value.isoformat(sep=" ")
    else:
        text = str(value)
    text = text.replace("\n", " ")
    return text if len(text) <= CELL_WIDTH else text[: CELL_WIDTH - 1] + "…"


def render_view(tv: TableView) -> list[str]:
    """A compact table of every stored row: a visible row with the values the user sees (`*`
    marks a masked cell), a hidden row with the stored values the user does not see."""
    total = len(tv.base)
    if tv.error is not None:
        return [f"  {tv.view}: {tv.error}"]
    visible = sum(1 for r in tv.shown if r is not None)
    masked = sum(
        1
        for b, r in zip(tv.base, tv.shown, strict=True)
        if r is not None
        for x, y in zip(b, r, strict=True)
        if x != y
    )
    lines = [f"  {tv.view}   rows visible: {visible}/{total}   masked cells: {masked}"]
    header = ["row", *(c.name for c in tv.table.columns)]
    body: list[list[str]] = []
    for i, (b, r) in enumerate(zip(tv.base, tv.shown, strict=True)):
        if i >= SHOW_ROWS:
            break
        if r is None:
            body.append([f"{i + 1} hidden", *(_cell(x) for x in b)])
        else:
            body.append(
                [
                    f"{i + 1}",
                    *(_cell(y) + ("*" if x != y else "") for x, y in zip(b, r, strict=True)),
                ]
            )
    widths = [max([len(header[k])] + [len(row[k]) for row in body]) for k in range(len(header))]
    lines += [
        "    " + "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
        for row in [header, *body]
    ]
    if total > SHOW_ROWS:
        lines.append(f"    … {total - SHOW_ROWS} more rows")
    for row in tv.extra:
        lines.append("    (a row that matches no stored row) " + "  ".join(_cell(v) for v in row))
    return lines


def _project_label(program: model.Program, name: str) -> str:
    project = program.project(name)
    states = (
        ", ".join(f"{p.purpose}: {p.state.value}" for p in project.purposes)
        if project
        else "unknown project"
    )
    return f"project {name} ({states})"


def report(admin_dsn: str, program: model.Program, echo: Echo) -> None:
    """For each user, with no project and then in each of their projects, every protected
    view as they see it."""
    if not program.protected_tables:
        echo("no table has a mask or row rule: nothing to show")
        return
    for user in program.users:
        contexts: list[str | None] = [None]
        contexts += [p.name for p in program.projects if user.name in p.members]
        for project in contexts:
            where = "no active project" if project is None else _project_label(program, project)
            echo(f"{user.name} — {where}")
            problem, views = observe(admin_dsn, program, user.name, project)
            if problem is not None:
                echo(f"  use_project failed: {problem}")
            for tv in views:
                for line in render_view(tv):
                    echo(line)
            echo("")
    echo(
        "`*` marks a masked cell: the user sees that value instead of the stored one. A hidden "
        "row shows the stored values, which the user does not see. In a project, the user has "
        "acknowledged its purposes' texts."
    )


# --------------------------------------------------------------------------------------------
# The whole run


def prepare(
    admin_dsn: str,
    program: model.Program,
    script: str,
    *,
    rows: int = DEFAULT_ROWS,
    data: Path | None = None,
    today: dt.date | None = None,
    psql: Path | None = None,
    echo: Echo = print,
) -> None:
    """Tables, rows, roles and grants in the (empty) database of `admin_dsn`, then the script."""
    import psycopg as pg

    # Time windows (`now() - 7 days`) are measured from the real instant, so that the rows
    # meant to fall inside a window still do when the users query them moments later.
    now = dt.datetime.now(dt.UTC) if today is None else None
    today = today or t.cast(dt.datetime, now).date()
    try:
        with pg.connect(admin_dsn) as conn:  # one transaction
            create_tables(conn, program, rows, data, today, echo, now=now)
            create_roles(conn, program)
    except pg.Error as e:
        raise SandboxError(f"setting up the sandbox failed: {str(e).strip()}") from None
    apply_script(admin_dsn, script, psql)


@dataclasses.dataclass(slots=True)
class EmbeddedServer:
    """A pgserver instance in a temporary directory."""

    server: t.Any
    tempdir: Path
    socket_dir: str
    port: int

    def dsn(self, dbname: str) -> str:
        from psycopg.conninfo import make_conninfo

        return make_conninfo(
            host=self.socket_dir,
            port=self.port,
            user="postgres",
            dbname=dbname,
            options="-c TimeZone=UTC",
        )

    def stop(self) -> None:
        try:
            self.server.cleanup()
        finally:
            shutil.rmtree(self.tempdir, ignore_errors=True)


def start_server(keep: bool) -> EmbeddedServer:
    _require("pgserver", "pgserver")
    tempdir = Path(tempfile.mkdtemp(prefix="veil-sandbox-"))
    with warnings.catch_warnings():  # platformdirs warns when XDG_RUNTIME_DIR is unset
        warnings.simplefilter("ignore")
        from pgserver.postgres_server import get_server

        try:
            server = get_server(tempdir / "pgdata", cleanup_mode=None if keep else "delete")
        except Exception as e:
            shutil.rmtree(tempdir, ignore_errors=True)
            raise SandboxError(f"could not start the embedded PostgreSQL: {e}") from None
    info = server.get_postmaster_info()
    return EmbeddedServer(
        server=server, tempdir=tempdir, socket_dir=str(info.socket_dir), port=int(info.port)
    )


def run_sandbox(
    program: model.Program,
    script: str,
    *,
    rows: int = DEFAULT_ROWS,
    data: Path | None = None,
    keep: bool = False,
    echo: Echo = print,
) -> None:
    """Start an embedded PostgreSQL, prepare it, show what every user sees, stop it (unless
    `keep`: then print how to connect and how to stop it)."""
    _require("psycopg", "'psycopg[binary]'")
    import psycopg as pg
    from psycopg import sql

    dbname = database_name(program)
    echo("starting an embedded PostgreSQL …")
    server = start_server(keep)
    stop = not keep
    try:
        with pg.connect(server.dsn("postgres"), autocommit=True) as conn:
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8'").format(
                    sql.Identifier(dbname)
                )
            )
        dsn = server.dsn(dbname)
        prepare(dsn, program, script, rows=rows, data=data, psql=find_psql(), echo=echo)
        echo("")
        report(dsn, program, echo)
    finally:
        if stop:
            server.stop()
        else:
            psql = find_psql()
            uri = (
                f"postgresql://postgres@/{urllib.parse.quote(dbname)}"
                f"?host={urllib.parse.quote(server.socket_dir)}&port={server.port}"
            )
            echo(f"the sandbox keeps running: {psql or 'psql'} '{uri}'")
            echo(
                f"log in as a user with: SET SESSION AUTHORIZATION <user>; data in {server.tempdir}"
            )
            code = (
                f"import pgserver, shutil; pgserver.get_server("
                f"{str(server.tempdir / 'pgdata')!r}, cleanup_mode='delete').cleanup(); "
                f"shutil.rmtree({str(server.tempdir)!r}, ignore_errors=True)"
            )
            echo(f"stop and delete it with: python -W ignore -c {shlex.quote(code)}")
