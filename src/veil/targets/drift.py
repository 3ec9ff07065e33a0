"""`veil verify --target snowflake|databricks --emit-sql`: a read-only query for the DBA.

veil cannot log in to a Snowflake account or a Databricks workspace, so it writes the query that
compares the account with the repository, and the DBA runs it. It returns one row per difference,
`(kind, object, message)`, and no row when the account is what the repository compiles to:

* the rows of every governance table, and of `applied_object` (what the last script attached):
  each row of the repository missing, each row the repository does not have;
* each masked column: its masking policy / column mask is the repository's (none attached, or
  another one, is a difference) and that policy's body is the compiled one;
* each table with row rules: its row access policy / row filter likewise;
* a policy of veil's schema attached to a protected table that the repository does not produce;
* with native tag policies (`native_tags`): on Snowflake each policy bound to the classification
  tag and its body, and a policy of veil's schema bound to it that the repository does not
  produce; on Databricks what the information schema shows of the ABAC policies (the target's
  `drift_settings`, `databricks/verify.sql.j2`), and a `not-checked` row for what it does not.

What a platform reads its policy attachments and bodies from is the template
`<target>/verify_sources.sql.j2` (two CTEs, `refs` and `bodies`, in one shape for both); the
comparison itself is `lookup/verify.sql.j2`. Every name and value goes through the target's
`ident`/`literal`; the expected rows and policies come from the same methods the script uses
(the `Script` of `target.lower`: its governance rows and its policies), so the query follows the
script.
"""

from __future__ import annotations

import typing as t

from veil import model
from veil.model import SqlType, TableKey
from veil.targets.lookup import LookupTarget
from veil.targets.script import Policy

__all__ = ["drift_script"]


def _table_ref(target: LookupTarget, key: TableKey) -> dict[str, t.Any]:
    """How the sources template names one protected table (stored names, for comparisons)."""
    folded = [target.catalog_name(p) for p in key]
    return {
        "label": model.table_str(key),
        "sql": target.table_sql(key),
        "catalog": target.ident(key[0]) if len(key) == 3 else None,
        "schema": folded[-2] if len(key) >= 2 else None,
        "table": folded[-1],
    }


def drift_script(target: LookupTarget, program: model.Program) -> str:
    script = target.lower(program)
    tables = target.lookup_tables(script)
    gov_stored = target.catalog_name(target.options.governance_schema)
    text = target.sql_type(SqlType(name="text"))
    checks: list[dict[str, t.Any]] = []
    expected = []
    for i, tb in enumerate(tables, start=1):
        name = f"expected_{i}"
        expected.append({"name": name, "table": tb.name, "columns": tb.columns, "rows": tb.rows})
        checks.append(
            {
                "shape": "rows",
                "object": tb.name,
                "table": tb.name,
                "expected": name,
                "columns": tb.columns,
            }
        )
    keys: dict[str, TableKey] = {}
    masks = sorted(
        ((tb, p) for tb in script.tables for p in tb.masks), key=lambda tp: target.mask_order(tp[1])
    )
    for pt, m in masks:
        keys[pt.name] = pt.key
        checks.append(
            {
                "shape": "policy",
                "kind": "mask",
                "object": m.target,
                "table": pt.name,
                "column": target.catalog_name(m.column_name or ""),
                "expected": target.catalog_name(m.bare),
                "body": m.body,
            }
        )
    rows: list[Policy] = []
    for pt in sorted(script.tables, key=lambda pt: pt.key):
        for rp in pt.rows:
            keys[pt.name] = pt.key
            rows.append(rp)
            checks.append(
                {
                    "shape": "policy",
                    "kind": "rows",
                    "object": rp.target,
                    "table": pt.name,
                    "column": None,
                    "expected": target.catalog_name(rp.bare),
                    "body": rp.body,
                }
            )
    native = list(script.native.policies) if script.native else []
    # Databricks' ABAC policies and their functions are checked by its own template
    # (`drift_settings`); both are known names here, so none is reported as foreign.
    for tp in (p for p in native if p.kind == "tag masking policy"):
        checks.append(
            {
                "shape": "policy",
                "kind": "tag mask",
                "object": tp.target,
                "table": tp.table,
                "column": None,
                "expected": target.catalog_name(tp.bare),
                "body": tp.body,
            }
        )
    checks.append(
        {
            "shape": "foreign",
            "expected": sorted(
                target.catalog_name(p.bare) for p in [*(m for _, m in masks), *rows, *native]
            ),
        }
    )
    return target.template("verify.sql.j2").render(
        checks=checks,
        expected=expected,
        refs=[_table_ref(target, keys[k]) for k in sorted(keys)],
        tag_refs=sorted({tp.table for tp in native}),
        gov_schema=gov_stored,
        gov=target.gov,
        text=text,
        current_catalog=target.current_catalog_sql,
        ident=target.ident,
        **target.drift_settings(program, script.native),
    )
