"""The script of a plan, per target (veil.plan builds the target-independent diff and header).

PostgreSQL: the plan runs in one transaction (`psql -1`), so no column or table is ever
unprotected to another session, whatever the order of the statements inside it. It is NEW's
whole script (which converges from any earlier veil state: it reads what the previous script
protected from `veil.protected_table` and undoes what NEW no longer needs), preceded by

1. a check that the database holds OLD's protection (a WARNING, not an error, when it does not:
   the plan still converges on NEW, but then its header does not describe every change);
2. the explicit, ordered removal of what disappeared — veil's row policies of removed or changed
   row rules, then the view and veil's row policies of each table that is no longer protected —
   each with `IF EXISTS`, since NEW's clean-up would do the same.

Views whose columns changed are dropped and re-created by NEW's clean-up, which keeps their
grants (an explicit `DROP VIEW` here would lose them), and governance rows of removed projects,
members, sources, users and groups are deleted by NEW's synchronisation: the header lists them.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from veil import model
from veil.model import TableKey
from veil.plan import PlanDiff, comment_block
from veil.targets import governance
from veil.targets.databricks import DatabricksTarget
from veil.targets.lookup import LookupTarget
from veil.targets.postgres import BASE_POLICY, PostgresTarget, dollar_quote
from veil.targets.snowflake import SnowflakeTarget


def _policies(tgt: PostgresTarget, program: model.Program, key: TableKey) -> list[str]:
    return [BASE_POLICY, *(n for n, _ in tgt.policy_names(program, key))]


def _view_columns(program: model.Program, key: TableKey) -> list[str]:
    table = program.table(key)
    return [c.name for c in table.columns] if table is not None else []


def _drops(
    tgt: PostgresTarget, old: model.Program, new: model.Program
) -> tuple[list[str], list[str], list[str]]:
    """(statements, header lines) of the explicit removals, and the header lines of the views
    NEW's clean-up re-creates."""
    statements: list[str] = []
    lines: list[str] = []
    recreated: list[str] = []
    new_keys = {tb.key for tb in new.protected_tables}
    for tb in old.protected_tables:
        if tb.key not in new_keys:
            continue
        table = tgt.table_sql(tb.key)
        kept = set(_policies(tgt, new, tb.key))
        for name in _policies(tgt, old, tb.key):
            if name not in kept:
                statements.append(f"DROP POLICY IF EXISTS {tgt.ident(name)} ON {table};")
                lines.append(
                    f"  row policy {name} on {tb.name} (its row rule was removed or changed)"
                )
        before, after = _view_columns(old, tb.key), _view_columns(new, tb.key)
        if after[: len(before)] != before:
            view = ".".join(tgt.view_of(tb.key))
            recreated.append(
                f"  view {view} is dropped and re-created by NEW's clean-up (its "
                "columns changed); its SELECT grants are kept"
            )
    for tb in old.protected_tables:
        if tb.key in new_keys:
            continue
        table = tgt.table_sql(tb.key)
        view = tgt.qualified(tgt.view_of(tb.key))
        statements.append(f"DROP VIEW IF EXISTS {view};")
        statements += [
            f"DROP POLICY IF EXISTS {tgt.ident(n)} ON {table};" for n in _policies(tgt, old, tb.key)
        ]
        lines.append(
            f"  view {'.'.join(tgt.view_of(tb.key))} and veil's row policies on "
            f"{tb.name} (no longer protected: row security goes off when no other "
            "policy is left; earlier readers do NOT get their privileges back)"
        )
    return statements, lines, recreated


def _governance_lines(diff: PlanDiff) -> list[str]:
    removed = [c for c in (*diff.projects, *diff.people, *diff.purposes) if c.op == "-"]
    out = []
    for c in removed:
        note = ""
        if c.kind == "project":
            note = (
                " (with its purposes, members and sources; the audit log and the "
                "acknowledgements are kept)"
            )
        elif c.kind == "group":
            note = " (the role itself is kept: roles are never dropped)"
        out.append(f"  {c.kind} {c.subject}{note}")
    return out


#: What the check of step 1 compares: governance table -> how many of its leading columns
#: (None: all). Approvers, times and acknowledgement texts are not compared.
RECORDED: dict[str, int | None] = {
    "protected_table": None,
    "project_member": None,
    "project_source": None,
    "project_purpose": 4,
}


def _recorded_columns(name: str) -> tuple[governance.Column, ...]:
    return governance.table("postgres", name).columns[: RECORDED[name]]


def recorded_rows(
    tgt: PostgresTarget, program: model.Program
) -> dict[str, list[tuple[t.Any, ...]]]:
    """The rows of the governance tables that step 1 compares, as `program`'s script writes
    them (mask bodies live in view definitions only, and are not compared)."""
    rows = tgt.governance_rows(program)
    return {
        name: sorted({r[: len(_recorded_columns(name))] for r in rows[name]}, key=repr)
        for name in RECORDED
    }


def _guard(tgt: PostgresTarget, old: model.Program, old_label: str) -> str:
    """A DO block that warns when the governance tables do not hold what OLD's script wrote."""
    gov = tgt.ident(tgt.options.governance_schema)
    expected = recorded_rows(tgt, old)
    checks = []
    for name in RECORDED:
        cols = [c.name for c in _recorded_columns(name)]
        types = [c.type for c in _recorded_columns(name)]
        rows = expected[name]
        if rows:
            values = ",\n".join(
                "        (" + ", ".join(tgt.literal(v) for v in r) + ")" for r in rows
            )
            e = f"VALUES\n{values}"
        else:
            e = "SELECT " + ", ".join(f"NULL::{ty}" for ty in types) + " WHERE FALSE"
        checks.append(
            f"    WITH e AS (\n      {e}\n    ), g AS (SELECT {', '.join(cols)} "
            f"FROM {gov}.{name})\n"
            "    SELECT v_differs OR EXISTS (TABLE g EXCEPT TABLE e) OR EXISTS (TABLE e EXCEPT "
            "TABLE g)\n      INTO v_differs;\n"
        )
    message = tgt.literal(
        f"veil plan: this database does not hold what OLD ({old_label}) recorded; the plan "
        "still takes it to NEW, but its header may not list every change"
    )
    any_rows = any(expected.values())
    body = f"""DECLARE
  v_differs boolean := FALSE;
BEGIN
  IF pg_catalog.to_regclass('{tgt.options.governance_schema}.protected_table') IS NULL THEN
    v_differs := {tgt.literal(any_rows)};
  ELSE
{"".join(checks)}  END IF;
  IF v_differs THEN
    RAISE WARNING {message};
  END IF;
END
"""
    return f"DO {dollar_quote(body)};"


def postgres_plan(
    old: model.Program,
    new: model.Program,
    diff: PlanDiff,
    header: list[str],
    *,
    old_label: str = "OLD",
) -> str:
    tgt = PostgresTarget()
    statements, dropped, recreated = _drops(tgt, old, new)
    governance = _governance_lines(diff)
    lines = list(header)
    lines += ["", "PostgreSQL: removed by this plan, in this order (step 2 below):"]
    lines += dropped or ["  nothing"]
    if recreated:
        lines += ["", "PostgreSQL: re-created (step 3):", *recreated]
    lines += ["", "PostgreSQL: governance rows deleted by NEW's synchronisation (step 3):"]
    lines += governance or ["  none"]
    lines += [
        "",
        "Apply as a superuser, in one transaction, to the database where OLD was applied:",
        "",
        "    psql -X -v ON_ERROR_STOP=1 -1 -f THIS_FILE",
        "",
        "Nothing is unprotected at any instant: other sessions see OLD until the transaction",
        "commits, then NEW. Applying it again changes nothing.",
    ]
    out = [comment_block(lines), "\n"]
    out.append(
        '-- Fails ("SAVEPOINT can only be used in transaction blocks") unless run in one '
        "transaction (-1).\n"
        "SAVEPOINT veil_plan;\nRELEASE SAVEPOINT veil_plan;\n"
        "SET LOCAL search_path = pg_catalog, pg_temp;\n"
        "SET LOCAL standard_conforming_strings = on;\n"
        "SET LOCAL client_min_messages = warning;\n\n"
    )
    out.append(_rule("Step 1 of 3: the database should hold OLD (a WARNING otherwise)"))
    out.append(_guard(tgt, old, old_label) + "\n\n")
    out.append(_rule("Step 2 of 3: what disappeared, in order (NEW's clean-up would do the same)"))
    out.append("".join(s + "\n" for s in statements) if statements else "-- nothing\n")
    out.append("\n")
    out.append(_rule("Step 3 of 3: NEW's script (converges on NEW from any earlier veil state)"))
    out.append(tgt.render(new))
    return "".join(out)


def _rule(title: str) -> str:
    bar = "-- " + "=" * 93 + "\n"
    return f"{bar}-- {title}\n{bar}"


# ============================================================================ Snowflake, Databricks
#
# DDL is not transactional there, so the order of the statements is what keeps every column and
# table protected. NEW's compiled script already has the order a plan needs: policy bodies are
# created or changed in place first (Snowflake `ALTER … SET BODY`, Databricks `CREATE OR REPLACE
# FUNCTION`), then attached, replacing what the column or table had in one statement (Snowflake
# `SET MASKING POLICY … FORCE`, one `ALTER TABLE … DROP …, ADD ROW ACCESS POLICY`; Databricks
# `SET MASK`, `SET ROW FILTER`), and only at the end its clean-up block detaches what an earlier
# script attached and NEW does not — never from a column or table that NEW protects — and drops
# it, reading `veil.applied_object`. The plan is that script, after a header that names, from
# OLD and NEW, each policy changed in place, created, swapped in, detached and dropped.


@dataclass(frozen=True, slots=True, kw_only=True)
class Applied:
    """One policy (or function) a script attaches, as `applied_object` records it."""

    name: str
    kind: str
    target: str
    detach: str
    drop: str
    definition: tuple[tuple[str, str], ...]  # what makes two versions of it differ


class _Capture(LookupTarget):
    """A lookup target whose `render` keeps the policies it would render, instead."""

    captured: tuple[list[dict[str, t.Any]], list[dict[str, t.Any]]] = ([], [])

    def render_script(
        self,
        program: model.Program,
        masks: list[dict[str, t.Any]],
        rows: list[dict[str, t.Any]],
        **context: t.Any,
    ) -> str:
        self.captured = (masks, rows)
        return ""


class _SnowflakeCapture(_Capture, SnowflakeTarget):
    pass


class _DatabricksCapture(_Capture, DatabricksTarget):
    pass


def applied_objects(target: str, program: model.Program) -> dict[str, Applied]:
    """What the `target` script of `program` attaches, by object name."""
    tgt: _Capture = _SnowflakeCapture() if target == "snowflake" else _DatabricksCapture()
    tgt.render(program)
    masks, rows = tgt.captured
    out: dict[str, Applied] = {}
    for kind, column_of, items in (
        (tgt.mask_kind, True, masks),
        (tgt.rows_kind, False, rows),
    ):
        for item in items:
            column = item["column"] if column_of else None
            out[item["name"]] = Applied(
                name=item["name"],
                kind=kind,
                target=item["target"],
                detach=tgt.detach_sql(kind, item["table"], column, item["name"]),
                drop=tgt.drop_sql(kind, item["name"]),
                definition=tuple(sorted((k, repr(v)) for k, v in item.items() if not callable(v))),
            )
    return out


def lookup_steps(target: str, old: model.Program, new: model.Program) -> list[str]:
    """The header lines that say what NEW's script does to OLD's policies, step by step."""
    before, after = applied_objects(target, old), applied_objects(target, new)
    protected = {o.target for o in after.values()}
    snowflake = target == "snowflake"
    changed = [o for n, o in sorted(after.items()) if n in before and before[n] != o]
    created = [o for n, o in sorted(after.items()) if n not in before]
    gone = [o for n, o in sorted(before.items()) if n not in after]
    if snowflake:
        each = [
            "  2. each policy of NEW in turn: CREATE ... IF NOT EXISTS, ALTER ... SET BODY (it",
            "     stays attached meanwhile), then attached: SET MASKING POLICY ... FORCE, or one",
            "     ALTER TABLE ... DROP ROW ACCESS POLICY old, ADD ROW ACCESS POLICY new; either",
            "     replaces what the column or table had in one statement.",
        ]
    else:
        each = [
            "  2. each function of NEW in turn: CREATE OR REPLACE FUNCTION (a function that",
            "     is attached stays attached), then SET MASK / SET ROW FILTER, which replaces",
            "     what the column or table had in one statement.",
        ]
    lines = [
        f"{'Snowflake' if snowflake else 'Databricks'}: DDL is not transactional. NEW's script "
        "below runs in this order, so that",
        "no column or table is unprotected at any moment:",
        "  1. the governance schema and its rows (synchronised first), and veil's routines;",
        *each,
        "     Changed in place:",
    ]
    for o in changed:
        note = ""
        if not snowflake and dict(before[o.name].definition).get("params") != dict(
            o.definition
        ).get("params"):
            note = "; its parameters change: queries on it fail until it is set again"
        lines.append(f"       ~ {o.name} ({o.target}{note})")
    lines += [] if changed else ["       none"]
    lines.append("     New (on a column or table OLD protected, they replace OLD's policy):")
    lines += [f"       + {o.name} ({o.target})" for o in created] or ["       none"]
    lines += [
        "  3. the clean-up near the end (only grants follow it): each policy OLD attached and",
        "     NEW does not, one after the other, is detached (only from what NEW no longer",
        "     protects), then dropped:",
    ]
    for o in gone:
        if o.target in protected:
            lines.append(f"       - {o.name} ({o.target}, replaced in step 2): {o.drop}")
        else:
            lines.append(f"       - {o.name} ({o.target}): {o.detach}; {o.drop}")
    lines += [] if gone else ["       none"]
    return lines


def lookup_plan(target: str, old: model.Program, new: model.Program, header: list[str]) -> str:
    """Snowflake or Databricks: the header, then NEW's script (see above)."""
    from veil.targets import get_target

    lines = [*header, "", *lookup_steps(target, old, new)]
    lines += [
        "",
        "Apply it like the compiled script (docs/targets/"
        f"{target}.md). Applying it again changes nothing.",
    ]
    return comment_block(lines) + "\n" + get_target(target).render(new)
