"""A model of the attach rules that Snowflake and Databricks document, to replay generated scripts
without an account.

`replay(script, platform)` walks the statements of a script in order, keeps the state an empty
account would have after each one (policies or functions, what is attached to which column or
table, the principals written into veil's governance tables), and reports every statement that a
documented rule says the platform refuses (`Replay.violations`), plus what the documentation leaves
open or what a table owner can undo (`Replay.open`). Every rule names the documentation page that
states it (`RULES`).

What the model does not know: privileges (the pre-flight block of each script checks them on the
account), runtime errors of a body, and anything the documentation does not say. Where the pages
are silent, a rule is `open` rather than a violation, and docs/targets says so too.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from tests.verify.sqlfluff_check import split_statements

SF = "https://docs.snowflake.com/en/"
DBX = "https://docs.databricks.com/aws/en/"


@dataclass(frozen=True)
class Rule:
    platform: str  # "snowflake" or "databricks"
    text: str  # the rule, as the page states it
    page: str  # the documentation page


RULES: dict[str, Rule] = {
    # ------------------------------------------------------------------ Snowflake
    "sf-policy-exists": Rule(
        "snowflake",
        "a policy must exist before it is set on a column or added to a table",
        SF + "sql-reference/sql/alter-table-column",
    ),
    "sf-using-arity": Rule(
        "snowflake",
        "the USING list names the masked column first, then one column per further argument of "
        "the policy signature; without USING the policy takes exactly one argument",
        SF + "sql-reference/sql/create-masking-policy",
    ),
    "sf-returns-first-arg": Rule(
        "snowflake",
        "a masking policy returns the type of its first argument",
        SF + "sql-reference/sql/create-masking-policy",
    ),
    "sf-column-type": Rule(
        "snowflake",
        "the policy's argument types match the types of the columns it is attached with",
        SF + "user-guide/security-column-intro",
    ),
    "sf-one-mask-per-column": Rule(
        "snowflake",
        "a column has at most one masking policy; setting another one needs FORCE",
        SF + "user-guide/security-column-intro",
    ),
    "sf-one-rap-per-table": Rule(
        "snowflake",
        "a table can only be protected by one row access policy at a time",
        SF + "sql-reference/sql/alter-table",
    ),
    "sf-rap-args": Rule(
        "snowflake",
        "the ON list of ADD ROW ACCESS POLICY has one column per argument of the signature",
        SF + "sql-reference/sql/create-row-access-policy",
    ),
    "sf-rap-and-mask-column": Rule(
        "snowflake",
        "a column cannot be in a row access policy signature and in a masking policy signature "
        "(conditional columns included) at once, unless the masking policy that protects that "
        "column has EXEMPT_OTHER_POLICIES = TRUE",
        SF + "user-guide/security-column-intro",
    ),
    "sf-conditional-masked-column": Rule(
        "snowflake",
        "a conditional masking policy can read a column protected by another masking policy only "
        "when that policy has EXEMPT_OTHER_POLICIES = TRUE",
        SF + "sql-reference/sql/create-masking-policy",
    ),
    "sf-lookup-unprotected": Rule(
        "snowflake",
        "a policy whose body reads a table protected by a row access or masking policy cannot be "
        "attached (and such a table cannot be protected while a policy reads it)",
        SF + "sql-reference/sql/alter-table",
    ),
    "sf-drop-attached": Rule(
        "snowflake",
        "a policy cannot be dropped while it is attached",
        SF + "sql-reference/sql/drop-masking-policy",
    ),
    "sf-tag-direct-precedence": Rule(
        "snowflake",
        "a masking policy set directly on a column takes precedence over a tag-based one",
        SF + "user-guide/tag-based-masking-policies",
    ),
    "sf-tag-one-per-type": Rule(
        "snowflake",
        "a tag holds at most one masking policy per data type",
        SF + "user-guide/tag-based-masking-policies",
    ),
    "sf-tag-exists": Rule(
        "snowflake",
        "a tag must exist before a masking policy is set on it or it is set on an object",
        SF + "sql-reference/sql/alter-tag",
    ),
    "sf-get-tag-exists": Rule(
        "snowflake",
        "the tag that SYSTEM$GET_TAG_ON_CURRENT_COLUMN / _TABLE names must exist when the policy "
        "runs (\"Tag '<tag_name>' does not exist or not authorized\")",
        SF
        + "sql-reference/functions/system_get_tag_on_current_column; "
        + SF
        + "sql-reference/functions/system_get_tag_on_current_table",
    ),
    "sf-get-tag-column-in-mask": Rule(
        "snowflake",
        "SYSTEM$GET_TAG_ON_CURRENT_COLUMN can only be used in a masking (or projection) policy, "
        "never in a row access policy",
        SF + "sql-reference/functions/system_get_tag_on_current_column",
    ),
    "sf-tag-policy-one-argument": Rule(
        "snowflake",
        "a tag-based masking policy is matched to a column by the data type of its signature; "
        "further (conditional) arguments are bound by column name and the query fails on a "
        "table without such a column",
        SF + "user-guide/tag-based-masking-policies",
    ),
    # ------------------------------------------------------------------ Databricks
    "dbx-function-exists": Rule(
        "databricks",
        "the mask or row filter function must exist when it is set",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-column-mask",
    ),
    "dbx-mask-arity": Rule(
        "databricks",
        "a column mask function takes the masked column, then one parameter per USING COLUMNS "
        "entry (ROW_COLUMN_ACCESS ... WRONG_NUMBER_OF_COLUMNS)",
        DBX + "error-messages/row-column-access-error-class",
    ),
    "dbx-using-columns": Rule(
        "databricks",
        "USING COLUMNS repeats no name and does not name the masked column",
        DBX + "error-messages/row-column-access-error-class",
    ),
    "dbx-filter-arity": Rule(
        "databricks",
        "a row filter function takes one parameter per column of ON (...)",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-row-filter",
    ),
    "dbx-filter-boolean": Rule(
        "databricks",
        "a row filter function returns BOOLEAN",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-row-filter",
    ),
    "dbx-mask-returns": Rule(
        "databricks",
        "a column mask returns a value of the masked column's type",
        DBX + "tables/row-and-column-filters",
    ),
    "dbx-principal-email": Rule(
        "databricks",
        "current_user() returns the session user's user name, which is the email address it "
        "was added with (a service principal's is its UUID), so any other principal matches "
        "nobody",
        DBX + "sql/language-manual/functions/current_user; " + DBX + "admin/users-groups/users",
    ),
    "dbx-owner-removable": Rule(
        "databricks",
        "a table owner can modify or remove the filters and masks of their table",
        DBX + "data-governance/unity-catalog/abac/abac-vs-rls-cm",
    ),
    "dbx-abac-function-exists": Rule(
        "databricks",
        "an ABAC policy names an existing UDF (with EXECUTE on it)",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-create-policy",
    ),
    "dbx-abac-exists": Rule(
        "databricks",
        "a policy name is scoped to its securable: CREATE POLICY without OR REPLACE over an "
        "existing one raises POLICY_ALREADY_EXISTS",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-create-policy",
    ),
    "dbx-abac-on-column": Rule(
        "databricks",
        "a column mask policy masks ON COLUMN an alias that MATCH COLUMNS defines, and passes "
        "USING COLUMNS arguments that are such aliases or constant literals, one per further "
        "parameter of the function",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-create-policy",
    ),
    "dbx-abac-quotas": Rule(
        "databricks",
        "at most 3 column conditions per MATCH COLUMNS, 20 principals per policy (TO and EXCEPT), "
        "100 policies per catalog or schema, 50 per table",
        DBX + "data-governance/unity-catalog/abac/requirements",
    ),
    "dbx-tag-characters": Rule(
        "databricks",
        "a tag key or value may not contain . , - = / :",
        DBX + "database-objects/tags",
    ),
    "dbx-abac-and-table-mask": Rule(
        "databricks",
        "how a column with a table-level mask and a matching ABAC column mask policy is masked "
        "is not stated on the pages read (policy evaluation describes conflicts between "
        "policies)",
        DBX + "data-governance/unity-catalog/abac/policy-evaluation",
    ),
    "dbx-two-masks": Rule(
        "databricks",
        "a column that its own column mask and an ABAC column mask policy both reach has two "
        "masks, and every query of it fails (conflicts between multiple policies)",
        DBX + "data-governance/unity-catalog/abac/policy-evaluation",
    ),
    "dbx-second-set": Rule(
        "databricks",
        "whether SET MASK / SET ROW FILTER over an existing one replaces it is not documented",
        DBX + "sql/language-manual/sql-ref-syntax-ddl-column-mask",
    ),
}


@dataclass(frozen=True)
class Finding:
    rule: str
    statement: str  # the first line of the statement
    detail: str

    def __str__(self) -> str:
        rule = RULES[self.rule]
        return f"[{self.rule}] {self.detail}\n    {self.statement}\n    ({rule.page})"


@dataclass
class Policy:
    kind: str  # "mask" or "rows"
    args: list[tuple[str, str]]  # (name, type)
    returns: str
    body: str
    exempt: bool = False


@dataclass
class Replay:
    platform: str
    violations: list[Finding] = field(default_factory=list)
    open: list[Finding] = field(default_factory=list)
    policies: dict[str, Policy] = field(default_factory=dict)
    #: (table, column) -> (policy, columns passed: the masked column first)
    masks: dict[tuple[str, str], tuple[str, list[str]]] = field(default_factory=dict)
    #: table -> (policy, columns passed)
    rows: dict[str, tuple[str, list[str]]] = field(default_factory=dict)
    #: tag -> {type: policy}
    tags: dict[str, dict[str, str]] = field(default_factory=dict)
    #: tags that exist (CREATE TAG), and the tag values set: (table, column or None) -> {tag: value}
    tag_objects: set[str] = field(default_factory=set)
    tag_values: dict[tuple[str, str | None], dict[str, str]] = field(default_factory=dict)
    principals: set[str] = field(default_factory=set)
    #: Snowflake SQL functions: name -> body (what a policy body reads through them)
    functions: dict[str, str] = field(default_factory=dict)
    #: Databricks ABAC policies: (securable, name) -> (function, match conditions by alias)
    abac: dict[tuple[str, str], tuple[str, dict[str, str]]] = field(default_factory=dict)

    def refuse(self, rule: str, statement: str, detail: str) -> None:
        self.violations.append(Finding(rule, statement.strip().splitlines()[0], detail))

    def note(self, rule: str, statement: str, detail: str) -> None:
        self.open.append(Finding(rule, statement.strip().splitlines()[0], detail))

    def effective_mask(self, table: str, column: str, column_type: str) -> str | None:
        """Snowflake: the masking policy that masks a column of `column_type`: its own, which
        takes precedence over a tag-based one (sf-tag-direct-precedence), else the policy of
        that type bound to a tag set on the column."""
        own = self.masks.get((table, column))
        if own is not None:
            return own[0]
        # matched by data type: VARCHAR(10) is a VARCHAR (whether NUMBER(10, 2) matches a
        # NUMBER policy with its scale intact is not stated: docs/targets/snowflake.md)
        data_type = re.sub(r"\(.*\)", "", _type(column_type))
        for tag in sorted(self.tag_values.get((table, column), {})):
            found = self.tags.get(tag, {}).get(data_type)
            if found is not None:
                return found
        return None


# -------------------------------------------------------------------------------------------------
# names


def _name_re(quote: str) -> str:
    part = rf"(?:{quote}(?:[^{quote}]|{quote}{quote})*{quote}|[A-Za-z_][\w$]*)"
    return rf"{part}(?:\s*\.\s*{part})*"


def _norm(name: str, quote: str, fold_upper: bool) -> str:
    """One qualified name as the platform stores it: unquoted parts folded."""
    parts = re.findall(rf"{quote}(?:[^{quote}]|{quote}{quote})*{quote}|[^.\s]+", name)
    out = []
    for p in parts:
        if p.startswith(quote):
            out.append(p[1:-1].replace(quote * 2, quote))
        else:
            out.append(p.upper() if fold_upper else p.lower())
    return ".".join(out)


def _names(text: str, quote: str, fold_upper: bool) -> list[str]:
    """A comma-separated list of names (literals kept as written)."""
    items = re.findall(rf"{_name_re(quote)}|'(?:[^'\\]|\\.)*'|[^,\s]+", text)
    return [i if i.startswith("'") else _norm(i, quote, fold_upper) for i in items]


def _type(text: str) -> str:
    return re.sub(r"\s+", "", text).upper()


def _tables_read(body: str, quote: str, fold_upper: bool) -> set[str]:
    return {
        _norm(m, quote, fold_upper)
        for m in re.findall(rf"\b(?:FROM|JOIN)\s+({_name_re(quote)})", body, re.IGNORECASE)
    }


# -------------------------------------------------------------------------------------------------
# Snowflake

_SQ = '"'
_SF_NAME = _name_re(_SQ)
_SF_CREATE = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+|OR\s+ALTER\s+)?(MASKING|ROW\s+ACCESS)\s+POLICY\s+"
    rf"(?:IF\s+NOT\s+EXISTS\s+)?({_SF_NAME})\s+AS\s*\((.*?)\)\s*RETURNS\s+(.+?)\s*->(.*)",
    re.DOTALL | re.IGNORECASE,
)
_SF_SET_MASK = re.compile(
    rf"ALTER\s+TABLE\s+({_SF_NAME})\s+(?:MODIFY|ALTER)\s+COLUMN\s+({_SF_NAME})\s+SET\s+MASKING\s+"
    rf"POLICY\s+({_SF_NAME})(?:\s+USING\s*\((.*?)\))?(\s+FORCE)?\s*$",
    re.DOTALL | re.IGNORECASE,
)
_SF_UNSET_MASK = re.compile(
    rf"ALTER\s+TABLE\s+({_SF_NAME})\s+(?:MODIFY|ALTER)\s+COLUMN\s+({_SF_NAME})\s+UNSET\s+MASKING",
    re.IGNORECASE,
)
_SF_ADD_RAP = re.compile(
    rf"ALTER\s+TABLE\s+({_SF_NAME})\s+ADD\s+ROW\s+ACCESS\s+POLICY\s+({_SF_NAME})\s+ON\s*\((.*?)\)",
    re.DOTALL | re.IGNORECASE,
)
_SF_DROP = re.compile(
    rf"DROP\s+(MASKING|ROW\s+ACCESS)\s+POLICY\s+(?:IF\s+EXISTS\s+)?({_SF_NAME})", re.IGNORECASE
)
_SF_SET_BODY = re.compile(
    rf"ALTER\s+(?:MASKING|ROW\s+ACCESS)\s+POLICY\s+(?:IF\s+EXISTS\s+)?({_SF_NAME})\s+SET\s+BODY"
    rf"\s*->(.*)",
    re.DOTALL | re.IGNORECASE,
)
_SF_FUNCTION = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+)?(?:SECURE\s+)?FUNCTION\s+({_SF_NAME})\s*\(.*?\$\$(.*?)\$\$",
    re.DOTALL | re.IGNORECASE,
)
_SF_TAG_SET = re.compile(
    rf"ALTER\s+TAG\s+({_SF_NAME})\s+SET\s+MASKING\s+POLICY\s+({_SF_NAME})(\s+FORCE)?",
    re.IGNORECASE,
)
_SF_CREATE_TAG = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+)?TAG\s+(?:IF\s+NOT\s+EXISTS\s+)?({_SF_NAME})", re.IGNORECASE
)
_SF_SET_TAG = re.compile(
    rf"ALTER\s+TABLE\s+({_SF_NAME})\s+(?:(?:MODIFY|ALTER)\s+COLUMN\s+({_SF_NAME})\s+)?SET\s+TAG\s+"
    rf"({_SF_NAME})\s*=\s*'((?:[^'\\]|\\.)*)'\s*$",
    re.DOTALL | re.IGNORECASE,
)
_SF_GET_TAG = re.compile(
    r"SYSTEM\$GET_TAG_ON_CURRENT_(COLUMN|TABLE)\(\s*'((?:[^'\\]|\\.)*)'\s*\)", re.IGNORECASE
)


def _split_args(text: str) -> list[tuple[str, str]]:
    """`A VARCHAR(10), B NUMBER(12, 2)` -> [(A, VARCHAR(10)), (B, NUMBER(12,2))]."""
    out, depth, cur = [], 0, ""
    for ch in text + ",":
        if ch == "," and depth == 0:
            if cur.strip():
                name, _, ty = cur.strip().partition(" ")
                out.append((name, _type(ty)))
            cur = ""
            continue
        depth += (ch == "(") - (ch == ")")
        cur += ch
    return out


_SF_ATTACH_ROWS = re.compile(
    r"CURSOR FOR SELECT COLUMN1 AS TBL, COLUMN2 AS POL, COLUMN3 AS BARE, COLUMN4 AS COLS "
    r"FROM VALUES\s*(.*?);\n",
    re.DOTALL,
)
_SF_STRING = re.compile(r"'((?:[^'\\]|\\.)*)'")


def _unescape(text: str) -> str:
    """A backslash-escaped string literal's text (`\\'` → `'`, `\\\\` → `\\`)."""
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "r": "\r", "t": "\t"}.get(m[1], m[1]), text)


def sf_row_attachments(block: str) -> list[tuple[str, str, str, str]]:
    """(table, policy, name in POLICY_REFERENCES, columns) of each row of the row-attaching
    block's cursors (the table and columns as SQL, the policy qualified)."""
    out = []
    for values in _SF_ATTACH_ROWS.findall(block):
        for row in re.findall(r"\(((?:[^()']|'(?:[^'\\]|\\.)*')*)\)", values):
            tbl, pol, bare, cols = (_unescape(v) for v in _SF_STRING.findall(row))
            out.append((tbl, pol, bare, cols))
    return out


def _sf_statements(script: str) -> list[str]:
    """Top-level statements, with the attaching statements of `EXECUTE IMMEDIATE $$` blocks
    (the first-apply branch) lifted out in order: written out, or built from the rows of the
    row-attaching block."""
    out = []
    for statement in split_statements(script):
        if statement.upper().startswith("EXECUTE IMMEDIATE $$"):
            out += [m.group(0) for m in _SF_ADD_RAP.finditer(statement)]
            out += [
                f"ALTER TABLE {tbl} ADD ROW ACCESS POLICY {pol} ON ({cols})"
                for tbl, pol, _, cols in sf_row_attachments(statement)
            ]
            out += [m.group(0) for m in _SF_TAG_SET.finditer(statement)]
            continue
        out.append(statement)
    return out


def _replay_snowflake(
    script: str, replay: Replay, catalog: Mapping[tuple[str, str], str] | None
) -> None:
    def norm(name: str) -> str:
        return _norm(name, _SQ, True)

    for st in _sf_statements(script):
        if m := _SF_CREATE.match(st):
            kind = "mask" if m.group(1).upper() == "MASKING" else "rows"
            name = norm(m.group(2))
            if name in replay.policies:  # IF NOT EXISTS: the first definition stays
                continue
            rest = m.group(5)
            exempt = bool(re.search(r"EXEMPT_OTHER_POLICIES\s*=\s*TRUE\s*$", rest, re.IGNORECASE))
            args = [(a.upper(), ty) for a, ty in _split_args(m.group(3))]
            returns = _type(m.group(4))
            replay.policies[name] = Policy(kind, args, returns, rest, exempt)
            if kind == "mask" and args and args[0][1] != returns:
                replay.refuse(
                    "sf-returns-first-arg", st, f"{name} takes {args[0][1]} and returns {returns}"
                )
        elif m := _SF_SET_BODY.match(st):
            if (policy := replay.policies.get(norm(m.group(1)))) is not None:
                policy.body = m.group(2)
        elif m := _SF_SET_MASK.match(st):
            table, column, name = norm(m.group(1)), norm(m.group(2)), norm(m.group(3))
            using = _names(m.group(4), _SQ, True) if m.group(4) else [column]
            _sf_set_mask(replay, st, table, column, name, using, bool(m.group(5)), catalog)
        elif m := _SF_UNSET_MASK.match(st):
            replay.masks.pop((norm(m.group(1)), norm(m.group(2))), None)
        elif m := _SF_ADD_RAP.match(st):
            table, name = norm(m.group(1)), norm(m.group(2))
            _sf_add_rap(replay, st, table, name, _names(m.group(3), _SQ, True), catalog)
        elif m := _SF_DROP.match(st):
            name = norm(m.group(2))
            used = [k for k, (p, _) in replay.masks.items() if p == name]
            used += [k for k, (p, _) in replay.rows.items() if p == name]
            if used:  # the platform refuses: the policy stays
                replay.refuse("sf-drop-attached", st, f"{name} is attached to {used[0]}")
                continue
            replay.policies.pop(name, None)
        elif m := _SF_FUNCTION.match(st):
            replay.functions[norm(m.group(1))] = m.group(2)
        elif m := _SF_CREATE_TAG.match(st):
            replay.tag_objects.add(norm(m.group(1)))
        elif m := _SF_SET_TAG.match(st):
            table, tag = norm(m.group(1)), norm(m.group(3))
            column = norm(m.group(2)) if m.group(2) else None
            if tag not in replay.tag_objects:
                replay.refuse("sf-tag-exists", st, f"tag {tag} does not exist")
                continue
            replay.tag_values.setdefault((table, column), {})[tag] = m.group(4)
        elif m := _SF_TAG_SET.match(st):
            tag, name = norm(m.group(1)), norm(m.group(2))
            policy = replay.policies.get(name)
            if policy is None:
                replay.refuse("sf-policy-exists", st, f"{name} does not exist")
                continue
            if tag not in replay.tag_objects:
                replay.refuse("sf-tag-exists", st, f"tag {tag} does not exist")
                continue
            if len(policy.args) != 1:
                replay.note("sf-tag-policy-one-argument", st, f"{name} binds further columns")
            by_type = replay.tags.setdefault(tag, {})
            ty = policy.args[0][1]
            if ty in by_type and by_type[ty] != name and not m.group(3):
                replay.refuse("sf-tag-one-per-type", st, f"{tag} already has a {ty} policy")
            by_type[ty] = name
    _sf_shared_columns(replay)
    _sf_lookups(replay)
    _sf_tag_lookups(replay)


def _sf_types(
    replay: Replay,
    st: str,
    table: str,
    columns: list[str],
    policy: Policy,
    catalog: Mapping[tuple[str, str], str] | None,
) -> None:
    if catalog is None:
        return
    for col, (_, ty) in zip(columns, policy.args, strict=False):
        actual = catalog.get((table, col))
        if actual is not None and _type(actual) != ty:
            replay.refuse("sf-column-type", st, f"{table}.{col} is {actual}, the policy takes {ty}")


def _sf_set_mask(
    replay: Replay,
    st: str,
    table: str,
    column: str,
    name: str,
    using: list[str],
    force: bool,
    catalog: Mapping[tuple[str, str], str] | None,
) -> None:
    policy = replay.policies.get(name)
    if policy is None or policy.kind != "mask":
        replay.refuse("sf-policy-exists", st, f"masking policy {name} does not exist")
        return
    if len(using) != len(policy.args) or using[0] != column:
        replay.refuse(
            "sf-using-arity", st, f"{name} takes {len(policy.args)} argument(s), given {using}"
        )
    if (table, column) in replay.masks and replay.masks[(table, column)][0] != name and not force:
        replay.refuse("sf-one-mask-per-column", st, f"{table}.{column} already has a policy")
    _sf_types(replay, st, table, using, policy, catalog)
    replay.masks[(table, column)] = (name, using)


def _sf_add_rap(
    replay: Replay,
    st: str,
    table: str,
    name: str,
    on: list[str],
    catalog: Mapping[tuple[str, str], str] | None,
) -> None:
    policy = replay.policies.get(name)
    if policy is None or policy.kind != "rows":
        replay.refuse("sf-policy-exists", st, f"row access policy {name} does not exist")
        return
    if table in replay.rows:
        replay.refuse("sf-one-rap-per-table", st, f"{table} already has {replay.rows[table][0]}")
    if len(on) != len(policy.args) or not on:
        replay.refuse("sf-rap-args", st, f"{name} takes {len(policy.args)} argument(s), on {on}")
    _sf_types(replay, st, table, on, policy, catalog)
    replay.rows[table] = (name, on)


def _sf_shared_columns(replay: Replay) -> None:
    """Checked on the final state: whichever of the two attachments comes second fails."""

    def exempt(table: str, column: str) -> bool:
        found = replay.masks.get((table, column))
        return found is not None and replay.policies[found[0]].exempt

    for table, (rap, on) in sorted(replay.rows.items()):
        for (t, masked), (policy, using) in sorted(replay.masks.items()):
            if t != table:
                continue
            for col in set(on) & set(using):
                if not exempt(table, col):
                    replay.refuse(
                        "sf-rap-and-mask-column",
                        f"ALTER TABLE {table} ADD ROW ACCESS POLICY {rap}",
                        f"{table}.{col} is in {rap} and in {policy} (mask of {masked})",
                    )
    for (table, masked), (policy, using) in sorted(replay.masks.items()):
        for col in using[1:]:
            if (table, col) in replay.masks and not exempt(table, col):
                replay.refuse(
                    "sf-conditional-masked-column",
                    f"ALTER TABLE {table} MODIFY COLUMN {masked} SET MASKING POLICY {policy}",
                    f"{table}.{col} is masked by a policy without EXEMPT_OTHER_POLICIES",
                )


def _sf_tag_lookups(replay: Replay) -> None:
    """The tags the bodies of attached or tag-bound policies read exist; the column's tag is read
    by masking policies only."""
    bound = {p for by_type in replay.tags.values() for p in by_type.values()}
    attached = {p for p, _ in replay.masks.values()} | bound
    for name in sorted(attached | {p for p, _ in replay.rows.values()}):
        policy = replay.policies[name]
        for m in _SF_GET_TAG.finditer(policy.body):
            tag = _norm(m.group(2), _SQ, True)
            if tag not in replay.tag_objects:
                replay.refuse("sf-get-tag-exists", name, f"{name} reads tag {tag}, never created")
            if m.group(1).upper() == "COLUMN" and policy.kind != "mask":
                replay.refuse("sf-get-tag-column-in-mask", name, f"{name} is a row access policy")


def _sf_lookups(replay: Replay) -> None:
    protected = {t for t, _ in replay.masks} | set(replay.rows)
    # a table with a column tagged by a tag that carries masking policies is protected too
    protected |= {t for (t, _), tags in replay.tag_values.items() if set(tags) & set(replay.tags)}
    attached = {p for p, _ in replay.masks.values()} | {p for p, _ in replay.rows.values()}
    for name in sorted(attached):
        body = replay.policies[name].body
        # the tables of the functions the body calls count as read by the policy
        read = " ".join([body, *(f for n, f in replay.functions.items() if n + "(" in body)])
        for table in sorted(_tables_read(read, _SQ, True) & protected):
            replay.refuse("sf-lookup-unprotected", name, f"{name} reads {table}, itself protected")


# -------------------------------------------------------------------------------------------------
# Databricks

_BQ = "`"
_DBX_NAME = _name_re(_BQ)
_DBX_FUNCTION = re.compile(
    rf"CREATE\s+(?:OR\s+REPLACE\s+)?FUNCTION\s+(?:IF\s+NOT\s+EXISTS\s+)?({_DBX_NAME})\s*"
    rf"\((.*?)\)\s*RETURNS\s+(TABLE\s*\(.*?\)|\w+(?:<[\w<>, ]*>)?(?:\s*\([^)]*\))?)\s+(.*)",
    re.DOTALL | re.IGNORECASE,
)
_DBX_SET_MASK = re.compile(
    rf"ALTER\s+TABLE\s+({_DBX_NAME})\s+ALTER\s+COLUMN\s+({_DBX_NAME})\s+SET\s+MASK\s+"
    rf"({_DBX_NAME})(?:\s+USING\s+COLUMNS\s*\((.*?)\))?\s*$",
    re.DOTALL | re.IGNORECASE,
)
_DBX_DROP_MASK = re.compile(
    rf"ALTER\s+TABLE\s+({_DBX_NAME})\s+ALTER\s+COLUMN\s+({_DBX_NAME})\s+DROP\s+MASK", re.IGNORECASE
)
_DBX_SET_FILTER = re.compile(
    rf"ALTER\s+TABLE\s+({_DBX_NAME})\s+SET\s+ROW\s+FILTER\s+({_DBX_NAME})\s+ON\s*\((.*?)\)\s*$",
    re.DOTALL | re.IGNORECASE,
)
_DBX_DROP_FILTER = re.compile(
    rf"ALTER\s+TABLE\s+({_DBX_NAME})\s+DROP\s+ROW\s+FILTER", re.IGNORECASE
)
_DBX_DROP_FUNCTION = re.compile(
    rf"DROP\s+FUNCTION\s+(?:IF\s+EXISTS\s+)?({_DBX_NAME})\s*$", re.IGNORECASE
)
_DBX_PRINCIPALS = re.compile(
    rf"MERGE\s+INTO\s+({_DBX_NAME})\s+AS\s+t\s+USING\s*\(VALUES\s*(.*?)\)\s+AS\s+s\s*\((.*?)\)",
    re.DOTALL | re.IGNORECASE,
)
_DBX_POLICY = re.compile(
    rf"CREATE\s+(OR\s+REPLACE\s+)?POLICY\s+({_DBX_NAME})\s+ON\s+(CATALOG|SCHEMA|TABLE)\s+"
    rf"({_DBX_NAME})\s+(?:COMMENT\s+'(?:[^'\\]|\\.)*'\s+)?COLUMN\s+MASK\s+({_DBX_NAME})\s+"
    r"TO\s+(.*?)\s+(?:EXCEPT\s+(.*?)\s+)?FOR\s+TABLES\s*(?:WHEN\s+(.*?)\s*)?"
    r"(?:MATCH\s+COLUMNS\s+(.*?)\s*)?ON\s+COLUMN\s+(\w+)\s*"
    r"(?:USING\s+COLUMNS\s*\((.*)\))?\s*$",
    re.DOTALL | re.IGNORECASE,
)
_DBX_TAG_CALL = re.compile(r"has_tag(?:_value)?\s*\(([^)]*)\)", re.IGNORECASE)
_DBX_TAG_FORBIDDEN = re.compile(r"[.,\-=/:]")
_LITERAL = re.compile(r"'((?:[^'\\]|\\.)*)'|NULL|TRUE|FALSE|-?[\d.]+", re.IGNORECASE)
_EMAIL = re.compile(r"[^@\s]+@[^@\s]+\Z|[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}\Z")


def _replay_databricks(
    script: str, replay: Replay, catalog: Mapping[tuple[str, str], str] | None
) -> None:
    def norm(name: str) -> str:
        return _norm(name, _BQ, False)

    for st in split_statements(script):
        if m := _DBX_FUNCTION.match(st):
            args = [(a.lower(), ty) for a, ty in _split_args(m.group(2))]
            replay.policies[norm(m.group(1))] = Policy("function", args, _type(m.group(3)), st)
        elif m := _DBX_SET_MASK.match(st):
            table, column, name = norm(m.group(1)), norm(m.group(2)), norm(m.group(3))
            using = _names(m.group(4), _BQ, False) if m.group(4) else []
            fn = replay.policies.get(name)
            if fn is None:
                replay.refuse("dbx-function-exists", st, f"{name} does not exist")
                continue
            if len(fn.args) != 1 + len(using):
                replay.refuse("dbx-mask-arity", st, f"{name} takes {len(fn.args)}, given {using}")
            if len(set(using)) != len(using) or column in using:
                replay.refuse("dbx-using-columns", st, f"USING COLUMNS {using} for {column}")
            if fn.args and fn.returns != fn.args[0][1]:
                replay.refuse("dbx-mask-returns", st, f"{name} returns {fn.returns}")
            if (table, column) in replay.masks:
                replay.note("dbx-second-set", st, f"{table}.{column} already has a mask")
            replay.masks[(table, column)] = (name, [column, *using])
            replay.note("dbx-owner-removable", st, f"the owner of {table} can drop this mask")
        elif m := _DBX_DROP_MASK.match(st):
            replay.masks.pop((norm(m.group(1)), norm(m.group(2))), None)
        elif m := _DBX_SET_FILTER.match(st):
            table, name = norm(m.group(1)), norm(m.group(2))
            on = _names(m.group(3), _BQ, False)
            fn = replay.policies.get(name)
            if fn is None:
                replay.refuse("dbx-function-exists", st, f"{name} does not exist")
                continue
            if len(fn.args) != len(on):
                replay.refuse("dbx-filter-arity", st, f"{name} takes {len(fn.args)}, on {on}")
            if fn.returns != "BOOLEAN":
                replay.refuse("dbx-filter-boolean", st, f"{name} returns {fn.returns}")
            if table in replay.rows:
                replay.note("dbx-second-set", st, f"{table} already has a row filter")
            replay.rows[table] = (name, on)
            replay.note("dbx-owner-removable", st, f"the owner of {table} can drop this filter")
        elif m := _DBX_DROP_FILTER.match(st):
            replay.rows.pop(norm(m.group(1)), None)
        elif m := _DBX_DROP_FUNCTION.match(st):
            replay.policies.pop(norm(m.group(1)), None)
        elif m := _DBX_POLICY.match(st):
            _dbx_policy(replay, st, m, norm)
        elif m := _DBX_PRINCIPALS.match(st):
            columns = [c.strip().lower() for c in m.group(3).split(",")]
            if "principal" not in columns:
                continue
            at = columns.index("principal")
            for row in re.findall(r"\(((?:[^()']|'(?:[^'\\]|\\.)*')*)\)", m.group(2)):
                values = [v.group(1) for v in _LITERAL.finditer(row)]
                principal = values[at] if at < len(values) else None
                if principal is not None:
                    replay.principals.add(principal)
                    if not _EMAIL.match(principal):
                        replay.refuse(
                            "dbx-principal-email",
                            st,
                            f"`{principal}` in {norm(m.group(1))} is not an email address",
                        )
    _dbx_two_masks(replay)
    for (table, column), (name, _) in replay.masks.items():
        expected = (catalog or {}).get((table, column))
        fn = replay.policies[name]
        if expected is not None and fn.args and fn.args[0][1] != _type(expected):
            replay.refuse("dbx-mask-returns", name, f"{table}.{column} is {expected}")


def _split_top(text: str) -> list[str]:
    """Comma-separated items outside parentheses and quotes."""
    out, depth, cur, quote = [], 0, "", False
    for ch in text + ",":
        if ch == "'":
            quote = not quote
        if ch == "," and depth == 0 and not quote:
            if cur.strip():
                out.append(cur.strip())
            cur = ""
            continue
        if not quote:
            depth += (ch == "(") - (ch == ")")
        cur += ch
    return out


def _dbx_policy(replay: Replay, st: str, m: re.Match[str], norm: Callable[[str], str]) -> None:
    """`CREATE [OR REPLACE] POLICY … COLUMN MASK …` (Unity Catalog ABAC)."""
    securable, name, fn = norm(m.group(4)), norm(m.group(2)), norm(m.group(5))
    key = (securable, name)
    if key in replay.abac and not m.group(1):
        replay.refuse("dbx-abac-exists", st, f"{name} exists on {securable}")
        return
    function = replay.policies.get(fn)
    if function is None:
        replay.refuse("dbx-abac-function-exists", st, f"{fn} does not exist")
        return
    principals = _split_top(m.group(6)) + _split_top(m.group(7) or "")
    matches: dict[str, str] = {}
    for item in _split_top(m.group(9) or ""):
        cond, _, alias = item.rpartition(" AS ") if " AS " in item.upper() else (item, "", "")
        if not cond:
            cond, alias = item, ""
        matches[alias.strip().lower() or f"#{len(matches)}"] = cond.strip()
    if len(matches) > 3 or len(principals) > 20:
        replay.refuse(
            "dbx-abac-quotas", st, f"{len(matches)} conditions, {len(principals)} principals"
        )
    on, using = m.group(10).lower(), _split_top(m.group(11) or "")
    bad = [u for u in using if not u.startswith("'") and u.lower() not in matches]
    if on not in matches or bad or len(function.args) != 1 + len(using):
        replay.refuse("dbx-abac-on-column", st, f"ON COLUMN {on}, USING {using} for {fn}")
    for call in _DBX_TAG_CALL.finditer(" ".join([m.group(8) or "", *matches.values()])):
        for literal in re.findall(r"'((?:[^'\\]|\\.)*)'", call.group(1)):
            if _DBX_TAG_FORBIDDEN.search(literal):
                replay.refuse("dbx-tag-characters", st, f"tag key or value `{literal}`")
    replay.abac[key] = (fn, matches)
    on_securable = [k for k in replay.abac if k[0] == securable]
    if len(on_securable) > (50 if m.group(3).upper() == "TABLE" else 100):
        replay.refuse("dbx-abac-quotas", st, f"{len(on_securable)} policies on {securable}")
    if replay.masks:
        replay.note("dbx-abac-and-table-mask", st, "table-level masks exist beside this policy")


def _dbx_two_masks(replay: Replay) -> None:
    """Columns whose tags (`Replay.tag_values`, as the account holds them: the tests set them
    for a column tagged after the apply) an ABAC policy of their table matches, and which have
    a column mask of their own."""
    for (table, column), tags in sorted(replay.tag_values.items(), key=str):
        if column is None or (table, column) not in replay.masks:
            continue
        for (securable, name), (_, matches) in sorted(replay.abac.items()):
            if securable != table:
                continue
            for cond in matches.values():
                call = _DBX_TAG_CALL.search(cond)
                args = re.findall(r"'((?:[^'\\]|\\.)*)'", call.group(1)) if call else []
                if args and args[0] in tags and (len(args) == 1 or tags[args[0]] == args[1]):
                    replay.refuse("dbx-two-masks", f"{name} ON TABLE {table}", f"{table}.{column}")


# -------------------------------------------------------------------------------------------------


def replay(
    script: str,
    platform: str,
    *,
    catalog: Mapping[tuple[str, str], str] | None = None,
    after: Replay | None = None,
) -> Replay:
    """Replay `script` on an empty account of `platform`, or on the account `after` left (a
    script applied over an earlier one; the findings are only this script's). `catalog` maps (table,
    column), named as the platform stores them, to the column's type as the script writes it."""
    out = Replay(platform)
    if after is not None:  # the account as it was; the findings are this script's own
        out = dataclasses.replace(copy.deepcopy(after), violations=[], open=[])
    if platform == "snowflake":
        _replay_snowflake(script, out, catalog)
    elif platform == "databricks":
        _replay_databricks(script, out, catalog)
    else:
        raise ValueError(f"no attach rules for {platform}")
    return out
