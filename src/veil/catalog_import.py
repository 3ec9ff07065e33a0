"""`veil catalog import`: write the `table` blocks of a live PostgreSQL database.

Reads the ordinary and partitioned tables of the given schemas (default: every schema but the
system ones and veil's governance schema) and their columns, maps each PostgreSQL type to a veil
type (anything without a veil equivalent becomes `text` with a `# was <type>` comment), and writes
one `table schema.table { … }` block per table, in catalog order. Re-importing into an existing
file keeps the `tags` of columns that still exist, and the tables of schemas not imported this
time; tables and columns dropped from the database disappear.

psycopg is imported lazily: it is only needed by this command.
"""

from __future__ import annotations

import typing as t
from collections.abc import Sequence
from dataclasses import dataclass, field

from veil import ir
from veil.ir import quote_part, string_source
from veil.parser import parse_file

#: Schemas never imported unless named with `--schema`: the governance schema of the compiled
#: DDL holds veil's own tables, which policies never protect.
DEFAULT_EXCLUDED = ("information_schema", "veil")

#: PostgreSQL type (pg_catalog.pg_type.typname) -> veil type, for types without parameters.
SIMPLE_TYPES: dict[str, str] = {
    "int2": "smallint",
    "int4": "integer",
    "int8": "bigint",
    "text": "text",
    "bool": "boolean",
    "date": "date",
    "timestamp": "timestamp",
    "timestamptz": "timestamptz",
    "float4": "real",
    "float8": "double",
    "bytea": "binary",
    "json": "json",
    "jsonb": "json",
}

VARHDRSZ = 4  # typmod of varchar(n)/char(n)/numeric(p,s) carries this offset

_COLUMNS_SQL = """
SELECT n.nspname, c.relname, a.attname, bt.typname,
       CASE WHEN t.typtype = 'd' THEN t.typtypmod ELSE a.atttypmod END,
       pg_catalog.format_type(a.atttypid, a.atttypmod),
       bt.typnamespace = 'pg_catalog'::pg_catalog.regnamespace
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
LEFT JOIN pg_catalog.pg_attribute a
       ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
LEFT JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
LEFT JOIN pg_catalog.pg_type bt
       ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY(%s)
ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C", a.attnum
"""

_SCHEMAS_SQL = """
SELECT nspname FROM pg_catalog.pg_namespace
WHERE nspname NOT LIKE 'pg\\_%%' AND nspname <> ALL(%s)
ORDER BY nspname COLLATE "C"
"""


class CatalogImportError(Exception):
    """A failure the user can fix (no psycopg, no connection, unknown schema, bad old file)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedColumn:
    name: str
    type: str  # veil source form: `varchar(19)`, `decimal(12,2)` …
    was: str | None = None  # the PostgreSQL type, when it has no veil equivalent
    tags: tuple[ir.TagPath, ...] = ()


@dataclass(frozen=True, slots=True, kw_only=True)
class ImportedTable:
    parts: tuple[str, ...]  # (schema, table)
    columns: tuple[ImportedColumn, ...]


@dataclass(slots=True, kw_only=True)
class ImportReport:
    """What an import did, for the command's summary on stderr."""

    database: str = ""
    schemas: tuple[str, ...] = ()
    tables: int = 0
    columns: int = 0
    fallbacks: list[str] = field(default_factory=list)  # `schema.table.column` (was type)
    skipped: list[str] = field(default_factory=list)  # names veil cannot spell
    removed: list[str] = field(default_factory=list)  # tables of the old file now gone
    kept_tags: int = 0


def map_type(typname: str, typmod: int, formatted: str, builtin: bool = True) -> tuple[str, bool]:
    """PostgreSQL type -> (veil type, exact). Not exact means the `text` fallback."""
    if builtin:
        if typname in SIMPLE_TYPES:
            return SIMPLE_TYPES[typname], True
        if typname == "varchar":
            return (
                ("varchar", True) if typmod < VARHDRSZ else (f"varchar({typmod - VARHDRSZ})", True)
            )
        if typname == "bpchar" and typmod >= VARHDRSZ:
            return f"char({typmod - VARHDRSZ})", True
        if typname == "numeric":
            if typmod < VARHDRSZ:
                return "decimal", True
            precision = ((typmod - VARHDRSZ) >> 16) & 0xFFFF
            scale = (typmod - VARHDRSZ) & 0x7FF
            scale = scale - 0x800 if scale & 0x400 else scale  # 11-bit signed (PostgreSQL 15+)
            if 0 <= scale <= precision:
                return f"decimal({precision},{scale})", True
    return "text", False


def _spellable(name: str) -> bool:
    """A backquoted veil name cannot hold a line break."""
    return bool(name) and "\n" not in name and "\r" not in name


def _comment(text: str) -> str:
    """Text that is safe inside a `#` comment: one line, control characters escaped."""
    return "".join(
        string_source(ch)[1:-1] if ord(ch) < 0x20 or ord(ch) == 0x7F else ch for ch in text
    )


def _psycopg() -> t.Any:
    try:
        import psycopg
    except ImportError:
        raise CatalogImportError(
            "`veil catalog import` needs psycopg: pip install 'psycopg[binary]'"
        ) from None
    return psycopg


def read_catalog(dsn: str, schemas: Sequence[str] = ()) -> tuple[list[ImportedTable], ImportReport]:
    """Tables and columns of `schemas` (default: all but system schemas) in catalog order."""
    psycopg = _psycopg()
    report = ImportReport()
    try:
        conn = psycopg.connect(dsn, connect_timeout=10, autocommit=True)
    except psycopg.Error as e:
        raise CatalogImportError(f"cannot connect to PostgreSQL: {str(e).strip()}") from None
    with conn:
        report.database = str(conn.execute("SELECT current_database()").fetchone()[0])
        if schemas:
            known = {
                r[0]
                for r in conn.execute(
                    "SELECT nspname FROM pg_catalog.pg_namespace WHERE nspname = ANY(%s)",
                    [list(schemas)],
                )
            }
            missing = [s for s in schemas if s not in known]
            if missing:
                raise CatalogImportError(
                    f"no schema {', '.join(f'`{s}`' for s in missing)} in database "
                    f"`{report.database}`"
                )
            wanted = sorted(set(schemas))
        else:
            wanted = [r[0] for r in conn.execute(_SCHEMAS_SQL, [list(DEFAULT_EXCLUDED)])]
        rows = conn.execute(_COLUMNS_SQL, [wanted]).fetchall()
    report.schemas = tuple(wanted)
    tables: dict[tuple[str, str], list[ImportedColumn]] = {}
    for schema, table, column, typname, typmod, formatted, builtin in rows:
        qualified = f"{schema}.{table}"
        if not (_spellable(schema) and _spellable(table)):
            if (schema, table) not in tables and repr(qualified) not in report.skipped:
                report.skipped.append(repr(qualified))
            continue
        columns = tables.setdefault((schema, table), [])
        if column is None:  # a table without columns
            continue
        if not _spellable(column):
            report.skipped.append(repr(f"{qualified}.{column}"))
            continue
        vtype, exact = map_type(str(typname), int(typmod), str(formatted), bool(builtin))
        was = None if exact else str(formatted)
        if was is not None:
            report.fallbacks.append(f"{qualified}.{column} ({was})")
        columns.append(ImportedColumn(name=column, type=vtype, was=was))
    result = [ImportedTable(parts=key, columns=tuple(cols)) for key, cols in tables.items()]
    report.tables = len(result)
    report.columns = sum(len(tb.columns) for tb in result)
    return result, report


def _old_tables(text: str, path: str) -> list[ir.Table]:
    source, diags = parse_file(text, path)
    if source is None:
        first = diags[0]
        raise CatalogImportError(
            f"cannot read the existing `{path}`: {first.span}: {first.message}; "
            "fix it or write the import to another file"
        )
    others = [s for s in source.statements if not isinstance(s, ir.Table)]
    if others:
        raise CatalogImportError(
            f"`{path}` holds statements other than `table` blocks "
            f"(line {others[0].span.line}); import into a file of its own"
        )
    return [s for s in source.statements if isinstance(s, ir.Table)]


def merge(
    tables: Sequence[ImportedTable], report: ImportReport, old_text: str | None, old_path: str
) -> list[ImportedTable]:
    """Carry the tags of the old file over to columns that still exist; keep its tables of
    schemas that were not imported; record the tables that disappeared."""
    if old_text is None:
        return list(tables)
    imported_schemas = set(report.schemas)
    by_key = {tb.parts: tb for tb in tables}
    kept: list[ImportedTable] = []
    for old in _old_tables(old_text, old_path):
        parts = old.name.parts
        key = parts[-2:] if len(parts) >= 2 else parts
        if len(parts) >= 2 and parts[-2] not in imported_schemas:
            kept.append(
                ImportedTable(
                    parts=parts,
                    columns=tuple(
                        ImportedColumn(name=c.name, type=str(c.type), tags=c.tags)
                        for c in old.columns
                    ),
                )
            )
            continue
        new = by_key.get(key)
        if new is None:
            report.removed.append(str(old.name))
            continue
        tags = {c.name: c.tags for c in old.columns if c.tags}
        report.kept_tags += sum(len(tags[c.name]) for c in new.columns if c.name in tags)
        by_key[key] = ImportedTable(
            parts=new.parts,
            columns=tuple(
                ImportedColumn(name=c.name, type=c.type, was=c.was, tags=tags.get(c.name, ()))
                for c in new.columns
            ),
        )
    return sorted([*by_key.values(), *kept], key=lambda tb: tb.parts)


def render(tables: Sequence[ImportedTable], report: ImportReport) -> str:
    """The catalog file: a header comment, then one aligned `table` block per table."""
    schemas = ", ".join(report.schemas) or "(none)"
    out = [
        f"# Catalog of PostgreSQL database {_comment(report.database)} "
        f"(schemas: {_comment(schemas)}),",
        "# written by `veil catalog import`. Importing again rewrites this file: it keeps the",
        "# `tags` of columns that still exist and drops everything else that was edited here.",
        "# Tags that should outlive the columns they name belong in a file of `tag … on …` lines.",
    ]
    for tb in tables:
        out.append("")
        name = ir.dotted(tb.parts)
        out.append(f"table {name} {{")
        names = [quote_part(c.name) for c in tb.columns]
        name_w = max((len(n) for n in names), default=0) + 2
        type_w = max((len(c.type) for c in tb.columns), default=0) + 2
        for col, cname in zip(tb.columns, names, strict=True):
            line = f"  {cname.ljust(name_w)}{col.type}"
            if col.tags:
                line = f"  {cname.ljust(name_w)}{col.type.ljust(type_w)}tags " + ", ".join(
                    str(tag) for tag in col.tags
                )
            if col.was is not None:
                line += f"  # was {_comment(col.was)}"
            out.append(line.rstrip())
        out.append("}")
    return "\n".join(out) + "\n"


def import_catalog(
    dsn: str,
    schemas: Sequence[str] = (),
    old_text: str | None = None,
    old_path: str = "catalog.veil",
) -> tuple[str, ImportReport]:
    """Read the database and render the catalog file (merged with `old_text` if given)."""
    tables, report = read_catalog(dsn, schemas)
    merged = merge(tables, report, old_text, old_path)
    text = render(merged, report)
    source, diags = parse_file(text, old_path)  # what we write must read back
    if source is None:  # pragma: no cover - a bug in render()
        raise AssertionError(f"catalog import wrote an unreadable file: {diags[0].message}")
    return text, report
