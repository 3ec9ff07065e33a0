"""`veil plan` without a database: the diff of two checked programs, its header, the veil text
of masks and row rules, OLD and NEW read from git revisions, and the command's errors.
tests/targets/test_postgres_plan.py applies plans on a real server."""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import duckdb
import pytest
import sqlglot
from click.testing import CliRunner

from veil import model
from veil.api import check
from veil.cli import main
from veil.cli_plan import SourceError, open_source
from veil.plan import diff_programs, mask_source, plan_script, render_header, rule_source

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "payments"

OLD = """\
table shop.orders {
  id      bigint
  card    varchar(19)  tags pii.card
  email   varchar(64)
  region  varchar(8)
  amount  decimal(10,2)
}
table shop.customers {
  id    bigint
  name  text
}
table shop.legacy {
  id      bigint
  secret  text
}
purpose Fraud { description "fraud cases" }
purpose Marketing
group analysts
group stewards
user alice { groups analysts; region "EU" }
user bob { groups stewards }
project p1 {
  purposes Fraud
  members alice, bob
  sources shop.orders
  documentation "first"
}
project p2 {
  purposes Marketing
  members bob
  sources shop.orders
}
mask shop.orders.card unless purpose Fraud
mask shop.orders.email with hash for group analysts
mask shop.legacy.secret
filter shop.orders where region in user.region unless purpose Fraud
restrict shop.legacy to any purpose
"""

NEW = """\
table shop.orders {
  id      bigint
  card    varchar(19)  tags pii.card
  email   varchar(64)
  region  varchar(8)
  amount  decimal(12,2)
  note    text
}
table shop.customers {
  id    bigint
  name  text
}
table shop.legacy {
  id      bigint
  secret  text
}
purpose Fraud { description "fraud investigations" }
purpose Marketing
purpose Audit
group analysts
group auditors
user alice { groups analysts; region "EU", "US" }
user carol { groups auditors }
project p1 {
  purposes Fraud, Marketing
  members alice, carol
  sources shop.orders, shop.customers
  documentation "second"
}
project p3 {
  purposes Audit
  members carol
  sources shop.customers
}
mask shop.orders.card with show_last(4) unless purpose Fraud
mask shop.orders.amount with round(10) for group auditors
mask shop.customers.name {
  reveal for purpose Fraud
  with hash for purpose Audit
  with null otherwise
}
filter shop.orders where region in user.region unless purpose Fraud or group auditors
restrict shop.customers to purpose Fraud, purpose Audit unless group analysts
"""

EXPECTED = {
    "+ protected table shop.customers",
    "- protected table shop.legacy",
    "+ column shop.orders.note",
    "~ column shop.orders.amount",
    "~ mask shop.orders.card",
    "- mask shop.orders.email",
    "+ mask shop.orders.amount",
    "+ mask shop.customers.name",
    "- mask shop.legacy.secret",
    "~ row rule shop.orders",
    "+ row rule shop.customers",
    "- row rule shop.legacy",
    "- project p2",
    "+ project p3",
    "~ project documentation p1",
    "- project member p1: bob",
    "+ project member p1: carol",
    "+ project source p1: shop.customers",
    "+ project purpose p1: Marketing",
    "~ purpose Fraud",
    "+ purpose Audit",
    "~ user alice",
    "- user bob",
    "+ user carol",
    "- group stewards",
    "+ group auditors",
}


def program(tmp_path: Path, name: str, text: str) -> model.Program:
    folder = tmp_path / name
    folder.mkdir()
    (folder / "policies.veil").write_text(text, encoding="utf-8")
    checked = check([folder])
    assert checked.program is not None, [d.message for d in checked.diagnostics if d.is_error]
    return checked.program


@pytest.fixture
def programs(tmp_path: Path) -> tuple[model.Program, model.Program]:
    return program(tmp_path, "old", OLD), program(tmp_path, "new", NEW)


# ============================================================================= the diff


def test_every_kind_of_change(programs: tuple[model.Program, model.Program]) -> None:
    old, new = programs
    diff = diff_programs(old, new)
    assert {str(c) for c in diff.changes} == EXPECTED
    assert len(diff.changes) == len(EXPECTED)
    assert diff.newly_protected == (("shop", "customers"),)
    assert diff.unprotected == (("shop", "legacy"),)
    assert (diff.count("+"), diff.count("~"), diff.count("-")) == (12, 6, 8)
    by = {str(c): c for c in diff.changes}
    card = by["~ mask shop.orders.card"]
    assert card.old == "mask shop.orders.card with null unless purpose Fraud"
    assert card.new == "mask shop.orders.card with show_last(4) unless purpose Fraud"
    assert by["- mask shop.orders.email"].old == (
        "mask shop.orders.email with hash for group analysts"
    )
    assert by["+ mask shop.customers.name"].new == (
        "mask shop.customers.name "
        "{ reveal for purpose Fraud; with hash for purpose Audit; with null otherwise }"
    )
    assert by["~ row rule shop.orders"].new == (
        "filter shop.orders where region in user.region unless purpose Fraud or group auditors"
    )
    assert by["+ row rule shop.customers"].new == (
        "restrict shop.customers to purpose Fraud, purpose Audit unless group analysts"
    )
    assert by["- project p2"].old == (
        "project p2 { purposes Marketing; members bob; sources shop.orders }"
    )
    assert (by["~ column shop.orders.amount"].old, by["~ column shop.orders.amount"].new) == (
        "decimal(10,2)",
        "decimal(12,2)",
    )
    assert by["~ user alice"].new == 'user alice { groups analysts; region "EU", "US" }'
    assert by["~ purpose Fraud"].old == 'purpose Fraud { description "fraud cases" }'


def test_the_reverse_diff_mirrors_it(programs: tuple[model.Program, model.Program]) -> None:
    old, new = programs
    flip = {"+": "-", "-": "+", "~": "~"}
    forward = {
        (flip[c.op], c.kind, c.subject, c.new, c.old) for c in diff_programs(old, new).changes
    }
    backward = {(c.op, c.kind, c.subject, c.old, c.new) for c in diff_programs(new, old).changes}
    assert forward == backward


def test_tables_leaving_the_catalog_and_columns_moving(tmp_path: Path) -> None:
    old = program(tmp_path, "old", OLD)
    text = OLD.replace("table shop.legacy {\n  id      bigint\n  secret  text\n}\n", "")
    text = text.replace("mask shop.legacy.secret\n", "").replace(
        "restrict shop.legacy to any purpose\n", ""
    )
    text = text.replace("  id    bigint\n  name  text\n", "  name  text\n  id    bigint\n")
    new = program(tmp_path, "new", text)
    changes = {str(c): c for c in diff_programs(old, new).changes}
    assert set(changes) == {
        "- table shop.legacy",
        "- protected table shop.legacy",
        "- mask shop.legacy.secret",
        "- row rule shop.legacy",
        "~ column order shop.customers",
    }
    moved = changes["~ column order shop.customers"]
    assert (moved.old, moved.new) == ("id, name", "name, id")


def test_no_changes(programs: tuple[model.Program, model.Program]) -> None:
    old, _ = programs
    diff = diff_programs(old, old)
    assert diff.empty
    header = render_header(diff, target="postgres", old_label="a", new_label="b")
    assert header[-1].startswith("No changes")


def test_approval_states(programs: tuple[model.Program, model.Program]) -> None:
    old, _ = programs
    p1 = old.project("p1")
    assert p1 is not None
    [pp] = p1.purposes
    approved = dataclasses.replace(
        pp, state=model.PurposeState.APPROVED, approved_by="dan", approved_at="2026-01-02T03:04:05Z"
    )
    stale = dataclasses.replace(approved, state=model.PurposeState.STALE, changes=("x changed",))

    def with_purpose(x: model.ProjectPurpose) -> model.Program:
        projects = tuple(
            dataclasses.replace(p, purposes=(x,)) if p.name == "p1" else p for p in old.projects
        )
        return dataclasses.replace(old, projects=projects)

    [change] = diff_programs(with_purpose(approved), with_purpose(stale)).changes
    assert str(change) == "~ approval p1: Fraud"
    assert change.old == "approved (by dan at 2026-01-02T03:04:05Z)"
    assert change.new == "stale (by dan at 2026-01-02T03:04:05Z); changed since: x changed"


def test_a_type_change_alone_is_shown(programs: tuple[model.Program, model.Program]) -> None:
    old, _ = programs
    [mask] = [m for m in old.masks if m.column == "card"]
    wider = dataclasses.replace(mask, type=model.SqlType(name="varchar", length=32))
    new = dataclasses.replace(old, masks=tuple(wider if m is mask else m for m in old.masks))
    [change] = diff_programs(old, new).masks
    assert change.old is not None and change.old.endswith("# varchar(19)")
    assert change.new is not None and change.new.endswith("# varchar(32)")


def test_masks_and_rules_read_back_the_same(tmp_path: Path) -> None:
    """Every mask and row rule of the example, as the plan writes it, checks back to the same
    decision (tag and bare-column masks come back as column masks)."""
    checked = check([EXAMPLE])
    assert checked.program is not None
    example = checked.program
    folder = tmp_path / "again"
    shutil.copytree(EXAMPLE, folder)
    shutil.rmtree(folder / "policies")
    shutil.rmtree(folder / "tests")
    text = "\n".join([*map(mask_source, example.masks), *map(rule_source, example.row_rules)])
    (folder / "policies.veil").write_text(text + "\n", encoding="utf-8")
    again = check([folder])
    assert again.program is not None, [d.message for d in again.diagnostics if d.is_error]
    assert again.program.masks == example.masks
    assert again.program.row_rules == example.row_rules


def test_the_header(programs: tuple[model.Program, model.Program]) -> None:
    old, new = programs
    plan = plan_script(old, new, "postgres", old_label="v1", new_label="v2")
    assert plan.sql is not None
    assert plan == plan_script(old, new, "postgres", old_label="v1", new_label="v2")
    header = plan.sql.split("SAVEPOINT veil_plan;")[0]
    assert header.startswith(
        "-- veil plan for postgres\n--   from (OLD): v1\n--   to   (NEW): v2\n"
    )
    assert all(line.startswith("--") for line in header.splitlines() if line)
    assert "-- Plan: 12 to add, 6 to change, 8 to remove.\n" in header
    sections = [line[3:] for line in header.splitlines() if line[3:4].isupper()]
    assert sections[:8] == [
        "Changes (+ added, - removed, ~ changed):",
        "Protected tables",
        "Catalog",
        "Masks",
        "Row rules",
        "Projects",
        "Purposes",
        "Users and groups",
    ]
    assert "--   view shop_protected.legacy and veil's row policies on shop.legacy" in header
    assert "--   group stewards (the role itself is kept" in header
    assert 'DROP VIEW IF EXISTS "shop_protected"."legacy";' in plan.sql
    # step 2 comes before NEW's script
    assert plan.sql.index("DROP VIEW IF EXISTS") < plan.sql.index("-- Generated by veil")


def test_a_tables_one_row_policy_is_replaced_when_its_rules_change(tmp_path: Path) -> None:
    """PostgreSQL: a table's row rules are one policy, so changing one rule of shop.orders drops
    it for NEW's, and shop.legacy, still masked, keeps no row policy; the header says which."""
    rule = "filter shop.orders where region in user.region unless purpose Fraud\n"
    new_text = OLD.replace("restrict shop.legacy to any purpose\n", "").replace(
        rule, rule.replace("\n", " or group stewards\n")
    )
    assert new_text.count("or group stewards") == 1
    old, new = program(tmp_path, "old", OLD), program(tmp_path, "new", new_text)
    sql = plan_script(old, new, "postgres").sql
    assert sql is not None
    header = sql.split("SAVEPOINT veil_plan;")[0]
    lines = re.findall(r"--   row policy (veil_rows_\w+) on (shop\.\w+) \((.*)\)\n", header)
    [(legacy_old, _, legacy_why), (orders_old, _, orders_why)] = lines
    orders_new = re.fullmatch(
        r"its USING changed — a row rule, or how veil writes it: NEW's script creates "
        r"(veil_rows_\w+) in its place, the one policy of all the table's rules",
        orders_why,
    )
    assert orders_new is not None and orders_new[1] != orders_old
    assert legacy_why == "the table has no row rules any more"
    assert [(name, table) for name, table, _ in lines] == [
        (legacy_old, "shop.legacy"),
        (orders_old, "shop.orders"),
    ]
    for name, table in ((orders_old, '"shop"."orders"'), (legacy_old, '"shop"."legacy"')):
        assert f'DROP POLICY IF EXISTS "{name}" ON {table};' in sql
    assert f'CREATE POLICY "{orders_new[1]}" ON "shop"."orders"' in sql
    assert re.findall(r'CREATE POLICY "(\w+)" ON "shop"\."legacy"', sql) == ["veil_base"]


def test_a_row_policy_rewritten_without_a_rule_change_says_so(tmp_path: Path) -> None:
    """A column that becomes `timestamptz` changes how veil writes the same rule (`AT TIME
    ZONE`), so the one policy is replaced; the header must not say a rule changed."""
    text = "table shop.visits {\n  id bigint\n  seen timestamp\n}\n"
    text += "filter shop.visits where seen >= now() - 30 days\n"
    old = program(tmp_path, "old", text)
    new = program(tmp_path, "new", text.replace("seen timestamp", "seen timestamptz"))
    sql = plan_script(old, new, "postgres").sql
    assert sql is not None
    header = sql.split("SAVEPOINT veil_plan;")[0]
    assert "Row rules" not in header  # no rule changed
    [why] = re.findall(r"--   row policy veil_rows_\w+ on shop\.visits \((.*)\)\n", header)
    assert why.startswith("its USING changed — a row rule, or how veil writes it: NEW's script")


def test_comments_cannot_be_broken(tmp_path: Path) -> None:
    old = program(tmp_path, "old", OLD)
    new = program(tmp_path, "new", OLD.replace('"first"', '"line\\nDROP TABLE x; ${y}"'))
    plan = plan_script(old, new, "postgres", old_label="a\nb", new_label="c")
    assert plan.sql is not None
    header = plan.sql.split("SAVEPOINT veil_plan;")[0]
    assert all(line.startswith("--") for line in header.splitlines() if line)
    assert "${" not in header


# ============================================================================= git revisions


def git(repo: Path, *args: str) -> str:
    env = {
        **os.environ,
        "GIT_AUTHOR_NAME": "t",
        "GIT_AUTHOR_EMAIL": "t@example.com",
        "GIT_COMMITTER_NAME": "t",
        "GIT_COMMITTER_EMAIL": "t@example.com",
        "GIT_CONFIG_GLOBAL": os.devnull,
        "GIT_CONFIG_NOSYSTEM": "1",
    }
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=True
    )
    return done.stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """A git repository holding the example in `payments/`: commit 1 as it is, commit 2 with
    a project removed; the working tree also drops a mask (not committed)."""
    root = tmp_path / "repo"
    root.mkdir()
    git(root, "init", "-q", "-b", "main")
    shutil.copytree(EXAMPLE, root / "payments")
    shutil.rmtree(root / "payments" / "tests")
    # `git archive` would leave this file out: the plan reads files as committed
    (root / ".gitattributes").write_text("payments/purposes.veil export-ignore\n")
    git(root, "add", ".")
    git(root, "commit", "-q", "-m", "one")
    projects = root / "payments" / "projects.veil"
    text = projects.read_text(encoding="utf-8")
    start = text.index("project campaign {")
    text = text[:start] + text[text.index("}\n", start) + 2 :]
    start = text.index("approve campaign ")
    text = text[:start] + text[text.index("}\n", start) + 2 :]
    projects.write_text(text, encoding="utf-8")
    git(root, "commit", "-q", "-am", "two")
    payments = root / "payments" / "policies" / "payments.veil"
    text = payments.read_text(encoding="utf-8")
    payments.write_text(text.replace("mask sales.customers.phone", "# mask"), encoding="utf-8")
    return root


def plan_cli(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, ["plan", "--target", "postgres", *args])
    return result.exit_code, result.stdout, result.stderr


def body(sql: str) -> str:
    """The plan without the lines that name OLD and NEW."""
    names = ("(OLD)", "(NEW)", "does not hold what OLD")
    return "\n".join(x for x in sql.splitlines() if not any(n in x for n in names))


def test_revisions_and_paths_give_the_same_plan(repo: Path) -> None:
    code, by_rev, err = plan_cli(
        "--repo", str(repo), "--path", "payments", "--from", "HEAD~1", "--to", "HEAD"
    )
    assert code == 0, err
    sha = git(repo, "rev-parse", "HEAD~1").strip()
    assert f"--   from (OLD): HEAD~1:payments (commit {sha[:12]})\n" in by_rev
    assert "--   - project campaign\n" in by_rev
    assert "--   - mask sales.customers.phone" not in by_rev  # not committed
    assert "veil-plan-" not in by_rev  # no temporary path
    code, by_colon, err = plan_cli(
        "--repo", str(repo), "--from", "HEAD~1:payments", "--to", "HEAD:payments"
    )
    assert code == 0, err
    assert by_colon == by_rev
    code, by_positional, err = plan_cli(
        "payments", "--repo", str(repo), "--from", "HEAD~1", "--to", "HEAD"
    )
    assert (code, by_positional) == (0, by_rev), err  # PATH, of which `--path` is an alias
    # a working tree (a path) against a revision
    code, mixed, err = plan_cli(
        "--repo", str(repo), "--from", "HEAD:payments", "--to", str(repo / "payments")
    )
    assert code == 0, err
    assert "--   ~ mask sales.customers.phone\n" in mixed  # falls back to the pii tag
    assert "--   - project campaign" not in mixed
    # from a subdirectory of the repository, `./` is relative to it
    code, relative, err = plan_cli(
        "--repo", str(repo / "payments"), "--from", "HEAD~1:./", "--to", "HEAD:."
    )
    assert code == 0, err
    assert body(relative) == body(by_rev)
    # the same policies as directories give the same plan
    old_dir = repo.parent / "old"
    git(repo, "worktree", "add", "-q", str(old_dir), "HEAD~1")
    code, by_path, err = plan_cli(
        "--from", str(old_dir / "payments"), "--to", str(repo / "payments"), "--repo", str(repo)
    )
    assert code == 0, err
    assert "--   ~ mask sales.customers.phone\n" in by_path
    code, by_path_rev, err = plan_cli(
        "--from", str(old_dir / "payments"), "--to", "HEAD:payments", "--repo", str(repo)
    )
    assert body(by_path_rev) == body(by_rev)


def test_files_as_committed(repo: Path) -> None:
    with open_source("HEAD:payments", repo=repo) as source:
        names = sorted(str(p.relative_to(source.path)) for p in source.path.rglob("*.veil"))
        assert "purposes.veil" in names
        assert names == sorted(
            str(p.relative_to(repo / "payments")) for p in (repo / "payments").rglob("*.veil")
        )


def test_a_file_in_a_revision(repo: Path) -> None:
    with open_source("HEAD:payments/purposes.veil", repo=repo) as source:
        assert source.path.name == "purposes.veil"
        assert source.path.read_text() == (repo / "payments" / "purposes.veil").read_text()
        kept = source.path
    assert not kept.exists()  # the temporary copy is gone


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no-such-rev", "`no-such-rev` is neither a path nor a git revision"),
        ("HEAD:nowhere", "`nowhere` does not exist in commit"),
        ("HEAD:../x", "is outside the repository"),
        (":payments", "neither a path nor a git revision"),
    ],
)
def test_bad_revisions(repo: Path, spec: str, message: str) -> None:
    with pytest.raises(SourceError, match=message), open_source(spec, repo=repo):
        pass
    code, _, err = plan_cli("--repo", str(repo), "--from", spec, "--to", "HEAD:payments")
    assert code == 2 and message.split("`")[-1].strip() in err


def test_not_a_repository(tmp_path: Path) -> None:
    with (
        pytest.raises(SourceError, match="is not a git repository"),
        open_source("HEAD", repo=tmp_path),
    ):
        pass


# ============================================================================= the command


def test_errors_in_old_or_new_exit_1(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "p.veil").write_text(OLD, encoding="utf-8")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "p.veil").write_text(OLD + "mask shop.orders.nope\n", encoding="utf-8")
    code, out, err = plan_cli("--from", str(bad), "--to", str(good))
    assert code == 1 and out == ""
    assert f"error: OLD ({bad}) has errors" in err and "nope" in err
    code, out, err = plan_cli("--from", str(good), "--to", str(bad), "-o", str(tmp_path / "x"))
    assert code == 1 and not (tmp_path / "x").exists()
    assert f"error: NEW ({bad}) has errors" in err


def test_the_target_rules_of_new(tmp_path: Path) -> None:
    good = tmp_path / "good"
    good.mkdir()
    (good / "p.veil").write_text(OLD, encoding="utf-8")
    long = tmp_path / "long"
    long.mkdir()
    (long / "p.veil").write_text(OLD.replace("secret", "s" * 70), encoding="utf-8")
    code, out, err = plan_cli("--from", str(good), "--to", str(long))
    assert code == 1 and out == ""
    assert "T0301" in err


@pytest.mark.parametrize("target", ["postgres", "snowflake", "databricks"])
def test_every_target_from_the_command_line(tmp_path: Path, target: str) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    for folder, text in ((old, OLD), (new, NEW)):
        folder.mkdir()
        (folder / "p.veil").write_text(text, encoding="utf-8")
    result = CliRunner().invoke(
        main, ["plan", "--from", str(old), "--to", str(new), "--target", target]
    )
    assert result.exit_code == 0, result.stderr
    assert result.stdout.startswith(f"-- veil plan for {target}\n")
    assert "-- Plan: 12 to add, 6 to change, 8 to remove.\n" in result.stdout


def test_output_file(tmp_path: Path, programs: tuple[model.Program, model.Program]) -> None:
    old, new = tmp_path / "old", tmp_path / "new"
    out = tmp_path / "plan.sql"
    code, stdout, err = plan_cli("--from", str(old), "--to", str(new), "-o", str(out))
    assert code == 0, err
    assert stdout == ""
    assert out.stat().st_mode & 0o777 == 0o644
    assert out.read_text(encoding="utf-8").startswith("-- veil plan for postgres\n")


# ========================================================================= Snowflake, Databricks


def payments_pair(tmp_path: Path) -> tuple[model.Program, model.Program]:
    """OLD: the example. NEW: phone shown to everyone (mask and tag gone), transactions.email
    hashed differently (same signature), the notes mask reading another column (a new
    signature), the 90-day filter gone, hr.survey no longer protected."""
    old_dir, new_dir = tmp_path / "old", tmp_path / "new"
    for d in (old_dir, new_dir):
        shutil.copytree(EXAMPLE, d)
        shutil.rmtree(d / "tests")
    edits = {
        "policies/payments.veil": [
            ("mask sales.customers.phone with show_first(3) unless purpose Fraud Detection\n", ""),
            ("mask sales.transactions.email with hash", "mask sales.transactions.email with null"),
            ('when merchant = "Gift cards"', "when id > 0"),
            (
                "filter sales.transactions where created_at >= now() - 90 days \\\n"
                "  unless group auditors or purpose Fraud Detection\n",
                "",
            ),
        ],
        "catalog/sales.veil": [("varchar(32)   tags pii.phone  #", "varchar(32)  #")],
        "catalog/hr.veil": [("tags pii.free_text   #", "#")],
    }
    for name, pairs in edits.items():
        text = (new_dir / name).read_text(encoding="utf-8")
        for a, b in pairs:
            assert text.count(a) == 1, a
            text = text.replace(a, b)
        (new_dir / name).write_text(text, encoding="utf-8")
    (new_dir / "policies" / "hr.veil").unlink()
    old, new = check([old_dir]).program, check([new_dir]).program
    assert old is not None and new is not None
    return old, new


def header_of(sql: str) -> list[str]:
    lines = sql.splitlines()
    end = lines.index("")
    assert all(line.startswith("--") for line in lines[:end])
    return [line[3:] for line in lines[:end]]


@pytest.mark.parametrize("target", ["snowflake", "databricks"])
def test_lookup_plans_are_the_new_script_after_a_header(tmp_path: Path, target: str) -> None:
    from veil.targets import get_target

    old, new = payments_pair(tmp_path)
    plan = plan_script(old, new, target, old_label="a", new_label="b")
    assert plan.sql is not None and not plan.new_diagnostics
    script = get_target(target).render(new)
    assert plan.sql.endswith("\n\n" + script)
    assert len(header_of(plan.sql)) == plan.sql.count("\n") - script.count("\n") - 1
    assert plan == plan_script(old, new, target, old_label="a", new_label="b")


def test_the_snowflake_plan(tmp_path: Path) -> None:
    from tests.targets.test_snowflake import merge_source
    from tests.verify.snowflake_duck import SnowflakeDuck
    from tests.verify.sqlfluff_check import split_statements
    from veil.targets import get_target
    from veil.targets.lookup_plan import applied_objects

    old, new = payments_pair(tmp_path)
    plan = plan_script(old, new, "snowflake")
    assert plan.sql is not None
    header = "\n".join(header_of(plan.sql))
    tgt = get_target("snowflake")
    before, after = applied_objects(tgt.lower(old)), applied_objects(tgt.lower(new))
    email = [n for n in after if "TRANSACTIONS__EMAIL" in n]
    assert email and email[0] in before  # same signature: the body changes in place
    assert f"~ {email[0]} (column sales.transactions.email)" in header
    [old_notes] = [n for n in before if "NOTES" in n]
    [new_notes] = [n for n in after if "NOTES" in n]
    assert old_notes != new_notes  # a new signature: a new policy, swapped in with FORCE
    assert f"+ {new_notes} (column sales.transactions.notes)" in header
    assert (
        f"- {old_notes} (column sales.transactions.notes, replaced in step 2): "
        f"DROP MASKING POLICY {old_notes}"
    ) in header
    assert "MODIFY COLUMN NOTES UNSET" not in header  # never detached from a protected column
    assert "ALTER TABLE SALES.CUSTOMERS MODIFY COLUMN PHONE UNSET MASKING POLICY; DROP" in header
    # order: every attachment of NEW comes before the clean-up block
    statements = split_statements(get_target("snowflake").render(new))
    cleanup = next(i for i, s in enumerate(statements) if "stale CURSOR FOR" in s)
    attach = [i for i, s in enumerate(statements) if "SET MASKING POLICY" in s or "ADD ROW" in s]
    assert attach and max(attach) < cleanup
    # the clean-up, run over applied_object as OLD and then NEW's MERGE leave it, does exactly
    # what the header says, in its order
    table = "VEIL.APPLIED_OBJECT"
    rows = {r[0]: r for r in merge_source(get_target("snowflake").render(old), table)}
    rows.update({r[0]: r for r in merge_source(statements_text(statements), table)})
    select = re.search(r"CURSOR FOR\s+(WITH .*?ORDER BY 1)", statements[cleanup], re.S)
    assert select is not None
    cols = [
        f"{c} VARCHAR" for c in ("OBJECT_NAME", "OBJECT_KIND", "TARGET", "DETACH_SQL", "DROP_SQL")
    ]
    with SnowflakeDuck({table: (cols, sorted(rows.values()))}) as duck:
        got = duck.query(sqlglot.transpile(select.group(1), read="snowflake", write="duckdb")[0])
    assert got == expected_cleanup(before, after)
    for name, detach, drop in got:
        assert f"- {name} (" in header and drop in header and (detach is None or detach in header)


def test_the_databricks_plan(tmp_path: Path) -> None:
    from tests.verify.sqlfluff_check import split_statements
    from veil.targets import get_target
    from veil.targets.lookup_plan import applied_objects

    old, new = payments_pair(tmp_path)
    plan = plan_script(old, new, "databricks")
    assert plan.sql is not None
    header = "\n".join(header_of(plan.sql))
    tgt = get_target("databricks")
    before, after = applied_objects(tgt.lower(old)), applied_objects(tgt.lower(new))
    assert "~ veil.mask__sales__transactions__email (column sales.transactions.email)" in header
    assert (
        "~ veil.rows__sales__transactions (table sales.transactions; its parameters change"
        in header
    )
    assert (
        "- veil.mask__sales__customers__phone (column sales.customers.phone): ALTER TABLE "
        "sales.customers ALTER COLUMN phone DROP MASK; DROP FUNCTION IF EXISTS "
        "veil.mask__sales__customers__phone"
    ) in header
    statements = split_statements(get_target("databricks").render(new))
    cleanup = next(i for i, s in enumerate(statements) if "FOR stale AS" in s)
    attach = [i for i, s in enumerate(statements) if "SET MASK" in s or "SET ROW FILTER" in s]
    assert attach and max(attach) < cleanup
    table = "veil.applied_object"
    rows = {r[0]: r for r in databricks_merge_source(get_target("databricks").render(old), table)}
    rows.update({r[0]: r for r in databricks_merge_source(statements_text(statements), table)})
    select = re.search(
        r"FOR stale AS\s+(SELECT .*?ORDER BY [^\n]*)\s+DO", statements[cleanup], re.S
    )
    assert select is not None
    got = databricks_cleanup(select.group(1), sorted(rows.values()))
    assert got == expected_cleanup(before, after)
    assert got  # the pair removes something


def databricks_cleanup(select: str, rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """What the clean-up block's query (Databricks SQL, through sqlglot) selects in DuckDB over
    `rows` of veil.applied_object."""
    with duckdb.connect() as duck:
        duck.execute("CREATE SCHEMA veil")
        duck.execute(
            "CREATE TABLE veil.applied_object (object_name VARCHAR, object_kind VARCHAR, "
            "target VARCHAR, detach_sql VARCHAR, drop_sql VARCHAR)"
        )
        duck.executemany("INSERT INTO veil.applied_object VALUES (?, ?, ?, ?, ?)", rows)
        query = sqlglot.transpile(select, read="databricks", write="duckdb")[0]
        return duck.execute(query).fetchall()


def statements_text(statements: list[str]) -> str:
    return "".join(s + ";\n" for s in statements)


def expected_cleanup(before: dict[str, Any], after: dict[str, Any]) -> list[tuple[Any, ...]]:
    protected = {o.target for o in after.values()}
    return [
        (o.name, None if o.target in protected else o.detach, o.drop)
        for name, o in sorted(before.items())
        if name not in after
    ]


def databricks_merge_source(script: str, table: str) -> list[tuple[Any, ...]]:
    from tests.verify.sqlfluff_check import split_statements

    merge = next(s for s in split_statements(script) if s.startswith(f"MERGE INTO {table} "))
    source = re.search(r"USING (\(VALUES\n.*?\n\) AS s\(.*?\))\n", merge, re.S)
    assert source is not None
    query = sqlglot.transpile(
        f"SELECT * FROM {source.group(1)}", read="databricks", write="duckdb"
    )[0]
    with duckdb.connect() as duck:
        return duck.execute(query).fetchall()
