"""Masking methods: their arguments (whatever the column) and whether they fit a column.

`check_method` finds what is wrong with a method whatever column it masks (unknown name, wrong
arguments, a regex outside the portable subset): always an error. `fit_method` lowers a method
for one column, or says why it does not fit that column's type (an error when the column was
named explicitly, a fallback to `null` with a warning when it was selected by tag).
"""

from __future__ import annotations

import re
import typing as t
import warnings
from decimal import Decimal

from veil import ir, model
from veil.checker import codes
from veil.checker.common import did_you_mean
from veil.diagnostics import Diagnostic, error
from veil.methods import METHODS, TRUNCATE_UNITS, Fit, Param


def _bad(m: ir.Method, message: str, help_: str | None = None) -> list[Diagnostic]:
    return [
        error(
            codes.BAD_METHOD_ARGS, message, m.span, help=help_ or f"write `{METHODS[m.name].usage}`"
        )
    ]


def _is_int(v: ir.LiteralValue) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def check_method(m: ir.Method) -> list[Diagnostic]:
    """What is wrong with `m` whatever the column: always errors."""
    spec = METHODS.get(m.name)
    if spec is None:
        return [
            error(
                codes.UNKNOWN_METHOD,
                f"unknown masking method `{m.name}`",
                m.span,
                help=did_you_mean(m.name, METHODS, otherwise="methods: " + ", ".join(METHODS)),
            )
        ]
    if len(m.args) != spec.arity:
        takes = {0: "no arguments", 1: "one argument", 2: "two arguments"}[spec.arity]
        return _bad(m, f"`{m.name}` takes {takes}, not {len(m.args)}")
    for param, arg in zip(spec.params, m.args, strict=True):
        problems = _check_arg(m, param, arg)
        if problems:
            return problems
    return []


def _check_arg(m: ir.Method, param: Param, arg: ir.LiteralValue) -> list[Diagnostic]:
    """What is wrong with one argument of `m`, by its kind."""
    match param:
        case Param.VALUE:
            if arg is None:
                return _bad(m, f"`{m.name}(null)` is not a constant", "write `with null`")
        case Param.COUNT:
            if not (_is_int(arg) and t.cast(int, arg) >= 0):
                return _bad(
                    m,
                    f"the argument of `{m.name}` must be a whole number of characters (0 or more)",
                )
        case Param.STEP:
            if not (isinstance(arg, int | Decimal) and not isinstance(arg, bool) and arg > 0):
                return _bad(
                    m,
                    f"the step of `{m.name}` must be a number greater than 0",
                    f"write e.g. `{m.name}(100)` or `{m.name}(0.5)`",
                )
        case Param.UNIT:
            if arg not in TRUNCATE_UNITS:
                return _bad(
                    m,
                    f"`{m.name}` cannot truncate to `{arg}`",
                    did_you_mean(
                        str(arg), TRUNCATE_UNITS, otherwise="units: " + ", ".join(TRUNCATE_UNITS)
                    ),
                )
        case Param.PATTERN:
            return _check_regex(m)
        case Param.REPLACEMENT:
            pass  # checked with its pattern
        case _:
            t.assert_never(param)
    return []


# ------------------------------------------------------------------------------ regex


def _check_regex(m: ir.Method) -> list[Diagnostic]:
    pattern, replacement = m.args
    if not isinstance(pattern, str) or not isinstance(replacement, str):
        return _bad(m, "`regex` takes a pattern string and a replacement string")
    problem = non_portable(pattern)
    if problem is not None:
        return [
            error(
                codes.NON_PORTABLE_REGEX,
                f"regex `{pattern}` uses {problem}",
                m.span,
                help="veil patterns use the subset every target agrees on: no lookaround, "
                "no backreferences, no named groups, no inline flags, no atomic groups "
                "or possessive quantifiers, no \\b \\B \\A \\Z \\z \\G anchors",
            )
        ]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            groups = re.compile(pattern).groups
    except (re.error, FutureWarning, DeprecationWarning) as e:
        return _bad(m, f"invalid regex `{pattern}`: {e}", "fix the pattern")
    problem = bad_replacement(replacement, groups)
    if problem is not None:
        return _bad(
            m,
            f"invalid replacement `{replacement}`: {problem}",
            'refer to groups as \\1 … \\9 (write "\\\\1" in a veil string) and write '
            "a backslash as \\\\",
        )
    return []


_GROUP_OPENERS: tuple[tuple[str, str], ...] = (
    ("?:", ""),
    ("?=", "a lookahead"),
    ("?!", "a lookahead"),
    ("?<=", "a lookbehind"),
    ("?<!", "a lookbehind"),
    ("?P<", "a named group"),
    ("?<", "a named group"),
    ("?P=", "a backreference"),
    ("?#", "a comment group"),
    ("?>", "an atomic group"),
    ("?(", "a conditional group"),
)


def non_portable(pattern: str) -> str | None:
    """The first construct outside the portable regex subset, in words (None if portable)."""
    i, in_class = 0, False
    prev_quantifier = False
    while i < len(pattern):
        c = pattern[i]
        if c == "\\":
            nxt = pattern[i + 1 : i + 2]
            if nxt.isdigit():
                return f"a backreference or octal escape `\\{nxt}`"
            if nxt and nxt in "bBAZzG":
                return f"the anchor `\\{nxt}`"
            if nxt and nxt in "gkpPN":
                return f"the escape `\\{nxt}`"
            i, prev_quantifier = i + 2, False
            continue
        if in_class:
            if c == "[" and pattern[i + 1 : i + 2] in (":", ".", "="):
                return "a POSIX class or nested set such as `[[:alpha:]]`"
            if c == "]":
                in_class = False
            i += 1
            continue
        if c == "[":
            in_class = True
            i += 1
            if pattern[i : i + 1] == "^":
                i += 1
            if pattern[i : i + 1] == "]":
                i += 1  # a leading `]` is a literal
            prev_quantifier = False
            continue
        if c == "(" and pattern[i + 1 : i + 2] == "?":
            for opener, what in _GROUP_OPENERS:
                if pattern.startswith(opener, i + 1):
                    if what:
                        return what
                    break
            else:
                return "an inline flag group `(?…)`"
        if c == "+" and prev_quantifier:
            return "a possessive quantifier"
        prev_quantifier = c in "*+?}" and not (c == "+" and prev_quantifier)
        i += 1
    return None


def bad_replacement(replacement: str, groups: int) -> str | None:
    i = 0
    while i < len(replacement):
        if replacement[i] != "\\":
            i += 1
            continue
        nxt = replacement[i + 1 : i + 2]
        if nxt == "\\":
            i += 2
            continue
        if nxt.isdigit() and nxt != "0":
            if int(nxt) > groups:
                return f"`\\{nxt}` refers to group {nxt} and the pattern has {groups}"
            if replacement[i + 2 : i + 3].isdigit():
                return f"`\\{nxt}` followed by a digit (ambiguous between targets)"
            i += 2
            continue
        return f"the escape `\\{nxt}`" if nxt else "a trailing backslash"
    return None


# ------------------------------------------------------------------------------ fit


def fit_method(m: ir.Method, table: model.TableKey, column: model.CatalogColumn) -> Fit:
    """`m` (already checked by `check_method`) for one column."""
    spec = METHODS[m.name]
    if spec.families is not None and column.type.family not in spec.families:
        return Fit(problem=spec.misfit)
    return spec.lower(m.args, table, column.type)
