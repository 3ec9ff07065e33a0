"""IR back to veil source: conditions, row predicates, names, literals and masking methods.

The output parses back to an equal IR (spans aside), except for `CondConst`, which users never
write and which prints as `true` / `false`. Parentheses are added only where the grammar needs
them:

    conditions   or  <  and  <  not  <  atoms
    predicates   or  <  and  <  not  <  comparison (=, in, between, is null)  <  + -  <  unary -

Names of purposes, groups, users and projects print as bare words when they read back as the
same name (every word a plain identifier, single spaces), otherwise as a double-quoted string.
Dotted object names quote each part with `ir.quote_part`.
"""

from __future__ import annotations

import typing as t

from veil import ir, methods


def string_literal(value: str) -> str:
    """A double-quoted string with backslash escapes; other control characters as `\\uXXXX`."""
    return ir.string_source(value)


def name_to_source(name: str) -> str:
    """A purpose/group/user/project name: bare words when they read back the same, else quoted."""
    return ir.name_source(name)


def literal_to_source(value: ir.LiteralValue) -> str:
    """`null`, `true`, `false`, a number, or a double-quoted string (`ir.literal_source`).

    A Decimal always prints with a decimal point (`5.0`), so it reads back as a Decimal.
    """
    return ir.literal_source(value)


# --------------------------------------------------------------------------------------------
# Conditions

_C_OR, _C_AND, _C_NOT, _C_ATOM = 1, 2, 3, 4


def cond_to_source(cond: ir.Condition) -> str:
    """A condition in veil syntax, e.g. `purpose "Fraud Detection" or group stewards`."""
    return _cond(cond, _C_OR)


def _cond(cond: ir.Condition, context: int) -> str:
    match cond:
        case ir.PurposeIs(purpose=name):
            return f"purpose {name_to_source(name.value)}"
        case ir.AnyPurpose():
            return "any purpose"
        case ir.InGroup(group=name):
            return f"group {name_to_source(name.value)}"
        case ir.IsUser(user=name):
            return f"user {name_to_source(name.value)}"
        case ir.HasAttribute(key=key, value=value):
            return f"attribute {ir.quote_part(key)} = {string_literal(value)}"
        case ir.CondConst(value=value):
            return "true" if value else "false"
        case ir.CondNot(item=item):
            return _wrap(f"not {_cond(item, _C_NOT)}", _C_NOT, context)
        case ir.CondAnd(items=items):
            return _wrap(" and ".join(_cond(i, _C_NOT) for i in items), _C_AND, context)
        case ir.CondOr(items=items):
            return _wrap(" or ".join(_cond(i, _C_AND) for i in items), _C_OR, context)
        case _:
            t.assert_never(cond)


def _wrap(text: str, level: int, context: int) -> str:
    return f"({text})" if level < context else text


# --------------------------------------------------------------------------------------------
# Row predicates

_P_OR, _P_AND, _P_NOT, _P_CMP, _P_SUM, _P_UNARY, _P_ATOM = 1, 2, 3, 4, 5, 6, 7


def expr_to_source(expr: ir.Expr) -> str:
    """A row predicate or value in veil syntax, e.g. `created_at >= now() - 90 days`."""
    return _expr(expr, _P_OR)


def _expr(expr: ir.Expr, context: int) -> str:
    match expr:
        case ir.Literal(value=value):
            text = literal_to_source(value)
            if text.startswith("-"):
                return _wrap(text, _P_UNARY, context)
            return text
        case ir.ColumnRef(name=name):
            return str(name)
        case ir.UserRef(attr=attr):
            return f"user.{attr}"
        case ir.Now():
            return "now()"
        case ir.Today():
            return "today()"
        case ir.Interval(amount=amount, unit=unit):
            return f"{amount} {unit}"
        case ir.Neg(item=item):
            return _wrap(f"-{_expr(item, _P_UNARY)}", _P_UNARY, context)
        case ir.Arith(op=op, left=left, right=right):
            text = f"{_expr(left, _P_SUM)} {op} {_expr(right, _P_UNARY)}"
            return _wrap(text, _P_SUM, context)
        case ir.Compare(op=op, left=left, right=right):
            text = f"{_expr(left, _P_SUM)} {op} {_expr(right, _P_SUM)}"
            return _wrap(text, _P_CMP, context)
        case ir.InList(item=item, options=options, negated=negated):
            opts = ", ".join(_expr(o, _P_SUM) for o in options)
            text = f"{_expr(item, _P_SUM)} {'not in' if negated else 'in'} ({opts})"
            return _wrap(text, _P_CMP, context)
        case ir.InUser(item=item, ref=ref, negated=negated):
            text = f"{_expr(item, _P_SUM)} {'not in' if negated else 'in'} user.{ref.attr}"
            return _wrap(text, _P_CMP, context)
        case ir.Between(item=item, low=low, high=high, negated=negated):
            kw = "not between" if negated else "between"
            text = f"{_expr(item, _P_SUM)} {kw} {_expr(low, _P_SUM)} and {_expr(high, _P_SUM)}"
            return _wrap(text, _P_CMP, context)
        case ir.IsNull(item=item, negated=negated):
            text = f"{_expr(item, _P_SUM)} is {'not null' if negated else 'null'}"
            return _wrap(text, _P_CMP, context)
        case ir.BoolNot(item=item):
            return _wrap(f"not {_expr(item, _P_NOT)}", _P_NOT, context)
        case ir.BoolAnd(items=items):
            return _wrap(" and ".join(_expr(i, _P_NOT) for i in items), _P_AND, context)
        case ir.BoolOr(items=items):
            return _wrap(" or ".join(_expr(i, _P_AND) for i in items), _P_OR, context)
        case _:
            t.assert_never(expr)


# --------------------------------------------------------------------------------------------
# Checked masking methods


def action_to_source(action: methods.MaskAction | None) -> str:
    """A checked method as a user writes it: `reveal`, `hash`, `show_last(4)`, `round(100)` …

    The per-table salt and the fitted lengths of `hash`/`regex` are compiler choices and are not
    shown (each registry entry's `source` gives the arguments a user writes).
    """
    if action is None:
        return "reveal"
    args = methods.method_of(action).source(action)
    return f"{action.method}({', '.join(args)})" if args else action.method
