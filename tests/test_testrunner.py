"""`veil test`: the `test` blocks of a repository, run against the reference evaluator."""

from __future__ import annotations

import datetime as dt
import json
import re
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from veil.api import check
from veil.cli import main
from veil.masking import HASH_KEY_NOTE
from veil.testrunner import run_tests

ROOT = Path(__file__).resolve().parent.parent
PAYMENTS = ROOT / "examples" / "payments"

REPO = """\
table shop.orders {
  id          bigint
  card        varchar(19)    tags pii.card
  email       varchar(64)
  region      varchar(8)
  note        text
  placed_at   timestamp
}
purpose Fraud
group analysts
user ana { groups analysts; region "EMEA" }
user bo
project fraud { purposes Fraud; members ana; sources shop.orders }
approvers carol
approve fraud purpose Fraud by carol at 2026-01-01T00:00:00Z digest "{digest}"
mask tagged pii.card with show_last(4) unless purpose Fraud
mask shop.orders.email with hash for group analysts
mask shop.orders.note with null when region = "EMEA"
mask shop.orders.region with null when placed_at is not null
filter shop.orders where placed_at >= now() - 30 days unless purpose Fraud
"""


@pytest.fixture(autouse=True)
def _in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # files show as `repo.veil:16`


def repo(tmp_path: Path, tests: str) -> Path:
    from veil import approvals, ir
    from veil.parser import parse_file

    f, _ = parse_file(REPO.replace("{digest}", "x"), "r.veil")
    assert f is not None
    project = next(s for s in f.statements if isinstance(s, ir.Project))
    digest = approvals.project_digest(project, {})
    (tmp_path / "repo.veil").write_text(REPO.replace("{digest}", digest), encoding="utf-8")
    (tmp_path / "tests.veil").write_text(tests, encoding="utf-8")
    return Path(".")


HASH_NOTE_LINE = f"note: {HASH_KEY_NOTE}"


def run(path: Path, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["test", str(path), *args])
    # the hash-key note (checked by test_veil_test_says_hashes_use_the_test_key) left out
    lines = result.output.splitlines(keepends=True)
    return result.exit_code, "".join(x for x in lines if x.rstrip("\n") != HASH_NOTE_LINE)


def test_the_example_tests_all_pass() -> None:
    checked = check([PAYMENTS])
    assert checked.program is not None
    results = run_tests(checked.program, now=dt.datetime(2026, 12, 1, tzinfo=dt.UTC))
    assert len(results) >= 17
    failed = [e.message() for r in results for e in r.expectations if not e.passed]
    assert not failed


def test_veil_test_says_hashes_use_the_test_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["test", "examples/payments"])
    assert result.stderr.splitlines() == [HASH_NOTE_LINE]


def test_veil_test_on_the_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    code, out = run(Path("examples/payments"))
    assert code == 0, out
    lines = out.splitlines()
    assert all(re.fullmatch(r"PASS .+", line) for line in lines[:-1])
    assert re.fullmatch(r"\d+ passed, 0 failed", lines[-1])


def test_a_failed_expectation_says_where_and_what_was_decided(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(PAYMENTS, tmp_path / "payments")
    tests = tmp_path / "payments" / "tests" / "payments.veil"
    lines = tests.read_text(encoding="utf-8").splitlines()
    at = next(i for i, x in enumerate(lines) if "sales.transactions.email masked with hash" in x)
    lines[at] = lines[at].replace("masked with hash", "clear")
    tests.write_text("\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    code, out = run(Path("payments"))
    assert code == 1
    assert (
        f"  payments/tests/payments.veil:{at + 1}: expected sales.transactions.email clear, "
        "got masked with hash (decided by payments/policies/payments.veil:27)"
    ) in out.splitlines()
    assert "FAIL without a project an analyst sees masked personal data" in out
    assert re.search(r"^\d+ passed, 1 failed$", out, flags=re.MULTILINE)


def test_methods_compare_arguments_only_when_written(tmp_path: Path) -> None:
    code, out = run(
        repo(
            tmp_path,
            """\
test "methods" {
  as bo
  expect shop.orders.card masked with show_last(4)
  expect shop.orders.card masked with show_last
  expect shop.orders.card masked
  expect shop.orders.card masked with show_last(3)
  expect shop.orders.card masked with null
  expect shop.orders.email clear
}
test "hash" {
  as ana
  expect orders.email masked with hash
  expect shop.orders.id masked
}
""",
        ),
        "--now",
        "2026-01-10T00:00:00Z",
    )
    assert code == 1
    assert "FAIL methods" in out and "FAIL hash" in out
    failures = [x.strip() for x in out.splitlines() if x.startswith("  ")]
    assert [f.split(": ", 1)[1] for f in failures] == [
        "expected shop.orders.card masked with show_last(3), got masked with show_last(4) "
        "(decided by repo.veil:16)",
        "expected shop.orders.card masked with null, got masked with show_last(4) "
        "(decided by repo.veil:16)",
        "expected shop.orders.id masked, got clear (no mask reaches this column)",
    ]
    assert out.splitlines()[-1] == "0 passed, 2 failed"


def test_column_expectations_use_a_row_of_nulls(tmp_path: Path) -> None:
    code, out = run(
        repo(
            tmp_path,
            """\
test "when" {
  as ana
  expect shop.orders.note masked with null
  expect shop.orders.region clear
  expect shop.orders.note clear
}
""",
        ),
        "--now",
        "2026-01-10T00:00:00Z",
    )
    assert code == 1
    assert (
        "got masked with null (decided by repo.veil:18; the mask applies only where "
        '`region = "EMEA"` is true or NULL; a column expectation is evaluated on a row of NULLs)'
    ) in out
    assert out.count("expected") == 1


def test_cell_expectations_state_the_value_in_a_row(tmp_path: Path) -> None:
    """A `when` mask is tested cell by cell; a mismatch names the policy line that decided and
    what the `when` was on that row."""
    code, out = run(
        repo(
            tmp_path,
            """\
test "cells" {
  as ana
  expect shop.orders.note in row { region: "EMEA", note: "hi" } is null
  expect shop.orders.note in row { region: "APAC", note: "hi" } is "hi"
  expect shop.orders.note in row { region: "APAC", note: "hi" } clear
  expect shop.orders.note in row { region: "EMEA", note: "hi" } masked with null
  expect shop.orders.card in row { card: "4111111111111111" } is "************1111"
  expect shop.orders.id in row { id: 7 } is 7.0
}
test "mismatches" {
  as ana
  expect shop.orders.note in row { region: "EMEA", note: "hi" } is "hi"
  expect shop.orders.note in row { region: "APAC", note: "hi" } masked
  expect shop.orders.card in row { card: "4111111111111111" } is "4111111111111111"
  expect shop.orders.id in row { id: 7 } is 8
}
test "fraud" {
  as ana in project fraud
  expect shop.orders.card in row { card: "4111111111111111" } is "4111111111111111"
  expect shop.orders.email in row { email: "a@b.c" } masked with hash
}
""",
        ),
        "--now",
        "2026-01-10T00:00:00Z",
    )
    assert code == 1, out
    assert "PASS cells" in out and "FAIL mismatches" in out and "PASS fraud" in out
    failures = [x.strip().split(": ", 1)[1] for x in out.splitlines() if x.startswith("  ")]
    assert failures == [
        'expected shop.orders.note in row { region: "EMEA", note: "hi" } is "hi", got is null '
        '(masked with null) (decided by repo.veil:18; `when region = "EMEA"` is true on this row)',
        'expected shop.orders.note in row { region: "APAC", note: "hi" } masked, got clear '
        '(decided by repo.veil:18; `when region = "EMEA"` is false on this row)',
        'expected shop.orders.card in row { card: "4111111111111111" } is "4111111111111111", '
        'got is "************1111" (masked with show_last(4)) (decided by repo.veil:16)',
        "expected shop.orders.id in row { id: 7 } is 8, got is 7 (clear) "
        "(no mask reaches this column)",
    ]


def test_now_fixes_the_time_of_row_filters(tmp_path: Path) -> None:
    path = repo(
        tmp_path,
        """\
test "recent orders" {
  as ana
  expect shop.orders row { placed_at: "2026-01-05 10:00:00" } visible
  expect shop.orders row { placed_at: null } hidden
}
test "fraud sees old orders" {
  as ana in project fraud
  expect shop.orders row { placed_at: "2020-01-05 10:00:00" } visible
  expect shop.orders.card clear
}
""",
    )
    assert run(path, "--now", "2026-01-10T00:00:00Z") == (
        0,
        "PASS recent orders\nPASS fraud sees old orders\n2 passed, 0 failed\n",
    )
    code, out = run(path, "--now", "2026-03-01")
    assert code == 1
    assert (
        'tests.veil:3: expected shop.orders row { placed_at: "2026-01-05 10:00:00" } visible, '
        "got hidden (hidden by repo.veil:20)"
    ) in out
    assert out.endswith("1 passed, 1 failed\n")


def test_json_output(tmp_path: Path) -> None:
    code, out = run(
        repo(tmp_path, 'test "t" { as bo; expect shop.orders.email clear }\n'), "--format", "json"
    )
    assert code == 0
    data = json.loads(out)
    assert data["passed"] == 1 and data["failed"] == 0
    (test,) = data["tests"]
    assert test["name"] == "t" and test["user"] == "bo" and test["passed"] is True
    assert test["expectations"][0]["actual"] == "clear"


def test_a_test_without_a_user_fails(tmp_path: Path) -> None:
    code, out = run(repo(tmp_path, 'test "nobody" { expect shop.orders.email clear }\n'))
    assert code == 1
    assert "expected an `as USER` line, got none" in out


def test_a_repository_that_does_not_check_runs_no_test(tmp_path: Path) -> None:
    code, out = run(repo(tmp_path, 'test "t" { as nobody; expect shop.orders.nope clear }\n'))
    assert code == 1
    assert "error[" in out and "passed" not in out


def test_now_must_be_a_time(tmp_path: Path) -> None:
    code, out = run(repo(tmp_path, ""), "--now", "yesterday")
    assert code == 2 and "ISO-8601" in out
