"""`veil init`, the CI workflow it writes (docs/ci.md) and the pre-commit hooks."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from veil.cli import main
from veil.scaffold import FILES, template

ROOT = Path(__file__).resolve().parent.parent


def init(*args: str) -> Result:
    return CliRunner().invoke(main, ["init", *args])


def test_init_writes_the_scaffold(tmp_path: Path) -> None:
    repo = tmp_path / "policies"
    result = init(str(repo))
    assert result.exit_code == 0, result.output
    written = sorted(str(p.relative_to(repo)) for p in repo.rglob("*") if p.is_file())
    assert written == sorted(FILES)
    for rel, name in FILES.items():
        assert (repo / rel).read_text(encoding="utf-8") == template(name)
    assert f"created {repo / 'catalog.veil'}" in result.stdout


def test_scaffold_checks_clean(tmp_path: Path) -> None:
    assert init(str(tmp_path / "r")).exit_code == 0
    from veil.api import check

    checked = check([tmp_path / "r"], strict=False)
    assert [str(d) for d in checked.diagnostics if d.is_error] == []
    assert checked.ok
    program = checked.program
    assert program is not None
    assert [tb.name for tb in program.tables] == ["shop.orders"]
    assert program.masks and program.row_rules and program.tests
    assert [p.name for p in program.projects] == ["fraud_review"]
    assert program.purposes[0].acknowledgement


def test_scaffold_tests_pass(tmp_path: Path) -> None:
    assert init(str(tmp_path / "r")).exit_code == 0
    result = CliRunner().invoke(main, ["test", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output


def test_scaffold_compiles_for_postgres(tmp_path: Path) -> None:
    assert init(str(tmp_path / "r")).exit_code == 0
    out = tmp_path / "veil.sql"
    result = CliRunner().invoke(
        main, ["compile", str(tmp_path / "r"), "--target", "postgres", "-o", str(out)]
    )
    assert result.exit_code == 0, result.output
    assert "shop" in out.read_text(encoding="utf-8")


def test_scaffold_is_formatted(tmp_path: Path) -> None:
    assert init(str(tmp_path / "r")).exit_code == 0
    result = CliRunner().invoke(main, ["fmt", "--check", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output


def test_refuses_a_non_empty_directory(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine\n", encoding="utf-8")
    result = init(str(tmp_path))
    assert result.exit_code == 1
    assert "is not empty (`notes.txt`)" in result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.txt"]


def test_refuses_a_directory_with_only_hidden_files(tmp_path: Path) -> None:
    (tmp_path / ".env").write_text("X=1\n", encoding="utf-8")
    result = init(str(tmp_path))
    assert result.exit_code == 1
    assert "`.env`" in result.stderr


def test_accepts_a_fresh_git_repository(tmp_path: Path) -> None:
    (tmp_path / ".git").mkdir()
    result = init(str(tmp_path))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "policies.veil").is_file()


def test_refuses_a_file(tmp_path: Path) -> None:
    target = tmp_path / "file"
    target.write_text("", encoding="utf-8")
    result = init(str(target))
    assert result.exit_code != 0
    assert target.read_text(encoding="utf-8") == ""


def test_init_defaults_to_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert init().exit_code == 0
    assert (tmp_path / ".github" / "workflows" / "veil.yml").is_file()


# -- docs/ci.md and the hooks ----------------------------------------------------------------


def _workflow_in_docs() -> str:
    text = (ROOT / "docs" / "ci.md").read_text(encoding="utf-8")
    match = re.search(r"## The workflow\n.*?```yaml\n(.*?)```", text, re.S)
    assert match, "docs/ci.md has no ```yaml block under `## The workflow`"
    return match.group(1)


def test_docs_workflow_is_the_scaffold_workflow() -> None:
    assert _workflow_in_docs() == template("veil.yml")


def test_workflow_steps() -> None:
    import yaml

    workflow = yaml.safe_load(template("veil.yml"))
    job = workflow["jobs"]["policies"]
    assert job["permissions"]["security-events"] == "write"
    steps = job["steps"]
    uses = [s.get("uses", "") for s in steps]
    runs = "\n".join(s.get("run", "") for s in steps)
    assert uses[0].startswith("actions/checkout@")
    setup = next(s for s in steps if s.get("uses", "").startswith("actions/setup-python@"))
    assert setup["with"]["python-version"] == "3.11"
    for command in (
        "pip install veil",
        "veil check --format github .",
        "veil check --format sarif . > veil.sarif",
        "veil test .",
        "veil compile . --target postgres -o build/veil.sql",
    ):
        assert command in runs
    sarif = next(
        s for s in steps if s.get("uses", "").startswith("github/codeql-action/upload-sarif@")
    )
    assert sarif["with"]["sarif_file"] == "veil.sarif"
    assert any(u.startswith("actions/upload-artifact@") for u in uses)
    # command names used by the workflow exist (or are being written in parallel)
    known = set(main.commands) | {"test"}
    for command in re.findall(r"^\s*veil (\w+)", runs, re.M):
        assert command in known


def test_pre_commit_hooks() -> None:
    import yaml

    hooks = {
        h["id"]: h
        for h in yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text(encoding="utf-8"))
    }
    assert set(hooks) == {"veil-check", "veil-fmt"}
    check = hooks["veil-check"]
    assert check["entry"] == "veil check"
    assert check["pass_filenames"] is False
    assert check["args"] == ["."]
    assert hooks["veil-fmt"]["entry"] == "veil fmt --check"
    for hook in hooks.values():
        assert hook["language"] == "python"
        assert re.search(hook["files"], "policies/sales.veil")
        assert not re.search(hook["files"], "README.md")
