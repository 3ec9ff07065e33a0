"""`veil plan`: what changes between two checked policy sets, and the script that applies it.

`diff_programs(old, new)` compares two checked programs, independently of any target: tables
newly protected or no longer protected, catalog columns, masks (per column, the whole decision
before and after, in veil syntax), row rules, projects (their purposes and approval states,
members, sources), declared purposes, users and groups. `render_header` writes it as SQL
comments, one `+` (added), `-` (removed) or `~` (changed) line per change, like `terraform plan`.

`plan_script(old, new, target)` is that header followed by the statements that take a database
where OLD was applied to the state of NEW (`Target.plan`: targets/postgres_plan.py,
targets/lookup_plan.py). For PostgreSQL it is NEW's whole
script (one transaction: no column or table is unprotected at any instant, and the script
converges from any earlier veil state), preceded by a check that the database holds OLD (a
WARNING otherwise) and by explicit, ordered `DROP`s of what disappeared, so that a reviewer reads
them. For Snowflake and Databricks (no transaction) it is NEW's script, whose order already
never leaves a column unprotected, after a header naming each policy changed in place, swapped
in, detached and dropped. Everything is deterministic: the same inputs give the same bytes.
"""

from __future__ import annotations

import typing as t
from dataclasses import dataclass

from veil import ir, methods, model
from veil.access import AccessChange, access_lines, diff_access
from veil.diagnostics import Diagnostic, sort_diagnostics
from veil.model import TableKey
from veil.printer import action_to_source, cond_to_source, expr_to_source, name_to_source
from veil.targets.script import PlanNotes

if t.TYPE_CHECKING:
    from veil.targets import Options

Op: t.TypeAlias = t.Literal["+", "-", "~"]
_OP_ORDER = {"-": 0, "~": 1, "+": 2}


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One line of a plan: `op kind subject`, with the text before (`old`) and after (`new`)
    the change (veil syntax where there is one; None where it does not exist)."""

    op: Op
    kind: str
    subject: str
    old: str | None = None
    new: str | None = None

    def __str__(self) -> str:
        return f"{self.op} {self.kind} {self.subject}"


@dataclass(frozen=True, slots=True, kw_only=True)
class PlanDiff:
    """Every change from OLD to NEW, by section, each section sorted."""

    protection: tuple[Change, ...] = ()
    catalog: tuple[Change, ...] = ()
    masks: tuple[Change, ...] = ()
    row_rules: tuple[Change, ...] = ()
    projects: tuple[Change, ...] = ()
    purposes: tuple[Change, ...] = ()
    people: tuple[Change, ...] = ()
    newly_protected: tuple[TableKey, ...] = ()
    unprotected: tuple[TableKey, ...] = ()

    @property
    def sections(self) -> tuple[tuple[str, tuple[Change, ...]], ...]:
        return (
            ("Protected tables", self.protection),
            ("Catalog", self.catalog),
            ("Masks", self.masks),
            ("Row rules", self.row_rules),
            ("Projects", self.projects),
            ("Purposes", self.purposes),
            ("Users and groups", self.people),
        )

    @property
    def changes(self) -> tuple[Change, ...]:
        return tuple(c for _, section in self.sections for c in section)

    @property
    def empty(self) -> bool:
        return not self.changes

    def count(self, op: Op) -> int:
        return sum(1 for c in self.changes if c.op == op)


# ============================================================================ veil syntax


def mask_source(mask: model.ColumnMask) -> str:
    """The whole decision of a column as one veil statement: the one-line form when the arms
    are one of its shorthands, else the block form on one line (`{ …; … }`)."""
    target = ir.dotted((*mask.table, mask.column))
    when = f" when {expr_to_source(mask.when)}" if mask.when is not None else ""
    arms = mask.arms

    def method(action: methods.MaskAction | None) -> str:
        return f"with {action_to_source(action)}"

    if len(arms) == 1 and arms[0].cond is None and arms[0].action is not None:
        return f"mask {target} {method(arms[0].action)}{when}"
    if len(arms) == 2 and (cond := arms[0].cond) is not None and arms[1].cond is None:
        first, last = arms
        if first.action is None and last.action is not None:
            return f"mask {target} {method(last.action)}{when} unless {cond_to_source(cond)}"
        if first.action is not None and last.action is None:
            return f"mask {target} {method(first.action)}{when} for {cond_to_source(cond)}"
    clauses = []
    for arm in arms:
        head = "reveal" if arm.action is None else method(arm.action)
        tail = "otherwise" if arm.cond is None else f"for {cond_to_source(arm.cond)}"
        clauses.append(f"{head} {tail}")
    return f"mask {target}{when} {{ {'; '.join(clauses)} }}"


def rule_source(rule: model.RowRule) -> str:
    """A row rule as the `filter` or `restrict` statement it came from (or one that means the
    same: a purpose written after `unless` may come back in the `to` list)."""
    table = ir.dotted(rule.table)
    if rule.kind == "filter" and rule.where is not None:
        text = f"filter {table} where {expr_to_source(rule.where)}"
        if isinstance(rule.allow, ir.CondConst) and not rule.allow.value:
            return text
        return f"{text} unless {cond_to_source(rule.allow)}"
    items = rule.allow.items if isinstance(rule.allow, ir.CondOr) else (rule.allow,)
    to: list[str] = []
    rest: list[ir.Condition] = []
    for item in items:
        if not rest and isinstance(item, ir.PurposeIs | ir.AnyPurpose):
            to.append(cond_to_source(item))
        else:
            rest.append(item)
    if not to:  # not a form `restrict` can write: say what it means
        return f"restrict {table} to {cond_to_source(rule.allow)}"
    unless = ""
    if rest:
        cond = rest[0] if len(rest) == 1 else ir.CondOr(items=tuple(rest))
        unless = f" unless {cond_to_source(cond)}"
    return f"restrict {table} to {', '.join(to)}{unless}"


def _names(values: t.Iterable[str]) -> str:
    return ", ".join(name_to_source(v) for v in values)


def project_source(p: model.ProjectInfo) -> str:
    parts = [
        f"purposes {_names(pp.purpose for pp in p.purposes)}",
        f"members {_names(p.members) or '{}'}",
        f"sources {', '.join(ir.dotted(s) for s in p.sources) or '{}'}",
    ]
    return f"project {name_to_source(p.name)} {{ {'; '.join(parts)} }}"


def purpose_source(p: model.PurposeInfo) -> str:
    parts = []
    if p.description is not None:
        parts.append(f"description {ir.string_source(p.description)}")
    if p.acknowledgement is not None:
        parts.append(f"acknowledgement {ir.string_source(p.acknowledgement)}")
    body = f" {{ {'; '.join(parts)} }}" if parts else ""
    return f"purpose {name_to_source(p.name)}{body}"


def user_source(u: model.UserInfo) -> str:
    parts = [f"groups {_names(u.groups)}"] if u.groups else []
    parts += [
        f"{ir.quote_part(k)} {', '.join(ir.string_source(v) for v in vs)}" for k, vs in u.attributes
    ]
    body = f" {{ {'; '.join(parts)} }}" if parts else ""
    return f"user {name_to_source(u.name)}{body}"


def state_source(pp: model.ProjectPurpose) -> str:
    """`approved by carol at …`, `stale (approved by … ; changed: …)`, `pending`, `revoked …`."""
    text = pp.state.value
    if pp.approved_by is not None:
        text += f" (by {name_to_source(pp.approved_by)} at {pp.approved_at})"
    if pp.changes:
        text += f"; changed since: {'; '.join(pp.changes)}"
    return text


# ============================================================================ the diff


def _keyed(
    kind: str,
    old: t.Mapping[str, str],
    new: t.Mapping[str, str],
) -> list[Change]:
    """Changes between two maps of subject -> text."""
    out = [Change(op="-", kind=kind, subject=k, old=v) for k, v in old.items() if k not in new]
    out += [Change(op="+", kind=kind, subject=k, new=v) for k, v in new.items() if k not in old]
    out += [
        Change(op="~", kind=kind, subject=k, old=v, new=new[k])
        for k, v in old.items()
        if k in new and new[k] != v
    ]
    return out


def _members(kind: str, project: str, old: t.Iterable[str], new: t.Iterable[str]) -> list[Change]:
    before, after = set(old), set(new)
    return [
        Change(op="-" if x in before else "+", kind=kind, subject=f"{project}: {x}")
        for x in sorted(before ^ after)
    ]


def _sorted(changes: t.Iterable[Change]) -> tuple[Change, ...]:
    return tuple(sorted(changes, key=lambda c: (c.subject, c.kind, _OP_ORDER[c.op])))


def _mask_changes(old: model.Program, new: model.Program) -> list[Change]:
    """Per column: the whole decision before and after. A change that the veil text does not
    show (the column's type) is said in a trailing comment."""
    olds = {ir.dotted((*m.table, m.column)): m for m in old.masks}
    news = {ir.dotted((*m.table, m.column)): m for m in new.masks}
    out = [
        Change(op="-", kind="mask", subject=k, old=mask_source(m))
        for k, m in olds.items()
        if k not in news
    ]
    out += [
        Change(op="+", kind="mask", subject=k, new=mask_source(m))
        for k, m in news.items()
        if k not in olds
    ]
    for k in olds.keys() & news.keys():
        a, b = olds[k], news[k]
        if a == b:
            continue
        was, now = mask_source(a), mask_source(b)
        if was == now:
            was, now = f"{was}  # {a.type}", f"{now}  # {b.type}"
        out.append(Change(op="~", kind="mask", subject=k, old=was, new=now))
    return out


def _rule_changes(old: model.Program, new: model.Program) -> list[Change]:
    """Per table: rules in both are kept; the others are paired in order, per kind, as changed
    rules; what is left over is added or removed."""
    out: list[Change] = []
    for key in sorted({r.table for r in (*old.row_rules, *new.row_rules)}):
        subject = ir.dotted(key)
        before, after = list(old.rules_of(key)), list(new.rules_of(key))
        for rule in list(before):
            if rule in after:
                before.remove(rule)
                after.remove(rule)
        for kind in ("filter", "restrict"):
            gone = [r for r in before if r.kind == kind]
            came = [r for r in after if r.kind == kind]
            for a, b in zip(gone, came, strict=False):
                out.append(
                    Change(
                        op="~",
                        kind="row rule",
                        subject=subject,
                        old=rule_source(a),
                        new=rule_source(b),
                    )
                )
            out += [
                Change(op="-", kind="row rule", subject=subject, old=rule_source(r))
                for r in gone[len(came) :]
            ]
            out += [
                Change(op="+", kind="row rule", subject=subject, new=rule_source(r))
                for r in came[len(gone) :]
            ]
    return out


def _catalog_changes(old: model.Program, new: model.Program) -> list[Change]:
    olds = {tb.key: tb for tb in old.tables}
    news = {tb.key: tb for tb in new.tables}
    out = [Change(op="-", kind="table", subject=ir.dotted(k)) for k in olds if k not in news]
    out += [Change(op="+", kind="table", subject=ir.dotted(k)) for k in news if k not in olds]
    for key in olds.keys() & news.keys():
        a = {c.name: str(c.type) for c in olds[key].columns}
        b = {c.name: str(c.type) for c in news[key].columns}
        out += _keyed(
            "column",
            {ir.dotted((*key, n)): v for n, v in a.items()},
            {ir.dotted((*key, n)): v for n, v in b.items()},
        )
        if [n for n in a if n in b] != [n for n in b if n in a]:
            out.append(
                Change(
                    op="~",
                    kind="column order",
                    subject=ir.dotted(key),
                    old=", ".join(a),
                    new=", ".join(b),
                )
            )
    return out


def _project_changes(old: model.Program, new: model.Program) -> list[Change]:
    olds = {p.name: p for p in old.projects}
    news = {p.name: p for p in new.projects}
    out = [
        Change(op="-", kind="project", subject=name_to_source(n), old=project_source(p))
        for n, p in olds.items()
        if n not in news
    ]
    out += [
        Change(op="+", kind="project", subject=name_to_source(n), new=project_source(p))
        for n, p in news.items()
        if n not in olds
    ]
    for name in sorted(olds.keys() & news.keys()):
        a, b = olds[name], news[name]
        subject = name_to_source(name)
        if a.documentation != b.documentation:
            out.append(
                Change(
                    op="~",
                    kind="project documentation",
                    subject=subject,
                    old=_opt_string(a.documentation),
                    new=_opt_string(b.documentation),
                )
            )
        out += _members("project member", subject, a.members, b.members)
        out += _members(
            "project source", subject, map(ir.dotted, a.sources), map(ir.dotted, b.sources)
        )
        states = {f"{subject}: {name_to_source(pp.purpose)}": state_source(pp) for pp in a.purposes}
        new_states = {
            f"{subject}: {name_to_source(pp.purpose)}": state_source(pp) for pp in b.purposes
        }
        for c in _keyed("project purpose", states, new_states):
            out.append(
                c
                if c.op != "~"
                else Change(op="~", kind="approval", subject=c.subject, old=c.old, new=c.new)
            )
    return out


def _opt_string(value: str | None) -> str:
    return "(none)" if value is None else ir.string_source(value)


def diff_programs(old: model.Program, new: model.Program) -> PlanDiff:
    """What changes from `old` to `new` (both checked), by section, deterministically sorted."""
    old_protected = {tb.key for tb in old.protected_tables}
    new_protected = {tb.key for tb in new.protected_tables}
    gained = tuple(sorted(new_protected - old_protected))
    lost = tuple(sorted(old_protected - new_protected))
    protection = [Change(op="+", kind="protected table", subject=ir.dotted(k)) for k in gained]
    protection += [Change(op="-", kind="protected table", subject=ir.dotted(k)) for k in lost]

    def users(p: model.Program) -> dict[str, str]:
        return {name_to_source(u.name): user_source(u) for u in p.users}

    def groups(p: model.Program) -> dict[str, str]:
        return {name_to_source(g): f"group {name_to_source(g)}" for g in p.groups}

    def purposes(p: model.Program) -> dict[str, str]:
        return {name_to_source(x.name): purpose_source(x) for x in p.purposes}

    return PlanDiff(
        protection=_sorted(protection),
        catalog=_sorted(_catalog_changes(old, new)),
        masks=_sorted(_mask_changes(old, new)),
        row_rules=_sorted(_rule_changes(old, new)),
        projects=_sorted(_project_changes(old, new)),
        purposes=_sorted(_keyed("purpose", purposes(old), purposes(new))),
        people=_sorted(
            [*_keyed("user", users(old), users(new)), *_keyed("group", groups(old), groups(new))]
        ),
        newly_protected=gained,
        unprotected=lost,
    )


# ============================================================================ the header


def render_header(
    diff: PlanDiff,
    *,
    target: str,
    old_label: str,
    new_label: str,
    access: t.Sequence[str] = (),
) -> list[str]:
    """The plan as lines of text (without `-- `): sources, every change, who gains or loses
    what (`access`, from `veil.access.access_lines`), and the totals."""
    lines = [
        f"veil plan for {target}",
        f"  from (OLD): {old_label}",
        f"  to   (NEW): {new_label}",
        "",
    ]
    if diff.empty:
        lines.append("No changes: NEW's policies are those of OLD. Applying this changes nothing.")
        return lines
    lines.append("Changes (+ added, - removed, ~ changed):")
    for title, section in diff.sections:
        if not section:
            continue
        lines += ["", title]
        for c in section:
            lines.append(f"  {c}")
            if c.old is not None:
                lines.append(f"      was: {c.old}")
            if c.new is not None:
                lines.append(f"      now: {c.new}")
    if access:
        lines += ["", *access]
    lines += [
        "",
        f"Plan: {diff.count('+')} to add, {diff.count('~')} to change, "
        f"{diff.count('-')} to remove.",
    ]
    return lines


def removed_rows(diff: PlanDiff) -> list[str]:
    """The governance rows NEW's synchronisation deletes, in words."""
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


# ============================================================================ the script


@dataclass(frozen=True, slots=True, kw_only=True)
class Plan:
    """A plan: `sql` is None when OLD or NEW breaks the target's rules (`old_diagnostics` holds
    only errors: OLD's warnings were known when it was applied)."""

    sql: str | None
    diff: PlanDiff
    access: tuple[AccessChange, ...]
    old_diagnostics: tuple[Diagnostic, ...]
    new_diagnostics: tuple[Diagnostic, ...]


def plan_script(
    old: model.Program,
    new: model.Program,
    target: str,
    *,
    old_label: str = "OLD",
    new_label: str = "NEW",
    options: Options | None = None,
) -> Plan:
    """The plan for `target` (deterministic), compiled with `options` (both sides). Raises
    PlanUnsupported for a target without plans."""
    from veil.targets import get_target

    tgt = get_target(target, options)
    old_diags = tuple(sort_diagnostics([d for d in tgt.check(old) if d.is_error]))
    new_diags = tuple(sort_diagnostics(tgt.check(new)))
    diff = diff_programs(old, new)
    access = diff_access(old, new)
    sql = None
    if not any(d.is_error for d in (*old_diags, *new_diags)):
        header = render_header(
            diff,
            target=target,
            old_label=old_label,
            new_label=new_label,
            access=access_lines(access),
        )
        notes = PlanNotes(old_label=old_label, removed_rows=tuple(removed_rows(diff)))
        sql = tgt.plan(tgt.lower(old), tgt.lower(new), header, notes)
    return Plan(
        sql=sql, diff=diff, access=access, old_diagnostics=old_diags, new_diagnostics=new_diags
    )
