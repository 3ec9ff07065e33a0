"""The parse loop: veil's lexer and LALR(1) driver over the tables Lark built.

Lark computes the grammar's parse table and its contextual lexer (which terminals each parser
state accepts, keywords against names, priorities); `parser.py` takes them from Lark into the
plain `Tables` below, and this loop runs them. Lark's own loop does the same work through
general machinery: a generator per layer, a `Token` (a `str` with eight attributes) per token
and per ignored blank, a line counter object, a regular expression per parser state, and a
callback through `functools.partial` per reduced rule; at 10,000 tables that machinery, not the
grammar, was most of the time of `veil check`. This loop lexes with one regular expression for
the whole grammar wherever that gives the token the state's own expression would (see
`StateLexer`), builds a slotted `Tok` per token, counts lines inline and applies the post-lexer
(`parser.ParenNewlines`) inline.

It only handles the success case. Anything unusual -- a character no terminal matches, a token
the state has no action for -- raises `Fallback`, and `parser.py` parses the file again with
Lark's own loop, which raises Lark's error, so every syntax diagnostic is Lark's. Tests compare
the tokens, the IR and the spans of both loops on every example, case and truncated file.

This module does not import Lark: the tables are plain data.
"""

from __future__ import annotations

import typing as t
from collections.abc import Callable
from dataclasses import dataclass, field


class Fallback(Exception):
    """The input needs Lark's own loop (a syntax error, or a lexer case this loop leaves to it)."""


class Tok:
    """A token: its terminal, text and position (1-based line and column, the end exclusive),
    as Lark's `Token` gives them."""

    __slots__ = ("column", "end_column", "end_line", "line", "type", "value")

    def __init__(
        self, type: str, value: str, line: int, column: int, end_line: int, end_column: int
    ) -> None:
        self.type = type
        self.value = value
        self.line = line
        self.column = column
        self.end_line = end_line
        self.end_column = end_column

    def __str__(self) -> str:
        return self.value

    def __repr__(self) -> str:
        return f"Tok({self.type!r}, {self.value!r})"


# --------------------------------------------------------------------------------------------
# Reduced rules.
#
# Lark's tree builder drops anonymous tokens, splices `_rule`s, inserts `None` for absent
# `[optional]` parts, lets a `?rule` with one child be that child, and computes each rule's
# position from the first and last of all its symbols (keywords included, an inlined child
# counting with the symbols around it). `reduce` does the same and hands the rule to the IR
# builder (`transformer.ToIR`) at once, so no tree is built.


class Node:
    """A reduced rule on the parser's stack: its value and the extent of its container (also
    the `meta` argument of the `ToIR` methods). The extent is the rule's own when the rule is
    built; a `?rule` that lets a child stand for itself (`( cond )`) widens the child's extent
    afterwards, as Lark's `container_*` positions do, for the rules around it. `height` counts
    the tree levels below, for MAX_DEPTH."""

    __slots__ = ("column", "empty", "end_column", "end_line", "height", "line", "value")

    value: t.Any
    empty: bool
    line: int
    column: int
    end_line: int
    end_column: int
    height: int

    def __init__(self) -> None:
        self.value = None
        self.empty = True
        self.height = 1


class Run:
    """One file's parse: the IR builder, and the first exception a builder method raised (the
    parse goes on without building, so a syntax error later in the file still wins, as it
    would if the IR were built after parsing)."""

    def __init__(self, builder: t.Any) -> None:
        self.builder = builder
        self.failure: Exception | None = None


#: What the tree builder does for a rule: (name, inline, expand single child, which symbols to
#: keep [(index, splice, Nones before)] or None for all, Nones after).
Spec = tuple[str, bool, bool, "list[tuple[int, bool, int]] | None", int]

#: One rule's reduction: (the parse, the values of its symbols) -> its value.
Reducer = Callable[[Run, list[t.Any]], t.Any]


def reducer(spec: Spec) -> Reducer:
    """The reduction of one rule, calling the builder's method named after the rule."""
    name, inline, expand1, include, after = spec

    def extent(node: t.Any, children: list[t.Any]) -> bool:
        """Give `node` the extent from the first to the last non-empty symbol; False if there
        is none."""
        for first in children:
            if first.__class__ is not Node or not first.empty:
                break
        else:
            return False
        for last in reversed(children):
            if last.__class__ is not Node or not last.empty:
                break
        node.line, node.column = first.line, first.column
        node.end_line, node.end_column = last.end_line, last.end_column
        node.empty = False
        return True

    def finish(run: Run, node: Node, kept: list[t.Any]) -> Node:
        args = []
        height = 0
        for c in kept:
            if c.__class__ is Node:
                if c.height > height:
                    height = c.height
                args.append(c.value)
            else:
                args.append(c)
        node.height = height + 1
        if run.failure is None:
            try:
                node.value = getattr(run.builder, name)(node, *args)
            except Exception as e:  # reported after the parse, unless a syntax error comes first
                run.failure = e
        return node

    if include is None and not inline and not expand1:

        def plain(run: Run, children: list[t.Any]) -> t.Any:
            node = Node()
            extent(node, children)
            return finish(run, node, children)

        return plain

    def general(run: Run, children: list[t.Any]) -> t.Any:
        if include is None:
            kept = children
        else:
            kept = []
            for i, splice, nones in include:
                if nones:
                    kept += [None] * nones
                if splice:
                    kept += children[i].value
                else:
                    kept.append(children[i])
            if after:
                kept += [None] * after
        if expand1 and len(kept) == 1:
            only = kept[0]
            if only.__class__ is Node:
                extent(only, children)
            return only
        node = Node()
        extent(node, children)
        if inline:
            node.value = kept
            return node
        return finish(run, node, kept)

    return general


def compiled_reducer(
    spec: Spec, terminals: tuple[bool, ...], build: Callable[..., t.Any] | None
) -> Reducer:
    """`reducer(spec)` as straight-line code for this one rule (`terminals[i]`: its i-th
    symbol is a terminal, so its value is a token), calling `build(builder, meta, *args)`, the
    builder's method for the rule (looked up on the builder by name when None): which symbols
    it keeps, where its extent comes from and what it hands the builder are known before
    parsing, so the loops and tests of `reducer` happen once here instead of a million times.
    Tests compare both."""
    name, inline, expand1, include, after = spec
    items: list[tuple[str, int]] = []  # ("tok" | "sym" | "none" | "splice", symbol)
    if include is None:
        items = [("tok" if term else "sym", i) for i, term in enumerate(terminals)]
    else:
        for i, splice, nones in include:
            items += [("none", -1)] * nones
            items.append(("splice" if splice else "tok" if terminals[i] else "sym", i))
        items += [("none", -1)] * after
    static = all(kind != "splice" for kind, _ in items)
    code = ["def reduce(run, c):"]
    if terminals and terminals[0]:
        code.append("    f = c[0]")
    else:
        code += [
            "    for f in c:",
            "        if f.__class__ is not Node or not f.empty:",
            "            break",
            "    else:",
            "        f = None",
        ]
    if terminals and terminals[-1]:
        code.append("    l = c[-1]")
    else:
        code += [
            "    l = None",
            "    if f is not None:",
            "        for l in reversed(c):",
            "            if l.__class__ is not Node or not l.empty:",
            "                break",
        ]

    def element(kind: str, i: int) -> str:
        return "None" if kind == "none" else f"*c[{i}].value" if kind == "splice" else f"c[{i}]"

    widen = [
        "only.line = f.line",
        "only.column = f.column",
        "only.end_line = l.end_line",
        "only.end_column = l.end_column",
        "only.empty = False",
    ]
    if static and expand1 and len(items) == 1:
        code += [
            f"    only = {element(*items[0])}",
            "    if only.__class__ is Node and f is not None:",
            *(f"        {w}" for w in widen),
            "    return only",
        ]
    else:
        if not static:
            code.append(f"    kept = [{', '.join(element(*item) for item in items)}]")
            if expand1:
                code += [
                    "    if len(kept) == 1:",
                    "        only = kept[0]",
                    "        if only.__class__ is Node and f is not None:",
                    *(f"            {w}" for w in widen),
                    "        return only",
                ]
        code += ["    node = new(Node)", "    node.height = 1"]
        place = [
            "node.line = f.line",
            "node.column = f.column",
            "node.end_line = l.end_line",
            "node.end_column = l.end_column",
            "node.empty = False",
        ]
        if terminals and terminals[0]:
            code += [f"    {p}" for p in place]
        else:
            code += ["    if f is None:", "        node.empty = True", "    else:"]
            code += [f"        {p}" for p in place]
        if inline:
            kept = "kept" if not static else f"[{', '.join(element(*i) for i in items)}]"
            code += [f"    node.value = {kept}", "    return node"]
        else:
            args = []
            code.append("    h = 0")
            if static:
                for k, (kind, i) in enumerate(items):
                    if kind == "sym":
                        code += [
                            f"    a{k} = c[{i}]",
                            f"    if a{k}.__class__ is Node:",
                            f"        if a{k}.height > h:",
                            f"            h = a{k}.height",
                            f"        a{k} = a{k}.value",
                        ]
                        args.append(f"a{k}")
                    else:
                        args.append(element(kind, i))
            else:
                code += [
                    "    args = []",
                    "    for x in kept:",
                    "        if x.__class__ is Node:",
                    "            if x.height > h:",
                    "                h = x.height",
                    "            x = x.value",
                    "        args.append(x)",
                ]
                args.append("*args")
            call = f"getattr(run.builder, {name!r})(" if build is None else "build(run.builder, "
            code += [
                "    node.height = h + 1",
                "    node.value = None",
                "    if run.failure is None:",
                "        try:",
                f"            node.value = {call}node{''.join(', ' + a for a in args)})",
                "        except Exception as e:",
                "            run.failure = e",
                "    return node",
            ]
    namespace: dict[str, t.Any] = {"Node": Node, "new": object.__new__, "build": build}
    exec("\n".join(code), namespace)  # code made above from the grammar's rules
    return t.cast(Reducer, namespace["reduce"])


def compile_on_first_use(
    rules: list[tuple[int, str, Reducer | None]],
    index: int,
    spec: Spec,
    terminals: tuple[bool, ...],
    build: Callable[..., t.Any] | None,
) -> None:
    """Make `rules[index]`'s reduction one that compiles the rule's code when first used and
    then puts it in its place (compiling all of them would cost every command 40 ms)."""
    size, origin, _ = rules[index]

    def first_use(run: Run, children: list[t.Any]) -> t.Any:
        reduction = compiled_reducer(spec, terminals, build)
        rules[index] = (size, origin, reduction)
        return reduction(run, children)

    rules[index] = (size, origin, first_use)


# --------------------------------------------------------------------------------------------
# The tables.

Match = Callable[[str, int], "t.Any"]


@dataclass(frozen=True, slots=True)
class StateLexer:
    """How to lex in one parser state, as Lark's contextual lexer does.

    `match` finds the next terminal (a compiled regular expression's `match`); `keywords` maps
    a name-like terminal's text to the keyword terminal it becomes (Lark's "unless" rule: a
    NAME that spells a keyword the state accepts is that keyword); `accept`, when set, is what
    the state accepts: `match` is then the grammar-wide expression, whose first match is the
    state's own whenever its terminal is one the state accepts (the state's expression is the
    grammar's alternatives in the same order, fewer of them); any other match is left to
    Lark's loop (`Fallback`).
    """

    match: Match
    keywords: dict[str, dict[str, str]]
    accept: frozenset[str] | None = None


@dataclass(slots=True)
class Tables:
    """Lark's parse table and lexer in plain form. `actions[state][terminal]` is the state
    to shift to (>= 0) or `~rule` to reduce by, `actions[state][rule name]` the state after a
    reduction; `rules[i]` is (symbols, name, reduction or None for a rule that passes its only
    child through unchanged).
    `lexer(state)` builds the `StateLexer` of a state on first use (compiling a state's own
    expression costs start-up time that most states never need)."""

    actions: dict[int, dict[str, int]]
    rules: list[tuple[int, str, Reducer | None]]
    start: int
    end: int
    ignore: frozenset[str]
    newline_types: frozenset[str]
    lexer: Callable[[int], StateLexer]
    on_ignored: dict[str, Callable[[Tok], object]] = field(default_factory=dict)
    lexers: dict[int, StateLexer] = field(default_factory=dict)


def parse(tables: Tables, text: str, builder: t.Any) -> tuple[Node, Run]:
    """Lex and parse `text`, building IR with `builder`; raises `Fallback`."""
    actions = tables.actions
    rules = tables.rules
    end_state = tables.end
    ignore = tables.ignore
    newline_types = tables.newline_types
    on_ignored = tables.on_ignored
    lexers = tables.lexers
    run = Run(builder)

    pos = 0
    size = len(text)
    line = 1
    line_start = 0  # offset of the first character of `line`
    depth = 0  # ( nesting, for the post-lexer
    after_comma = False
    stack = [tables.start]
    values: list[t.Any] = []
    state = tables.start
    while True:
        # ---- the next token in `state`, or None at the end
        lx = lexers.get(state)
        if lx is None:
            lx = lexers[state] = tables.lexer(state)
        tok = None
        while pos < size:
            m = lx.match(text, pos)
            if m is None:
                raise Fallback
            typ = m.lastgroup
            value = m.group()
            if lx.accept is not None and typ not in lx.accept:
                raise Fallback
            kw = lx.keywords.get(typ)
            column = pos - line_start + 1
            start_line = line
            pos += len(value)
            if typ in newline_types:
                breaks = value.count("\n")
                if breaks:
                    line += breaks
                    line_start = pos - len(value) + value.rindex("\n") + 1
            if typ in ignore:
                if on_ignored and typ in on_ignored:
                    on_ignored[typ](Tok(typ, value, start_line, column, line, pos - line_start + 1))
                continue
            if kw is not None:
                typ = kw.get(value, typ)
            # the post-lexer (parser.ParenNewlines): a line end inside () or after a comma is
            # no statement end
            if typ == "_NL":
                if depth or after_comma:
                    continue
            elif typ == "LPAR":
                depth += 1
            elif typ == "RPAR" and depth:
                depth -= 1
            after_comma = typ == "COMMA"
            tok = Tok(typ, value, start_line, column, line, pos - line_start + 1)
            break

        # ---- feed it: reduce as the table says, then shift
        typ = "$END" if tok is None else tok.type
        while True:
            act = actions[state].get(typ)
            if act is None:
                raise Fallback
            if act >= 0:
                stack.append(act)
                values.append(tok)
                state = act
                break
            n, origin, reduction = rules[~act]
            if n:
                children = values[-n:]
                del values[-n:]
                del stack[-n:]
            else:
                children = []
            value = children[0] if reduction is None else reduction(run, children)
            state = actions[stack[-1]][origin]
            stack.append(state)
            values.append(value)
            if tok is None and state == end_state:
                return value, run
