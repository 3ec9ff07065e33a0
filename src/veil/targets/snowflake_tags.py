"""Snowflake native tag policies: `mask tagged …` as tag-based masking policies as well, so that a
column tagged on the platform after the apply is masked without a new compile.

With `native_tags` (veil.toml), the Snowflake script also

* creates two tags in veil's schema: `CLASSIFICATION`, whose value on a column is the veil tag
  path of what it holds (`pii.card`), and `SOURCE`, whose value on a table is the table's name
  in the repository as `model.table_id` writes it (`sales.orders`, `"a.b".c`);
* sets `SOURCE` on every table of the catalog and `CLASSIFICATION` on every catalog column that
  a `mask tagged` reaches (its deepest tag that a mask covers);
* binds to `CLASSIFICATION` one masking policy per data type (a tag holds at most one per type,
  and a tag-based policy protects the columns of its type only). Each body reads the column's
  `CLASSIFICATION` value: the deepest `mask tagged` that covers it decides, with the arms of
  that mask lowered for the type; its purpose checks are about the table its `SOURCE` tag
  names, so a column of a table veil does not know (no `SOURCE`) acts under no purpose, and a
  `hash` there is NULL. A value no mask covers is shown as it is.

A column the repository knows keeps its own masking policy: a policy set on a column takes
precedence over a tag-based one, which is also veil's order (a named column beats a tag), and
only a column's own policy knows its length, precision and the columns its `when` reads. A
tag-based policy masks in every row (it drops `when`: the columns it reads may not exist).
"""

from __future__ import annotations

import typing as t

from veil import model
from veil.diagnostics import Diagnostic
from veil.model import SqlType
from veil.targets.script import NativeTags, Policy, TagAssignment

if t.TYPE_CHECKING:
    from veil.targets.snowflake import SnowflakeTarget

#: The tags, by role: what a column holds, and the table's name in the repository.
CLASSIFICATION = "classification"
SOURCE = "source"
#: The policies' one argument.
ARG = "val"


def tag_name(target: SnowflakeTarget, role: str) -> str:
    """A tag of veil's schema, as the script writes it (`VEIL.CLASSIFICATION`)."""
    return target.gov(role)


def tag_lookup(target: SnowflakeTarget, function: str, role: str) -> str:
    """`SYSTEM$GET_TAG_ON_CURRENT_COLUMN('VEIL.CLASSIFICATION')` and its table twin: the
    function takes the tag's name as a string."""
    return f"SYSTEM$GET_TAG_ON_CURRENT_{function}({target.literal(tag_name(target, role))})"


def column_tag(program: model.Program, column: model.CatalogColumn) -> str | None:
    """The `CLASSIFICATION` value of a catalog column: its tag that the deepest `mask tagged`
    covers (the deepest such tag of the column, then the first by name), None when no
    `mask tagged` reaches it."""
    found = [
        (len(m.tag.parts), len(tag.parts), str(tag))
        for tag in column.tags
        for m in program.tag_masks
        if m.tag.covers(tag)
    ]
    if not found:
        return None
    best = max(found, key=lambda f: (f[0], f[1]))
    return min(f[2] for f in found if f[:2] == best[:2])


def covered_sql(target: SnowflakeTarget, tag: str) -> str:
    """The column's classification is `tag` or a tag under it: `value.` starts with `tag.`
    (path segments, never a bare string prefix: `pii` does not cover `piix`). NULL, so false,
    on a column without the tag."""
    value = tag_lookup(target, "COLUMN", CLASSIFICATION)
    return f"STARTSWITH({value} || '.', {target.literal(tag + '.')})"


def policy_body(target: SnowflakeTarget, program: model.Program, type_name: str) -> str:
    """The body of the policy for columns of `type_name`: the deepest covering mask decides."""
    ty = SqlType(name=type_name)
    arg = target.ident(ARG)
    whens = []
    for tm in sorted(program.tag_masks, key=lambda m: (-len(m.tag.parts), m.tag.parts)):
        decided = target.tag_mask_sql(tm, type_name, ty, ARG, arg)
        whens.append(f"WHEN {covered_sql(target, str(tm.tag))} THEN {decided}")
    return f"CASE {' '.join(whens)} ELSE {arg} END"


def native_tags(target: SnowflakeTarget, program: model.Program) -> NativeTags | None:
    """The tags, tag-based policies and tag values of the script (None without `mask tagged`
    or without `native_tags`)."""
    if not target.options.native_tags or not program.tag_masks:
        return None
    classification = tag_name(target, CLASSIFICATION)
    policies = []
    for type_name in model.TAG_POLICY_TYPES:
        sql_type = target.sql_type(SqlType(name=type_name))
        bare = target.object_name("mask", "tag", sql_type.lower())
        name = target.gov(bare)
        policies.append(
            Policy(
                kind="tag masking policy",
                name=name,
                target=f"tag {classification} ({sql_type})",
                table=classification,
                params=((target.ident(ARG), sql_type),),
                returns=sql_type,
                body=target.lay_out(policy_body(target, program, type_name), "  "),
                detach=f"ALTER TAG {classification} UNSET MASKING POLICY {name}",
                drop=f"DROP MASKING POLICY {name}",
                bare=target.stored_name(bare),
            )
        )
    assignments = []
    for table in program.tables:
        sql = target.table_sql(table.key)
        assignments.append(
            TagAssignment(
                table=sql,
                column=None,
                tag=tag_name(target, SOURCE),
                value=model.table_id(table.key),
            )
        )
        for col in table.columns:
            value = column_tag(program, col)
            if value is not None:
                assignments.append(
                    TagAssignment(
                        table=sql, column=target.ident(col.name), tag=classification, value=value
                    )
                )
    return NativeTags(
        tags=(
            (classification, "veil: the veil tag of what a column holds (e.g. pii.card)"),
            (tag_name(target, SOURCE), "veil: the name of a table in the veil repository"),
        ),
        policies=tuple(policies),
        assignments=tuple(assignments),
    )


def tied_diagnostics(target: SnowflakeTarget, program: model.Program) -> list[Diagnostic]:
    """Masks of one tag that do not merge cannot be one tag-based policy."""
    return target.tied_tag_diagnostics(program, "T0107", "tag-based masking policy", "decision")
