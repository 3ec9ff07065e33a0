"""The canonical layout of each statement, for `veil fmt` (`formatter.py`).

A statement prints as units, the lines one comment can attach to: a header, each block item, the
closing `}`; a statement without a block is one unit. Each unit remembers the source lines it
came from (its anchors), so that comments can find it. The layout rules are in the docstring of
`veil.formatter`.
"""

from __future__ import annotations

import datetime as dt
import re
import typing as t
from dataclasses import dataclass, field

from veil import approvals, ir, methods
from veil.diagnostics import Span
from veil.printer import cond_to_source, expr_to_source, literal_to_source

WIDTH = 100
INDENT = "  "
_LIST_KEYS = ("purposes", "members", "sources")


# --------------------------------------------------------------------------------------------
# Printing pieces


def _n(name: ir.Name) -> str:
    return ir.name_source(name.value)


def method_source(m: ir.Method) -> str:
    """`hash`, `show_last(4)`, `truncate(month)` (a unit as a bare word), `constant("x")`."""
    return ir.method_text(
        m,
        literal=literal_to_source,
        word=lambda i, a: methods.is_word(m.name, i) and ir.is_plain_ident(a),
    )


def _cond_pieces(keyword: str, cond: ir.Condition) -> list[str]:
    """`unless a or b` as pieces to break between: [`unless a`, `or b`]."""
    if isinstance(cond, ir.CondOr | ir.CondAnd):
        op = "or" if isinstance(cond, ir.CondOr) else "and"
        nested = (ir.CondOr,) if op == "or" else (ir.CondOr, ir.CondAnd)
        texts = [
            f"({cond_to_source(i)})" if isinstance(i, nested) else cond_to_source(i)
            for i in cond.items
        ]
        return [f"{keyword} {texts[0]}", *(f"{op} {x}" for x in texts[1:])]
    return [f"{keyword} {cond_to_source(cond)}"]


def _expr_pieces(keyword: str, expr: ir.Expr) -> list[str]:
    if isinstance(expr, ir.BoolOr | ir.BoolAnd):
        op = "or" if isinstance(expr, ir.BoolOr) else "and"
        nested = (ir.BoolOr,) if op == "or" else (ir.BoolOr, ir.BoolAnd)
        texts = [
            f"({expr_to_source(i)})" if isinstance(i, nested) else expr_to_source(i)
            for i in expr.items
        ]
        return [f"{keyword} {texts[0]}", *(f"{op} {x}" for x in texts[1:])]
    return [f"{keyword} {expr_to_source(expr)}"]


def _wrap(indent: str, segments: list[list[str]], hang: str = INDENT) -> list[str]:
    """Join segments (lists of pieces) with spaces; break with ` \\` before a segment that does
    not fit, and between the pieces of a segment that does not fit on a line of its own (the
    segment after such a one starts a line). Continuation lines are indented by `hang`."""
    cont = indent + hang
    cont2 = cont + INDENT
    lines = [indent + " ".join(segments[0])]
    split = False
    for i, seg in enumerate(segments[1:], 1):
        room = WIDTH - (2 if i < len(segments) - 1 else 0)
        text = " ".join(seg)
        if not split and len(lines[-1]) + 1 + len(text) <= room:
            lines[-1] += " " + text
            continue
        lines[-1] += " \\"
        split = len(cont + text) > room
        if not split:
            lines.append(cont + text)
            continue
        lines.append(cont + seg[0])
        for piece in seg[1:]:
            if len(lines[-1]) + 1 + len(piece) + 2 <= WIDTH:
                lines[-1] += " " + piece
            else:
                lines[-1] += " \\"
                lines.append(cont2 + piece)
    return lines


def _wrap_list(prefix: str, items: t.Sequence[str], suffix: str = "") -> list[str]:
    """`prefix a, b, c` + suffix; a long list goes on under its first item after `, \\`."""
    lines = [prefix + items[0]]
    for item in items[1:]:
        if len(lines[-1]) + 2 + len(item) + 2 <= WIDTH:
            lines[-1] += ", " + item
        else:
            lines[-1] += ", \\"
            lines.append(" " * len(prefix) + item)
    lines[-1] += suffix
    return lines


def _literal_field(f: ir.RowField) -> str:
    return f"{ir.quote_part(f.column)}: {literal_to_source(f.value)}"


def _row(row: t.Sequence[ir.RowField]) -> str:
    return f"{{ {', '.join(map(_literal_field, row))} }}"


def expectation_source(e: ir.Expectation) -> str:
    match e:
        case ir.ExpectColumn(column=column, outcome=outcome, method=method):
            with_ = f" with {method_source(method)}" if method is not None else ""
            return f"expect {column} {outcome}{with_}"
        case ir.ExpectRow(table=table, row=row, outcome=outcome):
            return f"expect {table} row {_row(row)} {outcome}"
        case ir.ExpectCell(column=column, row=row, outcome=outcome, value=value, method=method):
            if outcome == "is":
                tail = f"is {literal_to_source(value)}"
            else:
                tail = outcome + (f" with {method_source(method)}" if method is not None else "")
            return f"expect {column} in row {_row(row)} {tail}"
        case _:
            t.assert_never(e)


def _arm(clause: ir.MaskClause) -> tuple[str, list[str]]:
    what = "reveal" if clause.method is None else f"with {method_source(clause.method)}"
    return what, ["otherwise"] if clause.cond is None else _cond_pieces("for", clause.cond)


def _time(at: dt.datetime) -> str:
    text = approvals.format_time(at)
    return text if not at.microsecond else text[:-1] + f".{at.microsecond:06d}Z"


# --------------------------------------------------------------------------------------------
# Statements as units: the lines that one comment can attach to (a header, an item, a `}`)


Item: t.TypeAlias = tuple[str, list[str], tuple[int, ...]]
"""A block item: its one-line text, its lines in a block, the source lines it came from."""


@dataclass(eq=False)
class Unit:
    lines: list[str]
    anchors: tuple[int, ...] = ()  # source lines where what this unit prints was written
    leading: list[tuple[int, str]] = field(default_factory=list)  # (source line, text)
    trailing: list[str] = field(default_factory=list)


@dataclass(eq=False)
class Stmt:
    kind: str
    start: int
    end: int
    units: list[Unit]
    cells: list[str] | None = None  # a block printed on one line, for aligning runs

    @property
    def inner(self) -> list[Unit]:
        return self.units[1:-1] if len(self.units) > 2 else []


class StatementPrinter:
    """Statements -> units. `src` (the file's lines) is None when printing bare IR."""

    def __init__(self, src: list[str] | None, one_line: bool = False) -> None:
        self.src = src
        self.one_line = one_line

    # ------------------------------------------------------------ helpers
    def _was_one_line(self, span: Span) -> bool:
        return self.one_line if self.src is None else span.line == span.end_line

    def keyword_lines(self, span: Span, word: str) -> tuple[int, ...]:
        """Source lines, within `span`, where the keyword `word` is written (outside strings)."""
        if self.src is None:
            return ()
        found = []
        for line in range(span.line, span.end_line + 1):
            text = _STRINGS.sub('""', self.src[line - 1]).split("#", 1)[0]
            if re.search(rf"(?<![\w$]){word}(?![\w$])", text):
                found.append(line)
        return tuple(found)

    def _block(
        self,
        stmt: ir.Statement,
        head: str,
        items: t.Sequence[Item],
        braces: bool,
        block_only: bool = False,
    ) -> Stmt:
        """`head { a; b }` on one line when written so and it fits, else a block of units.
        `items`: (one-line text, block lines, anchors)."""
        kind_, span = kind(stmt), stmt.span
        if not items:
            text = head + (" {}" if braces else "")
            return Stmt(kind_, span.line, span.end_line, [Unit([text], (span.line,))])
        texts = [x[0] for x in items]
        one = f"{head} {{ {'; '.join(texts)} }}"
        if not block_only and self._was_one_line(span) and len(one) <= WIDTH:
            cells = [head, *[x + ";" for x in texts[:-1]], texts[-1] + " }"]
            cells[1] = "{ " + cells[1]
            return Stmt(kind_, span.line, span.end_line, [Unit([one], (span.line,))], cells)
        units = [Unit([head + " {"], (span.line,))]
        units += [Unit(lines, anchors) for _, lines, anchors in items]
        units.append(Unit(["}"]))
        return Stmt(kind_, span.line, span.end_line, units)

    # ------------------------------------------------------------ statements
    def statement(self, s: ir.Statement, groups: list[ir.Group]) -> Stmt:
        match s:
            case ir.Table():
                return self.table(s)
            case ir.TagOn(tags=tags, target=target):
                return self._line(s, [f"tag {', '.join(map(str, tags))} on {target}"])
            case ir.Purpose(name=name, description=desc, acknowledgement=ack):
                items: list[Item] = []
                for key, v in (("description", desc), ("acknowledgement", ack)):
                    if v is not None:
                        text = f"{key} {ir.string_source(v)}"
                        items.append((text, [INDENT + text], self.keyword_lines(s.span, key)))
                return self._block(s, f"purpose {_n(name)}", items, braces=False)
            case ir.Group():
                names = [_n(g.name) for g in groups]
                st = self._line(s, _wrap_list("group ", names))
                st.end = groups[-1].span.end_line
                return st
            case ir.User():
                return self.user(s)
            case ir.Project():
                return self.project(s)
            case ir.Approvers(names=names, purpose=purpose):
                tail = f" for purpose {_n(purpose)}" if purpose is not None else ""
                return self._line(s, _wrap_list("approvers ", [_n(x) for x in names], tail))
            case ir.Approve():
                return self.approve(s)
            case ir.Revoke(project=p, purpose=pu, by=by, at=at):
                text = f"revoke {_n(p)} purpose {_n(pu)} by {_n(by)} at {_time(at)}"
                if not at.microsecond:
                    text = approvals.revoke_line(p.value, pu.value, by.value, at).rstrip("\n")
                return self._line(s, [text])
            case ir.Mask():
                return self.mask(s)
            case ir.Filter(table=table, where=where, unless=unless):
                segs = [[f"filter {table}"], _expr_pieces("where", where)]
                if unless is not None:
                    segs.append(_cond_pieces("unless", unless))
                return self._line(s, _wrap("", segs))
            case ir.Restrict(table=table, to=to, unless=unless):
                tos = [cond_to_source(c) for c in to]
                to_pieces = [f"to {tos[0]}" + ("," if len(tos) > 1 else "")]
                to_pieces += [x + ("," if i < len(tos) - 2 else "") for i, x in enumerate(tos[1:])]
                segs = [[f"restrict {table}"], to_pieces]
                if unless is not None:
                    segs.append(_cond_pieces("unless", unless))
                return self._line(s, _wrap("", segs))
            case ir.TestCase():
                return self.test(s)
            case _:
                t.assert_never(s)

    def _line(self, s: ir.Statement, lines: list[str]) -> Stmt:
        return Stmt(kind(s), s.span.line, s.span.end_line, [Unit(lines, (s.span.line,))])

    def table(self, s: ir.Table) -> Stmt:
        names = [ir.quote_part(c.name) for c in s.columns]
        types = [str(c.type) for c in s.columns]
        nw = max(map(len, names), default=0) + 2
        tw = max(map(len, types), default=0) + 2
        items: list[Item] = []
        for c, name, type_ in zip(s.columns, names, types, strict=True):
            tags = f"tags {', '.join(map(str, c.tags))}" if c.tags else ""
            one = f"{name} {type_}" + (f" {tags}" if tags else "")
            block = INDENT + name.ljust(nw) + (type_.ljust(tw) + tags if tags else type_)
            items.append((one, [block], (c.span.line,)))
        return self._block(s, f"table {s.name}", items, braces=True)

    def user(self, s: ir.User) -> Stmt:
        items: list[Item] = []
        if s.groups:
            text = "groups " + ", ".join(_n(g) for g in s.groups)
            lines = _wrap_list(INDENT + "groups ", [_n(g) for g in s.groups])
            items.append((text, lines, tuple(g.span.line for g in s.groups)))
        for a in s.attributes:
            values = [ir.string_source(v) for v in a.values]
            key = ir.quote_part(a.key)
            lines = _wrap_list(f"{INDENT}{key} ", values)
            items.append((f"{key} {', '.join(values)}", lines, (a.span.line,)))
        return self._block(s, f"user {_n(s.name)}", items, braces=False)

    def project(self, s: ir.Project) -> Stmt:
        items: list[Item] = []
        lists: dict[str, list[str]] = {
            "purposes": [_n(x) for x in s.purposes],
            "members": [_n(x) for x in s.members],
            "sources": [str(x) for x in s.sources],
        }
        spans: dict[str, t.Sequence[ir.Name | ir.ObjectName]] = {
            "purposes": s.purposes,
            "members": s.members,
            "sources": s.sources,
        }
        for key in _LIST_KEYS:
            if lists[key]:
                lines = _wrap_list(INDENT + key.ljust(9), lists[key])
                anchors = tuple(x.span.line for x in spans[key])
                items.append((f"{key} {', '.join(lists[key])}", lines, anchors))
        for key, value in (("description", s.description), ("documentation", s.documentation)):
            if value is not None:
                text = f"{key} {ir.string_source(value)}"
                items.append((text, [INDENT + text], self.keyword_lines(s.span, key)))
        return self._block(s, f"project {_n(s.name)}", items, braces=True)

    def approve(self, s: ir.Approve) -> Stmt:
        head = (
            f"approve {_n(s.project)} purpose {_n(s.purpose)} by {_n(s.by)} at {_time(s.at)} "
            f"digest {ir.string_source(s.digest)}"
        )
        if s.record is None:
            return self._line(s, [head])
        r = s.record
        if s.at.microsecond:
            text = approvals.approve_line("p", "p", "b", s.at, "", r)
            body = text.rstrip("\n").split("\n")[1:]
        else:
            text = approvals.approve_line(
                s.project.value, s.purpose.value, s.by.value, s.at, s.digest, r
            )
            head, *body = text.rstrip("\n").split("\n")
            head = head.removesuffix(" {")
        anchors: list[tuple[int, ...]] = []
        if r.purposes:
            anchors.append(tuple(x.span.line for x in r.purposes))
        anchors.append(
            tuple(x.span.line for x in r.members) or self.keyword_lines(s.span, "members")
        )
        anchors.append(
            tuple(x.span.line for x in r.sources) or self.keyword_lines(s.span, "sources")
        )
        anchors += [(a.span.line,) for a in r.acknowledgements]
        items = [(line.strip(), [line], a) for line, a in zip(body[:-1], anchors, strict=True)]
        return self._block(s, head, items, braces=True, block_only=True)

    def mask(self, s: ir.Mask) -> Stmt:
        target = (
            f"tagged {s.target.tag}" if isinstance(s.target, ir.TagTarget) else str(s.target.name)
        )
        when = [_expr_pieces("when", s.when)] if s.when is not None else []
        if s.form == "block":
            arms = [_arm(c) for c in s.clauses]
            width = max((len(a) for a, _ in arms), default=0) + 1
            items: list[Item] = []
            for (a, pieces), clause in zip(arms, s.clauses, strict=True):
                lines = _wrap(INDENT, [[a.ljust(width) + pieces[0]], *([p] for p in pieces[1:])])
                items.append((f"{a} {' '.join(pieces)}", lines, (clause.span.line,)))
            head = " ".join([f"mask {target}", *(" ".join(p) for p in when)])
            st = self._block(s, head, items, braces=True)
            if len(st.units) > 1:  # a long `when` goes on after a backslash
                segs = [[f"mask {target}"], *when]
                segs[-1] = [*segs[-1][:-1], segs[-1][-1] + " {"]
                st.units[0].lines = _wrap("", segs, 2 * INDENT)
            return st
        masking = next(c for c in s.clauses if c.method is not None)
        method = t.cast(ir.Method, masking.method)
        segs = [[f"mask {target}"]]
        if not (s.form == "unless" and method.name == "null" and not method.args):
            segs.append([f"with {method_source(method)}"])
        segs += when
        if s.form != "always":
            cond = next(c.cond for c in s.clauses if c.cond is not None)
            segs.append(_cond_pieces(s.form, cond))
        return self._line(s, _wrap("", segs))

    def test(self, s: ir.TestCase) -> Stmt:
        items: list[Item] = []
        if s.user is not None:
            text = f"as {_n(s.user)}" + (f" in project {_n(s.project)}" if s.project else "")
            items.append((text, [INDENT + text], (s.user.span.line,)))
        for e in s.expectations:
            text = expectation_source(e)
            items.append((text, [INDENT + text], (e.span.line,)))
        return self._block(s, f"test {ir.string_source(s.name)}", items, braces=True)


_STRINGS = re.compile(r""""(?:[^"\\\n]|\\.)*"|'(?:[^'\\\n]|\\.)*'|`(?:[^`\n]|``)+`""")


def kind(s: ir.Statement) -> str:
    return "approval" if isinstance(s, ir.Approve | ir.Revoke) else type(s).__name__
