"""`veil fmt`: one canonical layout for every form of the language, comments kept.

The formatter prints the IR back (names with `ir.name_source`, conditions and predicates with
`printer`), so it can never change what a file means: `format_source` parses its own output and
refuses (raises `AssertionError`) unless the IR is equal and every comment is still there.

Layout
    * One statement per line (`;`-joined statements are split); block items one per line, two
      spaces in. A block written on one line stays on one line when it fits in 100 columns
      (`user alice { groups analysts; region "EMEA" }`); consecutive one-line blocks of one kind
      are aligned as a table. Table columns align name, type and tags; the arms of a mask block
      align their `for`; `purposes`, `members` and `sources` in a project align their lists.
    * Masks keep the form they were written in (`unless`, `for`, `with M` alone, block). The
      method `null` is left out of the `unless` form (`mask X unless C`), written elsewhere.
    * `approve` and `revoke` lines print exactly as `veil approve` / `veil revoke` write them.
    * A `mask`, `filter` or `restrict` (or a mask block's header or arm) longer than 100
      columns is broken with a trailing backslash before `with`, `when`, `unless`, `for`,
      `where` or `to`, then, if a part is still too long, before each `or` (else `and`) of its
      condition. Long name lists break after a comma. Nothing else is broken: a long string or
      test expectation stays on its line.
    * Blank lines: at most one where the author had some (never first in a block), and one
      between statements of different kinds (`approve` and `revoke` count as one kind).
    * Comments: a comment on its own line stays before the statement or block item that
      follows it (or before the `}` that ends its block); a trailing comment stays at the end
      of the line of its statement or item, and trailing comments of consecutive lines are
      aligned two columns after the longest of those lines. A statement that is joined onto
      one line keeps its last trailing comment there; its earlier ones move above it.
"""

from __future__ import annotations

import bisect
import re
import typing as t
from collections import Counter
from dataclasses import dataclass

from veil import ir
from veil.diagnostics import Diagnostic
from veil.layout import INDENT, WIDTH, StatementPrinter, Stmt, Unit
from veil.parser import Comment, parse_file_with_comments

__all__ = ["WIDTH", "FormatError", "format_source", "print_statements"]


class FormatError(Exception):
    """The file does not parse: it is never formatted."""

    def __init__(self, diagnostics: t.Sequence[Diagnostic]) -> None:
        super().__init__(diagnostics[0].message if diagnostics else "syntax error")
        self.diagnostics = tuple(diagnostics)


# --------------------------------------------------------------------------------------------
# A file: statements, comments and blank lines


class _Source:
    def __init__(self, text: str) -> None:
        self.raw = text.split("\n")
        self.starts = [0]
        for line in self.raw:
            self.starts.append(self.starts[-1] + len(line) + 1)
        self.text = text

    def blank_between(self, after: int, before: int) -> bool:
        """Whether a blank line lies strictly between source lines `after` and `before`."""
        return any(not self.raw[i - 1].strip() for i in range(max(after + 1, 1), before))

    def own_line(self, c: Comment) -> bool:
        return not c.after_backslash and not self.raw[c.line - 1][: c.col - 1].strip()

    def one_statement(self, a: ir.Group, b: ir.Group) -> bool:
        """Whether `b` follows `a` in one `group a, b` statement (only a comma between)."""
        lo = self.starts[a.span.end_line - 1] + a.span.end_col - 1
        hi = self.starts[b.span.line - 1] + b.span.col - 1
        between = re.sub(r"#[^\n]*", "", self.text[lo:hi]).replace("\\", "")
        return "".join(between.split()) == ","


def _statements(
    printer: StatementPrinter, stmts: t.Sequence[ir.Statement], src: _Source | None
) -> list[Stmt]:
    out: list[Stmt] = []
    i = 0
    while i < len(stmts):
        s, j = stmts[i], i + 1
        if isinstance(s, ir.Group):
            while (
                src is not None
                and j < len(stmts)
                and isinstance(stmts[j], ir.Group)
                and src.one_statement(t.cast(ir.Group, stmts[j - 1]), t.cast(ir.Group, stmts[j]))
            ):
                j += 1
        out.append(printer.statement(s, t.cast(list[ir.Group], list(stmts[i:j]))))
        i = j
    return out


def _start(u: Unit) -> int | None:
    return min(u.anchors) if u.anchors else None


def _attach(
    stmts: list[Stmt], comments: t.Sequence[Comment], src: _Source
) -> list[tuple[int, str]]:
    """Give every comment to a unit (as leading or trailing); returns the comments that follow
    the last statement."""
    tail: list[tuple[int, str]] = []
    starts = [st.start for st in stmts]
    for c in comments:
        own = src.own_line(c)
        k = bisect.bisect_right(starts, c.line) - 1
        st = stmts[k] if k >= 0 and stmts[k].end >= c.line else None
        if st is None or (own and c.line <= st.start):
            nxt = next((x for x in stmts[max(k, 0) :] if x.start > c.line), None)
            if nxt is None:
                tail.append((c.line, c.text))
            else:
                nxt.units[0].leading.append((c.line, c.text))
            continue
        inner = st.inner
        if own:
            later = [u for u in inner if (s := _start(u)) is not None and s > c.line]
            if not inner:
                st.units[0].leading.append((c.line, c.text))
            else:
                unit = min(later, key=lambda u: t.cast(int, _start(u))) if later else st.units[-1]
                unit.leading.append((c.line, c.text))
            continue
        unit = st.units[0]
        if inner and st.start != st.end:
            on_line = [u for u in inner if c.line in u.anchors]
            before = [(a, u) for u in inner for a in u.anchors if a <= c.line]
            if on_line:
                unit = on_line[-1]
            elif c.line == st.end:
                unit = st.units[-1]
            elif before and c.line != st.start:
                unit = max(before, key=lambda au: au[0])[1]
        if unit.trailing:  # one line, one trailing comment: the earlier one goes above
            unit.leading.append((c.line, unit.trailing.pop()))
        unit.trailing.append(c.text)
    for st in stmts:
        for u in st.units:
            u.leading.sort()
    return tail


def _align_runs(stmts: list[Stmt], src: _Source | None) -> None:
    """Consecutive one-line blocks of one kind are aligned as a table (tabwriter style)."""
    i = 0
    while i < len(stmts):
        j = i + 1
        if stmts[i].cells is not None:
            while (
                j < len(stmts)
                and stmts[j].cells is not None
                and stmts[j].kind == stmts[i].kind
                and not stmts[j].units[0].leading
                and not (src and src.blank_between(stmts[j - 1].end, stmts[j].start))
            ):
                j += 1
        rows = [t.cast(list[str], st.cells) for st in stmts[i:j]]
        if len(rows) > 1:
            widths = [
                max((len(r[k]) for r in rows if k < len(r) - 1), default=0)
                for k in range(max(map(len, rows)))
            ]
            for st, row in zip(stmts[i:j], rows, strict=True):
                cells = [c.ljust(widths[k] + 1) for k, c in enumerate(row[:-1])]
                st.units[0].lines = ["".join(cells) + row[-1]]
        i = j


@dataclass
class _Out:
    text: str
    comment: str | None = None
    own: bool = False  # an own-line comment


def _assemble(stmts: list[Stmt], tail: list[tuple[int, str]], src: _Source | None) -> str:
    out: list[_Out | None] = []
    prev = 0  # the source line of what was printed last
    no_blank = True  # at the start of the file or of a block, or before a `}`

    def emit(line: int, end: int, force: bool, item: _Out) -> None:
        nonlocal prev, no_blank
        if not no_blank and (force or (src is not None and src.blank_between(prev, line))):
            out.append(None)
        out.append(item)
        prev, no_blank = end, False

    for i, st in enumerate(stmts):
        force = i > 0 and stmts[i - 1].kind != st.kind
        last = len(st.units) - 1
        for j, u in enumerate(st.units):
            indent = INDENT if j > 0 else ""
            for line, text in u.leading:
                emit(line, line, force, _Out(indent + text, own=True))
                force = False
            if j == 0:
                line, end = st.start, (st.start if last else st.end)
            elif j == last:
                line, end = st.end, st.end
                no_blank = True
            else:
                line = _start(u) or prev
                end = max(u.anchors, default=line)
            emit(line, end, force, _Out(u.lines[0]))
            force = False
            out.extend(_Out(x) for x in u.lines[1:])
            t.cast(_Out, out[-1]).comment = u.trailing[0] if u.trailing else None
            no_blank = j == 0 and last > 0
    for line, text in tail:
        emit(line, line, False, _Out(text, own=True))
    return "".join(x + "\n" for x in _align_comments(out))


def _align_comments(out: list[_Out | None]) -> list[str]:
    """Trailing comments of consecutive lines (same indentation, no blank line or comment line
    between) start two columns after the longest of the lines that carry one."""
    lines: list[str] = []
    i = 0
    while i < len(out):
        o = out[i]
        if o is None or o.own:
            lines.append("" if o is None else o.text)
            i += 1
            continue
        indent = len(o.text) - len(o.text.lstrip())
        j = i + 1
        while j < len(out):
            nxt = out[j]
            if nxt is None or nxt.own or len(nxt.text) - len(nxt.text.lstrip()) != indent:
                break
            j += 1
        run = t.cast(list[_Out], out[i:j])
        col = max((len(x.text) for x in run if x.comment), default=0) + 2
        lines += [x.text.ljust(col) + x.comment if x.comment else x.text for x in run]
        i = j
    return lines


# --------------------------------------------------------------------------------------------
# Public API


def print_statements(statements: t.Sequence[ir.Statement], *, one_line: bool = False) -> str:
    """Bare IR in the canonical layout (no comments; blocks on one line when `one_line` and
    they fit)."""
    stmts = _statements(StatementPrinter(None, one_line), statements, None)
    _align_runs(stmts, None)
    return _assemble(stmts, [], None)


def format_source(text: str, path: str = "<veil>") -> str:
    """The canonical layout of one file's text. Raises `FormatError` when it does not parse.

    Checks its own work: the output must parse to an equal IR (spans aside) with the same
    comments, else `AssertionError` (a bug in the formatter; nothing should be written).
    """
    text = text.removeprefix("\ufeff")
    source_file, diags, comments = parse_file_with_comments(text, path)
    if source_file is None:
        raise FormatError(diags)
    src = _Source(text)
    stmts = _statements(StatementPrinter(src.raw), source_file.statements, src)
    tail = _attach(stmts, comments, src)
    _align_runs(stmts, src)
    out = _assemble(stmts, tail, src)
    again, diags, new_comments = parse_file_with_comments(out, path)
    if again is None or again.statements != source_file.statements:
        raise AssertionError(f"veil fmt would change the meaning of {path}: {diags}")
    if Counter(c.text for c in comments) != Counter(c.text for c in new_comments):
        raise AssertionError(f"veil fmt would lose comments of {path}")
    return out
