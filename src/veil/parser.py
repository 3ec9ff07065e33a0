"""Facade over Lark: text in, IR or diagnostics out. The only module that imports lark."""

from __future__ import annotations

import copy
import functools
import hashlib
import importlib.util
import marshal
import os
import re
import sys
import threading
import typing as t
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from veil import __version__, ir, lalr
from veil.cache import private_file_ok, private_folder, write_cache_file
from veil.diagnostics import Diagnostic, Span, error

if t.TYPE_CHECKING:  # Lark is imported where it is used: a valid file is parsed without it
    from lark import Lark, Token, Tree
    from lark.exceptions import UnexpectedInput

#: Terminal names as users know them, for "expected …" messages.
_TERMINAL_NAMES: dict[str, str] = {
    "NAME": "a name",
    "QIDENT": "a backquoted name",
    "STRING": "a string",
    "INT": "a number",
    "DECIMAL": "a number",
    "TIMESTAMP": "a timestamp",
    "_NL": "end of line",
    "LBRACE": "`{`",
    "RBRACE": "`}`",
    "LPAR": "`(`",
    "RPAR": "`)`",
    "COMMA": "`,`",
    "DOT": "`.`",
    "SEMICOLON": "`;`",
    "COLON": "`:`",
    "EQ": "`=`",
    "COMPARE_OP": "a comparison",
    "PLUS": "`+`",
    "MINUS": "`-`",
    "$END": "end of file",
}


class ParenNewlines:
    """Post-lexer: line ends inside `()` and right after a comma are not statement ends."""

    always_accept = ("_NL",)

    def process(self, stream: Iterator[Token]) -> Iterator[Token]:
        depth = 0
        after_comma = False
        for tok in stream:
            if tok.type == "LPAR":
                depth += 1
            elif tok.type == "RPAR":
                depth = max(0, depth - 1)
            elif tok.type == "_NL" and (depth > 0 or after_comma):
                continue
            after_comma = tok.type == "COMMA"
            yield tok


def lark_cache_file() -> str | bool:
    """Where Lark keeps the built parser between runs, or False for no cache.

    Building the parse tables costs about 0.25 s of every command; Lark's cache (a pickle, keyed
    by a hash of the grammar, the options and the Lark and Python versions) cuts that to a few
    milliseconds. A pickle runs code when loaded, so it is only read from a folder of the
    current user that nobody else can write (`$XDG_CACHE_HOME/veil` or `~/.cache/veil`, mode
    0700), never from a shared temporary folder. Without such a folder (a read-only or missing
    home), veil builds the parser every time; a file that cannot be written or read is ignored
    by Lark, which then builds the parser.
    """
    if os.environ.get("VEIL_NO_LARK_CACHE"):
        return False
    folder = private_folder()
    if folder is None:
        return False
    path = folder / f"parser-{__version__}.lark-cache"
    return str(path) if private_file_ok(path) else False


def _build(**options: t.Any) -> Lark:
    """The one grammar, as an LALR parser with the contextual lexer, in strict mode."""
    from lark import Lark

    return Lark.open_from_package(
        "veil",
        "veil.lark",
        ("grammar",),
        parser="lalr",
        lexer="contextual",
        strict=True,
        maybe_placeholders=True,
        postlex=ParenNewlines(),
        **{"propagate_positions": False, "cache": lark_cache_file(), **options},
    )


@functools.cache
def _lark() -> Lark:
    return _build()


def _describe_expected(expected: set[str]) -> str:
    names = sorted({_TERMINAL_NAMES[e] if e in _TERMINAL_NAMES else _keyword(e) for e in expected})
    if len(names) > 6:
        names = [*names[:6], "…"]
    return ", ".join(names)


def _keyword(terminal: str) -> str:
    pattern = _lark().get_terminal(terminal).pattern.value if terminal else terminal
    return f"`{pattern}`"


def _token_text(tok: Token) -> str:
    if tok.type == "_NL":
        return "end of line"
    if tok.type == "$END":
        return "end of file"
    return f"`{tok.value}`"


def _span_of(path: str, e: UnexpectedInput) -> Span:
    from lark.exceptions import UnexpectedToken

    line = e.line if isinstance(e.line, int) and e.line > 0 else 1
    col = e.column if isinstance(e.column, int) and e.column > 0 else 1
    width = 1
    if isinstance(e, UnexpectedToken) and e.token.type not in ("_NL", "$END"):
        width = max(1, len(str(e.token.value).splitlines()[0] if str(e.token.value) else "x"))
    return Span(file=path, line=line, col=col, end_line=line, end_col=col + width)


def _syntax_diagnostic(path: str, text: str, e: UnexpectedInput) -> Diagnostic:
    from lark.exceptions import UnexpectedCharacters, UnexpectedEOF, UnexpectedToken

    span = _span_of(path, e)
    if isinstance(e, UnexpectedCharacters):
        pos = e.pos_in_stream
        ch = text[pos] if pos is not None and 0 <= pos < len(text) else "?"
        if ch in "\"'":
            return error(
                "P0002",
                "unterminated string",
                span,
                help="close the string on the same line; use \\n for a line break",
            )
        if ch == "`":
            return error(
                "P0002",
                "unterminated backquoted name",
                span,
                help="close the name with a backquote on the same line",
            )
        return error(
            "P0001",
            f"unexpected character `{ch}`",
            span,
            help="names are letters, digits, `_` and `$`; quote other names",
        )
    if isinstance(e, UnexpectedToken):
        tok = e.token
        expected = _describe_expected(set(e.expected))
        if tok.type == "NAME" and tok.value in ir.KEYWORDS:
            return error(
                "P0003",
                f"`{tok.value}` is a keyword and cannot be used here",
                span,
                help=f"expected {expected}; write a name that contains a keyword in quotes",
            )
        help_ = f"expected {expected}"
        if str(tok.value) in ir.KEYWORDS:
            help_ += f"; a name that contains the keyword `{tok.value}` must be quoted"
        elif tok.type == "DOT":
            help_ += "; a purpose, group, user or project name with `.` must be quoted"
        return error("P0001", f"unexpected {_token_text(tok)}", span, help=help_)
    if isinstance(e, UnexpectedEOF):
        return error(
            "P0001",
            "unexpected end of file",
            span,
            help=f"expected {_describe_expected(set(e.expected))}",
        )
    return error("P0001", "syntax error", span)  # pragma: no cover - lark has no other kinds


#: Deepest parse tree veil accepts, in tree levels (each level of parentheses in a condition
#: or predicate costs about three). Every later stage recurses over the tree, so this keeps a
#: hostile file from exhausting the stack; real policies stay far below it.
MAX_DEPTH = 200


def _check_depth(tree: Tree[Token], path: str) -> None:
    """Reject trees nested deeper than MAX_DEPTH expression levels, without recursing."""
    from lark import Tree

    stack: list[tuple[Tree[Token], int]] = [(tree, 0)]
    while stack:
        node, depth = stack.pop()
        if depth > MAX_DEPTH:
            meta = node.meta
            line = getattr(meta, "line", 1) or 1
            col = getattr(meta, "column", 1) or 1
            raise ParseFailure(
                error(
                    "P0006",
                    "expression nested too deeply",
                    Span(file=path, line=line, col=col, end_line=line, end_col=col + 1),
                    help="flatten it: `a or b or c` needs no parentheses, and `not not x` is `x`",
                )
            )
        stack.extend((c, depth + 1) for c in node.children if isinstance(c, Tree))


def parse_tree(text: str, path: str, parser: Lark | None = None) -> Tree[Token]:
    """Parse to a Lark tree; raises `ParseFailure` with one diagnostic on a syntax error."""
    from lark.exceptions import UnexpectedInput

    if not text.endswith("\n"):
        text += "\n"
    try:
        tree = (parser or _lark()).parse(text)
    except UnexpectedInput as e:
        raise ParseFailure(_syntax_diagnostic(path, text, e)) from None
    _check_depth(tree, path)
    return tree


def _build_ir(tree: Tree[Token], builder: t.Any) -> t.Any:
    """Bottom-up: the builder's method named after each rule gets the rule's position and its
    built children (tokens as they are, `None` for an absent optional part)."""
    from lark import Tree

    children = [_build_ir(c, builder) if isinstance(c, Tree) else c for c in tree.children]
    build = getattr(builder, str(tree.data), None)
    if build is None:  # pragma: no cover - every rule of the grammar has a method
        raise AssertionError(f"no transformer rule for {tree.data}")
    return build(tree.meta, *children)


class ParseFailure(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def parse_file(text: str, path: str) -> tuple[ir.SourceFile | None, list[Diagnostic]]:
    """Text of one `.veil` file -> IR, or the diagnostics that stopped it."""
    return _parse_file(text, path, None)


def _parse_file(
    text: str, path: str, parser: Lark | None
) -> tuple[ir.SourceFile | None, list[Diagnostic]]:
    from veil.transformer import ToIR, TransformError

    if not text.endswith("\n"):
        text += "\n"
    tables = _tables_for(parser)
    root: lalr.Node | None = None
    if tables is not None:
        transformer = ToIR(path)
        try:
            root, run = lalr.parse(tables, text, transformer)
        except lalr.Fallback:
            root = None
    if root is None:  # a syntax error, or a case for Lark's loop
        from lark.exceptions import UnexpectedInput

        transformer = ToIR(path)
        fast = _fast(parser or _lark())
        with fast.lock:
            run = fast.run
            run.builder, run.failure = transformer, None
            try:
                root = fast.frontend.parse(text)
            except UnexpectedInput as e:
                return None, [_syntax_diagnostic(path, text, e)]
            finally:
                run.builder = None
    if root.height > MAX_DEPTH + 1:  # the rare error: the tree says exactly where
        try:
            parse_tree(text, path, _lark_with_positions())
        except ParseFailure as f:
            return None, [f.diagnostic]
        raise AssertionError("a tree too deep for one parse is deep enough for the other")
    if isinstance(run.failure, TransformError):
        return None, [run.failure.diagnostic]
    if run.failure is not None:
        raise run.failure
    if transformer.diagnostics:
        return None, list(transformer.diagnostics)
    return ir.SourceFile(path=path, statements=tuple(root.value)), []


# --------------------------------------------------------------------------------------------
# IR built while parsing.
#
# Lark's LALR parser calls one callback per reduced rule with the values of the rule's symbols.
# Its own callbacks build a `Tree` per rule, with positions when `propagate_positions` is on,
# and veil then walked that tree into IR: at 10,000 tables about half of checking was spent
# building, annotating and walking trees that were thrown away. `lalr.reducer` does what Lark's
# tree builder does and hands each rule to `ToIR` at once; `lalr.parse` runs Lark's tables with
# veil's own loop, and Lark's loop (with the same callbacks) parses what that loop leaves to
# it: every syntax error. The result, spans included, is exactly what the tree walk built;
# tests compare the three.


def _spec(rule: t.Any) -> lalr.Spec:
    """What the tree builder would do for `rule`: (name, inline, expand single child, which
    symbols to keep [(index, splice, Nones before)] or None for all, Nones after)."""
    name = str(rule.alias or rule.options.template_source or rule.origin.name)
    expansion = rule.expansion
    empty = list(rule.options.empty_indices or [])
    if empty:
        ones = "".join(str(int(b)) for b in empty).split("0")
        nones = [len(run) for run in ones]
    else:
        nones = [0] * (len(expansion) + 1)
    include: list[tuple[int, bool, int]] = []
    pending = 0
    for i, sym in enumerate(expansion):
        pending += nones[i]
        if rule.options.keep_all_tokens or not (sym.is_term and sym.filter_out):
            include.append((i, not sym.is_term and sym.name.startswith("_"), pending))
            pending = 0
    after = pending + nones[len(expansion)]
    needed = bool(empty) or len(include) < len(expansion) or any(x for _, x, _ in include)
    inline = str(rule.origin.name).startswith("_")
    expand1 = bool(rule.options.expand1) and not rule.alias
    return (name, inline, expand1, include if needed else None, after if needed else 0)


@functools.cache
@dataclass(frozen=True, slots=True)
class _Fast:
    """Lark's parser and lexer for one `Lark`, with callbacks that build IR for `run` (built
    once: one file's parse takes the lock and puts its builder in `run`)."""

    frontend: t.Any
    run: lalr.Run
    lock: threading.Lock


@functools.cache
def _fast(lark: Lark) -> _Fast:
    from lark.parsers.lalr_parser import _Parser

    run = lalr.Run(None)
    frontend = copy.copy(lark.parser)
    parser = copy.copy(frontend.parser)
    callbacks = {
        rule: functools.partial(lalr.reducer(_spec(rule)), run)
        for rule in lark.parser.parser.parser.callbacks
    }
    parser.parser = _Parser(parser.parser.parse_table, t.cast(t.Any, callbacks))
    frontend.parser = parser
    return _Fast(frontend=frontend, run=run, lock=threading.Lock())


#: `_tables_data`'s format; a file of another format is not read.
_DATA_FORMAT = 1


@functools.cache
def _tables(lark: Lark) -> lalr.Tables | None:
    """`lark`'s parse table and contextual lexer for `lalr.parse`; None when `lark` uses
    something that loop does not do (then Lark's loop parses every file)."""
    data = _tables_data(lark)
    if data is None:
        return None
    callbacks: dict[str, t.Any] = dict(lark.options.lexer_callbacks or {})
    return _tables_from(data, callbacks)


def _tables_for(lark: Lark | None) -> lalr.Tables | None:
    return _default_tables() if lark is None else _tables(lark)


@functools.cache
def _default_tables() -> lalr.Tables | None:
    """The tables of veil's parser, from the user's private cache folder when they are there:
    a command that parses valid files then never imports Lark (about a quarter of the start-up
    of `veil check` on a small repository). The file is plain data (`marshal`: it cannot run
    code), named after the grammar, this module, `lalr.py`, Lark and Python, and read only
    from a folder and file that only the user can write; any other is rebuilt from Lark."""
    path = _tables_file()
    if path is not None:
        try:
            data = marshal.loads(path.read_bytes())
            if isinstance(data, dict) and data.get("format") == _DATA_FORMAT:
                return _tables_from(data, {})
        except (OSError, ValueError, EOFError, TypeError, KeyError):
            pass  # missing or unreadable: rebuilt below
    data = _tables_data(_lark())
    if data is None:  # pragma: no cover - veil's own parser is always one the loop runs
        return None
    if path is not None:
        write_cache_file(path, marshal.dumps(data))
    return _tables_from(data, {})


def _tables_file() -> Path | None:
    if os.environ.get("VEIL_NO_LARK_CACHE"):
        return None
    folder = private_folder()
    if folder is None:
        return None
    here = Path(__file__).parent
    digest = hashlib.sha256(f"{__version__} {sys.version}".encode())
    for part in (here / "grammar" / "veil.lark", here / "parser.py", here / "lalr.py"):
        digest.update(part.read_bytes())
    spec = importlib.util.find_spec("lark")  # its version, without importing it
    if spec is None or spec.origin is None:  # pragma: no cover - Lark is a dependency
        return None
    lark_init = Path(spec.origin)
    digest.update(lark_init.read_bytes())
    path = folder / f"tables-{digest.hexdigest()[:32]}.marshal"
    return path if private_file_ok(path) else None


def _tables_data(lark: Lark) -> dict[str, t.Any] | None:
    """`lark`'s parse table and contextual lexer as plain data (see `_tables_from`)."""
    from lark.lexer import ContextualLexer, UnlessCallback
    from lark.parsers.lalr_analysis import Shift

    frontend = lark.parser
    contextual = getattr(frontend.lexer, "lexer", None)
    callbacks = lark.options.lexer_callbacks or {}
    if (
        not isinstance(contextual, ContextualLexer)
        or not isinstance(lark.options.postlex, ParenNewlines)
        or any(term.pattern.flags for term in lark.terminals)
        or not set(callbacks) <= set(lark.lexer_conf.ignore)
    ):
        return None
    table = frontend.parser.parser.parse_table
    own_rules = {rule: rule for rule in frontend.parser.parser.callbacks}
    rules: list[tuple[int, str, lalr.Spec, tuple[bool, ...], bool]] = []
    index: dict[t.Any, int] = {}
    actions: dict[int, dict[str, int]] = {}
    for state, acts in table.states.items():
        row = actions[state] = {}
        for symbol, (action, arg) in acts.items():
            symbol = str(symbol)  # marshal takes no str subclass (Lark's names are Tokens)
            if action is Shift:
                row[symbol] = arg
                continue
            if arg not in index:
                index[arg] = len(rules)
                spec = _spec(own_rules[arg])
                through = spec[2] and spec[3] is None and len(arg.expansion) == 1
                terminals = tuple(bool(sym.is_term) for sym in arg.expansion)
                origin = str(arg.origin.name)
                rules.append((len(arg.expansion), origin, spec, terminals, through))
            row[symbol] = ~index[arg]

    def keywords_of(callback: dict[str, t.Any]) -> dict[str, dict[str, str]]:
        return {
            str(name): {str(term.pattern.value): str(term.name) for term in cb.scanner.terminals}
            for name, cb in callback.items()
            if isinstance(cb, UnlessCallback)
        }

    def patterns_of(scanner: t.Any) -> list[tuple[str, int]]:
        return [(str(mre.pattern), int(mre.flags)) for mre in scanner._mres]

    root = contextual.root_lexer
    master_patterns = patterns_of(root.scanner)  # builds `callback` too
    master_keywords = keywords_of(root.callback)
    embedders: dict[str, set[str]] = {}
    for name, words in master_keywords.items():
        for keyword in words.values():
            embedders.setdefault(keyword, set()).add(name)
    fast: dict[int, tuple[list[str], dict[str, dict[str, str]]]] = {}
    own: dict[int, tuple[list[tuple[str, int]], dict[str, dict[str, str]]]] = {}
    for state, basic in contextual.lexers.items():
        names = frozenset(str(term.name) for term in basic.terminals)
        # The grammar-wide expression finds the state's token when every keyword the state
        # accepts is spelled by a name terminal it accepts too (the state's expression then
        # lacks the keyword's own alternative, like the grammar-wide one).
        if all(names & embedders[n] for n in names if n in embedders):
            words = {
                name: {text: kw for text, kw in master_keywords[name].items() if kw in names}
                for name in names & master_keywords.keys()
            }
            fast[state] = (sorted(names), words)
        else:
            own[state] = (patterns_of(basic.scanner), keywords_of(basic.callback))
    return {
        "format": _DATA_FORMAT,
        "actions": actions,
        "rules": rules,
        "start": table.start_states["start"],
        "end": table.end_states["start"],
        "ignore": sorted(map(str, root.ignore_types)),
        "newline_types": sorted(map(str, root.newline_types)),
        "master": (master_patterns, master_keywords),
        "fast": fast,
        "own": own,
    }


def _tables_from(
    data: dict[str, t.Any], on_ignored: dict[str, t.Callable[[lalr.Tok], object]]
) -> lalr.Tables:
    """`lalr.Tables` from `_tables_data`'s plain data; each rule's code and each state's
    lexer are made on first use."""
    from veil.transformer import ToIR

    rules: list[tuple[int, str, lalr.Reducer | None]] = []
    for size, origin, spec, terminals, through in data["rules"]:
        rules.append((size, origin, None))
        if not through:
            build = None if spec[1] else getattr(ToIR, spec[0], None)
            lalr.compile_on_first_use(rules, len(rules) - 1, spec, tuple(terminals), build)
    fast, own = data["fast"], data["own"]
    master: list[lalr.Match] = []

    def match_of(patterns: list[tuple[str, int]]) -> lalr.Match:
        mres = [re.compile(pattern, flags) for pattern, flags in patterns]
        if len(mres) == 1:
            return mres[0].match

        def match(text: str, pos: int) -> t.Any:  # pragma: no cover - veil's grammar is small
            for mre in mres:
                m = mre.match(text, pos)
                if m:
                    return m
            return None

        return match

    def lexer(state: int) -> lalr.StateLexer:
        if state in fast:
            if not master:
                master.append(match_of(data["master"][0]))
            accept, words = fast[state]
            return lalr.StateLexer(master[0], words, frozenset(accept))
        patterns, words = own[state]
        return lalr.StateLexer(match_of(patterns), words)

    return lalr.Tables(
        actions=data["actions"],
        rules=rules,
        start=data["start"],
        end=data["end"],
        ignore=frozenset(data["ignore"]),
        newline_types=frozenset(data["newline_types"]),
        lexer=lexer,
        on_ignored=on_ignored,
    )


@functools.cache
def _lark_with_positions() -> Lark:
    """A tree-building parser, for the exact position of a MAX_DEPTH error."""
    return _build(propagate_positions=True, cache=False)


# --------------------------------------------------------------------------------------------
# Comments, for `veil fmt`: the grammar ignores them, Lark's lexer callbacks collect them.


@dataclass(frozen=True, slots=True, order=True)
class Comment:
    """A `#` comment: the 1-based line and column of its `#`, and its text from the `#` on
    (trailing white space and `\\r` removed). `after_backslash`: it follows a line-continuation
    backslash (`mask x \\  # why`)."""

    line: int
    col: int
    text: str
    after_backslash: bool = False


_comment_lock = threading.Lock()
_comment_sink: list[Comment] = []


def _on_comment(tok: Token) -> Token:
    _comment_sink.append(Comment(line=tok.line or 1, col=tok.column or 1, text=tok.value.rstrip()))
    return tok


def _on_line_cont(tok: Token) -> Token:
    value = str(tok.value)
    at = value.find("#")
    if at >= 0:
        text = value[at:].rstrip()
        col = (tok.column or 1) + at
        _comment_sink.append(Comment(line=tok.line or 1, col=col, text=text, after_backslash=True))
    return tok


@functools.cache
def _lark_with_comments() -> Lark:
    return _build(lexer_callbacks={"COMMENT": _on_comment, "LINE_CONT": _on_line_cont})


def parse_file_with_comments(
    text: str, path: str
) -> tuple[ir.SourceFile | None, list[Diagnostic], tuple[Comment, ...]]:
    """`parse_file`, plus every comment of the file in source order (for `veil fmt`).

    The comments come from the same lexer as the tokens, so a `#` inside a string or a
    backquoted name is never taken for one. On a syntax error the comments are those lexed
    before it.
    """
    with _comment_lock:
        _comment_sink.clear()
        try:
            source_file, diags = _parse_file(text, path, _lark_with_comments())
            comments = tuple(sorted(set(_comment_sink)))
        finally:
            _comment_sink.clear()
    return source_file, diags, comments
