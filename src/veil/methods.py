"""The registry of masking methods, and what the checker, the evaluator and every target share
about them, with nothing of the evaluator's side: the targets import this module, never
`masking.py` (which computes values and sits on top of the row-expression evaluator).

`METHODS` declares each method once: its name, how it is written with its arguments, how many
it takes, the column families it fits and the longest string it can give. The checker reads its
arity, usage and families from here, the lookup targets its longest result.
"""

from __future__ import annotations

import sys
import typing as t
from collections.abc import Callable
from dataclasses import dataclass

from veil import model

__all__ = ["METHODS", "Method", "method_of", "replacement_parts"]

F = model.Family
STRINGS = frozenset({F.STRING})
NUMBERS = frozenset({F.INTEGER, F.DECIMAL, F.FLOAT})
INSTANTS = frozenset({F.DATE, F.TIMESTAMP})
#: Characters of a SHA-256 digest in hex.
HASH_HEX_LENGTH = 64


def _never_longer(action: model.MaskAction) -> int | None:
    return None


def _constant_longest(action: model.MaskAction) -> int | None:
    value = t.cast(model.MaskConstant, action).value
    return len(value) if isinstance(value, str) else None


def _hash_longest(action: model.MaskAction) -> int | None:
    length = t.cast(model.MaskHash, action).length
    return HASH_HEX_LENGTH if length is None else length


def _regex_longest(action: model.MaskAction) -> int | None:
    length = t.cast(model.MaskRegex, action).length
    return sys.maxsize if length is None else length


@dataclass(frozen=True, slots=True, kw_only=True)
class Method:
    """One masking method."""

    name: str
    #: How it is written with its arguments (help lines quote it).
    usage: str
    arity: int
    #: The column families it fits (None: every family).
    families: frozenset[model.Family] | None
    #: What `fit_method` says when it does not fit a column's family.
    misfit: str = ""
    #: The lowered form of the method (`model.MaskAction`).
    action: type[model.MaskAction]
    #: The longest string it can give, when that can be longer than its input (None: never
    #: longer, or not a string); `sys.maxsize` when unbounded.
    longest: Callable[[model.MaskAction], int | None] = _never_longer


def _string(
    name: str, usage: str, arity: int, action: type[model.MaskAction], **kw: t.Any
) -> Method:
    return Method(
        name=name,
        usage=usage,
        arity=arity,
        families=STRINGS,
        misfit=f"`{name}` masks string columns",
        action=action,
        **kw,
    )


METHODS: dict[str, Method] = {
    m.name: m
    for m in (
        Method(name="null", usage="null", arity=0, families=None, action=model.MaskNull),
        Method(
            name="constant",
            usage="constant(value)",
            arity=1,
            families=None,
            action=model.MaskConstant,
            longest=_constant_longest,
        ),
        _string("hash", "hash", 0, model.MaskHash, longest=_hash_longest),
        _string("show_first", "show_first(n)", 1, model.MaskShow),
        _string("show_last", "show_last(n)", 1, model.MaskShow),
        _string(
            "regex",
            'regex("pattern", "replacement")',
            2,
            model.MaskRegex,
            longest=_regex_longest,
        ),
        Method(
            name="round",
            usage="round(step)",
            arity=1,
            families=NUMBERS,
            misfit="`round` masks numbers",
            action=model.MaskRound,
        ),
        Method(
            name="truncate",
            usage="truncate(year|quarter|month|day|hour)",
            arity=1,
            families=INSTANTS,
            misfit="`truncate` masks dates and timestamps",
            action=model.MaskTruncate,
        ),
        _string("email_domain", "email_domain", 0, model.MaskEmailDomain),
    )
}


def method_of(action: model.MaskAction) -> Method:
    """The registry entry of a lowered method."""
    return METHODS[model.action_name(action)]


def replacement_parts(replacement: str) -> list[int | str]:
    """A regex replacement read as group numbers and literal text.

    `\\1`…`\\9` is a group, `\\\\` one backslash, any other character (a lone backslash
    included) stands for itself. Every target renders these parts in its own syntax.
    """
    parts: list[int | str] = []
    i = 0
    while i < len(replacement):
        c, nxt = replacement[i], replacement[i + 1 : i + 2]
        if c == "\\" and nxt and nxt in "123456789":
            parts.append(int(nxt))
            i += 2
            continue
        text = "\\" if c == "\\" and nxt == "\\" else c
        i += 2 if c == "\\" and nxt == "\\" else 1
        if parts and isinstance(parts[-1], str):
            parts[-1] += text
        else:
            parts.append(text)
    return parts
