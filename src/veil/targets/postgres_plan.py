"""`veil plan` on PostgreSQL: the plan runs in one transaction (`psql -1`), so no column or table
is ever unprotected to another session, whatever the order of the statements inside it. It is
NEW's whole script (which converges from any earlier veil state: it reads what the previous
script protected from `veil.protected_table` and undoes what NEW no longer needs), preceded by

1. a check that the database holds OLD's protection (a WARNING, not an error, when it does not:
   the plan still converges on NEW, but then its header does not describe every change);
2. the explicit, ordered removal of what disappeared — the row policy of each table whose row
   rules changed (a table's one RESTRICTIVE policy holds all its rules: NEW's script creates the
   new one), then the view and veil's row policies of each table that is no longer protected —
   each with `IF EXISTS`, since NEW's clean-up would do the same.

Views whose columns changed are dropped and re-created by NEW's clean-up, which keeps their
grants (an explicit `DROP VIEW` here would lose them), and governance rows of removed projects,
members, sources, users and groups are deleted by NEW's synchronisation: the header lists them.
"""

from __future__ import annotations

import typing as t

from veil.targets import governance
from veil.targets.base import comment_block
from veil.targets.script import PlanNotes, ProtectedTable, Script

if t.TYPE_CHECKING:
    from veil.targets.postgres import PostgresTarget


def _policies(tgt: PostgresTarget, tb: ProtectedTable) -> list[str]:
    return [tgt.base_policy, *(p.name for p in tb.rows)]


def _replaced_by(now: ProtectedTable) -> str:
    """Why the one row policy of a table that stays protected goes: it holds all the table's
    row rules and is named by its USING, so a rule added, changed or removed gives it another
    name, and so does a change in how veil writes the same rules (a column that became
    `timestamptz`, a renamed governance schema): the header must not claim a rule changed."""
    if not now.rows:
        return "the table has no row rules any more"
    return (
        "its USING changed — a row rule, or how veil writes it: NEW's script creates "
        f"{now.rows[0].name} in its place, the one policy of all the table's rules"
    )


def _view_columns(tb: ProtectedTable) -> list[str]:
    return [c.name for c in tb.view.columns] if tb.view is not None else []


def _view_name(tb: ProtectedTable) -> str:
    assert tb.view is not None
    return f"{tb.view.schema}.{tb.view.name}"


def _drops(tgt: PostgresTarget, old: Script, new: Script) -> tuple[list[str], list[str], list[str]]:
    """(statements, header lines) of the explicit removals, and the header lines of the views
    NEW's clean-up re-creates."""
    statements: list[str] = []
    lines: list[str] = []
    recreated: list[str] = []
    for tb in old.tables:
        now = new.protected(tb.key)
        if now is None:
            continue
        kept = set(_policies(tgt, now))
        for name in _policies(tgt, tb):
            if name not in kept:
                statements.append(f"DROP POLICY IF EXISTS {tgt.ident(name)} ON {tb.sql};")
                lines.append(f"  row policy {name} on {tb.name} ({_replaced_by(now)})")
        before, after = _view_columns(tb), _view_columns(now)
        if after[: len(before)] != before:
            recreated.append(
                f"  view {_view_name(now)} is dropped and re-created by NEW's clean-up (its "
                "columns changed); its SELECT grants are kept"
            )
    for tb in old.tables:
        if new.protected(tb.key) is not None:
            continue
        assert tb.view is not None
        statements.append(f"DROP VIEW IF EXISTS {tb.view.qualified};")
        statements += [
            f"DROP POLICY IF EXISTS {tgt.ident(n)} ON {tb.sql};" for n in _policies(tgt, tb)
        ]
        lines.append(
            f"  view {_view_name(tb)} and veil's row policies on "
            f"{tb.name} (no longer protected: row security goes off when no other "
            "policy is left; earlier readers do NOT get their privileges back)"
        )
    return statements, lines, recreated


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


def recorded_rows(script: Script) -> dict[str, list[tuple[t.Any, ...]]]:
    """The rows of the governance tables that step 1 compares, as `script` writes them (mask
    bodies live in view definitions only, and are not compared)."""
    return {
        name: sorted({r[: len(_recorded_columns(name))] for r in script.table(name).rows}, key=repr)
        for name in RECORDED
    }


def _guard(tgt: PostgresTarget, old: Script, old_label: str) -> str:
    """A DO block that warns when the governance tables do not hold what OLD's script wrote."""
    gov = tgt.ident(tgt.options.governance_schema)
    expected = recorded_rows(old)
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
    return f"DO {tgt.dollar_quote(body)};"


def postgres_plan(
    tgt: PostgresTarget, old: Script, new: Script, header: t.Sequence[str], notes: PlanNotes
) -> str:
    statements, dropped, recreated = _drops(tgt, old, new)
    removed = list(notes.removed_rows)
    lines = list(header)
    lines += ["", "PostgreSQL: removed by this plan, in this order (step 2 below):"]
    lines += dropped or ["  nothing"]
    if recreated:
        lines += ["", "PostgreSQL: re-created (step 3):", *recreated]
    lines += ["", "PostgreSQL: governance rows deleted by NEW's synchronisation (step 3):"]
    lines += removed or ["  none"]
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
    out.append(_guard(tgt, old, notes.old_label) + "\n\n")
    out.append(_rule("Step 2 of 3: what disappeared, in order (NEW's clean-up would do the same)"))
    out.append("".join(s + "\n" for s in statements) if statements else "-- nothing\n")
    out.append("\n")
    out.append(_rule("Step 3 of 3: NEW's script (converges on NEW from any earlier veil state)"))
    out.append(tgt.layout(new))
    return "".join(out)


def _rule(title: str) -> str:
    bar = "-- " + "=" * 93 + "\n"
    return f"{bar}-- {title}\n{bar}"
