"""Finding tables and columns of the catalog by the names policies use.

* a table is named exactly as in its `table` block (`sales.transactions`);
* a bare column name (`email`) is every catalog column with that name (for a mask target), or
  the only one (elsewhere);
* a qualified column (`t.c`, `s.t.c`, `db.s.t.c`) is column `c` of the one table whose key ends
  with the qualifier parts;
* `tagged T` is every column carrying T or a tag under T (path segments, never string prefix).
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from dataclasses import dataclass

from veil import ir, model
from veil.checker import codes
from veil.checker.common import ColumnKey, column_str, did_you_mean, dotted
from veil.diagnostics import Diagnostic, error

Tables = Mapping[model.TableKey, model.CatalogTable]


@dataclass(frozen=True, slots=True)
class CatalogIndex:
    """The catalog by the names policies use, built in one pass so that resolving a name costs
    the size of its answer rather than a scan of every table (10,000 tables, one mask each)."""

    #: every suffix of every table key (`t`, `s.t`, `db.s.t`) -> tables ending so, catalog order
    by_suffix: dict[tuple[str, ...], list[model.TableKey]]
    #: column name -> tables with that column, catalog order
    by_column: dict[str, list[model.TableKey]]
    #: tag and every ancestor of a tag -> columns carrying it or a tag under it, catalog order
    by_tag: dict[tuple[str, ...], list[ColumnKey]]

    @staticmethod
    def build(tables: Tables) -> CatalogIndex:
        by_suffix: dict[tuple[str, ...], list[model.TableKey]] = {}
        by_column: dict[str, list[model.TableKey]] = {}
        by_tag: dict[tuple[str, ...], list[ColumnKey]] = {}
        for key, tb in tables.items():
            for i in range(len(key)):
                by_suffix.setdefault(key[i:], []).append(key)
            for c in tb.columns:
                by_column.setdefault(c.name, []).append(key)
                prefixes = {tg.parts[:i] for tg in c.tags for i in range(1, len(tg.parts) + 1)}
                for prefix in prefixes:
                    by_tag.setdefault(prefix, []).append((key, c.name))
        return CatalogIndex(by_suffix=by_suffix, by_column=by_column, by_tag=by_tag)


_index_lock = threading.Lock()
_last_index: tuple[Tables, CatalogIndex] | None = None


def catalog_index(tables: Tables) -> CatalogIndex:
    """The index of `tables`, built once per catalog: the passes hand the same mapping from one
    to the next and never change it, so the last index is kept with the mapping it indexes."""
    global _last_index
    with _index_lock:
        if _last_index is None or _last_index[0] is not tables:
            _last_index = (tables, CatalogIndex.build(tables))
        return _last_index[1]


def table_names(tables: Tables) -> list[str]:
    return [dotted(k) for k in tables]


def resolve_table(
    tables: Tables, name: ir.ObjectName
) -> tuple[model.TableKey | None, list[Diagnostic]]:
    """A table named exactly as in its `table` block."""
    if name.parts in tables:
        return name.parts, []
    suffix = [dotted(k) for k in tables if k[-len(name.parts) :] == name.parts]
    help_ = did_you_mean(
        str(name),
        table_names(tables),
        preferred=suffix,
        otherwise="declare it with a `table` block",
    )
    if suffix:
        help_ = f"{help_} (a table is named as in its `table` block)"
    return None, [error(codes.UNKNOWN_TABLE, f"unknown table `{name}`", name.span, help=help_)]


def resolve_columns(
    tables: Tables, name: ir.ObjectName, *, every: bool
) -> tuple[tuple[ColumnKey, ...], list[Diagnostic]]:
    """The columns a column name stands for.

    `every`: a bare name stands for every column with that name (mask targets); otherwise it
    must be unique. A qualified name always stands for exactly one column.
    """
    qualifier, col = name.parts[:-1], name.parts[-1]
    index = catalog_index(tables)
    candidates = index.by_suffix.get(qualifier, []) if qualifier else []
    if qualifier and not candidates:
        suffix = [dotted(k) for k in tables if k[-1:] == qualifier[-1:]]
        help_ = did_you_mean(
            dotted(qualifier),
            table_names(tables),
            preferred=suffix,
            otherwise="declare it with a `table` block",
        )
        return (), [
            error(
                codes.UNKNOWN_TABLE,
                f"unknown table `{dotted(qualifier)}` in `{name}`",
                name.span,
                help=help_,
            )
        ]
    if qualifier:
        found = tuple((k, col) for k in candidates if tables[k].column(col) is not None)
    else:
        found = tuple((k, col) for k in index.by_column.get(col, ()))
    if not found:
        if not qualifier:
            candidates = list(tables)
        pool = [c.name for k in candidates for c in tables[k].columns]
        where = (
            f"table `{dotted(candidates[0])}` has no column `{ir.quote_part(col)}`"
            if len(candidates) == 1
            else f"unknown column `{name}`"
        )
        return (), [
            error(
                codes.UNKNOWN_COLUMN,
                where,
                name.span,
                help=did_you_mean(col, pool, otherwise="declare it in a `table` block"),
            )
        ]
    if len(found) > 1 and (qualifier or not every):
        options = [column_str(k) for k in found]
        return (), [
            error(
                codes.AMBIGUOUS_COLUMN,
                f"`{name}` is ambiguous: it names {len(found)} columns",
                name.span,
                help="qualify it further: " + " or ".join(f"`{o}`" for o in options[:4]),
            )
        ]
    return found, []


def tagged(tables: Tables, tag: ir.TagPath) -> tuple[ColumnKey, ...]:
    """Every column carrying `tag` or a tag under it, in catalog order."""
    return tuple(catalog_index(tables).by_tag.get(tag.parts, ()))


def all_tags(tables: Tables) -> list[str]:
    """Every tag and every ancestor of a tag, in source form."""
    out: set[str] = set()
    for tb in tables.values():
        for c in tb.columns:
            for tg in c.tags:
                for i in range(1, len(tg.parts) + 1):
                    out.add(dotted(tg.parts[:i]))
    return sorted(out)
