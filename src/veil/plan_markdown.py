"""`veil plan --format markdown`: the plan as a pull-request comment.

For people who review a policy change without reading SQL: first who gains or loses which cells
and rows (`veil.access.diff_access`, a table), then the policy changes in veil syntax, then the
script, folded. Every piece of user text is in a code span or a fenced block whose fence is
longer than any run of backticks inside it, and `|` is escaped in table cells, so a hostile
name can neither break the table nor inject markup. The script is left out when the comment
would exceed what a forge accepts (GitHub: 65536 characters); the comment then says so.
"""

from __future__ import annotations

import re

from veil.plan import Plan, PlanDiff

#: GitHub refuses comments longer than 65536 characters; keep room for the rest.
MAX_SCRIPT_CHARS = 50_000


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def code(text: str) -> str:
    """`text` as an inline code span, safe in a table cell."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * (longest + 1)
    pad = " " if text.startswith("`") or text.endswith("`") or not text.strip() else ""
    return f"{ticks}{pad}{text}{pad}{ticks}".replace("|", "\\|").replace("\n", " ")


def block(text: str, lang: str = "") -> list[str]:
    fence = _fence(text)
    return [f"{fence}{lang}", text.rstrip("\n"), fence]


def _changes(diff: PlanDiff) -> list[str]:
    lines: list[str] = []
    for title, section in diff.sections:
        if not section:
            continue
        lines.append(f"# {title}")
        for c in section:
            lines.append(str(c))
            if c.old is not None:
                lines.append(f"    was: {c.old}")
            if c.new is not None:
                lines.append(f"    now: {c.new}")
    return lines


def render_markdown(plan: Plan, *, target: str, old_label: str, new_label: str) -> str:
    """The whole comment (deterministic, ends with a newline)."""
    diff = plan.diff
    out = [
        f"### veil plan for {code(target)}",
        "",
        f"From {code(old_label)} to {code(new_label)}: {diff.count('+')} to add, "
        f"{diff.count('~')} to change, {diff.count('-')} to remove.",
        "",
        "#### Who gains or loses access",
        "",
    ]
    if not plan.access:
        out.append("No user gains or loses any cell or row.")
    else:
        out += ["| user | project | cells or rows | before | after |", "|---|---|---|---|---|"]
        for a in plan.access:
            project = code(a.project) if a.project is not None else "(none)"
            out.append(
                f"| {code(a.user)} | {project} | {code(a.subject)} "
                f"| {code(a.old)} | {code(a.new)} |"
            )
    out += [
        "",
        "Computed by veil's reference evaluator for every declared user, under no project and "
        "under each of their projects; `user.<attribute>` is shown with the user's values; "
        "acknowledgements are assumed given.",
        "",
        "#### Policy changes",
        "",
    ]
    if diff.empty:
        out.append("No changes: NEW's policies are those of OLD.")
    else:
        out += block("\n".join(_changes(diff)), "diff")
    out.append("")
    if plan.sql is not None:
        size = len(plan.sql)
        out += [f"<details><summary>The {target} script ({size} characters)</summary>", ""]
        if size <= MAX_SCRIPT_CHARS:
            out += block(plan.sql, "sql")
        else:
            out.append(
                f"The script is longer than {MAX_SCRIPT_CHARS} characters: run "
                f"`veil plan --target {target}` to read it."
            )
        out += ["", "</details>", ""]
    return "\n".join(out)
