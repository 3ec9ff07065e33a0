"""`veil plan`: who gains or loses which cells and rows, in the header and as markdown."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from veil import model
from veil.api import check
from veil.cli import main
from veil.plan import plan_script
from veil.plan_markdown import MAX_SCRIPT_CHARS, code, render_markdown

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "payments"
POLICY = "policies/payments.veil"


def variant(tmp_path: Path, name: str, *edits: tuple[str, str]) -> Path:
    folder = tmp_path / name
    shutil.copytree(EXAMPLE, folder)
    text = (folder / POLICY).read_text(encoding="utf-8")
    for old, new in edits:
        assert old in text
        text = text.replace(old, new)
    (folder / POLICY).write_text(text, encoding="utf-8")
    return folder


def program(folder: Path) -> model.Program:
    checked = check([folder])
    assert checked.program is not None, [d.message for d in checked.diagnostics if d.is_error]
    return checked.program


EDITS = (
    (
        "filter sales.transactions where region in user.region unless purpose Fraud Detection",
        "filter sales.transactions where region in user.region",
    ),
    (
        "mask amount with round(100) for group contractors",
        "mask amount with round(1000) for group contractors",
    ),
)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    tmp = tmp_path_factory.mktemp("plan")
    return variant(tmp, "old"), variant(tmp, "new", *EDITS)


def test_the_header_says_who_gains_and_loses(folders: tuple[Path, Path]) -> None:
    old, new = map(program, folders)
    plan = plan_script(old, new, "postgres")
    assert plan.sql is not None
    header = plan.sql.split("SAVEPOINT")[0]
    section = header[header.index("-- Access") : header.index("-- Plan:")]
    assert section.splitlines() == [
        "-- Access (who gains or loses which cells and rows; from the reference evaluator):",
        '--   alice (fraud_q4): sales.transactions rows all \u2192 region in ("APAC", "EMEA")',
        '--   bob (chargebacks): sales.transactions rows all \u2192 region in ("AMER")',
        '--   bob (fraud_q4): sales.transactions rows all \u2192 region in ("AMER")',
        "--   chris: sales.refunds.amount round(100) \u2192 round(1000)",
        "--   chris: sales.transactions.amount round(100) \u2192 round(1000)",
        "--   chris (fraud_q4): sales.refunds.amount round(100) \u2192 round(1000)",
        '--   chris (fraud_q4): sales.transactions rows all \u2192 region in ("APAC")',
        "--   chris (fraud_q4): sales.transactions.amount round(100) \u2192 round(1000)",
        "--",
    ]
    same = plan_script(old, old, "postgres")
    assert same.access == ()


def test_no_access_change_is_said(tmp_path: Path) -> None:
    old = program(variant(tmp_path, "old"))
    # a new purpose nobody uses changes the program, not anyone's access
    new_folder = variant(tmp_path, "new")
    (new_folder / "extra.veil").write_text('purpose Unused { description "x" }\n', "utf-8")
    plan = plan_script(old, program(new_folder), "snowflake")
    assert plan.sql is not None and plan.access == ()
    assert "--   no user gains or loses any cell or row\n" in plan.sql


def test_markdown(folders: tuple[Path, Path]) -> None:
    old, new = map(program, folders)
    plan = plan_script(old, new, "databricks")
    text = render_markdown(plan, target="databricks", old_label="main", new_label="HEAD")
    assert text.startswith("### veil plan for `databricks`\n\nFrom `main` to `HEAD`: ")
    assert (
        '| `bob` | `fraud_q4` | `sales.transactions rows` | `all` | `region in ("AMER")` |' in text
    )
    assert (
        "| `chris` | (none) | `sales.transactions.amount` | `round(100)` | `round(1000)` |" in text
    )
    assert "```diff\n# Masks\n" in text and "\n# Row rules\n~ row rule sales.transactions\n" in text
    assert "<details><summary>The databricks script" in text
    assert text == render_markdown(plan, target="databricks", old_label="main", new_label="HEAD")


def test_markdown_cannot_be_broken() -> None:
    assert code("a|b") == "`a\\|b`"
    assert code("x ` y") == "``x ` y``"
    assert code("`x`") == "`` `x` ``"
    assert code("<script>") == "`<script>`"  # a code span shows markup as text


def test_a_long_script_is_left_out(folders: tuple[Path, Path]) -> None:
    old, new = map(program, folders)
    plan = plan_script(old, new, "postgres")
    assert plan.sql is not None and len(plan.sql) > MAX_SCRIPT_CHARS
    text = render_markdown(plan, target="postgres", old_label="a", new_label="b")
    assert "```sql" not in text
    assert f"longer than {MAX_SCRIPT_CHARS} characters" in text
    assert len(text) < 65536


def test_the_command(folders: tuple[Path, Path], tmp_path: Path) -> None:
    old, new = folders
    out = tmp_path / "plan.md"
    args = ["plan", "--from", str(old), "--to", str(new), "-t", "snowflake"]
    done = CliRunner().invoke(main, [*args, "--format", "markdown", "-o", str(out)])
    assert done.exit_code == 0, done.output
    text = out.read_text(encoding="utf-8")
    assert "#### Who gains or loses access" in text and "<details>" in text
    done = CliRunner().invoke(main, [*args, "--format", "markdwn"])
    assert done.exit_code == 2 and "did you mean `markdown`?" in done.output


def test_a_short_script_is_folded_in(tmp_path: Path) -> None:
    def small(name: str, policy: str) -> model.Program:
        folder = tmp_path / name
        folder.mkdir()
        (folder / "p.veil").write_text(
            "table t.x { id bigint; secret varchar(8) }\nuser bob\n" + policy, "utf-8"
        )
        return program(folder)

    # Snowflake: PostgreSQL's fixed runtime alone is longer than a comment can fold in.
    plan = plan_script(small("a", ""), small("b", "mask t.x.secret with null\n"), "snowflake")
    text = render_markdown(plan, target="snowflake", old_label="a", new_label="b")
    assert "| `bob` | (none) | `t.x.secret` | `clear` | `null` |" in text
    assert "```sql\n-- veil plan for snowflake\n" in text and text.endswith("```\n\n</details>\n")
