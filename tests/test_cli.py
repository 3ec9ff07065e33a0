"""The command line: exit codes, atomic output, bad input, and the approval lifecycle."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from veil.api import check

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "payments"


def veil(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run the real console entry point (exit codes included)."""
    return subprocess.run(
        [sys.executable, "-c", "from veil.cli import run; run()", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A copy of the example repository, free to modify."""
    dest = tmp_path / "payments"
    shutil.copytree(EXAMPLE, dest)
    return dest


# ------------------------------------------------------------------------ exit codes


def test_check_ok_and_json_format() -> None:
    r = veil("check", str(EXAMPLE))
    assert r.returncode == 0, r.stderr
    r = veil("check", "--format", "json", str(EXAMPLE))
    assert r.returncode == 0
    assert json.loads(r.stdout) == []


def test_usage_errors_exit_2_and_suggest_the_target() -> None:
    r = veil("compile", str(EXAMPLE), "--target", "postgress")
    assert r.returncode == 2
    assert "did you mean `postgres`?" in r.stderr
    assert veil("frobnicate").returncode == 2
    assert veil("check").returncode == 2  # PATH is required


def test_policy_errors_exit_1_with_file_line_col_caret_and_help(tmp_path: Path) -> None:
    f = tmp_path / "p.veil"
    f.write_text("table t { card varchar(19) }\nmask crad unless purpose X\n")
    r = veil("check", str(f))
    assert r.returncode == 1
    assert "p.veil:2:6: error[E0102]" in r.stderr
    assert "mask crad unless purpose X" in r.stderr
    assert "^^^^" in r.stderr
    assert "help: did you mean `card`?" in r.stderr


@pytest.mark.parametrize("content", [b"\x00\x01\x02binary", b"\xff\xfe mask x"])
def test_binary_and_non_utf8_files_are_diagnostics_not_tracebacks(
    tmp_path: Path, content: bytes
) -> None:
    f = tmp_path / "bad.veil"
    f.write_bytes(content)
    r = veil("check", str(f))
    assert r.returncode == 1
    assert "Traceback" not in r.stderr
    assert "error[L000" in r.stderr


def test_empty_directory_and_missing_path(tmp_path: Path) -> None:
    r = veil("check", str(tmp_path))
    assert (r.returncode, "error[L0002]" in r.stderr) == (1, True)
    r = veil("check", str(tmp_path / "nope"))
    assert (r.returncode, "error[L0001]" in r.stderr) == (1, True)


# ------------------------------------------------------------------------ compile -o


def test_compile_writes_atomically_with_mode_0644(tmp_path: Path) -> None:
    out = tmp_path / "out.sql"
    r = veil("compile", str(EXAMPLE), "--target", "postgres", "-o", str(out))
    assert r.returncode == 0, r.stderr
    assert out.stat().st_mode & 0o777 == 0o644
    assert out.read_text() == veil("compile", str(EXAMPLE), "-t", "postgres").stdout
    assert [p.name for p in tmp_path.iterdir()] == ["out.sql"]  # no temporary left behind


def test_failed_compile_writes_nothing_and_keeps_the_old_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.veil"
    bad.write_text("mask nothing_here unless purpose Nope\n")
    out = tmp_path / "out.sql"
    r = veil("compile", str(bad), "--target", "postgres", "-o", str(out))
    assert r.returncode == 1
    assert not out.exists()
    out.write_text("-- the previous script\n")
    r = veil("compile", str(bad), "--target", "postgres", "-o", str(out))
    assert r.returncode == 1
    assert out.read_text() == "-- the previous script\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.veil", "out.sql"]


# ------------------------------------------------------------------------ approvals


def states(path: Path) -> dict[tuple[str, str], str]:
    r = veil("projects", str(path), "--format", "json")
    assert r.returncode == 0, r.stderr
    return {(row["project"], row["purpose"]): row["state"] for row in json.loads(r.stdout)}


def test_example_repository_is_fully_approved() -> None:
    assert set(states(EXAMPLE).values()) == {"approved"}


def test_approve_refuses_non_approvers_and_members(repo: Path) -> None:
    r = veil("approve", "fraud_q4", str(repo), "--by", "mallory")
    assert r.returncode == 1
    assert "`mallory` is not a declared approver" in r.stderr
    # grace may approve Employee Retention only
    r = veil("approve", "fraud_q4", "--by", "grace", "--path", str(repo))
    assert r.returncode == 1
    assert "may only approve `Employee Retention`" in r.stderr
    # separation of duties: make dan a member of campaign, then he may not approve it
    projects = repo / "projects.veil"
    projects.write_text(projects.read_text().replace("members  maya", "members  maya, dan"))
    (repo / "people.veil").write_text((repo / "people.veil").read_text() + "\nuser dan\n")
    before = projects.read_text()
    r = veil("approve", "campaign", "--by", "dan", "--path", str(repo))
    assert r.returncode == 1
    assert "separation of duties" in r.stderr
    assert projects.read_text() == before


def test_lifecycle_pending_approved_stale_reapproved_revoked(repo: Path) -> None:
    key = ("fraud_q4", "Fraud Detection")
    projects = repo / "projects.veil"
    assert states(repo)[key] == "approved"

    # a member is added: stale, and `veil check` says what changed, who approved and when
    projects.write_text(
        projects.read_text().replace(
            "members  alice, bob, chris", "members  alice, bob, chris, dave"
        )
    )
    (repo / "people.veil").write_text((repo / "people.veil").read_text() + "\nuser dave\n")
    assert states(repo)[key] == "stale"
    r = veil("check", str(repo))
    assert r.returncode == 0
    assert "member `dave` added" in r.stderr
    assert "carol" in r.stderr and "re-approve" in r.stderr
    assert veil("check", "--strict", str(repo)).returncode == 1
    checked = check([repo])
    assert checked.program is not None
    fraud = checked.program.project("fraud_q4")
    assert fraud is not None and fraud.active_purposes == ()

    # re-approval makes it current again
    r = veil(
        "approve", "fraud_q4", "--by", "dan", "--path", str(repo), "--at", "2026-12-01T08:00:00Z"
    )
    assert r.returncode == 0, r.stderr
    assert states(repo)[key] == "approved"
    assert veil("check", "--strict", str(repo)).returncode == 0

    # revoke: grants nothing
    r = veil(
        "revoke", "fraud_q4", "--by", "carol", "--path", str(repo), "--at", "2026-12-02T08:00:00Z"
    )
    assert r.returncode == 0, r.stderr
    assert states(repo)[key] == "revoked"
    r = veil("revoke", "fraud_q4", str(repo), "--by", "carol")
    assert r.returncode == 1  # nothing left to revoke


def test_approve_and_revoke_write_what_fmt_would(tmp_path: Path) -> None:
    """The issue's reproduction: an approval right after a project block used to make
    `fmt --check` fail in CI. Approve, revoke and approve again; fmt agrees after each."""
    f = tmp_path / "p.veil"
    f.write_text(
        "purpose Support\nuser alice\napprovers carol\n"
        "project crm {\n  purposes Support\n  members  alice\n}\n"
    )
    assert veil("fmt", str(tmp_path)).returncode == 0
    for i, verb in enumerate(["approve", "revoke", "approve"]):
        at = f"2026-01-0{i + 1}T00:00:00Z"
        r = veil(verb, "crm", str(tmp_path), "--by", "carol", "--at", at)
        assert r.returncode == 0, r.stderr
        r = veil("fmt", "--check", str(tmp_path))
        assert r.returncode == 0, (verb, f.read_text())
    text = f.read_text()
    assert "}\n\napprove crm" in text  # the blank line fmt wants between kinds
    assert "}\nrevoke crm" in text and "Z\napprove crm" in text  # approvals stay together


def test_approve_leaves_an_unformatted_file_otherwise_alone(tmp_path: Path) -> None:
    f = tmp_path / "p.veil"
    head = "purpose Support\nuser alice\napprovers carol\nproject crm { purposes Support }\n\n\n"
    f.write_text(head)
    r = veil("approve", "crm", "--by", "carol", "--path", str(tmp_path), "--at", "2026-01-01")
    assert r.returncode == 0, r.stderr
    assert f.read_text().startswith(head.rstrip("\n") + "\n\napprove crm purpose Support")


def test_path_is_positional_and_path_option_an_alias(repo: Path) -> None:
    r = veil("approve", "fraud_q4", str(repo), "--by", "dan", "--path", str(repo.parent))
    assert r.returncode == 2 and "disagree" in r.stderr
    r = veil("approve", "fraud_q4", "--by", "dan", "--path", str(repo), "--at", "2026-12-01")
    assert r.returncode == 0, r.stderr  # the older spelling
    r = veil("revoke", "fraud_q4", str(repo), "--path", str(repo), "--by", "carol")
    assert r.returncode == 0, r.stderr  # both, agreeing
    r = veil("approve", "fraud_q4", "--by", "dan", "--at", "2026-12-03", cwd=repo)
    assert r.returncode == 0, r.stderr  # PATH defaults to the working directory
    assert states(repo)[("fraud_q4", "Fraud Detection")] == "approved"


def test_approve_unknown_project_suggests(repo: Path) -> None:
    r = veil("approve", "fraud_q5", "--by", "carol", "--path", str(repo))
    assert r.returncode == 2  # a typo on the command line is a usage error
    assert "unknown project `fraud_q5`; did you mean `fraud_q4`?" in r.stderr
    r = veil("revoke", "fraud_q4", str(repo), "--by", "carol", "--purpose", "Fraud Detectoin")
    assert r.returncode == 2
    assert "did you mean `Fraud Detection`?" in r.stderr


def test_explain_text_and_json() -> None:
    r = veil(
        "explain",
        str(EXAMPLE),
        "--user",
        "alice",
        "--project",
        "fraud_q4",
        "--table",
        "sales.transactions",
    )
    assert r.returncode == 0, r.stderr
    assert "credit_card" in r.stdout and "clear" in r.stdout
    r = veil("explain", str(EXAMPLE), "--user", "alice", "--format", "json")
    assert r.returncode == 0
    data = json.loads(r.stdout)
    assert data["project"]["name"] is None
    assert data["project"]["state"] == "no_project"
    r = veil("explain", str(EXAMPLE), "--user", "alice", "--table", "sales.transaction")
    assert r.returncode == 2
    assert "did you mean `sales.transactions`?" in r.stderr


@pytest.mark.parametrize(
    ("option", "typo", "meant"),
    [("--user", "alcie", "alice"), ("--project", "fraud_q5", "fraud_q4")],
)
def test_explain_unknown_user_or_project_is_a_usage_error(
    option: str, typo: str, meant: str
) -> None:
    args = {"--user": "alice", "--project": "fraud_q4", option: typo}
    r = veil("explain", str(EXAMPLE), *(x for kv in args.items() for x in kv))
    assert r.returncode == 2, r.stderr
    kind = option.removeprefix("--")
    assert f"unknown {kind} `{typo}`; did you mean `{meant}`?" in r.stderr
    assert r.stdout == ""
