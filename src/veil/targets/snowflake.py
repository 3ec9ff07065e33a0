"""Snowflake: masking policies, row access policies and an owner's-rights project switch.

The script (templates/snowflake/script.sql.j2) creates the governance schema and its tables,
synchronises their rows with the repository, defines the owner's-rights procedures
`CALL veil.use_project('…')` and `CALL veil.acknowledge('…')` (both audited in `veil.audit_log`,
which the role `VEIL_AUDITORS` may read) and the table function `veil.acknowledgement_texts('…')`,
then one masking policy per masked column and one row access policy per table with row rules, and
finally removes the veil policies that the repository no longer produces.
`docs/targets/snowflake.md` explains it to DBAs.

What differs from the other targets:

* Identifiers: unquoted names fold to upper case, quoted ones are case-sensitive. A plain name
  (`credit_card`) is written unquoted in upper case (`CREDIT_CARD`); any other name is quoted
  exactly as written.
* Groups are never Snowflake roles: `IS_ROLE_IN_SESSION` sees only the roles a session has
  activated, so `USE SECONDARY ROLES NONE` would switch a deny rule off. Membership is read from
  `veil.user_group`, as declared (targets/lookup.py).
* A policy's signature (argument names and types) can never change once it is attached, and an
  attached policy cannot be replaced. So a policy's name ends with a digest of its signature:
  the body of an existing policy is updated with `ALTER … SET BODY`; a new signature is a new
  policy, swapped in with `SET MASKING POLICY … FORCE` or an atomic `DROP …, ADD ROW ACCESS
  POLICY`, and the old one is dropped by the final clean-up block.
"""

from __future__ import annotations

import hashlib
import json
import re
import typing as t

from veil import model
from veil.diagnostics import Diagnostic, error, warning
from veil.methods import replacement_parts
from veil.model import SqlType, TableKey
from veil.targets import snowflake_tags
from veil.targets.lookup import LookupTarget, columns_read
from veil.targets.script import NativeTags, Policy


class SnowflakeTarget(LookupTarget):
    """Diagnostic codes (docs/errors.md): T0101 `decimal` without precision, T0102 a masked value
    longer than its column, T0103 a mixed-case name that Snowflake folds, T0104 `$$` in a name,
    T0105 a column in both a conditional masking policy and a row access policy (an error:
    Snowflake refuses the second attachment), T0106 names
    Snowflake cannot tell apart, T0107 masks on one tag that cannot be one tag-based policy
    (with `native_tags`)."""

    name = "snowflake"
    type_names: t.ClassVar[dict[str, str]] = {
        "decimal": "NUMBER",
        "real": "FLOAT",
        "double": "FLOAT",
        "text": "VARCHAR",
        "timestamp": "TIMESTAMP_NTZ",
        "timestamptz": "TIMESTAMP_TZ",
        "json": "VARIANT",
    }
    current_user = "CURRENT_USER()"
    instant_type = "TIMESTAMP_LTZ"
    decimal_work_type = "NUMBER(38, 10)"
    plain_name = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*\Z")
    title = "Snowflake"
    plan_attach_steps = (
        "  2. each policy of NEW in turn: CREATE ... IF NOT EXISTS, ALTER ... SET BODY (it",
        "     stays attached meanwhile), then attached: SET MASKING POLICY ... FORCE, or one",
        "     ALTER TABLE ... DROP ROW ACCESS POLICY old, ADD ROW ACCESS POLICY new; either",
        "     replaces what the column or table had in one statement.",
    )
    mask_kind = "masking policy"
    rows_kind = "row access policy"

    #: `VEIL.ACTIVE_PURPOSES(SOURCE)`, before the lookups took the user as an argument (a
    #: function's arguments are part of its name on Snowflake, so the old one would stay).
    retired: t.ClassVar[tuple[str, ...]] = ("FUNCTION active_purposes(VARCHAR)",)

    def stored_name(self, name: str) -> str:
        return name.upper() if self.plain_name.match(name) else name

    # ------------------------------------------------------------------ atoms
    # ------------------------------------------------------------------ methods
    def sha256_hex_sql(self, text: str) -> str:
        return f"SHA2({text}, 256)"

    def regex_sql(self, c: str, pattern: str, replacement: str) -> str:
        rewritten = "".join(
            f"\\{p}" if isinstance(p, int) else p.replace("\\", "\\\\")
            for p in replacement_parts(replacement)
        )
        return f"REGEXP_REPLACE({c}, {self.literal(pattern)}, {self.literal(rewritten)})"

    def date_trunc_sql(self, c: str, unit: str, ty: SqlType) -> str:
        if ty.name == "timestamptz":  # truncate the instant in UTC, not in its stored offset
            c = f"CONVERT_TIMEZONE('UTC', {c})"
        return super().date_trunc_sql(c, unit, ty)

    def now_sql(self) -> str:
        """UTC wall-clock time (`TIMESTAMP_NTZ`): veil reads a `timestamp` column as UTC, so
        `created_at >= now() - 90 days` does not depend on the session's TIMEZONE."""
        return "SYSDATE()"

    def today_sql(self) -> str:
        return "CAST(SYSDATE() AS DATE)"

    def utc_wall_sql(self, c: str) -> str:
        """The instant converted to UTC, then its offset dropped (a `TIMESTAMP_TZ` compared
        with `SYSDATE()` would otherwise go through the session's TIMEZONE)."""
        return f"CAST(CONVERT_TIMEZONE('UTC', {c}) AS TIMESTAMP_NTZ)"

    def email_domain_sql(self, c: str) -> str:
        return f"IFF(CONTAINS({c}, '@'), SPLIT_PART({c}, '@', -1), NULL)"

    # ------------------------------------------------------------------ policies
    def _versioned(
        self,
        prefix: str,
        parts: t.Sequence[str],
        signature: t.Sequence[tuple[str, str]],
        *flags: str,
    ) -> str:
        """`prefix__parts__<digest of the signature>`: a new signature is a new policy."""
        text = "\x1f".join([*(f"{n} {ty}" for n, ty in signature), *flags])
        return self.object_name(prefix, *parts, hashlib.sha256(text.encode()).hexdigest()[:8])

    def exempt_columns(self, program: model.Program) -> set[tuple[TableKey, str]]:
        """Masked columns that a row access policy or another column's mask reads: their
        policy needs EXEMPT_OTHER_POLICIES = TRUE (docs: create-masking-policy)."""
        read = {
            (k, c.name)
            for k in {r.table for r in program.row_rules}
            for c in self.row_args(program, k)
        }
        for mask in program.masks:
            read |= {(mask.table, c.name) for c in self.mask_args(program, mask)[1:]}
        return {(m.table, m.column) for m in program.masks} & read

    def row_args(self, program: model.Program, key: TableKey) -> tuple[model.CatalogColumn, ...]:
        """A row access policy needs at least one argument: the columns its rules read, else
        one column that no masking policy reads."""
        read = self.rule_args(program, key)
        table = program.table(key)
        if read or table is None:
            return read
        masked = {c.name for m in program.masks_of(key) for c in self.mask_args(program, m)}
        return (next((c for c in table.columns if c.name not in masked), table.columns[0]),)

    def _policy(self, cols: t.Sequence[model.CatalogColumn]) -> dict[str, t.Any]:
        """The signature of a policy taking `cols`, and the columns the attachment passes."""
        args = self.arg_names(cols)
        return {
            "signature": [(args[c.name], self.sql_type(c.type)) for c in cols],
            "columns": [self.ident(c.name) for c in cols],
            "arg": args.__getitem__,
        }

    def mask_policy(self, program: model.Program, mask: model.ColumnMask, exempt: bool) -> Policy:
        self.use_logins(program)
        policy = self._policy(self.mask_args(program, mask))
        bare = self._versioned("mask", (*mask.table, mask.column), policy["signature"], str(exempt))
        name, table, column = self.gov(bare), self.table_sql(mask.table), self.ident(mask.column)
        return Policy(
            kind=self.mask_kind,
            name=name,
            target=self.mask_target(mask),
            table=table,
            column=column,
            params=tuple(policy["signature"]),
            returns=self.sql_type(mask.type),
            body=self.lay_out(
                self.mask_sql(
                    mask, policy["arg"], self.predicate_reader(program, mask.table, policy["arg"])
                ),
                "  ",
            ),
            columns=tuple(policy["columns"]),
            detach=self.detach_sql(self.mask_kind, table, column, name),
            drop=self.drop_sql(self.mask_kind, name),
            bare=self.stored_name(bare),
            column_name=mask.column,
            exempt=exempt,
        )

    def rows_policy(self, program: model.Program, key: TableKey) -> Policy:
        self.use_logins(program)
        policy = self._policy(self.row_args(program, key))
        bare = self._versioned("rows", key, policy["signature"])
        name, table = self.gov(bare), self.table_sql(key)
        return Policy(
            kind=self.rows_kind,
            name=name,
            target=self.rows_target(key),
            table=table,
            params=tuple(policy["signature"]),
            returns="BOOLEAN",
            body=self.lay_out(
                self.row_sql(
                    program.rules_of(key), self.predicate_reader(program, key, policy["arg"])
                ),
                "  ",
            ),
            columns=tuple(policy["columns"]),
            detach=self.detach_sql(self.rows_kind, table, None, name),
            drop=self.drop_sql(self.rows_kind, name),
            bare=self.stored_name(bare),
            info_schema=self.info_schema(key),
        )

    def info_schema(self, key: TableKey) -> str:
        """The INFORMATION_SCHEMA of the table's database."""
        return f"{self.ident(key[0])}.INFORMATION_SCHEMA" if len(key) == 3 else "INFORMATION_SCHEMA"

    def preflight(self, program: model.Program) -> list[dict[str, t.Any]]:
        checks = super().preflight(program)
        return [
            {
                **p,
                "info_schema": self.info_schema(p["key"]),
                "masked_json": json.dumps(p["masked"], ensure_ascii=False),
            }
            for p in checks
        ]

    def detach_sql(self, kind: str, table: str, column: str | None, name: str) -> str:
        if column is not None:
            return f"ALTER TABLE {table} MODIFY COLUMN {column} UNSET MASKING POLICY"
        return f"ALTER TABLE {table} DROP ROW ACCESS POLICY {name}"

    def drop_sql(self, kind: str, name: str) -> str:
        return f"DROP {kind.upper()} {name}"

    def lower_policies(self, program: model.Program) -> list[tuple[TableKey, Policy]]:
        exempt = self.exempt_columns(program)
        out = [
            (m.table, self.mask_policy(program, m, (m.table, m.column) in exempt))
            for m in program.masks
        ]
        out += [
            (tb.key, self.rows_policy(program, tb.key))
            for tb in program.tables
            if program.rules_of(tb.key)
        ]
        return out

    def native_tags(self, program: model.Program) -> NativeTags | None:
        return snowflake_tags.native_tags(self, program)

    def tagged_source_sql(self) -> str:
        return snowflake_tags.tag_lookup(self, "TABLE", snowflake_tags.SOURCE)

    def mask_order(self, policy: Policy) -> tuple[t.Any, ...]:
        return (not policy.exempt, policy.name)  # exempt ones first

    def layout_settings(self, program: model.Program) -> dict[str, t.Any]:
        return {
            **super().layout_settings(program),
            "schema_stored": self.stored_name(self.options.governance_schema),
            "lookups": self.lookup_functions(lambda fn, name: name.upper()),
        }

    # ------------------------------------------------------------------ checks
    def check(self, program: model.Program) -> list[Diagnostic]:
        out = self.shared_diagnostics(
            program, decimal="T0101", too_long="T0102", fatal_too_long=True, same_name="T0106"
        )
        out += [
            error(
                "T0104",
                f"`{name}` contains `$$`",
                span,
                help="veil writes names inside `$$ … $$` blocks on snowflake; rename the object",
            )
            for name, span in self.named_objects(program)
            if "$$" in name
        ]
        for name, span in self.named_objects(program):
            if self.plain_name.match(name) and name not in (name.lower(), name.upper()):
                out.append(
                    warning(
                        "T0103",
                        f"`{name}` is folded to `{name.upper()}` on snowflake",
                        span,
                        help="snowflake folds unquoted names to upper case; if the object was "
                        f'created with the quoted name "{name}", rename it',
                    )
                )
        out += snowflake_tags.tied_diagnostics(self, program)
        return out + self._shared_column_diagnostics(program)

    def _shared_column_diagnostics(self, program: model.Program) -> list[Diagnostic]:
        """A column in a conditional masking policy and in a row access policy (docs:
        security-column-intro, "Row access policies"). A masked column is fine: its own
        policy is created with EXEMPT_OTHER_POLICIES = TRUE."""
        out = []
        for key in sorted({r.table for r in program.row_rules}):
            in_rap = {c.name for c in self.row_args(program, key)}
            masked = {m.column for m in program.masks_of(key)}
            rules = program.rules_of(key)
            for mask in program.masks_of(key):
                for col in self.mask_args(program, mask)[1:]:
                    if col.name not in in_rap or col.name in masked:
                        continue
                    rule = next((r for r in rules if col.name in columns_read(r)), rules[0])
                    out.append(
                        error(
                            "T0105",
                            f"`{col.name}` is read both by the mask of `{mask.column}` and by the "
                            f"row rules of `{model.table_str(key)}`",
                            mask.policies[0] if mask.policies else rule.span,
                            help="snowflake refuses a column in a row access policy and in a "
                            "masking policy's conditional columns at once; mask the whole column, "
                            f"or mask `{col.name}` too (a masked column may be read by both), or "
                            "decide the cells by a column the row rules do not read",
                            related=(rule.span,),
                        )
                    )
        return out
