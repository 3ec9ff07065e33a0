"""`find_nodes` (targets/lookup.py): every node of a class inside IR and model values, in order,
also where one subtree is shared by several parents (the policies of many tables share their IR,
and the walk collects a shared subtree once)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

from veil import ir
from veil.api import check
from veil.targets.lookup import find_nodes

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = [ROOT / "examples" / "payments", *sorted((ROOT / "tests" / "cases").glob("[!_]*/"))]


def _users(*names: str) -> ir.Condition:
    return ir.CondOr(items=tuple(ir.IsUser(user=ir.Name(value=n)) for n in names))


def test_shared_subtrees_are_found_at_every_place_in_order() -> None:
    shared = _users("a", "b")
    tree = (shared, ir.CondAnd(items=(shared, _users("c"))), (shared,), ir.CondNot(item=shared))
    found = [u.user.value for u in find_nodes(tree, ir.IsUser)]
    assert found == ["a", "b", "a", "b", "c", "a", "b", "a", "b"]
    assert find_nodes(tree, ir.CondAnd) == [tree[1]]
    assert find_nodes("a string", ir.IsUser) == []


def _walk(node: object, cls: type) -> list[object]:
    """The plain recursive walk, without the memo."""
    if isinstance(node, cls):
        return [node]
    if isinstance(node, tuple):
        return [f for item in node for f in _walk(item, cls)]
    if dataclasses.is_dataclass(node) and not isinstance(node, type):
        return [
            f
            for field in dataclasses.fields(node)
            if field.name != "span"
            for f in _walk(getattr(node, field.name), cls)
        ]
    return []


def test_the_same_nodes_as_the_plain_walk_on_every_example_and_case() -> None:
    for source in SOURCES:
        program = check([source]).program
        if program is None:
            continue
        for cls in (ir.IsUser, ir.ColumnRef, ir.PurposeIs, ir.InGroup):
            root = (program.masks, program.row_rules)
            found, expected = find_nodes(root, cls), _walk(root, cls)
            assert len(found) == len(expected)
            assert all(a is b for a, b in zip(found, expected, strict=True))
