"""`veil plan` on Snowflake and Databricks.

DDL is not transactional there, so the order of the statements is what keeps every column and
table protected. NEW's compiled script already has the order a plan needs: policy bodies are
created or changed in place first (Snowflake `ALTER … SET BODY`, Databricks `CREATE OR REPLACE
FUNCTION`), then attached, replacing what the column or table had in one statement (Snowflake
`SET MASKING POLICY … FORCE`, one `ALTER TABLE … DROP …, ADD ROW ACCESS POLICY`; Databricks
`SET MASK`, `SET ROW FILTER`), and only at the end its clean-up block detaches what an earlier
script attached and NEW does not — never from a column or table that NEW protects — and drops
it, reading `veil.applied_object`. The plan is that script, after a header that names, from
OLD and NEW, each policy changed in place, created, swapped in, detached and dropped.
"""

from __future__ import annotations

import typing as t

from veil.targets.base import comment_block
from veil.targets.script import Policy, Script

if t.TYPE_CHECKING:
    from veil.targets.lookup import LookupTarget


def applied_objects(script: Script) -> dict[str, Policy]:
    """What `script` attaches, by object name (Snowflake's tag policies included)."""
    native = script.native.policies if script.native else ()
    return {p.name: p for p in (*script.policies, *native)}


def lookup_steps(tgt: LookupTarget, old: Script, new: Script) -> list[str]:
    """The header lines that say what NEW's script does to OLD's policies, step by step."""
    before, after = applied_objects(old), applied_objects(new)
    protected = {o.target for o in after.values()}
    changed = [o for n, o in sorted(after.items()) if n in before and before[n] != o]
    created = [o for n, o in sorted(after.items()) if n not in before]
    gone = [o for n, o in sorted(before.items()) if n not in after]
    lines = [
        f"{tgt.title}: DDL is not transactional. NEW's script below runs in this order, so that",
        "no column or table is unprotected at any moment:",
        "  1. the governance schema and its rows (synchronised first), and veil's routines;",
        *tgt.plan_attach_steps,
        "     Changed in place:",
    ]
    for o in changed:
        note = ""
        if tgt.new_params_break_queries and before[o.name].params != o.params:
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
            undo = "; ".join(x for x in (o.detach, o.drop) if x)  # an ABAC policy: drop only
            lines.append(f"       - {o.name} ({o.target}): {undo}")
    lines += [] if gone else ["       none"]
    return lines


def lookup_plan(tgt: LookupTarget, old: Script, new: Script, header: t.Sequence[str]) -> str:
    """The header, then NEW's script (see above)."""
    lines = [*header, "", *lookup_steps(tgt, old, new)]
    lines += [
        "",
        f"Apply it like the compiled script (docs/targets/{tgt.name}.md). Applying it again "
        "changes nothing.",
    ]
    return comment_block(lines) + "\n" + tgt.layout(new)
