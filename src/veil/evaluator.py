"""The reference semantics: (user, project, table, row) -> visible row, clear or masked cells.

Every target's generated SQL must give the same answers as this module; the PostgreSQL tests
run the generated DDL and compare cell by cell. Each rule below is one a target must copy.

Who (conditions, two-valued)
    `purpose P` holds iff the context's project is a project of the program, the user is one of
    its members, the table is one of its sources, and one of its APPROVED purposes satisfies P
    (`model.purpose_satisfies`: a sub-purpose satisfies its ancestors, never the reverse).
    `any purpose`: the same with any approved purpose. Pending, stale and revoked purposes grant
    nothing. `group G` / `attribute K = "V"`: G among the user's declared groups / V among the
    user's values for K; an undeclared user has no groups and no attributes. `user U`: the name
    is U (exact, case-sensitive). Everything fails closed.

Rows (`RowRule`)
    A rule lets a row through iff `allow` holds, or `where` is TRUE for the row (NULL hides).
    The rules of a table are AND-ed; a table without rules shows every row.

Cells (`ColumnMask`)
    Clear when `when` is FALSE for the row (a NULL `when` masks: fail closed); otherwise the first
    arm whose condition holds decides (`action` None = clear). A method's value is its registry
    entry's (`veil.methods`), through `masking.apply_method`.

Cells under native tag policies (`native_cell`)
    What a platform's own tag policy shows for a column it tags, known to the repository or not
    ("a column tagged after the apply"): a column with a mask of its own in the repository
    keeps it (a policy set on the column beats one bound to a tag); otherwise the deepest
    `mask tagged` covering the column's platform tag decides (`model.TagMask`), in every row,
    with the arms for the column's type; its purpose checks are about the table when the
    repository knows it and fail closed when it does not; a `hash` is salted with the table's
    name, NULL on an unknown table. No mask covering the tag: clear.
    `abac_cell` is Databricks' variant: only the catalog's tables have policies, a policy
    matches one `mask tagged` tag exactly, and a column with its own mask that a policy also
    matches has two masks, so its queries fail (EvaluationError).

Row predicates follow SQL (`rowexpr.py`): three-valued logic, NULL = Python None.
"""

from __future__ import annotations

import datetime as dt
import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

from veil import ir, methods, model
from veil.diagnostics import NO_SPAN, Span
from veil.masking import TEST_HASH_KEY, apply_method
from veil.methods import EvaluationError
from veil.rowexpr import coerce_value, eval_expr, eval_predicate

__all__ = [
    "CellResult",
    "Context",
    "EvaluatedRow",
    "EvaluationError",
    "NoPurpose",
    "PurposeCheck",
    "RowResult",
    "abac_cell",
    "check_purposes",
    "coerce_row",
    "decide_arm",
    "eval_condition",
    "eval_expr",
    "eval_predicate",
    "evaluate_cell",
    "evaluate_table",
    "mask_of",
    "mask_value",
    "native_cell",
    "policy_span",
    "visible_row",
]

UTC = dt.UTC

EvaluatedRow = dict[str, object]
"""One visible row as shown to the user: catalog column name -> shown value, in catalog order."""


def _utc_now() -> dt.datetime:
    return dt.datetime.now(UTC)


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """Who is asking, under which project, and when.

    `now` must be timezone-aware; it is stored in UTC. `today()` is the UTC date of `now`
    (targets run with the session time zone set to UTC).
    """

    user: str
    project: str | None = None
    now: dt.datetime = field(default_factory=_utc_now)
    #: (project, purpose, text) the user has acknowledged; None assumes the user acknowledged
    #: every current text (what `veil test` and `veil explain` model by default).
    acknowledged: frozenset[tuple[str, str, str]] | None = None
    #: The key of the `hash` method (a database keeps its own secret one; see methods/values.py).
    hash_key: str = TEST_HASH_KEY

    def __post_init__(self) -> None:
        if self.now.tzinfo is None or self.now.utcoffset() is None:
            raise ValueError("Context.now must be timezone-aware")
        object.__setattr__(self, "now", self.now.astimezone(UTC))

    def today(self) -> dt.date:
        return self.now.date()


# --------------------------------------------------------------------------------------------
# Purposes


class NoPurpose(enum.Enum):
    """Why no purpose applies, in the order the checks are made (the first failing one wins)."""

    NO_PROJECT = "no_project"
    UNKNOWN_PROJECT = "unknown_project"
    NOT_MEMBER = "not_member"
    NOT_APPROVED = "not_approved"
    NOT_ACKNOWLEDGED = "not_acknowledged"
    NOT_SOURCE = "not_source"


@dataclass(frozen=True, slots=True, kw_only=True)
class PurposeCheck:
    """The purposes a user acts under (for one table), or why there are none."""

    purposes: tuple[str, ...]
    reason: NoPurpose | None
    project: model.ProjectInfo | None = None


def check_purposes(
    program: model.Program,
    user: str,
    project: str | None,
    table: model.TableKey | None,
    acknowledged: frozenset[tuple[str, str, str]] | None = None,
) -> PurposeCheck:
    """The approved purposes of the active project that `user` acts under for `table`.

    Checks, in order: a project is active; it is a project of the program; the user is a
    member; it has at least one APPROVED purpose; of those, the ones whose acknowledgement text
    (own or inherited) the user acknowledged — a purpose without a text needs none, and
    `acknowledged=None` assumes every current text was acknowledged; the table is one of its
    sources (skipped when `table` is None, for a project-level summary). Any failure -> no
    purpose.
    """
    if project is None:
        return PurposeCheck(purposes=(), reason=NoPurpose.NO_PROJECT)
    info = program.project(project)
    if info is None:
        return PurposeCheck(purposes=(), reason=NoPurpose.UNKNOWN_PROJECT)
    if user not in info.members:
        return PurposeCheck(purposes=(), reason=NoPurpose.NOT_MEMBER, project=info)
    active = info.active_purposes
    if not active:
        return PurposeCheck(purposes=(), reason=NoPurpose.NOT_APPROVED, project=info)
    if acknowledged is not None:
        active = tuple(p for p in active if _acknowledged(program, info.name, p, acknowledged))
        if not active:
            return PurposeCheck(purposes=(), reason=NoPurpose.NOT_ACKNOWLEDGED, project=info)
    if table is not None and table not in info.sources:
        return PurposeCheck(purposes=(), reason=NoPurpose.NOT_SOURCE, project=info)
    return PurposeCheck(purposes=active, reason=None, project=info)


def _acknowledged(
    program: model.Program, project: str, purpose: str, done: frozenset[tuple[str, str, str]]
) -> bool:
    info = program.purpose(purpose)
    text = info.acknowledgement if info is not None else None
    return text is None or (project, purpose, text) in done


def eval_condition(
    program: model.Program, cond: ir.Condition, ctx: Context, table: model.TableKey
) -> bool:
    """Whether a condition (who) holds for the context, on `table`. Two-valued, fail closed."""
    match cond:
        case ir.PurposeIs(purpose=name):
            acting = check_purposes(
                program, ctx.user, ctx.project, table, ctx.acknowledged
            ).purposes
            return any(model.purpose_satisfies(a, name.value) for a in acting)
        case ir.AnyPurpose():
            return bool(
                check_purposes(program, ctx.user, ctx.project, table, ctx.acknowledged).purposes
            )
        case ir.InGroup(group=name):
            info = program.user(ctx.user)
            return info is not None and name.value in info.groups
        case ir.IsUser(user=name):
            return ctx.user == name.value
        case ir.HasAttribute(key=key, value=value):
            info = program.user(ctx.user)
            return info is not None and value in info.values(key)
        case ir.CondAnd(items=items):
            return all([eval_condition(program, i, ctx, table) for i in items])
        case ir.CondOr(items=items):
            return any([eval_condition(program, i, ctx, table) for i in items])
        case ir.CondNot(item=item):
            return not eval_condition(program, item, ctx, table)
        case ir.CondConst(value=value):
            return value
        case _:  # pragma: no cover - the union is closed
            raise EvaluationError(f"unknown condition {cond!r}")


# --------------------------------------------------------------------------------------------
# Rows


@dataclass(frozen=True, slots=True, kw_only=True)
class RowResult:
    """`visible` is the AND of every rule; `rules` says, per rule, whether it let the row pass."""

    visible: bool
    rules: tuple[tuple[model.RowRule, bool], ...]


def coerce_row(table: model.CatalogTable, row: Mapping[str, object]) -> dict[str, object]:
    """The row with each catalog column's value coerced to the column type (`coerce_value`).

    Missing columns are NULL; keys that are not columns of the table are dropped.
    """
    return {c.name: coerce_value(row.get(c.name), c.type) for c in table.columns}


def _catalog_table(program: model.Program, table: model.TableKey) -> model.CatalogTable:
    info = program.table(table)
    if info is None:
        raise EvaluationError(f"`{model.table_str(table)}` is not a table of the catalog")
    return info


def _rule_passes(
    program: model.Program, rule: model.RowRule, row: Mapping[str, object], ctx: Context
) -> bool:
    if eval_condition(program, rule.allow, ctx, rule.table):
        return True
    if rule.where is None:
        return False
    return eval_predicate(program, rule.where, row, ctx) is True


def visible_row(
    program: model.Program, table: model.TableKey, row: Mapping[str, object], ctx: Context
) -> RowResult:
    """Whether the row is visible: every rule's `allow` holds or its `where` is TRUE.

    `row` maps column names to values (missing columns are NULL); values are coerced to the
    column types first (`coerce_row`). `where` is not evaluated when `allow` holds.
    """
    values = coerce_row(_catalog_table(program, table), row)
    results = tuple((r, _rule_passes(program, r, values, ctx)) for r in program.rules_of(table))
    return RowResult(visible=all(ok for _, ok in results), rules=results)


# --------------------------------------------------------------------------------------------
# Cells


@dataclass(frozen=True, slots=True, kw_only=True)
class CellResult:
    """The shown value of one cell; `method` is `methods.action_name` (`reveal` when clear).

    `policy` is the span of the arm that decided, or of the mask's first policy when the arm has
    no span or when `when` cleared the cell; None for a column without a mask.
    """

    value: object
    masked: bool
    method: str
    policy: Span | None


_FAIL_CLOSED_ARM = model.MaskArm(action=methods.MaskNull(), cond=None)


def decide_arm(program: model.Program, mask: model.ColumnMask, ctx: Context) -> model.MaskArm:
    """The first arm whose condition holds for the user (no row data needed).

    A mask whose arms all fail (the checker always ends them with `otherwise`) masks with
    `null`: fail closed.
    """
    for arm in mask.arms:
        if arm.cond is None or eval_condition(program, arm.cond, ctx, mask.table):
            return arm
    return _FAIL_CLOSED_ARM


def policy_span(mask: model.ColumnMask | model.TagMask, arm: model.MaskArm | None) -> Span | None:
    """The span to report for a decision: the arm's, else the mask's first policy, else None."""
    if arm is not None and arm.span != NO_SPAN:
        return arm.span
    return mask.policies[0] if mask.policies else None


def mask_value(
    program: model.Program,
    mask: model.ColumnMask,
    value: object,
    row: Mapping[str, object],
    ctx: Context,
) -> CellResult:
    """The shown value of `value` (the clear cell) in `row` under `mask`.

    The first arm whose condition holds decides: reveal -> clear. A masking arm masks unless
    `when` is FALSE for the row (TRUE, NULL or no `when` -> masked): the method is applied to
    the value coerced to the column type. A clear result returns `value` unchanged. `row`
    (column name -> value, coerced like `visible_row` does) is read by `when` only, and only
    when the arm masks.
    """
    arm = decide_arm(program, mask, ctx)
    if arm.action is None:
        return CellResult(value=value, masked=False, method="reveal", policy=policy_span(mask, arm))
    if mask.when is not None and _when(program, mask, row, ctx) is False:
        return CellResult(
            value=value, masked=False, method="reveal", policy=policy_span(mask, None)
        )
    span = policy_span(mask, arm)
    shown = apply_method(arm.action, coerce_value(value, mask.type), mask.type, ctx.hash_key)
    return CellResult(value=shown, masked=True, method=methods.action_name(arm.action), policy=span)


def _when(
    program: model.Program, mask: model.ColumnMask, row: Mapping[str, object], ctx: Context
) -> bool | None:
    assert mask.when is not None
    table = program.table(mask.table)
    values = coerce_row(table, row) if table is not None else row
    return eval_predicate(program, mask.when, values, ctx)


def mask_of(program: model.Program, table: model.TableKey, column: str) -> model.ColumnMask | None:
    """The mask of one column (the checker leaves at most one per column)."""
    for m in program.masks:
        if m.table == table and m.column == column:
            return m
    return None


def evaluate_cell(
    program: model.Program,
    table: model.TableKey,
    column: str,
    row: Mapping[str, object],
    ctx: Context,
) -> CellResult:
    """The shown value of `column` in `row` (a column without a mask is clear, policy None)."""
    _catalog_table(program, table)
    value = row.get(column)
    mask = mask_of(program, table, column)
    if mask is None:
        return CellResult(value=value, masked=False, method="reveal", policy=None)
    return mask_value(program, mask, value, row, ctx)


def native_cell(
    program: model.Program,
    table: model.TableKey,
    column: str,
    type_name: str,
    tag: str | None,
    value: object,
    ctx: Context,
    row: Mapping[str, object] | None = None,
) -> CellResult:
    """The value a native tag policy shows for `column` of `table` (which the repository may
    not know), a column of type `type_name` (one of `model.TAG_POLICY_TYPES`) that the
    platform tags `tag` (None: untagged). `row` is read by the column's own mask's `when`."""
    known = program.table(table) is not None
    if known:
        own = mask_of(program, table, column)
        if own is not None:
            return mask_value(program, own, value, row or {column: value}, ctx)
    decided = model.tag_mask_for(program.tag_masks, tag)
    if decided is None:
        return CellResult(value=value, masked=False, method="reveal", policy=None)
    if decided.tied:  # no native policy can be written; the target refuses to compile
        raise EvaluationError(f"masks on tag `{decided.tag}` tie")
    source = table if known else model.TAGGED_TABLE
    arms = decided.arms_for(type_name)
    arm = next(
        (a for a in arms if a.cond is None or eval_condition(program, a.cond, ctx, source)),
        _FAIL_CLOSED_ARM,
    )
    span = policy_span(decided, arm)
    if arm.action is None:
        return CellResult(value=value, masked=False, method="reveal", policy=span)
    ty = model.SqlType(name=type_name)
    action = arm.action
    if isinstance(action, methods.MaskHash):
        if source == model.TAGGED_TABLE:
            return CellResult(value=None, masked=True, method="hash", policy=span)
        action = replace(action, salt=model.table_id(table))
    shown = apply_method(action, coerce_value(value, ty), ty, ctx.hash_key)
    return CellResult(value=shown, masked=True, method=methods.action_name(action), policy=span)


def abac_cell(
    program: model.Program,
    table: model.TableKey,
    column: str,
    type_name: str,
    tag: str | None,
    value: object,
    ctx: Context,
    row: Mapping[str, object] | None = None,
) -> CellResult:
    """What Databricks' native tag policies (Unity Catalog ABAC) show for `column` of `table`,
    a column of type `type_name` whose governed tag names the veil tag `tag` (None: untagged).
    Unlike `native_cell`: only tables of the catalog have the policies (another table's column
    is clear), a policy matches the tag of one `mask tagged` exactly (a tag under it is not
    matched), and a column with its own mask that a policy also matches has two masks, so
    every query of it fails (EvaluationError)."""
    if program.table(table) is None or tag is None:
        return native_cell(program, table, column, type_name, None, value, ctx, row)
    exact = next((m for m in program.tag_masks if str(m.tag) == tag), None)
    if exact is None:
        return native_cell(program, table, column, type_name, None, value, ctx, row)
    if mask_of(program, table, column) is not None:
        raise EvaluationError(f"`{column}` has its own mask and the policy of tag `{tag}`")
    return native_cell(program, table, column, type_name, tag, value, ctx, row)


def evaluate_table(
    program: model.Program,
    table: model.TableKey,
    rows: Sequence[Mapping[str, object]],
    ctx: Context,
) -> list[EvaluatedRow | None]:
    """What a query of every column of `table` returns, row by row: None for a hidden row,
    else every catalog column (in catalog order) -> shown value. Unmasked and clear cells are
    the input values unchanged; missing columns are NULL."""
    info = _catalog_table(program, table)
    masks = {c.name: mask_of(program, table, c.name) for c in info.columns}
    out: list[EvaluatedRow | None] = []
    for row in rows:
        if not visible_row(program, table, row, ctx).visible:
            out.append(None)
            continue
        shown: EvaluatedRow = {}
        for col in info.columns:
            mask = masks[col.name]
            clear = row.get(col.name)
            shown[col.name] = (
                clear if mask is None else mask_value(program, mask, clear, row, ctx).value
            )
        out.append(shown)
    return out
