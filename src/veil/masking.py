"""Masking methods on the evaluator's side: the exact value every target must compute for a
masked cell, as the registry (`veil.methods`, where each method's reference value is declared
and described) gives it, on values of the evaluator's types.
"""

from __future__ import annotations

from veil import model
from veil.methods import (
    TEST_HASH_KEY,
    MaskAction,
    MaskHash,
    expand_replacement,
    hash_text,
    is_hash_key,
    method_of,
    regex_replace,
    replacement_parts,
    round_to_step,
    show,
    truncate,
)
from veil.rowexpr import coerce_value

__all__ = [
    "HASH_KEY_NOTE",
    "TEST_HASH_KEY",
    "apply_method",
    "expand_replacement",
    "hash_text",
    "is_hash_key",
    "regex_replace",
    "replacement_parts",
    "round_to_step",
    "show",
    "truncate",
    "uses_hash",
]


#: What `veil test` and `veil explain` print when a mask of the repository hashes.
HASH_KEY_NOTE = (
    "hashes are computed with veil's public test key (masking.TEST_HASH_KEY); "
    "a database hashes with its own secret key, so its values differ"
)


def uses_hash(program: model.Program) -> bool:
    """Does a mask of `program` use the `hash` method?"""
    return any(isinstance(arm.action, MaskHash) for m in program.masks for arm in m.arms)


def apply_method(
    action: MaskAction,
    value: object,
    type_: model.SqlType,
    hash_key: str = TEST_HASH_KEY,
) -> object:
    """The masked value of `value` (already of the column's type) in a column of `type_`;
    `hash` uses `hash_key`. NULL stays NULL unless the method does not read the cell
    (`constant`), whose value is read as the column type."""
    spec = method_of(action)
    if not spec.reads_value:
        return coerce_value(spec.apply(action, None, type_, hash_key), type_)
    if value is None:
        return None
    return spec.apply(action, value, type_, hash_key)
