"""Every checker code has a section in docs/errors.md whose example triggers exactly that code."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.checker.helpers import policies
from veil.checker import check
from veil.checker import codes as codes_module

DOC = Path(__file__).resolve().parents[2] / "docs" / "errors.md"
SECTION = re.compile(r"^## ([EW]\d{4}): (.+?)\n(.*?)(?=^## |\Z)", re.MULTILINE | re.DOTALL)
EXAMPLE = re.compile(r"```veil\n(.*?)```", re.DOTALL)

CHECKER_CODES = sorted(
    v for k, v in vars(codes_module).items() if k.isupper() and isinstance(v, str)
)


def sections() -> dict[str, str]:
    return {m.group(1): m.group(3) for m in SECTION.finditer(DOC.read_text(encoding="utf-8"))}


def test_codes_are_unique() -> None:
    assert len(CHECKER_CODES) == len(set(CHECKER_CODES))


@pytest.mark.parametrize("code", CHECKER_CODES)
def test_example_in_the_docs_triggers_the_code(code: str) -> None:
    body = sections().get(code)
    assert body is not None, f"docs/errors.md has no section `## {code}: …`"
    examples = EXAMPLE.findall(body)
    assert examples, f"the section of {code} has no ```veil example"
    result = check(policies({"example.veil": examples[0]}))
    found = [d.code for d in result.diagnostics]
    assert code in found, (code, [(str(d.span), d.code, d.message) for d in result.diagnostics])
    assert (result.program is None) == code.startswith("E")
