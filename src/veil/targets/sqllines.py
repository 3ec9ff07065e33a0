"""How a generated SQL expression is laid out over lines: the one layout of every target's
policy bodies (view columns, row policies, masking and row access policies, mask functions).

The lowering writes an expression on one line; `lay_out` breaks it so that a diff of the
script shows which condition changed:

* each `WHEN … THEN …` and the `ELSE` of a CASE on its own line, `END` under its CASE;
* each operand of AND / OR on its own line, the operator first (`AND` of a BETWEEN stays);
* a parenthesised part that holds such breaks on lines of its own, indented by nesting;
* a list (arguments, IN-list) longer than `LIST_WIDTH` one item per line, and a sub-select
  longer than `SELECT_WIDTH` one clause per line.

Only whitespace between tokens changes (a space becomes a line break and indentation, or a line
break is added inside a parenthesis), never a token, a string literal or a quoted name, so the
laid-out text means exactly what the one-line text means. Text it cannot read (unbalanced
parentheses, an unterminated quote) is returned as it is.
"""

from __future__ import annotations

import re
import typing as t
from dataclasses import dataclass, field
from itertools import chain

#: A list longer than this (in characters, on one line) is written one item per line.
LIST_WIDTH = 120
#: A sub-select longer than this is written one clause per line.
SELECT_WIDTH = 160
STEP = "  "

_QUOTED = r'"(?:[^"]|"")*"|`(?:[^`]|``)*`'
#: A string literal whose quote is doubled inside (`'it''s'`), or escaped with a backslash.
_STRING_DOUBLED = r"'[^']*(?:''[^']*)*'"
_STRING_BACKSLASH = r"'(?:[^'\\]|\\.)*'"
# Each match is the whitespace before a token, then the token: one `findall` reads a body.
_OTHER = r"[()\[\],]|[^\s'\"`()\[\],]+"
_TOKEN_DOUBLED = re.compile(rf"(\s*)({_STRING_DOUBLED}|{_QUOTED}|{_OTHER})")
_TOKEN_BACKSLASH = re.compile(rf"(\s*)({_STRING_BACKSLASH}|{_QUOTED}|{_OTHER})", re.DOTALL)
_CLAUSES = frozenset({"FROM", "WHERE", "GROUP", "HAVING", "ORDER", "UNION", "JOIN"})
_JOIN_PREFIXES = frozenset({"LEFT", "RIGHT", "INNER", "FULL", "CROSS"})


class _Tok:
    """A token; `word` is its text in upper case, what keywords are compared with. (A plain
    class: a body has hundreds of tokens, and a dataclass's generated __init__ costs twice.)"""

    __slots__ = ("space", "text", "word")

    def __init__(self, text: str, space: bool) -> None:
        self.text = text
        self.space = space  # whitespace stood before it
        self.word = text.upper()


@dataclass(slots=True)
class _Group:
    open: _Tok
    items: list[_Item] = field(default_factory=list)
    close: _Tok | None = None

    @property
    def space(self) -> bool:
        return self.open.space


_Item: t.TypeAlias = _Tok | _Group


def _tokens(sql: str, backslash: bool) -> list[_Tok] | None:
    pattern = _TOKEN_BACKSLASH if backslash else _TOKEN_DOUBLED
    found = pattern.findall(sql)
    # Every character is whitespace or part of a token, except an unterminated quote, which
    # no token matches: then the tokens fall short of the text.
    if sum(map(len, chain.from_iterable(found))) != len(sql.rstrip()):
        return None
    return [_Tok(text, bool(space)) for space, text in found]


def _parse(tokens: list[_Tok]) -> list[_Item] | None:
    stack: list[_Group] = [_Group(_Tok("", False))]
    for tok in tokens:
        if tok.text in ("(", "["):
            group = _Group(tok)
            stack[-1].items.append(group)
            stack.append(group)
        elif tok.text in (")", "]"):
            if len(stack) == 1 or "([".index(stack[-1].open.text) != ")]".index(tok.text):
                return None
            stack.pop().close = tok
        else:
            stack[-1].items.append(tok)
    return stack[0].items if len(stack) == 1 else None


def _is_select(items: t.Sequence[_Item]) -> bool:
    return bool(items) and isinstance(items[0], _Tok) and items[0].word in ("SELECT", "WITH")


class _Printer:
    def __init__(self) -> None:
        self._breaks: dict[int, bool] = {}
        self._flat: dict[int, str] = {}

    def flat(self, items: t.Sequence[_Item]) -> str:
        """`items` on one line, as the lowering wrote them (once per sequence: deciding how
        to break a sequence asks for the text of every sequence in it)."""
        key = id(items)
        text = self._flat.get(key)
        if text is None:
            out: list[str] = []
            for i, item in enumerate(items):
                if i and item.space:
                    out.append(" ")
                if isinstance(item, _Tok):
                    out.append(item.text)
                else:
                    assert item.close is not None
                    out.append(item.open.text + self.flat(item.items) + item.close.text)
            text = self._flat[key] = "".join(out)
        return text

    def breaks(self, items: t.Sequence[_Item]) -> bool:
        """Whether `items` are written over several lines."""
        key = id(items)
        if key not in self._breaks:
            self._breaks[key] = self._decide(items)
        return self._breaks[key]

    def _decide(self, items: t.Sequence[_Item]) -> bool:
        if _is_select(items):
            return len(self.flat(items)) > SELECT_WIDTH
        if any(isinstance(i, _Tok) and i.word in ("AND", "OR", "CASE") for i in items):
            return True
        if any(isinstance(i, _Group) and self.breaks(i.items) for i in items):
            return True
        return self.listed(items)

    def listed(self, items: t.Sequence[_Item]) -> bool:
        """A list (comma-separated) too long for one line: one item per line."""
        return (
            not _is_select(items)
            and any(isinstance(i, _Tok) and i.text == "," for i in items)
            and (
                len(self.flat(items)) > LIST_WIDTH
                or any(isinstance(i, _Group) and self.breaks(i.items) for i in items)
            )
        )

    def group(self, g: _Group, indent: str) -> str:
        assert g.close is not None
        if not self.breaks(g.items):
            return g.open.text + self.flat(g.items) + g.close.text
        inner = indent + STEP
        return f"{g.open.text}\n{inner}{self.seq(g.items, inner)}\n{indent}{g.close.text}"

    def seq(self, items: t.Sequence[_Item], indent: str) -> str:
        """`items` starting at the start of a line indented by `indent`."""
        if not self.breaks(items):
            return self.flat(items)
        select = _is_select(items)
        listed = self.listed(items)
        out: list[str] = []
        line = indent  # the indentation of the line being written
        cases = 0  # CASEs open in this sequence
        between = False  # an AND that belongs to a BETWEEN is still to come
        after_comma = False
        for i, item in enumerate(items):
            brk: str | None = None
            word = item.word if isinstance(item, _Tok) else ""
            if i == 0:
                pass
            elif listed and after_comma:
                brk = indent
            elif word in ("WHEN", "ELSE") and cases:
                brk = indent + STEP * cases
            elif word == "END" and cases:
                brk = indent + STEP * (cases - 1)
            elif word == "AND" and between:
                between = False
            elif word in ("AND", "OR"):
                brk = indent + STEP * (cases + (1 if cases or select else 0))
            elif select and (self._clause(items, i) or self._join(items, i)):
                brk = indent
            if brk is not None:
                out.append("\n" + brk)
                line = brk
            elif i and item.space:
                out.append(" ")
            if isinstance(item, _Group):
                out.append(self.group(item, line))
            else:
                out.append(item.text)
            if word == "CASE":
                cases += 1
            elif word == "END" and cases:
                cases -= 1
            elif word == "BETWEEN":
                between = True
            after_comma = word == ","
        return "".join(out)

    @staticmethod
    def _clause(items: t.Sequence[_Item], i: int) -> bool:
        """A clause of a SELECT (`FROM`, `WHERE`, a `JOIN` that no `LEFT` or kin precedes)."""
        item, before = items[i], items[i - 1]
        if not isinstance(item, _Tok) or item.word not in _CLAUSES:
            return False
        return not (
            item.word == "JOIN"
            and isinstance(before, _Tok)
            and before.word in (*_JOIN_PREFIXES, "OUTER")
        )

    @staticmethod
    def _join(items: t.Sequence[_Item], i: int) -> bool:
        """`LEFT JOIN` and its kin start a clause at their first word."""
        item, before = items[i], items[i - 1]
        if not isinstance(item, _Tok) or item.word not in _JOIN_PREFIXES:
            return False
        rest = items[i + 1 : i + 3]
        return any(isinstance(r, _Tok) and r.word == "JOIN" for r in rest) and not (
            isinstance(before, _Tok) and before.word in _JOIN_PREFIXES
        )


# What a text needs for `lay_out` to return it as it is without reading it: no keyword that
# breaks a line, no whitespace but single spaces, none just inside a bracket (reading would
# drop it), and short enough to be no long list.
_NEEDS_READING = re.compile(r"\s\s|[^\S ]|[(\[] | [)\]]|\b(?:AND|OR|CASE)\b", re.IGNORECASE)


def lay_out(
    sql: str,
    *,
    indent: str = "",
    backslash: bool = False,
    shapes: dict[tuple[str, str], str] | None = None,
) -> str:
    """`sql` laid out over lines; the first line is not indented (it continues wherever the
    caller writes it), the others start with `indent` and the indentation of their nesting.

    `backslash`: string literals escape with a backslash (`'it\\'s'`) rather than by doubling
    the quote (`'it''s'`). `shapes`: the layouts of earlier calls with the same `backslash`
    (see below), kept by the caller for one script."""
    if len(sql) <= LIST_WIDTH and sql == sql.strip() and _NEEDS_READING.search(sql) is None:
        return sql
    # The layout depends on the words, the brackets and the lengths, never on what a string
    # literal or a quoted name holds: each is read as one token, and only its length counts.
    # So the text is laid out with every quoted token blanked to `'xx…'` of the same length
    # (the policies of thousands of tables then share a few dozen shapes, which differ only in
    # the names they quote), and the quoted tokens are put back in order: the layout changes
    # no token, so the laid-out shape holds them in the same order at the same places.
    quoted = _QUOTED_BACKSLASH if backslash else _QUOTED_DOUBLED
    found: list[str] = []
    shape = quoted.sub(lambda m: _blank(m[0], found), sql)
    if shapes is None:
        shapes = {}
    elif len(shapes) >= MAX_SHAPES:
        shapes.clear()
    laid = shapes.get((shape, indent))
    if laid is None:
        laid = shapes[shape, indent] = _read(shape, indent, backslash)
    if not found:
        return laid
    put_back = iter(found)
    return quoted.sub(lambda m: next(put_back), laid)


#: How many layouts `shapes` keeps: a repository whose bodies share no shape then costs a
#: bounded amount of memory.
MAX_SHAPES = 4096
_QUOTED_DOUBLED = re.compile(rf"{_STRING_DOUBLED}|{_QUOTED}")
_QUOTED_BACKSLASH = re.compile(rf"{_STRING_BACKSLASH}|{_QUOTED}", re.DOTALL)


def _blank(token: str, found: list[str]) -> str:
    found.append(token)
    return token[0] + "x" * (len(token) - 2) + token[-1]


def _read(sql: str, indent: str, backslash: bool) -> str:
    """`sql` laid out, read token by token (as it is if it cannot be read)."""
    tokens = _tokens(sql, backslash)
    items = None if tokens is None else _parse(tokens)
    if items is None:
        return sql
    return _Printer().seq(items, indent)


def list_items(items: t.Iterable[str], indent: str = "") -> str:
    """The items of a list, for the inside of its parentheses: on one line when it is short,
    else one item per line (indented by `indent` and one step; the closing parenthesis that
    follows starts a line indented by `indent`)."""
    items = list(items)
    flat = ", ".join(items)
    if len(flat) <= LIST_WIDTH:
        return flat
    inner = indent + STEP
    return "\n" + inner + f",\n{inner}".join(items) + "\n" + indent


def tokens_outside_literals(sql: str, *, backslash: bool = False) -> list[str] | None:
    """The tokens of `sql` (None if it cannot be read): two texts with the same tokens differ
    only in layout."""
    tokens = _tokens(sql, backslash)
    return None if tokens is None else [tok.text for tok in tokens]
