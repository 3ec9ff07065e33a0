"""The registry of masking methods (`veil.methods.METHODS`): it covers every lowered method,
what reads it agrees with it, every target writes the SQL of every method, and a method added
to the registry (and to each target's `method_sql`) alone goes through the checker, the
evaluator, the printer, the formatter and every target."""

from __future__ import annotations

import dataclasses
import typing as t
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from veil import api, methods
from veil.evaluator import Context, evaluate_cell
from veil.formatter import format_source
from veil.methods import METHODS, method_of
from veil.printer import action_to_source
from veil.targets import TARGETS, get_target


def test_every_lowered_method_has_one_entry() -> None:
    actions = set(t.get_args(methods.MaskAction))
    assert {m.action for m in METHODS.values()} == actions
    for name, m in METHODS.items():
        assert m.name == name
        assert m.usage.startswith(name)


def test_method_of_a_lowered_method() -> None:
    assert method_of(methods.MaskHash(salt="s")).longest(methods.MaskHash(salt="s")) == 64
    assert method_of(methods.MaskHash(salt="s", length=10)).name == "hash"
    assert method_of(methods.MaskShow(side="last", count=4)).name == "show_last"
    assert method_of(methods.MaskRound(step=Decimal(1))).longest(methods.MaskNull()) is None


def test_every_method_is_documented() -> None:
    """docs/language.md, "Masking methods": one table row per method, starting with its name."""
    doc = (Path(__file__).resolve().parent.parent / "docs" / "language.md").read_text("utf-8")
    table = doc.split("### Masking methods", 1)[1].split("\n\n", 3)[2]
    rows = [line.split("`")[1] for line in table.splitlines()[2:]]
    assert [r.partition("(")[0] for r in rows] == list(METHODS)


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_target_writes_every_method(target: str) -> None:
    assert sorted(get_target(target).method_sql) == sorted(METHODS)


# --------------------------------------------------------------------------------------------
# A new method is one registry entry plus one SQL expression per target


@dataclasses.dataclass(frozen=True, slots=True, kw_only=True)
class MaskReverse:
    method: t.ClassVar[str] = "reverse"
    keep: int


REVERSE = methods.Method(
    name="reverse",
    usage="reverse(n)",
    params=(methods.Param.COUNT,),
    families=methods.STRINGS,
    misfit="`reverse` masks string columns",
    action=MaskReverse,
    lower=lambda args, table, ty: methods.Fit(
        action=t.cast(methods.MaskAction, MaskReverse(keep=t.cast(int, args[0])))
    ),
    apply=lambda a, v, ty, key: str(v)[::-1][: a.keep],
    source=lambda a: (str(a.keep),),
)

POLICY = """\
table sales.customers {
  id    bigint
  name  text
}

user alice

mask name   with reverse(3)
"""


@pytest.fixture
def reverse(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setitem(METHODS, "reverse", REVERSE)
    for name in TARGETS:
        sql = type(get_target(name)).method_sql
        assert isinstance(sql, dict)
        monkeypatch.setitem(sql, "reverse", lambda tg, a, c, ty: f"LEFT(REVERSE({c}), {a.keep})")
    yield


def test_a_new_method_needs_only_its_entry_and_its_sql(reverse: None, tmp_path: Path) -> None:
    path = tmp_path / "policy.veil"
    path.write_text(POLICY, encoding="utf-8")
    checked = api.check([path])
    assert checked.program is not None, [d.message for d in checked.diagnostics]
    program = checked.program
    (mask,) = program.masks
    (arm,) = mask.arms
    assert t.cast(object, arm.action) == MaskReverse(keep=3)
    assert action_to_source(t.cast(methods.MaskAction, arm.action)) == "reverse(3)"
    cell = evaluate_cell(
        program, ("sales", "customers"), "name", {"name": "alice"}, Context(user="alice")
    )
    assert (cell.value, cell.masked, cell.method) == ("eci", True, "reverse")
    assert format_source(POLICY) == POLICY.replace("name   with", "name with")
    for target in sorted(TARGETS):
        sql, diagnostics = api.compile_program(program, target)
        assert sql is not None and not any(d.is_error for d in diagnostics), target
        assert "LEFT(REVERSE(" in sql, target
