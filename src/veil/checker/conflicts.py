"""Pass `resolve_conflicts`: which mask decides each column.

The most specific target wins: a qualified column (`t.c` or longer) beats a bare column name,
which beats any tag; a deeper tag beats a shallower one. Equally specific masks merge when all
are written `with M unless C` with the same method and the same `when` (their exceptions are
OR-ed); any other tie is an error.
"""

from __future__ import annotations

import typing as t
from dataclasses import replace

from veil import ir
from veil.checker import codes
from veil.checker.common import ColumnKey, column_str, listing
from veil.checker.facts import Decision, Facts
from veil.diagnostics import Diagnostic, error


def specificity(target: ir.MaskTarget) -> tuple[int, int]:
    """Larger wins: (2, 0) qualified column, (1, 0) bare column, (0, depth) tag."""
    match target:
        case ir.ColumnTarget(name=name):
            return (2 if len(name.parts) >= 2 else 1, 0)
        case ir.TagTarget(tag=tag):
            return (0, len(tag.parts))
        case _:
            t.assert_never(target)


def describe(target: ir.MaskTarget) -> tuple[str, str]:
    """How a target selects its columns, and how to make a mask of that kind win."""
    match target:
        case ir.ColumnTarget(name=name) if len(name.parts) >= 2:
            return (
                "name the column qualified",
                "keep one of them, or combine their arms into one `mask … { … }` block",
            )
        case ir.ColumnTarget():
            return (
                "name the column by its bare name",
                "name the column as `table.column` in the mask that should win",
            )
        case ir.TagTarget(tag=tag):
            return (
                f"select it by a tag of depth {len(tag.parts)}",
                "name the column, or use a deeper tag, in the mask that should win",
            )
        case _:
            t.assert_never(target)


def mergeable(masks: list[ir.Mask]) -> bool:
    """`with M unless C` masks with the same method and `when`: their exceptions OR together."""
    first = masks[0]
    return all(m.form == "unless" for m in masks) and all(
        _method_key(m.clauses[1].method) == _method_key(first.clauses[1].method)
        and m.when == first.when
        for m in masks[1:]
    )


def _method_key(m: ir.Method | None) -> object:
    """Methods compare with the types of their arguments (`constant(1)` is not
    `constant(true)`, although `1 == True` in Python)."""
    return None if m is None else (m.name, tuple((type(a).__name__, a) for a in m.args))


def resolve_conflicts(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the columns each mask reaches (resolve_names)."""
    masks = policies.of_type(ir.Mask)
    by_column: dict[ColumnKey, list[int]] = {}
    for i, keys in enumerate(facts.reach):
        for key in dict.fromkeys(keys):
            by_column.setdefault(key, []).append(i)
    decisions: list[Decision] = []
    ties: dict[tuple[int, ...], list[ColumnKey]] = {}
    specific = [specificity(m.target) for m in masks]
    for col in sorted(by_column, key=lambda k: (k[0], facts.column_index(k))):
        candidates = by_column[col]
        best = max(specific[i] for i in candidates)
        top = tuple(i for i in candidates if specific[i] == best)
        if len(top) == 1 or mergeable([masks[i] for i in top]):
            decisions.append(Decision(column=col, masks=top))
        else:
            ties.setdefault(top, []).append(col)
    diags = [_tie_error([masks[i] for i in top], cols) for top, cols in sorted(ties.items())]
    return replace(facts, decisions=tuple(decisions)), diags


def _tie_error(tied: list[ir.Mask], columns: list[ColumnKey]) -> Diagnostic:
    later, others = tied[-1], tied[:-1]
    what = (
        f"column `{column_str(columns[0])}`"
        if len(columns) == 1
        else f"columns {listing(column_str(c) for c in columns)}"
    )
    where = ", ".join(str(m.span) for m in others)
    how, fix = describe(later.target)
    return error(
        codes.MASK_CONFLICT,
        f"conflicting masks on {what}",
        later.target.span,
        help=(
            f"this mask and the mask at {where} both {how}, so neither wins; {fix}, or write "
            "them all as `with M unless …` with the same method to merge their exceptions"
        ),
        related=tuple(m.span for m in others),
    )
