"""Build checker input from veil text, and look at what the checker says."""

from __future__ import annotations

import functools
from collections.abc import Mapping

from veil import ir
from veil.checker import CheckResult, check
from veil.diagnostics import Diagnostic
from veil.parser import parse_file

#: A small catalog and cast shared by most tests; it lives in `0base.veil`, so the file a test
#: writes (`policy.veil`) starts at line 1.
BASE = """\
table sales.transactions {
  id           bigint
  credit_card  varchar(19)    tags pii.card
  email        varchar        tags pii.email, contact
  amount       decimal(12,2)
  region       varchar
  created_at   timestamp      tags event_time
  notes        text
  born         date
  active       boolean
}
table hr.survey {
  id     bigint
  notes  text        tags pii
  score  integer     tags piix
  team   char(4)
}
purpose "Fraud Detection" {
  acknowledgement "I will use card data only to investigate fraud."
}
purpose "Fraud Detection.Chargebacks"
purpose Marketing
purpose Support
group analysts, stewards
user alice { groups analysts; region "EMEA", "APAC" }
user bob
user dave
"""


def policies(files: Mapping[str, str]) -> ir.PolicySet:
    """Parse every file (in sorted path order) into one policy set; parse errors fail."""
    return ir.PolicySet(files=tuple(_parse(files[path], path) for path in sorted(files)))


@functools.cache
def _parse(text: str, path: str) -> ir.SourceFile:
    source, diags = parse_file(text, path)
    assert source is not None, [f"{d.span}: {d.message}" for d in diags]
    return source


def run(text: str, *, base: str | None = BASE) -> CheckResult:
    """Check `text` (as `policy.veil`) together with the shared catalog."""
    files = {"policy.veil": text}
    if base is not None:
        files["0base.veil"] = base
    return check(policies(files))


def codes(result: CheckResult) -> list[str]:
    return [d.code for d in result.diagnostics]


def one(result: CheckResult, code: str) -> Diagnostic:
    """The single diagnostic with `code` (fails listing everything otherwise)."""
    found = [d for d in result.diagnostics if d.code == code]
    assert len(found) == 1, [(str(d.span), d.code, d.message) for d in result.diagnostics]
    return found[0]


def where(d: Diagnostic) -> str:
    return f"{d.span.file}:{d.span.line}:{d.span.col}"
