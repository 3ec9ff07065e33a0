"""`veil.toml`: settings (test clock, strict, target), accepted warnings, bad files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from veil.cli import main
from veil.config import find

REPO = """\
table shop.orders {
  id         bigint
  code       varchar(8)
  placed_at  timestamp
}
group analysts
user ana { groups analysts }
mask shop.orders.code with hash unless group analysts
filter shop.orders where placed_at >= now() - 30 days
test "the last 30 days" {
  as ana
  expect shop.orders row { placed_at: "2026-06-20T00:00:00Z" } visible
}
"""

ACCEPT = """
[[accept]]
code = "W0203"
statement = "mask shop.orders.code"
reason = "order codes are short; a cut hash is fine"
"""


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    (tmp_path / ".git").mkdir()  # the search for veil.toml stops here
    (tmp_path / "p.veil").write_text(REPO, encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path


def veil(*args: str) -> tuple[int, str, str]:
    r = CliRunner().invoke(main, list(args))
    assert r.exception is None or isinstance(r.exception, SystemExit), r.exception
    return r.exit_code, r.stdout, r.stderr


def config(repo: Path, text: str) -> None:
    (repo / "veil.toml").write_text(text, encoding="utf-8")


def test_the_clock_of_veil_test(repo: Path) -> None:
    assert veil("test", ".")[0] == 1  # today the row is older than 30 days
    config(repo, "now = 2026-07-01T00:00:00Z\n")
    code, out, _ = veil("test", ".")
    assert (code, out.splitlines()[-1]) == (0, "1 passed, 0 failed")
    config(repo, 'now = "2026-07-01"\n')  # a string works too
    assert veil("test", ".")[0] == 0
    assert veil("test", ".", "--now", "2027-01-01T00:00:00Z")[0] == 1  # the option wins


def test_strict_and_target(repo: Path) -> None:
    assert veil("compile", ".")[0] == 2  # no target anywhere
    config(repo, 'target = "snowflake"\nstrict = true\n')
    code, _, err = veil("check", ".")
    assert code == 1 and "error[W0203]" in err
    assert veil("check", "--no-strict", ".")[0] == 0
    code, out, _ = veil("compile", ".", "--no-strict")
    assert code == 0 and "Snowflake" in out
    code, out, _ = veil("compile", ".", "--no-strict", "-t", "postgres")
    assert code == 0 and "PostgreSQL" in out
    config(repo, "strict = false\n")
    assert veil("check", "--strict", ".")[0] == 1


def test_native_tags_reach_compile_plan_and_emit_sql(repo: Path) -> None:
    (repo / "p.veil").write_text(
        REPO + "table shop.people {\n  card varchar(19) tags pii\n}\nmask tagged pii\n",
        encoding="utf-8",
    )
    plain = veil("compile", ".", "-t", "snowflake")[1]
    config(repo, 'native_tags = ["snowflake"]\n')
    code, native, _ = veil("compile", ".", "-t", "snowflake")
    assert code == 0 and "MASK__TAG__" not in plain
    assert "ALTER TAG VEIL.CLASSIFICATION SET MASKING POLICY VEIL.MASK__TAG__VARCHAR" in native
    code, _, _ = veil("plan", "--from", ".", "--to", ".", "-t", "snowflake")
    assert code == 0
    code, drift, _ = veil("verify", ".", "-t", "snowflake", "--emit-sql")
    assert code == 0 and "MASK__TAG__VARCHAR" in drift
    code, dbx, _ = veil("compile", ".", "-t", "databricks")
    assert code == 0 and "CREATE OR REPLACE POLICY" not in dbx  # not listed: per column only
    config(repo, 'native_tags = ["databricks"]\n')
    code, dbx, _ = veil("compile", ".", "-t", "databricks")
    assert code == 0 and "CREATE OR REPLACE POLICY veil_tag__pii ON TABLE shop.people" in dbx
    assert veil("plan", "--from", ".", "--to", ".", "-t", "databricks")[0] == 0


def test_an_accepted_warning_is_reported_as_accepted_everywhere(repo: Path) -> None:
    config(repo, "strict = true\n" + ACCEPT)
    code, _, err = veil("check", ".")
    assert code == 0, err
    assert "p.veil:8:28: accepted[W0203]: the hash of column `shop.orders.code`" in err
    assert "  accepted: order codes are short; a cut hash is fine" in err
    assert "0 errors, 0 warnings, 1 accepted" in err

    code, out, _ = veil("check", "--format", "json", ".")
    (d,) = json.loads(out)
    assert (code, d["code"], d["accepted"]) == (
        0,
        "W0203",
        "order codes are short; a cut hash is fine",
    )

    code, out, _ = veil("check", "--format", "github", ".")
    assert out.startswith("::notice file=p.veil,line=8,") and "accepted: the hash" in out

    code, out, _ = veil("check", "--format", "sarif", ".")
    (result,) = json.loads(out)["runs"][0]["results"]
    assert result["suppressions"] == [
        {
            "kind": "external",
            "status": "accepted",
            "justification": "order codes are short; a cut hash is fine",
        }
    ]
    code, out, err = veil("compile", ".", "-t", "postgres")
    assert code == 0 and "accepted[W0203]" in err
    code, out, _ = veil("test", ".", "--now", "2026-07-01T00:00:00Z")
    assert code == 0


def test_accept_by_file_and_unused_entries(repo: Path) -> None:
    config(repo, '[[accept]]\ncode = "W0203"\nfile = "p.veil"\nreason = "all of them"\n')
    code, _, err = veil("check", "--strict", ".")
    assert code == 0 and "accepted[W0203]" in err
    config(repo, '[[accept]]\ncode = "W0203"\nfile = "other.veil"\nreason = "x"\n')
    code, _, err = veil("check", ".")
    assert code == 0
    assert "warning[W0203]" in err
    assert "veil.toml:1:1: warning[W0501]: `W0203` is accepted for `other.veil`" in err
    config(repo, ACCEPT.replace("shop.orders.code", "shop.orders.id"))
    code, _, err = veil("check", ".")
    assert "warning[W0501]: `W0203` is accepted for `mask shop.orders.id`" in err


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("strict = tru\n", "veil.toml:1:10: error[L0101]: `veil.toml` is not valid TOML"),
        ("now = 1\nstrickt = true\n", "veil.toml:2:1: error[L0102]: unknown setting `strickt`"),
        ('target = "postgress"\n', "help: did you mean `postgres`?"),
        ('now = "soon"\n', "veil.toml:1:1: error[L0102]: `now` is not a time"),
        ("strict = 1\n", "error[L0102]: `strict` must be `true` or `false`"),
        ('native_tags = ["snowflak"]\n', "help: did you mean `snowflake`?"),
        (
            'native_tags = ["postgres"]\n',
            "error[L0102]: `postgres` has no native tag policies veil compiles to",
        ),
        ('native_tags = "snowflake"\n', "`native_tags` must be a list of target names"),
        (
            ACCEPT.replace('reason = "order codes are short; a cut hash is fine"\n', ""),
            "veil.toml:2:1: error[L0102]: accepting `W0203` needs a `reason`",
        ),
        (
            ACCEPT.replace("W0203", "E0101"),
            "veil.toml:3:1: error[L0102]: `E0101` is an error and cannot be accepted",
        ),
        (
            ACCEPT.replace('statement = "mask shop.orders.code"\n', ""),
            "accepting `W0203` needs a `statement` or a `file`",
        ),
        ("accept = 3\n", "`accept` must be a list of `[[accept]]` tables"),
    ],
)
def test_a_bad_config_is_a_diagnostic_never_a_traceback(
    repo: Path, text: str, expected: str
) -> None:
    config(repo, text)
    for command in (["check", "."], ["test", "."], ["compile", ".", "-t", "postgres"]):
        code, out, err = veil(*command)
        assert code == 1, (command, err)
        assert expected in err
        assert "Traceback" not in err and out == ""


def test_the_config_is_found_upwards_but_not_past_the_repository(
    repo: Path, tmp_path: Path
) -> None:
    sub = repo / "policies"
    sub.mkdir()
    config(repo, "strict = true\n")
    assert find([str(sub)]) == repo / "veil.toml"
    assert find([str(repo / "p.veil")]) == repo / "veil.toml"
    (sub / ".git").mkdir()
    assert find([str(sub)]) is None


def test_plan_reads_target_strict_and_acceptances(repo: Path) -> None:
    code, _, err = veil("plan", "--from", ".", "--to", ".")
    assert code == 2 and "missing `--target`" in err
    config(repo, 'target = "postgres"\nstrict = true\n')
    code, _, err = veil("plan", "--from", ".", "--to", ".")
    assert code == 1 and "error[W0203]" in err  # strict, from veil.toml
    config(repo, 'target = "postgres"\nstrict = true\n' + ACCEPT)
    code, out, err = veil("plan", "--from", ".", "--to", ".")
    assert code == 0, err
    assert "accepted[W0203]" in err and out.startswith("-- veil plan for postgres")


@pytest.mark.parametrize("code", ["L0101", "L0102", "W0501"])
def test_the_example_in_the_docs_triggers_the_code(repo: Path, code: str) -> None:
    """docs/errors.md shows each `veil.toml` code with an example file that reports it."""
    import re

    doc = (Path(__file__).resolve().parent.parent / "docs" / "errors.md").read_text("utf-8")
    section = re.search(rf"^## {code}: .*?(?=^## )", doc, re.MULTILINE | re.DOTALL)
    assert section is not None, f"docs/errors.md has no section for {code}"
    example = re.search(r"```toml\n(.*?)```", section.group(0), re.DOTALL)
    assert example is not None, f"the section of {code} has no ```toml example"
    config(repo, example.group(1))
    _, _, err = veil("check", ".")
    assert f"[{code}]" in err, err


def test_the_targets_are_the_compilers() -> None:
    from veil import config as config_module
    from veil.targets import TARGETS

    assert tuple(sorted(TARGETS)) == config_module.TARGETS
