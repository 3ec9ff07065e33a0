"""resolve_conflicts: the most specific mask wins; `unless` exceptions merge; other ties fail."""

from __future__ import annotations

import pytest

from tests.checker.helpers import codes, one, run, where
from veil import ir, methods, model


def deciding(text: str) -> dict[str, model.ColumnMask]:
    r = run(text)
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    return {".".join((*m.table, m.column)): m for m in r.program.masks}


def first_action(m: model.ColumnMask) -> str:
    return methods.action_name(m.arms[-1].action if m.arms[0].action is None else m.arms[0].action)


@pytest.mark.parametrize(
    ("masks", "winner"),
    [
        # qualified column > bare column > any tag; deeper tag > shallower tag
        (
            [
                "mask tagged pii.card with show_last(4)",
                "mask credit_card with hash",
                "mask transactions.credit_card with email_domain",
            ],
            "email_domain",
        ),
        (
            ["mask sales.transactions.credit_card with email_domain", "mask credit_card with hash"],
            "email_domain",
        ),
        (["mask tagged pii.card with show_last(4)", "mask credit_card with hash"], "hash"),
        (["mask tagged pii with null", "mask tagged pii.card with show_last(4)"], "show_last"),
        (["mask tagged pii.card with show_last(4)", "mask tagged pii with null"], "show_last"),
    ],
)
def test_most_specific_mask_wins(masks: list[str], winner: str) -> None:
    m = deciding("\n".join(masks))["sales.transactions.credit_card"]
    assert first_action(m) == winner
    assert len(m.policies) == 1


def test_a_losing_mask_still_decides_other_columns() -> None:
    got = deciding("mask tagged pii with null\nmask tagged pii.card with show_last(4)")
    assert first_action(got["sales.transactions.credit_card"]) == "show_last"
    assert first_action(got["sales.transactions.email"]) == "null"
    assert first_action(got["hr.survey.notes"]) == "null"
    assert [str(s) for s in got["hr.survey.notes"].policies] == ["policy.veil:1:1"]


def test_equally_specific_unless_masks_with_the_same_method_merge() -> None:
    got = deciding(
        "mask tagged pii with hash unless purpose Support\n"
        "mask tagged contact with hash unless purpose Marketing or group stewards"
    )
    email = got["sales.transactions.email"]
    assert email.arms[0].action is None
    assert email.arms[0].cond == ir.CondOr(
        items=(
            ir.PurposeIs(purpose=ir.Name(value="Support")),
            ir.PurposeIs(purpose=ir.Name(value="Marketing")),
            ir.InGroup(group=ir.Name(value="stewards")),
        )
    )
    assert email.arms[1] == model.MaskArm(
        action=methods.MaskHash(salt="sales.transactions"), cond=None
    )
    assert [str(s) for s in email.policies] == ["policy.veil:1:1", "policy.veil:2:1"]
    # columns reached by one of them only are not merged
    assert len(got["hr.survey.notes"].policies) == 1


def test_merge_of_bare_column_masks() -> None:
    got = deciding(
        "mask email with hash unless purpose Support\nmask email with hash unless group stewards"
    )
    assert len(got["sales.transactions.email"].policies) == 2


def test_e0301_tie_with_different_methods() -> None:
    r = run(
        "mask tagged pii with hash unless purpose Support\n"
        "mask tagged contact with null unless purpose Support"
    )
    d = one(r, "E0301")
    assert d.message == "conflicting masks on column `sales.transactions.email`"
    assert where(d) == "policy.veil:2:6"
    assert [str(s) for s in d.related] == ["policy.veil:1:1"]
    assert d.help is not None
    assert d.help.startswith(
        "this mask and the mask at policy.veil:1:1 both select it by a tag "
        "of depth 1, so neither wins"
    )


@pytest.mark.parametrize(
    "masks",
    [
        # same method, but not both in the `unless` form
        ["mask email with hash unless purpose Support", "mask email with hash for group stewards"],
        ["mask email with hash", "mask email with hash"],
        # same method, different arguments
        [
            "mask email with show_last(2) unless purpose Support",
            "mask email with show_last(3) unless purpose Marketing",
        ],
        [
            "mask email with constant(1) unless purpose Support",
            "mask email with constant(true) unless purpose Marketing",
        ],
        # same method, different `when`
        [
            "mask email with hash when id > 1 unless purpose Support",
            "mask email with hash unless purpose Marketing",
        ],
        # two qualified names are equally specific
        ["mask transactions.email with hash", "mask sales.transactions.email with null"],
    ],
)
def test_e0301_other_ties(masks: list[str]) -> None:
    r = run("\n".join(masks))
    assert codes(r) == ["E0301"]
    assert where(r.diagnostics[0]) == "policy.veil:2:6"
    assert r.program is None


def test_one_error_per_pair_of_tied_masks() -> None:
    r = run(
        "tag contact on sales.transactions.credit_card\n"
        "mask tagged pii with null\nmask tagged contact with hash"
    )
    d = one(r, "E0301")
    assert d.message == (
        "conflicting masks on columns `sales.transactions.credit_card`, `sales.transactions.email`"
    )


def test_masks_are_sorted_by_table_then_column_order() -> None:
    got = deciding("mask region with null\nmask tagged pii with null\nmask id with null")
    assert list(got) == [
        "hr.survey.id",
        "hr.survey.notes",
        "sales.transactions.id",
        "sales.transactions.credit_card",
        "sales.transactions.email",
        "sales.transactions.region",
    ]
