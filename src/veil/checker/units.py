"""Checking a repository file by file, so that a re-check after one file changed checks that
file only (`veil check`; the compile needs the whole program and never comes here).

A repository qualifies when its files split into

* **catalog files**: only `table` blocks, and `filter`, `restrict` and qualified-column masks
  (`mask s.t.c …`) on tables of the same file (a file per batch of tables); and
* **context files**: everything else — purposes, groups, users, projects, approvals, masks,
  `filter`, `restrict` and `tag … on` naming a catalog table by its whole name, `test` blocks
  — but no table;

with no table declared twice and no table name that also ends another table's name (a mask's
qualifier then names one table). Then every diagnostic of a whole check is one of

* a diagnostic of **a catalog file's unit**: the passes run on the file with the purposes,
  groups, users and masks by tag or bare column of the context files, and the context's
  statements about the file's tables (`filter`, `restrict`, `mask s.t.c`, `tag … on`), in
  repository order. Its tables and every statement about them see there exactly what they see
  in the whole repository: a table is named only by its own file or by its whole name in a
  statement about it alone, and a column is reached only by masks of its own file, of the
  context by tag or bare name, or about its table. The unit keeps what is written in the file
  or in the context's statements about its tables, and the warnings written in the context
  about its columns (W0202, W0203, W0204, W0103);
* a diagnostic of **the context**: the passes run on the context files alone, without their
  `test` blocks and statements about one table, and leaving out the names that only the whole
  catalog can answer (`Facts.partial`);
* a diagnostic of **the tests**: the passes run on the context files with every catalog file
  that has a table an expectation may name, keeping what is written in a `test` block;
* one computed here over the files' summaries: a mask on a tag no column carries (W0101), and a
  tag no policy names, warned once at its first use (W0103, the earliest of the units').

A unit's diagnostics are a pure function of the policies it checks, so they are kept in the
check cache under a hash of veil's source, the file's name and bytes and the context's
purposes, groups, users, masks and statements about its tables (with their spans); a file's
summary (its table names, column names and tags) under its name and bytes. Whenever something is not
as above, or any part reports an error (errors read the whole repository: "did you mean" over
every table, the tables a mask reaches), `check_quickly` returns None and the whole repository
is checked.
"""

from __future__ import annotations

import hashlib
import typing as t
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from veil import ir, model
from veil.cache import ParseCache, as_diagnostics, content_digest
from veil.checker import codes
from veil.checker.common import dotted
from veil.checker.names import unused_tag
from veil.checker.pipeline import check
from veil.diagnostics import Diagnostic, Span, sort_diagnostics

Parsed = tuple[ir.SourceFile | None, list[Diagnostic]]

#: A unit's warnings written in a context file: the context's masks on one of the unit's
#: columns or tables, and a tag a `tag … on` gives one of its columns.
COLUMN_CODES = frozenset(
    {
        codes.FALLBACK_TO_NULL,
        codes.HASH_SHORTENED,
        codes.NULL_COMPARISON,
        codes.TAG_NAMED_BY_NO_POLICY,
    }
)
#: What a unit reads of the context files.
CONTEXT = (ir.Purpose, ir.Group, ir.User, ir.Mask)


@dataclass(frozen=True, slots=True, kw_only=True)
class Summary:
    """What the whole-repository checks need of one parsed file."""

    parse_diags: tuple[Diagnostic, ...]
    #: None: a parse error, or a file that is neither a catalog nor a context file.
    kind: t.Literal["catalog", "context"] | None
    keys: tuple[model.TableKey, ...] = ()
    column_names: frozenset[str] = frozenset()
    #: every tag of a column and every ancestor of one
    tags: frozenset[tuple[str, ...]] = frozenset()


def summarize(parsed: Parsed) -> Summary:
    source, diags = parsed
    kind = None if source is None or any(d.is_error for d in diags) else _kind(source)
    if source is None or kind != "catalog":
        return Summary(parse_diags=tuple(diags), kind=kind)
    tables = [s for s in source.statements if isinstance(s, ir.Table)]
    return Summary(
        parse_diags=tuple(diags),
        kind=kind,
        keys=tuple(tb.name.parts for tb in tables),
        column_names=frozenset(c.name for tb in tables for c in tb.columns),
        tags=frozenset(
            tg.parts[:i]
            for tb in tables
            for c in tb.columns
            for tg in c.tags
            for i in range(1, len(tg.parts) + 1)
        ),
    )


def _kind(source: ir.SourceFile) -> t.Literal["catalog", "context"] | None:
    own = {s.name.parts for s in source.statements if isinstance(s, ir.Table)}
    catalog = True
    context = not own
    for s in source.statements:
        match s:
            case ir.Table():
                pass
            case ir.Filter() | ir.Restrict():
                catalog = catalog and s.table.parts in own
            case ir.Mask(target=ir.ColumnTarget(name=name)) if len(name.parts) > 1:
                catalog = catalog and name.parts[:-1] in own
            case ir.Mask() | ir.Purpose() | ir.Group() | ir.User() | ir.Project():
                catalog = False
            case ir.Approvers() | ir.Approve() | ir.Revoke():
                catalog = False
            case ir.TagOn(target=target) if len(target.parts) > 1:
                catalog = False  # a context file's, on a table of one catalog file
            case ir.TestCase():
                catalog = False
            case ir.TagOn():
                return None
            case _:
                t.assert_never(s)
    return "catalog" if catalog else "context" if context else None


def _table_of(s: ir.Statement) -> model.TableKey | None:
    """The table a context file's statement is about, when it is about one: read by that
    table's unit only."""
    match s:
        case ir.Filter() | ir.Restrict():
            return s.table.parts
        case ir.Mask(target=ir.ColumnTarget(name=name)) if len(name.parts) > 1:
            return name.parts[:-1]
        case ir.TagOn(target=target):
            return target.parts[:-1]
        case _:
            return None


@dataclass(frozen=True, slots=True, kw_only=True)
class File:
    """One file of the repository, in repository order: `parsed()` reads or parses it."""

    name: str
    data: bytes
    parsed: Callable[[], Parsed]


@dataclass(frozen=True, slots=True)
class _Kept:
    """The summaries and diagnostics of the last check, read from one signed entry of the check
    cache and written back as one (a write per file costs more than checking a small file):
    `used` is what this run read or made."""

    old: dict[str, object]
    used: dict[str, object]

    def get(self, name: str) -> object | None:
        value = self.old.get(name)
        if value is not None:
            self.used[name] = value
        return value

    def put(self, name: str, value: object) -> None:
        self.used[name] = value


def check_quickly(cache: ParseCache, files: Sequence[File]) -> tuple[Diagnostic, ...] | None:
    """The diagnostics of loading and checking `files` (as the whole check gives them, in any
    order), from the units kept in `cache` and those it checks; None when the repository does
    not qualify or some part reports an error (see the module docstring)."""
    name = cache.entry_name("index")
    old = cache.get_entry("index", name)
    kept = _Kept(old=old if isinstance(old, dict) else {}, used={})
    found = None
    try:
        found = _check_quickly(cache, kept, files)
        return found
    except Exception:  # a shortcut that fails costs time, never an answer (tests count them)
        return None
    finally:
        # After a success only what this run used is kept (what a file held before its edit
        # goes); else what was kept too, so that fixing the error finds the other files' units.
        stored = kept.used if found is not None else {**kept.old, **kept.used}
        if stored.keys() != kept.old.keys():
            cache.put_entry("index", name, stored)


def _check_quickly(
    cache: ParseCache, kept: _Kept, files: Sequence[File]
) -> tuple[Diagnostic, ...] | None:
    summaries = [_summary(cache, kept, f) for f in files]
    if not files or any(s.kind is None for s in summaries):
        return None
    catalog = [i for i, s in enumerate(summaries) if s.kind == "catalog"]
    contexts = [i for i, s in enumerate(summaries) if s.kind == "context"]
    keys = [k for i in catalog for k in summaries[i].keys]
    known = set(keys)
    if len(known) != len(keys):
        return None  # a table declared twice
    # A qualified mask names a table of its own file; no other table may end with that name.
    if any(k[i:] in known for k in keys for i in range(1, len(k))):
        return None
    context = {i: _source(files[i]) for i in contexts}
    if any(s is None for s in context.values()):
        return None
    sources = t.cast(dict[int, ir.SourceFile], context)
    found = _repository_wide(sources.values(), [summaries[i] for i in catalog], known)
    if found is None:
        return None
    partial = [_context_part(sources[i]) for i in contexts]
    marks = [
        (files[i].name, content_digest(p.statements))
        for i, p in zip(contexts, partial, strict=True)
    ]
    # A statement about one table (`filter`, `restrict`, `mask s.t.c`, `tag … on`): read by
    # that table's unit only, in its place among the context's statements.
    tag_ons: list[dict[model.TableKey, list[tuple[int, ir.Statement]]]] = []
    for i in contexts:
        by_table: dict[model.TableKey, list[tuple[int, ir.Statement]]] = {}
        for n, s in enumerate(sources[i].statements):
            key = _table_of(s)
            if key is not None:
                by_table.setdefault(key, []).append((n, s))
        tag_ons.append(by_table)
    whole = [(files[i].name, hashlib.sha256(files[i].data).digest()) for i in contexts]
    name = cache.entry_name("context", *(b for n, d in whole for b in (_bytes(n), d)))
    context_diags = _cached(
        kept, name, lambda: _check([_on_its_own(p) for p in sources.values()], None)
    )
    if context_diags is None:
        return None
    found.extend(context_diags)
    first_tag: dict[str, Diagnostic] = {}
    for i in catalog:
        f = files[i]
        before = sum(1 for j in contexts if j < i)
        own = [
            sorted(x for k in summaries[i].keys for x in by_table.get(k, ())) if by_table else []
            for by_table in tag_ons
        ]
        context_parts = [
            (_bytes(n), d, content_digest(tuple(tags)) if tags else b"")
            for (n, d), tags in zip(marks, own, strict=True)
        ]
        parts = [b for part in context_parts[:before] for b in part]
        parts += [b"\0unit", _bytes(f.name), hashlib.sha256(f.data).digest()]
        parts += [b for part in context_parts[before:] for b in part]
        unit_name = cache.entry_name("unit", *parts)

        def run(
            f: File = f, before: int = before, own: list[list[tuple[int, ir.Statement]]] = own
        ) -> tuple[Diagnostic, ...] | None:
            source = _source(f)
            if source is None:
                return None
            read = [
                _with_tag_ons(p, sources[j], tags)
                for p, j, tags in zip(partial, contexts, own, strict=True)
            ]
            spans = [s.span for tags in own for _, s in tags]
            return _check([*read[:before], source, *read[before:]], f.name, spans)

        unit = _cached(kept, unit_name, run)
        if unit is None:
            return None
        for d in unit:
            if d.code == codes.TAG_NAMED_BY_NO_POLICY:  # warned once, where first written
                was = first_tag.get(d.message)
                if was is None or d.span < was.span:
                    first_tag[d.message] = d
            else:
                found.append(d)
    found.extend(first_tag.values())
    tests = _tests(cache, kept, files, summaries, sources, catalog)
    if tests is None:
        return None
    found.extend(tests)
    loaded = [d for s in summaries for d in s.parse_diags]
    return (*sort_diagnostics(loaded), *sort_diagnostics(found))


def _summary(cache: ParseCache, kept: _Kept, f: File) -> Summary:
    name = cache.entry_name("summary", _bytes(f.name), f.data)
    known = kept.get(name)
    if isinstance(known, Summary):
        return known
    summary = summarize(f.parsed())
    kept.put(name, summary)
    return summary


def _source(f: File) -> ir.SourceFile | None:
    source, diags = f.parsed()
    return None if any(d.is_error for d in diags) else source


def _context_part(source: ir.SourceFile) -> ir.SourceFile:
    """What every unit reads of a context file: its purposes, groups, users and the masks that
    are not about one table."""
    return ir.SourceFile(
        path=source.path, statements=tuple(s for s in source.statements if _read_by_every_unit(s))
    )


def _read_by_every_unit(s: ir.Statement) -> bool:
    return isinstance(s, CONTEXT) and _table_of(s) is None


def _with_tag_ons(
    part: ir.SourceFile, source: ir.SourceFile, tags: list[tuple[int, ir.Statement]]
) -> ir.SourceFile:
    """A context file's part that a unit reads, with the statements about the unit's tables
    in their places."""
    if not tags:
        return part
    keep = {n for n, _ in tags}
    return ir.SourceFile(
        path=source.path,
        statements=tuple(
            s for n, s in enumerate(source.statements) if n in keep or _read_by_every_unit(s)
        ),
    )


def _on_its_own(source: ir.SourceFile) -> ir.SourceFile:
    """A context file without its `test` blocks and its statements about one table (checked
    with the tests and with that table's unit)."""
    return ir.SourceFile(
        path=source.path,
        statements=tuple(
            s for s in source.statements if not isinstance(s, ir.TestCase) and _table_of(s) is None
        ),
    )


def _tests_part(source: ir.SourceFile) -> ir.SourceFile:
    """A context file as the tests read it: without its statements about one table (a test
    reads no policy; those tables may not be among the files the tests are checked with)."""
    return ir.SourceFile(
        path=source.path,
        statements=tuple(s for s in source.statements if _table_of(s) is None),
    )


def _tests(
    cache: ParseCache,
    kept: _Kept,
    files: Sequence[File],
    summaries: list[Summary],
    context: dict[int, ir.SourceFile],
    catalog: list[int],
) -> list[Diagnostic] | None:
    """The diagnostics of the `test` blocks (in context files): the passes run on the context
    files with every catalog file that has a table an expectation may name (every table whose
    name ends with its qualifier, every table with a column of its bare name), so that an
    expectation resolves as in the whole repository; kept under all those files' names and
    bytes. None on an error."""
    cases = [
        s for source in context.values() for s in source.statements if isinstance(s, ir.TestCase)
    ]
    if not cases:
        return []
    by_suffix: dict[tuple[str, ...], set[int]] = {}
    for i in catalog:
        for k in summaries[i].keys:
            for j in range(len(k)):
                by_suffix.setdefault(k[j:], set()).add(i)
    needed: set[int] = set()
    for case in cases:
        for e in case.expectations:
            match e:
                case ir.ExpectColumn(column=column) | ir.ExpectCell(column=column):
                    bare = column.parts[0]
                    if len(column.parts) > 1:
                        needed |= by_suffix.get(column.parts[:-1], set())
                    else:
                        needed |= {i for i in catalog if bare in summaries[i].column_names}
                case ir.ExpectRow(table=table):
                    needed |= by_suffix.get(table.parts, set())
                case _:
                    t.assert_never(e)
    read = sorted([*context, *needed])
    parts = [
        b for i in read for b in (_bytes(files[i].name), hashlib.sha256(files[i].data).digest())
    ]
    entry = cache.entry_name("tests", *parts)

    def run() -> tuple[Diagnostic, ...] | None:
        sources = [_tests_part(context[i]) if i in context else _source(files[i]) for i in read]
        if any(s is None for s in sources):
            return None
        result = check(
            ir.PolicySet(files=tuple(t.cast(list[ir.SourceFile], sources))), partial=True
        )
        if any(d.is_error for d in result.diagnostics):
            return None
        return tuple(d for d in result.diagnostics if any(_within(d.span, c.span) for c in cases))

    made = _cached(kept, entry, run)
    return None if made is None else list(made)


def _cached(
    kept: _Kept, name: str, run: Callable[[], tuple[Diagnostic, ...] | None]
) -> tuple[Diagnostic, ...] | None:
    known = as_diagnostics(kept.get(name))
    if known is not None:
        return known
    made = run()
    if made is not None:
        kept.put(name, made)
    return made


def _check(
    sources: list[ir.SourceFile], unit: str | None, own: Sequence[Span] = ()
) -> tuple[Diagnostic, ...] | None:
    """The diagnostics of the context (`unit` None) or of one catalog file's unit (`own`: the
    spans of the context's statements about its tables); None on an error."""
    result = check(ir.PolicySet(files=tuple(sources)), partial=True)
    if any(d.is_error for d in result.diagnostics):
        return None
    if unit is None:
        return result.diagnostics
    return tuple(
        d
        for d in result.diagnostics
        if d.span.file == unit or d.code in COLUMN_CODES or any(_within(d.span, s) for s in own)
    )


def _within(span: Span, outer: Span) -> bool:
    return span.file == outer.file and (outer.line, outer.col) <= (span.line, span.col) <= (
        outer.end_line,
        outer.end_col,
    )


def _repository_wide(
    context: t.Iterable[ir.SourceFile], catalog: list[Summary], tables: set[model.TableKey]
) -> list[Diagnostic] | None:
    """What the context's names mean over the whole catalog: a project's sources and a bare
    column a mask names must exist (else None: an error); a mask on a tag no column carries
    is warned about."""
    columns = frozenset().union(*(s.column_names for s in catalog))
    tags: frozenset[tuple[str, ...]] = frozenset().union(*(s.tags for s in catalog))
    context = list(context)
    for source in context:
        for s in source.statements:
            key = _table_of(s)
            if key is not None and key not in tables:
                return None  # an unknown table (or one named by a part of its name)
            if isinstance(s, ir.TagOn):
                # the column is checked by its table's unit; an error there stops here
                tags |= {tg.parts[:i] for tg in s.tags for i in range(1, len(tg.parts) + 1)}
    found: list[Diagnostic] = []
    for source in context:
        for s in source.statements:
            if isinstance(s, ir.Project) and any(p.parts not in tables for p in s.sources):
                return None
            if isinstance(s, ir.Mask):
                match s.target:
                    case ir.ColumnTarget(name=name):
                        if len(name.parts) == 1 and name.parts[0] not in columns:
                            return None
                    case ir.TagTarget(tag=tag):
                        if tag.parts not in tags:
                            found.append(unused_tag(tag, sorted(dotted(p) for p in tags)))
                    case _:
                        t.assert_never(s.target)
    return found


def _bytes(name: str) -> bytes:
    return name.encode("utf-8", "surrogatepass")
