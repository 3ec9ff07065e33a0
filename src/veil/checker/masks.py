"""Pass `check_masks`: masking methods, and one `model.ColumnMask` per masked column.

Every method's arguments are checked once per mask, whatever it masks. Then each column is
lowered from the masks that decide it (resolve_conflicts): a method that does not fit the column
type is an error when the column was named, and falls back to `null` with a warning when it was
selected by tag. A block without `otherwise` ends with `with null otherwise`.
"""

from __future__ import annotations

import functools
from dataclasses import replace

from veil import ir, methods, model
from veil.checker import codes
from veil.checker.common import column_str, method_text
from veil.checker.conflicts import mergeable
from veil.checker.facts import Decision, Facts
from veil.checker.methods import check_method, fit_method
from veil.diagnostics import Diagnostic, error, warning


def check_masks(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    """Needs the deciding masks of each column (resolve_conflicts). Methods with bad arguments
    are reported once, and are not checked against columns."""
    masks = policies.of_type(ir.Mask)
    diags: list[Diagnostic] = []
    for m in masks:
        diags.extend(_check_arms(m))
        for clause in m.clauses:
            if clause.method is not None:
                diags.extend(check_method(clause.method))
    lowered = tuple(_lower(d, masks, facts, diags) for d in facts.decisions)
    # A part of the repository (`Facts.partial`) is checked for its diagnostics only, and the
    # tag masks report none.
    tag_masks = () if facts.partial else _tag_masks(masks)
    return replace(facts, column_masks=lowered, tag_masks=tag_masks), diags


def _check_arms(m: ir.Mask) -> list[Diagnostic]:
    ends = [i for i, c in enumerate(m.clauses) if c.cond is None]
    if not ends:
        return [
            warning(
                codes.IMPLICIT_OTHERWISE,
                "mask has no `otherwise` arm, so everyone else sees `null`",
                m.target.span,
                help="add `with null otherwise` (or `reveal otherwise`) to say what users who "
                "match no arm see",
            )
        ]
    if ends[0] < len(m.clauses) - 1:
        nxt = m.clauses[ends[0] + 1]
        return [
            error(
                codes.UNREACHABLE_ARM,
                "this arm follows `otherwise` and never applies",
                nxt.span,
                help="`otherwise` must be the last arm: move it down or remove the arms after it",
            )
        ]
    return []


def _arms(m: ir.Mask) -> list[ir.MaskClause]:
    """The arms up to `otherwise`, with `with null otherwise` added when there is none."""
    out: list[ir.MaskClause] = []
    for c in m.clauses:
        out.append(c)
        if c.cond is None:
            return out
    out.append(
        ir.MaskClause(method=ir.Method(name="null", span=m.target.span), cond=None, span=m.span)
    )
    return out


def _lower(
    decision: Decision, masks: tuple[ir.Mask, ...], facts: Facts, diags: list[Diagnostic]
) -> model.ColumnMask:
    table, name = decision.column
    column = facts.column(decision.column)
    deciding = [masks[i] for i in decision.masks]
    first = deciding[0]
    clauses = _deciding_arms(deciding)
    arms = tuple(
        model.MaskArm(
            action=None
            if c.method is None
            else _action(c.method, first.target, decision.column, column, diags),
            cond=c.cond,
            span=c.span,
        )
        for c in clauses
    )
    return model.ColumnMask(
        table=table,
        column=name,
        type=column.type,
        arms=arms,
        when=first.when,
        policies=tuple(m.span for m in deciding),
    )


def _deciding_arms(deciding: list[ir.Mask]) -> list[ir.MaskClause]:
    """The arms of the masks that decide: one mask's, or for equally specific `with M unless
    C` masks: reveal for C1 or C2 …; with M otherwise."""
    first = deciding[0]
    if len(deciding) == 1:
        return _arms(first)
    conds: list[ir.Condition] = []
    for m in deciding:
        cond = m.clauses[0].cond
        assert cond is not None
        conds.extend(cond.items if isinstance(cond, ir.CondOr) else (cond,))
    reveal = ir.MaskClause(
        method=None,
        cond=ir.CondOr(items=tuple(conds), span=first.span),
        span=first.clauses[0].span,
    )
    return [reveal, first.clauses[1]]


def _tag_masks(masks: tuple[ir.Mask, ...]) -> tuple[model.TagMask, ...]:
    """One `TagMask` per tag that a `mask tagged` names, for native tag policies: the arms of
    the masks on that tag (merged like a column's), lowered for each type of a column the
    platform may tag. Methods that do not fit fall back to `null` without a warning: the
    columns are not known here (docs/targets say so)."""
    by_tag: dict[tuple[str, ...], list[ir.Mask]] = {}
    for m in masks:
        if isinstance(m.target, ir.TagTarget):
            by_tag.setdefault(m.target.tag.parts, []).append(m)
    out = []
    for parts in sorted(by_tag):
        group = by_tag[parts]
        assert isinstance(group[0].target, ir.TagTarget)
        tag = group[0].target.tag
        spans = tuple(m.span for m in group)
        if len(group) > 1 and not mergeable(group):
            out.append(model.TagMask(tag=tag, arms=(), tied=True, policies=spans))
            continue
        clauses = _deciding_arms(group)
        arms = tuple(
            (
                ty,
                tuple(
                    model.MaskArm(
                        action=None if c.method is None else _tag_action(c.method, ty),
                        cond=c.cond,
                        span=c.span,
                    )
                    for c in clauses
                ),
            )
            for ty in model.TAG_POLICY_TYPES
        )
        out.append(model.TagMask(tag=tag, arms=arms, policies=spans))
    return tuple(out)


def _tag_action(method: ir.Method, type_name: str) -> methods.MaskAction:
    if _has_problems(method):
        return methods.MaskNull()  # already reported; the program is not built
    column = model.CatalogColumn(name="value", type=model.SqlType(name=type_name))
    fit = fit_method(method, model.TAGGED_TABLE, column)
    return fit.action if fit.action is not None else methods.MaskNull()


@functools.lru_cache(maxsize=1024)
def _has_problems(method: ir.Method) -> bool:
    """`check_method` found something (already reported): asked once per method as written
    (spans aside), not once per column it masks."""
    return bool(check_method(method))


def _action(
    method: ir.Method,
    target: ir.MaskTarget,
    key: tuple[model.TableKey, str],
    column: model.CatalogColumn,
    diags: list[Diagnostic],
) -> methods.MaskAction:
    if _has_problems(method):
        return methods.MaskNull()  # already reported; the program is not built
    fit = fit_method(method, key[0], column)
    if fit.problem is not None:
        shown = column_str(key)
        head = f"`{method_text(method)}` cannot mask column `{shown}` of type `{column.type}`"
        if isinstance(target, ir.ColumnTarget):
            fix = (
                "write a value of the column's type"
                if method.name == "constant"
                else "choose a method that fits the column (`null` fits every column)"
            )
            diags.append(
                error(codes.METHOD_TYPE_MISMATCH, head, method.span, help=f"{fit.problem}; {fix}")
            )
        else:
            diags.append(
                warning(
                    codes.FALLBACK_TO_NULL,
                    f"{head}, so it is masked with `null`",
                    method.span,
                    help=f"{fit.problem}; the column was selected by tag `{target.tag}`: give it a "
                    "mask of its own to choose a method that fits (`--strict` makes this an error)",
                )
            )
        return methods.MaskNull()
    if fit.note is not None:
        diags.append(
            warning(
                codes.HASH_SHORTENED,
                f"the hash of column `{column_str(key)}` is shortened to "
                f"{column.type.length} characters",
                method.span,
                help=f"{fit.note}; shorter hashes collide more often, a column of "
                "64 characters or more keeps the whole hash",
            )
        )
    assert fit.action is not None
    return fit.action
