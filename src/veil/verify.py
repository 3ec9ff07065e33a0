"""`veil verify`: the deployed PostgreSQL database against what the repository compiles to.

Everything is read in one READ ONLY, REPEATABLE READ transaction (one snapshot; the server refuses
any write), with `search_path = pg_catalog, pg_temp` as the applied script had it, so that the
definitions PostgreSQL prints back are qualified the same way.

What is expected comes from the PostgreSQL target itself, never from a list kept here: the rows
of each governance table (`PostgresTarget.governance_rows`, over `GOVERNANCE_TABLES`), the roles
of `managed_role`, and the views and policies of `PostgresTarget.context`.

View and policy definitions. A read-only session cannot ask the server to normalise the compiled
SQL (creating even a temporary view is refused in a READ ONLY transaction), and comparing the
compiled text with `pg_get_viewdef` by hand would mean re-implementing PostgreSQL's deparser. So
the applied script records, in `applied_definition`, the digest of the compiled text of each view
and policy next to what PostgreSQL printed back right after creating it (and each function's
definition). Verify then checks two things per object: the recorded digest equals the digest of
what the repository compiles to now (the repository moved on since the apply), and the live
definition equals the recorded one (someone replaced the object after the apply). Both texts
come from the same server, so the comparison is exact without any parsing.

psycopg is imported lazily: only this command and `veil test --dsn` need it.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import typing as t
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from veil import model
from veil.targets.postgres import (
    BASE_POLICY,
    BASE_USING,
    GOVERNANCE_TABLES,
    PostgresTarget,
    digest,
)

__all__ = [
    "Finding",
    "NotApplied",
    "Report",
    "VerifyError",
    "connect_read_only",
    "render_json",
    "render_text",
    "verify_postgres",
]

Row = tuple[t.Any, ...]
Query = Callable[[str, Sequence[t.Any]], list[Row]]


class VerifyError(Exception):
    """The database could not be read (connection, privileges): exit 2."""


class NotApplied(Exception):
    """The database has no veil governance schema: nothing was ever applied."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Finding:
    """One difference (`error`) or coverage warning, naming the object it is about."""

    kind: str  # governance-row, role, schema, view, policy, grant, function, table, column
    object: str  # `veil.project_member`, `sales.transactions`, `sales_protected.transactions`
    message: str
    severity: t.Literal["error", "warning"] = "error"

    def line(self) -> str:
        return f"{self.severity}: {self.object}: {self.message}"


@dataclass(slots=True, kw_only=True)
class Report:
    database: str
    findings: list[Finding] = field(default_factory=list)
    not_applied: bool = False

    @property
    def differences(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "error"]

    @property
    def warnings(self) -> list[Finding]:
        return [f for f in self.findings if f.severity == "warning"]


# ============================================================================= connecting


def _psycopg() -> t.Any:
    try:
        import psycopg
    except ImportError:  # pragma: no cover - psycopg is a dependency of the test extra
        raise VerifyError("this command needs psycopg: pip install 'psycopg[binary]'") from None
    return psycopg


def connect_read_only(dsn: str) -> t.Any:
    """A connection whose transactions are READ ONLY and REPEATABLE READ; VerifyError if not."""
    psycopg = _psycopg()
    try:
        conn = psycopg.connect(dsn, connect_timeout=10, autocommit=False)
    except psycopg.Error as e:
        raise VerifyError(f"cannot connect: {_first_line(e)}") from None
    conn.read_only = True
    conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    return conn


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__


def _query(conn: t.Any) -> Query:
    psycopg = _psycopg()

    def run(text: str, params: Sequence[t.Any] = ()) -> list[Row]:
        try:
            with conn.cursor() as cur:
                cur.execute(text, params)
                return [tuple(r) for r in cur.fetchall()] if cur.description else []
        except psycopg.errors.InsufficientPrivilege as e:
            raise VerifyError(
                f"missing privileges: {_first_line(e)} (docs/ci.md lists what the verify role "
                "needs)"
            ) from None
        except psycopg.Error as e:
            raise VerifyError(f"cannot read the database: {_first_line(e)}") from None

    return run


# ============================================================================= comparing


def verify_postgres(
    dsn: str,
    program: model.Program,
    target: PostgresTarget,
    extra: Callable[[Query, Report], None] | None = None,
) -> Report:
    """Every difference between the database at `dsn` and what `program` compiles to.

    `extra` runs inside the same snapshot (coverage). Raises NotApplied or VerifyError."""
    conn = connect_read_only(dsn)
    try:
        q = _query(conn)
        q("SET LOCAL search_path = pg_catalog, pg_temp", ())
        [(database,)] = q("SELECT pg_catalog.current_database()", ())
        report = Report(database=str(database))
        _Comparison(q, program, target, report).run()
        if extra is not None:
            extra(q, report)
        return report
    finally:
        conn.rollback()
        conn.close()


#: The relation named by two parameters, schema and name (NULL when there is none).
_REGCLASS = "pg_catalog.to_regclass(pg_catalog.format('%%I.%%I', %s::text, %s::text))"


def _name(name: str) -> str:
    """A name as a DBA would type it: double-quoted only when it has to be."""
    if _PLAIN.match(name):
        return name
    return '"' + name.replace('"', '""') + '"'


_PLAIN = re.compile(r"[a-z_][a-z0-9_$]*\Z")


def _who(oid: int, name: str | None) -> str:
    return "PUBLIC" if oid == 0 else str(name)


def _value(v: t.Any) -> t.Any:
    """Live and expected values in one form: arrays as tuples, instants in UTC."""
    if isinstance(v, list):
        return tuple(v)
    if isinstance(v, dt.datetime):
        return (v if v.tzinfo else v.replace(tzinfo=dt.UTC)).astimezone(dt.UTC)
    return v


def _show(v: t.Any) -> str:
    if isinstance(v, dt.datetime):
        return v.isoformat()
    return json.dumps(v, default=str, ensure_ascii=False)


class _Comparison:
    def __init__(
        self, q: Query, program: model.Program, target: PostgresTarget, report: Report
    ) -> None:
        self.q = q
        self.program = program
        self.target = target
        self.report = report
        self.gov = target.options.governance_schema

    def add(self, kind: str, obj: str, message: str) -> None:
        self.report.findings.append(Finding(kind=kind, object=obj, message=message))

    def qualified(self, *parts: str) -> str:
        return ".".join(_name(p) for p in parts)

    def run(self) -> None:
        found = self.q(
            "SELECT pg_catalog.pg_get_userbyid(n.nspowner),"
            " pg_catalog.to_regclass(pg_catalog.format('%%I.protected_table', n.nspname))"
            " IS NOT NULL FROM pg_catalog.pg_namespace AS n WHERE n.nspname = %s",
            (self.gov,),
        )
        if not found or not found[0][1]:
            raise NotApplied(
                f"veil was never applied to this database (no `{self.gov}.protected_table`)"
            )
        owner = found[0][0]
        if owner != self.target.owner_role:
            self.add("schema", self.gov, f"owned by `{owner}`, not `{self.target.owner_role}`")
        self.context = {"tables": self.target.layout_tables(self.target.lower(self.program))}
        self.superusers = {
            oid
            for (oid,) in self.q("SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolsuper", ())
        }
        self.governance_rows()
        self.governance_privileges()
        self.roles()
        self.recorded = self.applied_definitions()
        for tb in self.context["tables"]:
            self.protected_table(tb)
        self.functions()

    # ------------------------------------------------------------------ governance rows
    def governance_rows(self) -> None:
        expected_rows = self.target.governance_rows(self.program)
        for name, (columns, nkeys) in GOVERNANCE_TABLES.items():
            obj = f"{self.gov}.{name}"
            cols = ", ".join(self.target.ident(c) for c in columns)
            live = self.q(f"SELECT {cols} FROM {self.target.gov(name)}", ())
            want = {}
            for r in expected_rows[name]:
                row = tuple(_value(_instant(columns[i], v)) for i, v in enumerate(r))
                want[row[:nkeys]] = row
            have = {}
            for r in live:
                row = tuple(_value(v) for v in r)
                have[row[:nkeys]] = row
            for key in sorted(set(want) | set(have), key=repr):
                shown = "(" + ", ".join(_show(k) for k in key) + ")"
                if key not in have:
                    self.add("governance-row", obj, f"row {shown} of the repository is missing")
                elif key not in want:
                    self.add("governance-row", obj, f"row {shown} is not in the repository")
                else:
                    for i in range(nkeys, len(columns)):
                        if want[key][i] != have[key][i]:
                            self.add(
                                "governance-row",
                                obj,
                                f"row {shown}: `{columns[i]}` is {_show(have[key][i])}, "
                                f"the repository says {_show(want[key][i])}",
                            )

    def governance_privileges(self) -> None:
        """Only veil's owner owns and writes the governance tables (SELECT grants are kept)."""
        rows = self.q(
            "SELECT c.relname, pg_catalog.pg_get_userbyid(c.relowner), a.grantee,"
            " pg_catalog.pg_get_userbyid(a.grantee), a.privilege_type"
            " FROM pg_catalog.pg_class AS c"
            " LEFT JOIN LATERAL pg_catalog.aclexplode(c.relacl) AS a"
            "   ON a.grantee <> c.relowner AND a.privilege_type <> 'SELECT'"
            " WHERE c.relnamespace = %s::pg_catalog.regnamespace AND c.relkind IN ('r', 'p')"
            " ORDER BY 1, 3, 5",
            (self.gov,),
        )
        owners = {}
        for rel, owner, grantee, grantee_name, privilege in rows:
            owners[rel] = owner
            if grantee is not None:
                self.add(
                    "grant",
                    f"{self.gov}.{rel}",
                    f"{_who(grantee, grantee_name)} may {privilege}: only "
                    f"`{self.target.owner_role}` writes veil's tables",
                )
        for rel, owner in sorted(owners.items()):
            if owner != self.target.owner_role:
                self.add(
                    "schema",
                    f"{self.gov}.{rel}",
                    f"owned by `{owner}`, not `{self.target.owner_role}`",
                )

    # ------------------------------------------------------------------ roles
    def roles(self) -> None:
        managed = dict(
            (str(r[0]), str(r[1]))
            for r in self.target.governance_rows(self.program)["managed_role"]
        )
        live = {
            str(name): oid
            for name, oid in self.q(
                "SELECT r.rolname, r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = ANY (%s)",
                (sorted(managed),),
            )
        }
        members: dict[str, set[str]] = {}
        for role, member in self.q(
            "SELECT r.rolname, m.rolname FROM pg_catalog.pg_auth_members AS am"
            " JOIN pg_catalog.pg_roles AS r ON r.oid = am.roleid"
            " JOIN pg_catalog.pg_roles AS m ON m.oid = am.member"
            " WHERE r.rolname = ANY (%s)",
            (sorted(managed),),
        ):
            members.setdefault(str(role), set()).add(str(member))
        declared: dict[str, set[str]] = {}
        for u in self.program.users:
            for g in u.groups:
                declared.setdefault(g, set()).add(u.name)
        for role, kind in sorted(managed.items()):
            if role not in live:
                self.add("role", role, f"the {kind} role does not exist")
                continue
            if kind in ("owner", "views"):
                for m in sorted(members.get(role, ())):
                    self.add(
                        "role",
                        role,
                        f"`{m}` is a member: it can read everything veil protects",
                    )
            elif kind == "group":
                for m in sorted(members.get(role, set()) - declared.get(role, set())):
                    self.add(
                        "role",
                        role,
                        f"`{m}` is a member, but the repository does not put it in group `{role}`",
                    )
                want = sorted(declared.get(role, set()))
                if want:
                    held = self.q(
                        "SELECT u FROM pg_catalog.unnest(%s::text[]) AS u"
                        " WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_roles AS r"
                        "   WHERE r.rolname = u AND pg_catalog.pg_has_role(r.oid, %s, 'MEMBER'))",
                        (want, role),
                    )
                    for (m,) in held:
                        self.add(
                            "role",
                            role,
                            f"the repository puts `{m}` in group `{role}`, but `{m}` is not "
                            "a member of the role",
                        )

    # ------------------------------------------------------------------ recorded definitions
    def applied_definitions(self) -> dict[tuple[str, str, str, str], tuple[str | None, str]]:
        exists = self.q(
            "SELECT pg_catalog.to_regclass(pg_catalog.format('%%I.applied_definition', %s::text))"
            " IS NOT NULL",
            (self.gov,),
        )
        if not exists[0][0]:
            self.add(
                "schema",
                f"{self.gov}.applied_definition",
                "missing: the database was set up by an older veil; apply the script again",
            )
            return {}
        rows = self.q(
            "SELECT kind, schema_name, relation_name, object_name, source_digest, definition"
            f" FROM {self.target.gov('applied_definition')}",
            (),
        )
        return {(str(k), str(s), str(r), str(o)): (d, str(text)) for k, s, r, o, d, text in rows}

    # ------------------------------------------------------------------ tables, views, policies
    def protected_table(self, tb: dict[str, t.Any]) -> None:
        schema, table = tb["table_parts"]
        name = self.qualified(schema, table)
        found = self.q(
            "SELECT c.oid, c.relkind, c.relrowsecurity, c.relowner"
            " FROM pg_catalog.pg_class AS c"
            f" WHERE c.oid = {_REGCLASS}",
            (schema, table),
        )
        if not found:
            self.add("table", name, "the protected table does not exist")
            return
        oid, _, rowsecurity, owner = found[0]
        if not rowsecurity:
            self.add("table", name, "row level security is disabled")
        self.table_grants(name, oid, owner)
        self.policies(tb, name, oid)
        self.view(tb)

    def acl(self, oid: int) -> list[tuple[int, str | None, str, str | None]]:
        """(grantee, its name, privilege, column or None) of a relation and of its columns."""
        return [
            (int(g), n, str(p), c)
            for g, n, p, c in self.q(
                "SELECT a.grantee, pg_catalog.pg_get_userbyid(a.grantee), a.privilege_type, NULL"
                " FROM pg_catalog.pg_class AS c, pg_catalog.aclexplode(c.relacl) AS a"
                " WHERE c.oid = %s"
                " UNION ALL"
                " SELECT a.grantee, pg_catalog.pg_get_userbyid(a.grantee), a.privilege_type,"
                "  att.attname::text FROM pg_catalog.pg_attribute AS att,"
                "  pg_catalog.aclexplode(att.attacl) AS a"
                " WHERE att.attrelid = %s AND att.attnum > 0 AND NOT att.attisdropped"
                " ORDER BY 4 NULLS FIRST, 2, 3",
                (oid, oid),
            )
        ]

    def table_grants(self, name: str, oid: int, owner: int) -> None:
        [(views_oid,)] = self.q(
            "SELECT (SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = %s)",
            (self.target.view_role,),
        )
        views_can_read = False
        for grantee, who, privilege, column in self.acl(oid):
            if grantee == views_oid and privilege == "SELECT" and column is None:
                views_can_read = True
            if grantee in (owner, views_oid) or grantee in self.superusers:
                continue
            on = f"column `{column}`" if column else "the table"
            self.add(
                "grant",
                name,
                f"{_who(grantee, who)} holds {privilege} on {on}: readers go through the view",
            )
        if views_oid is not None and not views_can_read:
            self.add("grant", name, f"`{self.target.view_role}` may not SELECT it")

    def policies(self, tb: dict[str, t.Any], name: str, oid: int) -> None:
        schema, table = tb["table_parts"]
        expected = {BASE_POLICY: (True, digest(BASE_USING))}
        expected |= {p["name"]: (False, p["digest"]) for p in tb["policies"]}
        # the base policy lets rows through to the views' owner only; the restrictive ones
        # apply to everyone
        views = self.q(
            "SELECT r.oid FROM pg_catalog.pg_roles AS r WHERE r.rolname = %s",
            (self.target.view_role,),
        )
        base_roles, base_who = [int(r[0]) for r in views], _name(self.target.view_role)
        live = {
            str(n): (bool(permissive), str(cmd), list(roles), qual, check)
            for n, permissive, cmd, roles, qual, check in self.q(
                "SELECT p.polname, p.polpermissive, p.polcmd, p.polroles::oid[],"
                " pg_catalog.pg_get_expr(p.polqual, p.polrelid),"
                " pg_catalog.pg_get_expr(p.polwithcheck, p.polrelid)"
                " FROM pg_catalog.pg_policy AS p WHERE p.polrelid = %s",
                (oid,),
            )
        }
        for pol in sorted(set(expected) | set(live)):
            obj = f"policy {_name(pol)} on {name}"
            if pol not in live:
                self.add("policy", obj, "missing")
                continue
            if pol not in expected:
                self.add("policy", obj, "not created by this repository")
                continue
            permissive, cmd, roles, qual, check = live[pol]
            want_permissive, want_digest = expected[pol]
            want_roles, who = (base_roles, base_who) if pol == BASE_POLICY else ([0], "PUBLIC")
            if permissive != want_permissive or cmd != "r" or roles != want_roles or check:
                kind = "PERMISSIVE" if want_permissive else "RESTRICTIVE"
                self.add("policy", obj, f"altered: expected {kind} FOR SELECT TO {who}")
            recorded = self.recorded.get(("policy", schema, table, pol))
            if recorded is None:
                self.add("policy", obj, "not recorded by the applied script; apply it again")
            elif recorded[0] != want_digest:
                self.add("policy", obj, "differs from what the repository compiles to")
            elif recorded[1] != qual:
                self.add("policy", obj, f"changed after the apply: USING ({qual})")

    def view(self, tb: dict[str, t.Any]) -> None:
        vschema, vname = tb["view_parts"]
        name = self.qualified(vschema, vname)
        found = self.q(
            "SELECT c.oid, c.relkind, pg_catalog.pg_get_userbyid(c.relowner),"
            " CASE c.relkind WHEN 'v' THEN pg_catalog.pg_get_viewdef(c.oid) END,"
            " pg_catalog.pg_get_userbyid(n.nspowner)"
            " FROM pg_catalog.pg_class AS c"
            " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
            f" WHERE c.oid = {_REGCLASS}",
            (vschema, vname),
        )
        if not found:
            self.add("view", name, "the protected view does not exist")
            return
        oid, relkind, owner, definition, schema_owner = found[0]
        if schema_owner != self.target.view_role:
            self.add(
                "schema",
                _name(vschema),
                f"owned by `{schema_owner}`, not `{self.target.view_role}`",
            )
        if relkind != "v":
            self.add("view", name, "is not a view")
            return
        if owner != self.target.view_role:
            self.add("view", name, f"owned by `{owner}`, not `{self.target.view_role}`")
        columns = [
            str(c)
            for (c,) in self.q(
                "SELECT a.attname::text FROM pg_catalog.pg_attribute AS a"
                " WHERE a.attrelid = %s AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
                (oid,),
            )
        ]
        want_columns = [c["name"] for c in tb["columns"]]
        if columns != want_columns:
            self.add("view", name, f"has columns {columns}, the repository {want_columns}")
        recorded = self.recorded.get(("view", vschema, vname, ""))
        if recorded is None:
            self.add("view", name, "not recorded by the applied script; apply it again")
        elif recorded[0] != tb["view_digest"]:
            self.add("view", name, "differs from what the repository compiles to")
        elif recorded[1] != definition:
            self.add("view", name, "replaced after the apply (its definition changed)")
        for grantee, who, privilege, column in self.acl(oid):
            if privilege != "SELECT" and who != owner:
                on = f"column `{column}`" if column else "the view"
                self.add(
                    "grant",
                    name,
                    f"{_who(grantee, who)} holds {privilege} on {on}: "
                    "consumers only read the views",
                )

    # ------------------------------------------------------------------ functions
    def functions(self) -> None:
        live = {
            str(sig): (str(owner), str(text))
            for sig, owner, text in self.q(
                "SELECT p.proname || '(' || pg_catalog.pg_get_function_identity_arguments(p.oid)"
                " || ')', pg_catalog.pg_get_userbyid(p.proowner),"
                " pg_catalog.pg_get_functiondef(p.oid)"
                " FROM pg_catalog.pg_proc AS p"
                " WHERE p.pronamespace = %s::pg_catalog.regnamespace",
                (self.gov,),
            )
        }
        recorded = {o: text for (k, _, _, o), (_, text) in self.recorded.items() if k == "function"}
        if not recorded:
            return
        for sig in sorted(set(live) | set(recorded)):
            obj = f"function {self.gov}.{sig}"
            if sig not in live:
                self.add("function", obj, "missing")
            elif sig not in recorded:
                self.add("function", obj, "not created by veil")
            else:
                owner, text = live[sig]
                if owner != self.target.owner_role:
                    self.add("function", obj, f"owned by `{owner}`, not `{self.target.owner_role}`")
                if text != recorded[sig]:
                    self.add("function", obj, "replaced after the apply")


def _instant(column: str, value: t.Any) -> t.Any:
    """`approved_at` is ISO-8601 text in the program, a timestamptz in the database."""
    if column.endswith("_at") and isinstance(value, str):
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
    return value


# ============================================================================= output


def render_text(report: Report, *, strict: bool = False) -> str:
    lines = [f.line() for f in report.findings]
    n = len(report.differences)
    w = len(report.warnings)
    if n == 0 and not (strict and w):
        lines.append(
            f"ok: {report.database} is what the repository declares"
            + (f" ({w} warning{'s' * (w != 1)})" if w else "")
        )
    else:
        lines.append(
            f"{n} difference{'s' * (n != 1)} between {report.database} and the repository"
            + (f", {w} warning{'s' * (w != 1)}" if w else "")
        )
    return "\n".join(lines)


def render_json(report: Report, *, strict: bool = False) -> str:
    ok = not report.differences and not (strict and report.warnings)
    return json.dumps(
        {
            "database": report.database,
            "ok": ok,
            "applied": not report.not_applied,
            "differences": [_finding_json(f) for f in report.differences],
            "warnings": [_finding_json(f) for f in report.warnings],
        },
        indent=2,
        sort_keys=True,
    )


def _finding_json(f: Finding) -> dict[str, str]:
    return {"kind": f.kind, "object": f.object, "message": f.message}
