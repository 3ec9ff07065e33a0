"""What the checker, the evaluator and every target share about masking methods, with nothing
of the evaluator's side: the targets import this module, never `masking.py` (which computes
values and sits on top of the row-expression evaluator).
"""

from __future__ import annotations

__all__ = ["replacement_parts"]


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
