"""Passes `collect_declarations` and `apply_tags`: the catalog, purposes, people and projects."""

from __future__ import annotations

import functools
import typing as t
from dataclasses import replace

from veil import ir, model
from veil.checker import codes
from veil.checker.columns import resolve_columns
from veil.checker.common import close_matches, name_span
from veil.checker.facts import Facts
from veil.diagnostics import Diagnostic, Span, error

#: type name -> (min, max) number of parameters
TYPE_PARAMS: dict[str, tuple[int, int]] = {
    "boolean": (0, 0),
    "smallint": (0, 0),
    "integer": (0, 0),
    "bigint": (0, 0),
    "decimal": (0, 2),
    "real": (0, 0),
    "double": (0, 0),
    "varchar": (0, 1),
    "char": (1, 1),
    "text": (0, 0),
    "date": (0, 0),
    "timestamp": (0, 0),
    "timestamptz": (0, 0),
    "binary": (0, 0),
    "json": (0, 0),
}

#: names from other SQL dialects -> the veil type
TYPE_ALIASES: dict[str, str] = {
    "int": "integer",
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "tinyint": "smallint",
    "long": "bigint",
    "bool": "boolean",
    "numeric": "decimal",
    "number": "decimal",
    "float": "double",
    "float4": "real",
    "float8": "double",
    "string": "varchar",
    "str": "varchar",
    "character": "char",
    "nvarchar": "varchar",
    "datetime": "timestamp",
    "timestamp_ntz": "timestamp",
    "timestamp_tz": "timestamptz",
    "timestamp_ltz": "timestamptz",
    "bytea": "binary",
    "blob": "binary",
    "varbinary": "binary",
    "jsonb": "json",
    "variant": "json",
    "clob": "text",
}

MAX_DECIMAL_PRECISION = 38


def check_type(ct: ir.ColumnType) -> tuple[model.SqlType | None, list[Diagnostic]]:
    """A column type as written -> the checked type, or why it is not one."""
    if ct.name not in TYPE_PARAMS:
        near = [
            TYPE_ALIASES.get(n, n)
            for n in [ct.name, *close_matches(ct.name, [*TYPE_PARAMS, *TYPE_ALIASES])]
            if n in TYPE_ALIASES or n in TYPE_PARAMS
        ]
        help_ = f"did you mean `{near[0]}`?" if near else "known types: " + ", ".join(TYPE_PARAMS)
        return None, [
            error(codes.UNKNOWN_TYPE, f"unknown column type `{ct.name}`", ct.span, help=help_)
        ]
    lo, hi = TYPE_PARAMS[ct.name]
    n, p = len(ct.params), ct.params

    def bad(message: str, help_: str) -> tuple[None, list[Diagnostic]]:
        return None, [error(codes.BAD_TYPE_PARAMS, message, ct.span, help=help_)]

    if not lo <= n <= hi:
        forms = {0: f"`{ct.name}`", 1: f"`{ct.name}(n)`", 2: f"`{ct.name}(p,s)`"}
        if ct.name == "decimal":
            want = "`decimal`, `decimal(p)` or `decimal(p,s)`"
        elif ct.name == "varchar":
            want = "`varchar` or `varchar(n)`"
        else:
            want = forms[hi]
        return bad(f"`{ct}` takes {_count(lo, hi)}", f"write {want}")
    if ct.name == "decimal":
        if n >= 1 and not 1 <= p[0] <= MAX_DECIMAL_PRECISION:
            return bad(
                f"precision of `{ct}` must be between 1 and {MAX_DECIMAL_PRECISION}",
                "every target supports decimal precision up to 38 digits",
            )
        if n == 2 and not 0 <= p[1] <= p[0]:
            return bad(
                f"scale of `{ct}` must be between 0 and the precision {p[0]}",
                "the scale counts the digits after the decimal point",
            )
        if n == 0:
            return model.SqlType(name="decimal"), []
        return model.SqlType(name="decimal", precision=p[0], scale=p[1] if n == 2 else 0), []
    if ct.name in ("varchar", "char"):
        if n == 1 and not 1 <= p[0] <= MAX_STRING_LENGTH:
            return bad(
                f"length of `{ct}` must be between 1 and {MAX_STRING_LENGTH}",
                f"{MAX_STRING_LENGTH} characters is the longest `{ct.name}(n)` PostgreSQL "
                f"allows; write `text` for longer values",
            )
        return model.SqlType(name=ct.name, length=p[0] if n else None), []
    return model.SqlType(name=ct.name), []


#: PostgreSQL's limit for varchar(n)/char(n) (Snowflake and Databricks allow more).
MAX_STRING_LENGTH = 10_485_760


def _count(lo: int, hi: int) -> str:
    if lo == hi:
        return {0: "no parameters", 1: "one parameter", 2: "two parameters"}[lo]
    return f"{lo} to {hi} parameters"


_TYPES: dict[tuple[str, tuple[int, ...]], model.SqlType] = {}


def _checked_type(ct: ir.ColumnType) -> tuple[model.SqlType | None, list[Diagnostic]]:
    """`check_type`, remembering the types that are right (a catalog repeats a few types
    thousands of times; a wrong one is checked each time, for its span)."""
    key = (ct.name, ct.params)
    known = _TYPES.get(key)
    if known is not None:
        return known, []
    sql_type, found = check_type(ct)
    if sql_type is not None and not found and len(_TYPES) < 4096:
        _TYPES[key] = sql_type
    return sql_type, found


@functools.lru_cache(maxsize=4096)
def _quoted(name: str) -> str:
    """`ir.quote_part`, asked once per column name however many tables have it."""
    return ir.quote_part(name)


def _sorted_tags(tags: tuple[ir.TagPath, ...]) -> tuple[ir.TagPath, ...]:
    if len(tags) < 2:
        return tags
    unique = {tg.parts: tg for tg in tags}
    return tuple(unique[k] for k in sorted(unique))


class _Seen:
    """First declaration of each name; a second one is an error pointing at both."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self.first: dict[object, Span] = {}

    def add(
        self, key: object, shown: str, span: Span, diags: list[Diagnostic], where: str = ""
    ) -> bool:
        if key in self.first:
            diags.append(
                error(
                    codes.DUPLICATE,
                    f"duplicate {self.kind} `{shown}`{where}",
                    span,
                    help=f"the {self.kind} is already declared at {self.first[key]}",
                    related=(self.first[key],),
                )
            )
            return False
        self.first[key] = span
        return True


def collect_declarations(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    tables: dict[model.TableKey, model.CatalogTable] = {}
    purposes: dict[str, ir.Purpose] = {}
    groups: set[str] = set()
    users: dict[str, model.UserInfo] = {}
    projects: dict[str, ir.Project] = {}
    seen = {k: _Seen(k) for k in ("table", "purpose", "group", "user", "project")}
    for stmt in policies.statements():
        match stmt:
            case ir.Table():
                table = _table(stmt, diags)
                if seen["table"].add(stmt.name.parts, str(stmt.name), stmt.name.span, diags):
                    tables[stmt.name.parts] = table
            case ir.Purpose():
                if seen["purpose"].add(stmt.name.value, stmt.name.value, stmt.name.span, diags):
                    purposes[stmt.name.value] = stmt
            case ir.Group():
                if seen["group"].add(stmt.name.value, stmt.name.value, stmt.name.span, diags):
                    groups.add(stmt.name.value)
            case ir.User():
                user = _user(stmt, diags)
                if seen["user"].add(stmt.name.value, stmt.name.value, stmt.name.span, diags):
                    users[user.name] = user
            case ir.Project():
                if seen["project"].add(stmt.name.value, stmt.name.value, stmt.name.span, diags):
                    projects[stmt.name.value] = stmt
            case (
                ir.TagOn()
                | ir.Approvers()
                | ir.Approve()
                | ir.Revoke()
                | ir.Mask()
                | ir.Filter()
                | ir.Restrict()
                | ir.TestCase()
            ):
                pass
            case _:
                t.assert_never(stmt)
    infos = _purposes(purposes, diags)
    return replace(
        facts,
        tables={k: tables[k] for k in sorted(tables)},
        purposes={k: infos[k] for k in sorted(infos)},
        declared_groups=frozenset(groups),
        users={k: users[k] for k in sorted(users)},
        projects={k: projects[k] for k in sorted(projects)},
    ), diags


def _table(stmt: ir.Table, diags: list[Diagnostic]) -> model.CatalogTable:
    seen = _Seen("column")
    columns: list[model.CatalogColumn] = []
    for col in stmt.columns:
        shown = _quoted(col.name)
        span = name_span(col.span, shown)
        sql_type, found = _checked_type(col.type)
        diags.extend(found)
        if col.name in seen.first:
            seen.add(col.name, shown, span, diags, where=f" in table `{stmt.name}`")
        elif seen.add(col.name, shown, span, diags) and sql_type is not None:
            columns.append(
                model.CatalogColumn(
                    name=col.name, type=sql_type, tags=_sorted_tags(col.tags), span=span
                )
            )
    return model.CatalogTable(key=stmt.name.parts, columns=tuple(columns), span=stmt.name.span)


def _user(stmt: ir.User, diags: list[Diagnostic]) -> model.UserInfo:
    seen = _Seen("attribute")
    attrs: dict[str, tuple[str, ...]] = {}
    for a in stmt.attributes:
        span = name_span(a.span, ir.quote_part(a.key))
        if seen.add(a.key, a.key, span, diags, where=f" of user `{stmt.name}`"):
            attrs[a.key] = tuple(sorted(set(a.values)))
    return model.UserInfo(
        name=stmt.name.value,
        groups=tuple(sorted({g.value for g in stmt.groups})),
        attributes=tuple((k, attrs[k]) for k in sorted(attrs)),
        span=stmt.name.span,
    )


def _purposes(
    declared: dict[str, ir.Purpose], diags: list[Diagnostic]
) -> dict[str, model.PurposeInfo]:
    """Parents must be declared; the acknowledgement is inherited from the nearest ancestor."""
    out: dict[str, model.PurposeInfo] = {}
    for name, p in declared.items():
        parent = name.rsplit(".", 1)[0] if "." in name else None
        if parent is not None and parent not in declared:
            diags.append(
                error(
                    codes.MISSING_PARENT_PURPOSE,
                    f"purpose `{name}` needs its parent purpose `{parent}`",
                    p.name.span,
                    help=f"declare the parent with `purpose {ir.name_source(parent)}`",
                )
            )
        ack = p.acknowledgement
        ancestor = parent
        while ack is None and ancestor is not None:
            if ancestor in declared:
                ack = declared[ancestor].acknowledgement
            ancestor = ancestor.rsplit(".", 1)[0] if "." in ancestor else None
        out[name] = model.PurposeInfo(
            name=name, description=p.description, acknowledgement=ack, span=p.name.span
        )
    return out


def apply_tags(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """`tag T on t.c` adds T to that column. Needs the catalog."""
    diags: list[Diagnostic] = []
    added: dict[tuple[model.TableKey, str], list[ir.TagPath]] = {}
    for stmt in policies.of_type(ir.TagOn):
        if facts.partial and stmt.target.parts[:-1] not in facts.tables:
            continue  # a table of another part of the repository (see `Facts.partial`)
        found, errs = resolve_columns(facts.tables, stmt.target, every=False)
        diags.extend(errs)
        for key in found:
            added.setdefault(key, []).extend(stmt.tags)
    if not added:
        return facts, diags
    tables = {
        key: replace(
            tb,
            columns=tuple(
                replace(c, tags=_sorted_tags((*c.tags, *added.get((key, c.name), ()))))
                for c in tb.columns
            ),
        )
        for key, tb in facts.tables.items()
    }
    return replace(facts, tables=tables), diags
