"""Databricks native tag policies: `mask tagged …` as Unity Catalog ABAC column mask policies
as well, so that a column tagged in Unity Catalog after the apply is masked without a new
compile (veil.toml `native_tags = ["databricks"]`).

With it, the Databricks script also

* creates one mask function per `mask tagged T`, `veil.mask__tag__<T>(val VARIANT, source
  STRING) RETURNS VARIANT`: Unity Catalog casts the matched column to the parameter and the
  result back to the column's type, so one function serves every column type. The body
  branches on the value's type (`schema_of_variant`) and runs the arms of the mask lowered for
  that type; a type veil has no arms for is masked with NULL (fail closed). Its purpose checks
  are about the table `source` names;
* creates, on every table of the catalog and for each `mask tagged T`, the policy
  `CREATE OR REPLACE POLICY veil_tag__<T> ON TABLE <t> COLUMN MASK veil.mask__tag__<T> TO
  \\`account users\\` FOR TABLES MATCH COLUMNS has_tag_value('veil_class', '<T encoded>') AS c ON
  COLUMN c USING COLUMNS ('<t as the repository names it>')`: the table's name reaches the
  function as a constant, so purposes are those of that table.

A column matches a policy when its governed tag `veil_class` has exactly the encoded value of
a mask's tag (`has_tag_value` compares whole values): the governed tag, created by an account
admin, should allow exactly the values the script lists. The script sets no tag: a column the
repository masks by name or by its catalog tags keeps its own mask (`SET MASK`), and a column
that both its own mask and a policy reach fails every query (two masks on one column); the
pre-flight refuses the script when a column veil masks already carries `veil_class`.
"""

from __future__ import annotations

import typing as t

from veil import model
from veil.diagnostics import Diagnostic, error
from veil.model import SqlType
from veil.targets.script import NativeTags, Policy

if t.TYPE_CHECKING:
    from veil.targets.databricks import DatabricksTarget

#: The governed tag (account level, created by an account admin) whose value names a mask.
TAG_KEY = "veil_class"
#: `Policy.kind` (and `applied_object.object_kind`) of a tag mask function and of an ABAC
#: policy: the templates pick each by it, and the clean-up drops the policies first.
FUNCTION_KIND = "tag mask function"
POLICY_KIND = "column mask policy"
#: The functions' parameters: the matched column's value, and the table's name.
ARG = "val"
SOURCE_ARG = "source"
#: Column mask policies per table (requirements page of Unity Catalog ABAC).
MAX_POLICIES_PER_TABLE = 50
#: `schema_of_variant` names of a value's type -> the veil type whose arms mask it, and the
#: type it is read as. Integers are BIGINT in a VARIANT and decimals keep their own precision,
#: so both are read as DECIMAL(38, 18) (an overflow fails the query).
DECIMAL_READ = SqlType(name="decimal", precision=38, scale=18)
VARIANT_TYPES: tuple[tuple[str, str, SqlType], ...] = (
    ("= 'STRING'", "text", SqlType(name="text")),
    ("= 'BIGINT'", "decimal", DECIMAL_READ),
    ("LIKE 'DECIMAL(%'", "decimal", DECIMAL_READ),
    ("IN ('DOUBLE', 'FLOAT')", "double", SqlType(name="double")),
    ("= 'BOOLEAN'", "boolean", SqlType(name="boolean")),
    ("= 'DATE'", "date", SqlType(name="date")),
    ("= 'TIMESTAMP_NTZ'", "timestamp", SqlType(name="timestamp")),
    ("= 'TIMESTAMP'", "timestamptz", SqlType(name="timestamptz")),
    ("= 'BINARY'", "binary", SqlType(name="binary")),
)


def encode_tag(path: str) -> str:
    """A veil tag path as a `veil_class` value: tag values may not hold `. , - = / :` (and
    some pages add `* < > %`), so only letters and digits are kept as they are; `.` is `__`,
    `_` is `_u`, and any other character `_x` and its code point in six hex digits. Each
    escape starts with `_` and the character after it says how long it is, so two paths
    never share a value (`a.b` is `a__b`, `a__b` is `a_u_ub`)."""
    out = []
    for ch in path:
        if ch == ".":
            out.append("__")
        elif ch == "_":
            out.append("_u")
        elif ch.isascii() and ch.isalnum():
            out.append(ch)
        else:
            out.append(f"_x{ord(ch):06x}")
    return "".join(out)


def decode_tag(value: str) -> str:
    """The veil tag path a `veil_class` value encodes (`encode_tag` undone)."""
    out, i = [], 0
    while i < len(value):
        ch = value[i]
        if ch != "_":
            out.append(ch)
            i += 1
            continue
        kind = value[i + 1]
        if kind == "_":
            out.append(".")
            i += 2
        elif kind == "u":
            out.append("_")
            i += 2
        else:
            out.append(chr(int(value[i + 2 : i + 8], 16)))
            i += 8
    return "".join(out)


def function_body(target: DatabricksTarget, tm: model.TagMask) -> str:
    """`CASE schema_of_variant(val) …`: the arms of `tm` for the value's type, the result as a
    VARIANT (Unity Catalog casts it to the column's type); NULL for any other type.

    Each purpose check calls the lookup (`active_purposes(source, …)`, the same arguments in
    every branch): a body that binds it once (`DatabricksTarget.one_lookup`) is a query, in
    which `val` is a correlated reference, and a correlated reference cannot be a VARIANT
    (UNSUPPORTED_CORRELATED_REFERENCE_DATA_TYPE, in local Spark as in Databricks' list of
    errors)."""
    val = target.ident(ARG)
    whens = []
    for test, type_name, read in VARIANT_TYPES:
        # try_: a branch of another type never raises, whatever the engine evaluates early
        typed = f"try_variant_get({val}, '$', {target.literal(target.sql_type(read))})"
        decided = target.tag_mask_sql(tm, type_name, read, ARG, typed)
        whens.append(f"WHEN schema_of_variant({val}) {test} THEN CAST({decided} AS VARIANT)")
    return f"CASE {' '.join(whens)} ELSE CAST(NULL AS VARIANT) END"


def native_tags(target: DatabricksTarget, program: model.Program) -> NativeTags | None:
    """The tag mask functions and ABAC policies of the script (None without `mask tagged` or
    without `native_tags`)."""
    if not target.options.native_tags or not program.tag_masks:
        return None
    functions, policies = [], []
    for tm in sorted(program.tag_masks, key=lambda m: m.tag.parts):
        if tm.tied:
            continue  # refused by `check`
        value = encode_tag(str(tm.tag))
        bare = target.object_name("mask", "tag", str(tm.tag))
        name = target.gov(bare)
        functions.append(
            Policy(
                kind=FUNCTION_KIND,
                name=name,
                target=f"tag {TAG_KEY} = {value}",
                table="",
                params=((target.ident(ARG), "VARIANT"), (target.ident(SOURCE_ARG), "STRING")),
                returns="VARIANT",
                body=target.lay_out(function_body(target, tm), "  "),
                # nothing to detach: the clean-up drops it after the policies that name it
                detach="",
                drop=f"DROP FUNCTION IF EXISTS {name}",
                bare=bare,
            )
        )
        policy = target.object_name("veil_tag", str(tm.tag))
        for table in program.tables:
            sql = target.table_sql(table.key)
            statement = (
                f"CREATE OR REPLACE POLICY {policy} ON TABLE {sql}\n"
                f"COMMENT {target.literal(f'veil: masks the columns tagged {TAG_KEY} = {value}')}\n"
                f"COLUMN MASK {name}\n"
                "TO `account users`\n"
                "FOR TABLES\n"
                f"MATCH COLUMNS has_tag_value({target.literal(TAG_KEY)}, "
                f"{target.literal(value)}) AS c\n"
                "ON COLUMN c\n"
                f"USING COLUMNS ({target.literal(model.table_id(table.key))})"
            )
            drop = f"DROP POLICY {policy} ON TABLE {sql}"
            policies.append(
                Policy(
                    kind=POLICY_KIND,
                    # the clean-up drops this kind first, before the function it names
                    name=f"POLICY {policy} ON TABLE {sql}",
                    target=f"table {model.table_str(table.key)} tag {TAG_KEY} = {value}",
                    table=sql,
                    body=statement,
                    detach="",
                    drop=drop,
                    bare=policy,
                )
            )
    return NativeTags(
        tags=((TAG_KEY, "veil: the veil tag of what a column holds, encoded"),),
        policies=(*policies, *functions),
        assignments=(),
    )


def preflight_groups(target: DatabricksTarget, program: model.Program) -> list[dict[str, t.Any]]:
    """Per catalog of the repository's tables (the current one for `schema.table`): where its
    information_schema is, the catalog (SQL), and the (schema, table) the repository declares
    there, in lower case as Unity Catalog keeps them. The pre-flight refuses a column tagged
    with a masked value in any other table of those catalogs: no policy of veil is on it."""
    groups: dict[str, dict[str, t.Any]] = {}
    for table in program.tables:
        info, catalog = target.catalog_place(table.key)
        g = groups.setdefault(info, {"info": info, "catalog": catalog, "declared": set()})
        g["declared"].add((table.key[-2].lower(), table.key[-1].lower()))
    return [{**groups[k], "declared": sorted(groups[k]["declared"])} for k in sorted(groups)]


def drift_settings(
    target: DatabricksTarget, program: model.Program, native: NativeTags | None
) -> dict[str, t.Any]:
    """What `veil verify --emit-sql` checks of the native tag policies (`native`, the script's;
    nothing without them): the policies expected on each declared table, the tag mask functions
    and their bodies, the information schemas to read, the masked values and the columns veil
    masks itself."""
    if native is None:
        return {"abac": None}

    def catalog(key: model.TableKey) -> str:
        return target.literal(key[0].lower()) if len(key) == 3 else "lower(current_catalog())"

    def where(key: model.TableKey) -> tuple[str, str, str]:
        return (catalog(key), target.literal(key[-2].lower()), target.literal(key[-1].lower()))

    keys = {target.table_sql(table.key): table.key for table in program.tables}
    policies = [
        (
            *where(keys[p.table]),
            target.literal(target.catalog_name(p.bare)),
            target.literal(p.target),
        )
        for p in native.policies
        if p.kind == POLICY_KIND
    ]
    return {
        "abac": {
            "tag_key": TAG_KEY,
            "tag_values": allowed_values(program),
            "sources": preflight_groups(target, program),
            "policies": policies,
            "functions": [
                {"object": f.target, "name": target.catalog_name(f.bare), "body": f.body}
                for f in native.policies
                if f.kind == FUNCTION_KIND
            ],
            "masked": [
                (*where(m.table), target.literal(m.column.lower()))
                for m in sorted(program.masks, key=lambda m: (m.table, m.column))
            ],
        }
    }


def allowed_values(program: model.Program) -> tuple[str, ...]:
    """The values the governed tag must allow: one per `mask tagged`."""
    return tuple(sorted(encode_tag(str(tm.tag)) for tm in program.tag_masks))


def diagnostics(target: DatabricksTarget, program: model.Program) -> list[Diagnostic]:
    """Masks of one tag that do not merge cannot be one function (T0206); more masks on tags
    than Unity Catalog allows policies on a table (T0207)."""
    if not target.options.native_tags:
        return []
    out = target.tied_tag_diagnostics(program, "T0206", "ABAC column mask policy", "function")
    if len(program.tag_masks) > MAX_POLICIES_PER_TABLE:
        extra = sorted(program.tag_masks, key=lambda m: m.tag.parts)[MAX_POLICIES_PER_TABLE]
        out.append(
            error(
                "T0207",
                f"{len(program.tag_masks)} `mask tagged` tags need as many ABAC policies on each "
                f"table; Unity Catalog allows {MAX_POLICIES_PER_TABLE}",
                extra.policies[0],
                help="mask a parent tag instead of each of its children, or leave "
                '"databricks" out of `native_tags` (per-column masks have no such limit)',
            )
        )
    return out
