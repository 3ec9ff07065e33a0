"""What the passes learn, handed from one pass to the next.

Each pass is a pure function `(policies, facts) -> (facts, diagnostics)`: it reads what earlier
passes put here and returns a copy with its own findings (`dataclasses.replace`). Nothing here
is mutated after it is built.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from veil import ir, model
from veil.checker.common import ColumnKey
from veil.diagnostics import Span


@dataclass(frozen=True, slots=True, kw_only=True)
class Decision:
    """The masks that decide one column: one, or several `unless` masks whose exceptions merge.

    `masks` are indices into `policies.of_type(ir.Mask)`, in source order.
    """

    column: ColumnKey
    masks: tuple[int, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Facts:
    #: The policies are a part of the repository (`checker/units.py`): names that only the
    #: whole catalog can answer (a bare column or a tag that a mask targets, a project's
    #: sources, a `tag … on` a table of another part) are not reported here; `units.py`
    #: checks them over the whole repository.
    partial: bool = False
    # collect_declarations
    tables: Mapping[model.TableKey, model.CatalogTable] = field(default_factory=dict)
    purposes: Mapping[str, model.PurposeInfo] = field(default_factory=dict)
    declared_groups: frozenset[str] = frozenset()
    users: Mapping[str, model.UserInfo] = field(default_factory=dict)
    projects: Mapping[str, ir.Project] = field(default_factory=dict)
    # resolve_names: per mask (same index as `policies.of_type(ir.Mask)`), the columns it reaches
    reach: tuple[tuple[ColumnKey, ...], ...] = ()
    # resolve_conflicts: per column reached by any mask, in catalog order
    decisions: tuple[Decision, ...] = ()
    # check_masks, check_rows, compute_approvals
    column_masks: tuple[model.ColumnMask, ...] = ()
    tag_masks: tuple[model.TagMask, ...] = ()
    row_rules: tuple[model.RowRule, ...] = ()
    project_infos: tuple[model.ProjectInfo, ...] = ()
    # check_tests: what each `expect` line names (by the span of the line)
    expect_targets: tuple[tuple[Span, model.ExpectTarget], ...] = ()
    # Derived from the above once per Facts (not per name looked up, which made checking
    # quadratic): declared groups and every group some user is in; every user attribute key.
    groups: frozenset[str] = field(init=False, default=frozenset(), compare=False, repr=False)
    attribute_keys: frozenset[str] = field(
        init=False, default=frozenset(), compare=False, repr=False
    )

    def __post_init__(self) -> None:
        users = self.users.values()
        groups = self.declared_groups | {g for u in users for g in u.groups}
        object.__setattr__(self, "groups", groups)
        keys = frozenset(k for u in users for k, _ in u.attributes)
        object.__setattr__(self, "attribute_keys", keys)

    def column(self, key: ColumnKey) -> model.CatalogColumn:
        col = self.tables[key[0]].column(key[1])
        assert col is not None, key
        return col

    def column_index(self, key: ColumnKey) -> int:
        return [c.name for c in self.tables[key[0]].columns].index(key[1])
