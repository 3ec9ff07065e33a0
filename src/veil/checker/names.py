"""Pass `resolve_names`: every name a policy, project or approver uses must be declared.

Mask targets become the columns they reach (tags are applied by then); tables of `filter` and
`restrict` are named exactly; purposes, groups and users in conditions and projects must exist.
"""

from __future__ import annotations

import typing as t
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace

from veil import ir
from veil.checker import codes
from veil.checker.columns import all_tags, resolve_columns, resolve_table, tagged
from veil.checker.common import ColumnKey, close_matches, did_you_mean
from veil.checker.facts import Facts
from veil.diagnostics import Diagnostic, Span, error, warning


def resolve_names(policies: ir.PolicySet, facts: Facts) -> tuple[Facts, list[Diagnostic]]:
    diags: list[Diagnostic] = []
    names = Names(facts)
    reach: list[tuple[ColumnKey, ...]] = []
    for stmt in policies.statements():
        match stmt:
            case ir.Mask():
                reach.append(_mask_target(facts, stmt.target, diags))
                for clause in stmt.clauses:
                    if clause.cond is not None:
                        diags.extend(names.condition(clause.cond))
            case ir.Filter():
                diags.extend(resolve_table(facts.tables, stmt.table)[1])
                if stmt.unless is not None:
                    diags.extend(names.condition(stmt.unless))
            case ir.Restrict():
                diags.extend(resolve_table(facts.tables, stmt.table)[1])
                for cond in (*stmt.to, *([stmt.unless] if stmt.unless else [])):
                    diags.extend(names.condition(cond))
            case ir.Project():
                diags.extend(names.purposes(stmt.purposes))
                diags.extend(names.users(stmt.members))
                for src in () if facts.partial else stmt.sources:
                    diags.extend(resolve_table(facts.tables, src)[1])
            case ir.Approvers():
                if stmt.purpose is not None:
                    diags.extend(names.purposes([stmt.purpose]))
            case (
                ir.Table()
                | ir.TagOn()
                | ir.Purpose()
                | ir.Group()
                | ir.User()
                | ir.Approve()
                | ir.Revoke()
                | ir.TestCase()
            ):
                pass  # declarations (checked already); approvals and tests have their own passes
            case _:
                t.assert_never(stmt)
    diags.extend(_tags_no_policy_names(policies, facts))
    return replace(facts, reach=tuple(reach)), diags


def _tags_no_policy_names(policies: ir.PolicySet, facts: Facts) -> Iterator[Diagnostic]:
    """A column tag that no `mask tagged` covers, when it looks meant for one: close to a tag a
    policy names (`phi.contcat` for `phi.contact`), or in the family of one (`phi.x` when
    `phi.contact` is masked). Then the column it was meant to protect is clear. Other tags
    (`event_time`) are labels and are left alone. Warned once per tag, where first written."""
    named = [s.target.tag for s in policies.of_type(ir.Mask) if isinstance(s.target, ir.TagTarget)]
    spelled = sorted({str(n) for n in named})
    roots = {n.parts[0] for n in named}
    first: dict[tuple[str, ...], ir.TagPath] = {}
    for tb in facts.tables.values():
        for c in tb.columns:
            for tg in c.tags:
                if any(n.covers(tg) for n in named):
                    continue
                if tg.parts[0] in roots or close_matches(str(tg), spelled):
                    was = first.get(tg.parts)
                    if was is None or tg.span < was.span:
                        first[tg.parts] = tg
    for tg in sorted(first.values(), key=lambda x: x.span):
        yield warning(
            codes.TAG_NAMED_BY_NO_POLICY,
            f"no policy names the tag `{tg}`, so it protects nothing",
            tg.span,
            help=did_you_mean(
                str(tg),
                spelled,
                otherwise="mask it with `mask tagged …`, or rename it if it is only a label",
            ),
        )


def _mask_target(
    facts: Facts, target: ir.MaskTarget, diags: list[Diagnostic]
) -> tuple[ColumnKey, ...]:
    match target:
        case ir.ColumnTarget(name=name):
            found, errs = resolve_columns(facts.tables, name, every=True)
            if not (facts.partial and len(name.parts) == 1):
                diags.extend(errs)
            return found
        case ir.TagTarget(tag=tag):
            found = tagged(facts.tables, tag)
            if not found and not facts.partial:
                diags.append(unused_tag(tag, all_tags(facts.tables)))
            return found
        case _:
            t.assert_never(target)


def unused_tag(tag: ir.TagPath, tags: list[str]) -> Diagnostic:
    """A `mask tagged T` that reaches no column; `tags`: every tag of the catalog."""
    return warning(
        codes.UNUSED_TAG,
        f"no column is tagged `{tag}`, so this mask matches nothing",
        tag.span,
        help=did_you_mean(
            str(tag),
            tags,
            otherwise="tag columns in their `table` block or with `tag T on t.c`",
        ),
    )


@dataclass(frozen=True, slots=True)
class Names:
    """Checks the names of purposes, groups, users and attributes against the declarations."""

    facts: Facts

    def purposes(self, names: Iterable[ir.Name]) -> Iterator[Diagnostic]:
        for n in names:
            if n.value not in self.facts.purposes:
                yield error(
                    codes.UNKNOWN_PURPOSE,
                    f"unknown purpose `{n}`",
                    n.span,
                    help=did_you_mean(
                        n.value,
                        self.facts.purposes,
                        otherwise=f"declare it with `purpose {ir.name_source(n.value)}`",
                    ),
                )

    def users(self, names: Iterable[ir.Name]) -> Iterator[Diagnostic]:
        for n in names:
            if n.value not in self.facts.users:
                yield error(
                    codes.UNKNOWN_USER,
                    f"unknown user `{n}`",
                    n.span,
                    help=did_you_mean(
                        n.value,
                        self.facts.users,
                        otherwise=f"declare it with `user {ir.name_source(n.value)}`",
                    ),
                )

    def group(self, n: ir.Name) -> Iterator[Diagnostic]:
        if n.value not in self.facts.groups:
            yield error(
                codes.UNKNOWN_GROUP,
                f"unknown group `{n}`",
                n.span,
                help=did_you_mean(
                    n.value,
                    self.facts.groups,
                    otherwise=f"declare it with "
                    f"`group {ir.name_source(n.value)}` or list it in a "
                    "user's `groups`",
                ),
            )

    def attribute(self, key: str, span: Span) -> Iterator[Diagnostic]:
        if key not in self.facts.attribute_keys:
            yield warning(
                codes.UNKNOWN_ATTRIBUTE,
                f"no user has the attribute `{key}`",
                span,
                help=did_you_mean(
                    key,
                    self.facts.attribute_keys,
                    otherwise="give users this attribute, e.g. "
                    f'`user alice {{ {ir.quote_part(key)} "…" }}`',
                ),
            )

    def condition(self, cond: ir.Condition) -> Iterator[Diagnostic]:
        match cond:
            case ir.PurposeIs(purpose=p):
                yield from self.purposes([p])
            case ir.InGroup(group=g):
                yield from self.group(g)
            case ir.IsUser(user=u):
                yield from self.users([u])
            case ir.HasAttribute(key=key, span=span):
                yield from self.attribute(key, span)
            case ir.CondAnd(items=items) | ir.CondOr(items=items):
                for item in items:
                    yield from self.condition(item)
            case ir.CondNot(item=item):
                yield from self.condition(item)
            case ir.AnyPurpose() | ir.CondConst():
                pass
            case _:
                t.assert_never(cond)
