"""The registry of masking methods (`veil.methods.METHODS`) covers every lowered method, and
what reads it agrees with it."""

from __future__ import annotations

import typing as t
from decimal import Decimal

from veil import model
from veil.checker.methods import ARITY, USAGE
from veil.methods import METHODS, method_of


def test_every_lowered_method_has_one_entry() -> None:
    actions = set(t.get_args(model.MaskAction))
    assert {m.action for m in METHODS.values()} == actions
    for name, m in METHODS.items():
        assert m.name == name
        assert m.usage.startswith(name)


def test_the_checker_reads_the_registry() -> None:
    assert {name: m.arity for name, m in METHODS.items()} == ARITY
    assert {name: m.usage for name, m in METHODS.items()} == USAGE


def test_method_of_a_lowered_method() -> None:
    assert method_of(model.MaskHash(salt="s")).longest(model.MaskHash(salt="s")) == 64
    assert method_of(model.MaskHash(salt="s", length=10)).name == "hash"
    assert method_of(model.MaskShow(side="last", count=4)).name == "show_last"
    assert method_of(model.MaskRound(step=Decimal(1))).longest(model.MaskNull()) is None
