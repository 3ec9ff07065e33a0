"""Examples are tests: the broken ones print exactly their expected diagnostics."""

from __future__ import annotations

from pathlib import Path

import pytest

from veil.api import check
from veil.diagnostics import render_text

ROOT = Path(__file__).resolve().parent.parent
BROKEN = sorted((ROOT / "examples" / "broken").glob("*.veil"))


def test_there_are_broken_examples() -> None:
    assert {p.stem for p in BROKEN} >= {"names", "types", "conflict", "syntax"}


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_example_reports_its_expected_diagnostics(
    path: Path, update_goldens: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)  # diagnostics name files relative to the working directory
    checked = check([path.relative_to(ROOT)])
    assert not checked.ok
    text = "\n\n".join(render_text(d, checked.sources) for d in checked.diagnostics) + "\n"
    golden = path.with_suffix(".expected")
    if update_goldens:
        golden.write_text(text, encoding="utf-8")
    assert text == golden.read_text(encoding="utf-8")


def test_the_example_repository_checks_clean_even_when_strict() -> None:
    checked = check([ROOT / "examples" / "payments"], strict=True)
    assert checked.ok, [str(d.span) + " " + d.message for d in checked.diagnostics]
