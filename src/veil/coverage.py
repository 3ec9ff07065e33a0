"""Coverage of the live catalog (`veil verify`): what the repository does not protect.

Two kinds of warnings (errors under `--strict`), about the schemas the repository protects — the
schemas of its protected tables:

* a table, or a column of a declared table, that the repository's catalog does not declare: a
  table created or a column added by a migration after the apply stays unprotected (or, for a
  protected table, missing from its view) until someone declares it;
* a column whose name or type looks sensitive (e-mail, card number, phone, national id, IBAN,
  birth date …) and that no mask reaches.

The patterns are regular expressions over the column's name, lowercased and cut into words at
`_`, `-`, spaces and camelCase humps (`customerEmail` -> `customer email`), or over its type
(`type:` prefix). `--sensitive LABEL=REGEX` adds or replaces one; `--sensitive LABEL=` drops one.
"""

from __future__ import annotations

import re
import typing as t
from collections.abc import Mapping, Sequence

from veil import model

__all__ = ["DEFAULT_SENSITIVE", "coverage_findings", "parse_patterns", "words"]

#: label -> pattern. A pattern starting with `type:` matches the column's type instead.
DEFAULT_SENSITIVE: dict[str, str] = {
    "email": r"\be[- ]?mail",
    "card": r"\b(credit ?card|card ?(number|no|num)|cc ?(number|num)|pan|cvv|cvc)\b",
    "phone": r"\b(phone|mobile|cell ?phone|msisdn|fax|tel)\b",
    "national id": r"\b(ssn|social ?security|national ?id|nin|tax ?id|tin|passport|nhs)\b",
    "bank account": r"\b(iban|bic|swift|account ?(number|no|num)|routing ?(number|no))\b",
    "birth date": r"\b(birth|dob|date ?of ?birth|birthday)\b",
    "address": r"\b(address|street|postcode|post ?code|zip ?code|zip)\b",
    "person name": r"\b(first ?name|last ?name|surname|full ?name|maiden ?name)\b",
    "credential": r"\b(password|passwd|secret|api ?key|token)\b",
    "ip address": r"type:\b(inet|cidr|macaddr8?)\b",
}

_HUMP = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_SEPARATORS = re.compile(r"[\s_\-.]+")


def words(name: str) -> str:
    """`customerEmail_2` -> `customer email 2`."""
    return _SEPARATORS.sub(" ", _HUMP.sub(" ", name)).strip().lower()


def parse_patterns(overrides: Sequence[str]) -> dict[str, re.Pattern[str]]:
    """DEFAULT_SENSITIVE with `LABEL=REGEX` overrides applied; ValueError on a bad one."""
    patterns = dict(DEFAULT_SENSITIVE)
    for item in overrides:
        label, sep, regex = item.partition("=")
        if not sep or not label.strip():
            raise ValueError(f"`{item}`: write LABEL=REGEX (or LABEL= to drop a pattern)")
        if regex:
            patterns[label.strip()] = regex
        else:
            patterns.pop(label.strip(), None)
    compiled = {}
    for label, regex in sorted(patterns.items()):
        try:
            compiled[label] = re.compile(regex, re.IGNORECASE)
        except re.error as e:
            raise ValueError(f"pattern `{label}`: {e}") from None
    return compiled


def _sensitive(name: str, type_name: str, patterns: Mapping[str, re.Pattern[str]]) -> list[str]:
    out = []
    for label, pattern in patterns.items():
        if pattern.pattern.startswith("type:"):
            if re.search(pattern.pattern.removeprefix("type:"), type_name, re.IGNORECASE):
                out.append(label)
        elif pattern.search(words(name)):
            out.append(label)
    return out


#: (schema, table, column or None, type) of the live tables; NULL column for a table without any.
LiveColumns = Sequence[tuple[str, str, str | None, str | None]]

_LIVE_SQL = (
    "SELECT n.nspname, c.relname, a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod)"
    " FROM pg_catalog.pg_class AS c"
    " JOIN pg_catalog.pg_namespace AS n ON n.oid = c.relnamespace"
    " LEFT JOIN pg_catalog.pg_attribute AS a"
    "   ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped"
    " WHERE c.relkind IN ('r', 'p') AND NOT c.relispartition AND n.nspname = ANY (%s)"
    ' ORDER BY n.nspname COLLATE "C", c.relname COLLATE "C", a.attnum'
)


def coverage_findings(
    program: model.Program,
    query: t.Callable[[str, Sequence[t.Any]], list[tuple[t.Any, ...]]],
    patterns: Mapping[str, re.Pattern[str]],
) -> list[tuple[str, str, str]]:
    """(kind, object, message) of every coverage warning, in catalog order."""
    schemas = sorted({tb.key[-2] for tb in program.protected_tables if len(tb.key) >= 2})
    if not schemas:
        return []
    live: LiveColumns = [
        (str(s), str(tb), None if c is None else str(c), None if ty is None else str(ty))
        for s, tb, c, ty in query(_LIVE_SQL, (schemas,))
    ]
    declared = {tb.key[-2:]: tb for tb in program.tables if len(tb.key) >= 2}
    masked = {(m.table[-2:], m.column) for m in program.masks}
    out: list[tuple[str, str, str]] = []
    seen_tables: set[tuple[str, str]] = set()
    for schema, table, column, type_name in live:
        key = (schema, table)
        info = declared.get(key)
        if info is None and key not in seen_tables:
            out.append(("table", f"{schema}.{table}", "not in the catalog: nothing protects it"))
        seen_tables.add(key)
        if column is None:
            continue
        name = f"{schema}.{table}.{column}"
        if info is not None and info.column(column) is None:
            out.append(("column", name, "not in the catalog: declare it (and its tags)"))
        labels = _sensitive(column, type_name or "", patterns)
        if labels and (key, column) not in masked:
            out.append(
                ("column", name, f"looks like {', '.join(labels)} ({type_name}) and has no mask")
            )
    return out
