"""Small helpers every pass uses: "did you mean", name spans, how names are shown."""

from __future__ import annotations

import difflib
from collections.abc import Iterable

from veil import ir, methods, model
from veil.cache import make_span
from veil.diagnostics import Span
from veil.ir import dotted as dotted

ColumnKey = tuple[model.TableKey, str]
"""One catalog column: (table key, column name)."""


def close_matches(word: str, candidates: Iterable[str], n: int = 3) -> list[str]:
    """The closest candidates, best first; deterministic whatever the order of `candidates`."""
    pool = sorted(set(candidates))
    return difflib.get_close_matches(word, pool, n=n, cutoff=0.6)


def did_you_mean(
    word: str,
    candidates: Iterable[str],
    otherwise: str | None = None,
    *,
    preferred: Iterable[str] = (),
) -> str | None:
    """`did you mean `x`?`; `preferred` candidates (e.g. an exact suffix match) come first."""
    first = sorted(set(preferred))
    rest = [c for c in close_matches(word, candidates) if c not in first]
    picks = (first + rest)[:3]
    if not picks:
        return otherwise
    return "did you mean " + " or ".join(f"`{p}`" for p in picks) + "?"


def join_help(*parts: str | None) -> str | None:
    kept = [p for p in parts if p]
    return "; ".join(kept) if kept else None


def name_span(start: Span, written: str) -> Span:
    """The span of a name written at the start of `start` (when the IR has no span of its own)."""
    line, col = start.line, start.col
    return make_span((start.file, line, col, line, col + max(1, len(written))))


def column_str(key: ColumnKey) -> str:
    return dotted((*key[0], key[1]))


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' * (n != 1)}"


def listing(items: Iterable[str], limit: int = 4) -> str:
    """`a`, `b`, `c` and 2 more."""
    items = list(items)
    shown = ", ".join(f"`{i}`" for i in items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def literal_text(v: ir.LiteralValue) -> str:
    """A literal in source form (the printer's, so messages quote values as `veil fmt` does)."""
    from veil.printer import literal_to_source

    return literal_to_source(v)


def method_text(m: ir.Method) -> str:
    """A method as written (`truncate(month)` with its bare word, not quoted)."""
    return ir.method_text(m, word=lambda i, _: methods.is_word(m.name, i))
