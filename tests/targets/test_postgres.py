"""The PostgreSQL target's rendering, without a server (tests/targets/test_postgres_e2e.py runs
the scripts). Hand-built programs here are reused by the end-to-end tests."""

from __future__ import annotations

import dataclasses
import re
from decimal import Decimal
from pathlib import Path

import pytest

from veil import ir, methods, model
from veil.diagnostics import Severity
from veil.model import SqlType
from veil.targets import Options, get_target
from veil.targets.postgres import (
    FUNCTIONS,
    PostgresTarget,
    digest,
    dollar_quote,
    pg_replacement,
    source_key,
)

ROOT = Path(__file__).resolve().parents[2]

#: Quotes, a statement break, a comment, psql's variable and meta-command syntax, dollar quotes,
#: backslashes, a newline and non-ASCII text: every kind of character that could escape quoting.
HOSTILE = "O'Brien\"; DROP TABLE x; -- $$ $veil$ \\ :'v' \\gexec\n\u00e9\u2603"
HOSTILE_NAME = "O'Brien\"; DROP TABLE x; --"  # fits in 63 bytes with `_protected`

TX: model.TableKey = ("sales", "transactions")
CU: model.TableKey = ("sales", "customers")


def name(value: str) -> ir.Name:
    return ir.Name(value=value)


def col(column: str) -> ir.ColumnRef:
    return ir.ColumnRef(name=ir.ObjectName(parts=(column,)))


def purpose(p: str) -> ir.PurposeIs:
    return ir.PurposeIs(purpose=name(p))


def group(g: str) -> ir.InGroup:
    return ir.InGroup(group=name(g))


def column(n: str, ty: str, **kw: int) -> model.CatalogColumn:
    return model.CatalogColumn(name=n, type=SqlType(name=ty, **kw))


def unless(
    table: model.TableKey,
    c: model.CatalogColumn,
    action: methods.MaskAction,
    cond: ir.Condition,
    when: ir.Expr | None = None,
) -> model.ColumnMask:
    return model.ColumnMask(
        table=table,
        column=c.name,
        type=c.type,
        when=when,
        arms=(model.MaskArm(action=None, cond=cond), model.MaskArm(action=action, cond=None)),
    )


def approved(p: str) -> model.ProjectPurpose:
    return model.ProjectPurpose(
        purpose=p,
        state=model.PurposeState.APPROVED,
        approved_by="carol",
        approved_at="2026-11-20T10:00:00Z",
    )


def small_program() -> model.Program:
    """Two tables, every kind of atom, a filter with `user.region`, a restrict-only table."""
    tx_cols = (
        column("id", "bigint"),
        column("credit_card", "varchar", length=19),
        column("email", "varchar", length=320),
        column("amount", "decimal", precision=12, scale=2),
        column("region", "varchar", length=8),
        column("created_at", "timestamp"),
    )
    cu_cols = (column("id", "bigint"), column("birth_date", "date"))
    tx = model.CatalogTable(key=TX, columns=tx_cols)
    cu = model.CatalogTable(key=CU, columns=cu_cols)
    masks = (
        unless(TX, tx_cols[1], methods.MaskShow(side="last", count=4), purpose("Fraud Detection")),
        unless(
            TX,
            tx_cols[2],
            methods.MaskHash(salt="sales.transactions"),
            ir.CondOr(items=(purpose("Fraud Detection"), group("stewards"))),
        ),
        model.ColumnMask(
            table=TX,
            column="amount",
            type=tx_cols[3].type,
            arms=(
                model.MaskArm(
                    action=methods.MaskRound(step=Decimal(100)), cond=group("contractors")
                ),
                model.MaskArm(action=None, cond=None),
            ),
        ),
    )
    rules = (
        model.RowRule(
            table=TX,
            kind="filter",
            allow=purpose("Fraud Detection"),
            where=ir.InUser(item=col("region"), ref=ir.UserRef(attr="region")),
        ),
        model.RowRule(table=CU, kind="restrict", allow=ir.AnyPurpose()),
    )
    project = model.ProjectInfo(
        name="fraud_q4",
        purposes=(approved("Fraud Detection"),),
        members=("alice", "bob"),
        sources=(TX, CU),
        documentation="Q4",
    )
    users = (
        model.UserInfo(
            name="alice", groups=("analysts",), attributes=(("region", ("APAC", "EMEA")),)
        ),
        model.UserInfo(name="bob", groups=("analysts",), attributes=(("region", ("AMER",)),)),
    )
    return model.Program(
        tables=(cu, tx),
        purposes=(model.PurposeInfo(name="Fraud Detection"),),
        groups=("analysts", "contractors", "stewards"),
        users=users,
        projects=(project,),
        masks=masks,
        row_rules=rules,
    )


KITCHEN: model.TableKey = ("lab", "kitchen")


def arms(
    *pairs: tuple[methods.MaskAction | None, ir.Condition | None],
) -> tuple[model.MaskArm, ...]:
    return tuple(model.MaskArm(action=a, cond=c) for a, c in pairs)


def kitchen_program(
    users: tuple[model.UserInfo, ...] = (), groups: tuple[str, ...] = ()
) -> model.Program:
    """One table with every column type, every masking method, every kind of atom and row
    predicate; for the given users and groups (the end-to-end tests pass the example's)."""
    fd, audit = purpose("Fraud Detection"), purpose("Audit")
    cols = (
        column("id", "bigint"),
        column("flag", "boolean"),
        column("small", "smallint"),
        column("ratio", "real"),
        column("measure", "double"),
        column("price", "decimal", precision=10, scale=3),
        column("code", "char", length=4),
        column("label", "varchar", length=12),
        column("body", "text"),
        column("born", "date"),
        column("seen", "timestamp"),
        column("seen_tz", "timestamptz"),
        column("doc", "json"),
        column("blob", "binary"),
        column("owner", "varchar", length=32),
        column("region", "varchar", length=8),
        column("email", "text"),
    )
    by = {c.name: c for c in cols}

    def m(
        n: str,
        *pairs: tuple[methods.MaskAction | None, ir.Condition | None],
        when: ir.Expr | None = None,
    ) -> model.ColumnMask:
        return model.ColumnMask(
            table=KITCHEN, column=n, type=by[n].type, arms=arms(*pairs), when=when
        )

    def lit(v: ir.LiteralValue) -> ir.Literal:
        return ir.Literal(value=v)

    masks = (
        m("flag", (methods.MaskConstant(value=False), group("marketing")), (None, None)),
        m(
            "small",
            (None, ir.IsUser(user=name("alice"))),
            (methods.MaskRound(step=Decimal(10)), None),
        ),
        m("ratio", (None, fd), (methods.MaskRound(step=Decimal("0.5")), None)),
        m(
            "measure",
            (None, ir.HasAttribute(key="department", value="Risk")),
            (methods.MaskRound(step=Decimal(100)), None),
        ),
        m(
            "price",
            (None, ir.CondNot(item=group("contractors"))),
            (methods.MaskRound(step=Decimal("0.05")), None),
        ),
        m(
            "code",
            (None, ir.CondAnd(items=(group("analysts"), audit))),
            (methods.MaskShow(side="first", count=2), None),
        ),
        m("label", (methods.MaskRegex(pattern="([a-z]+)-([0-9]+)", replacement="\\2:\\1"), None)),
        m(
            "body",
            (None, ir.AnyPurpose()),
            (methods.MaskHash(salt="lab.kitchen", length=16), None),
            when=ir.Compare(op="=", left=col("flag"), right=lit(True)),
        ),
        m("born", (None, group("stewards")), (methods.MaskTruncate(unit="quarter"), None)),
        m(
            "seen",
            (None, purpose("Fraud Detection.Chargebacks")),
            (methods.MaskTruncate(unit="hour"), None),
        ),
        m("seen_tz", (None, group("auditors")), (methods.MaskTruncate(unit="day"), None)),
        m("doc", (None, ir.IsUser(user=name("sam"))), (methods.MaskNull(), None)),
        m("blob", (methods.MaskNull(), None)),
        m(
            "email",
            (None, fd),
            (
                methods.MaskEmailDomain(),
                ir.CondOr(items=(group("marketing"), ir.HasAttribute(key="region", value="EMEA"))),
            ),
            (methods.MaskHash(salt="lab.kitchen"), None),
        ),
    )
    region_set = ir.UserRef(attr="region")
    rules = (
        model.RowRule(
            table=KITCHEN,
            kind="filter",
            allow=group("auditors"),
            where=ir.InUser(item=col("region"), ref=region_set, negated=True),
        ),
        model.RowRule(
            table=KITCHEN,
            kind="filter",
            allow=ir.HasAttribute(key="department", value="Risk"),
            where=ir.BoolOr(
                items=(
                    ir.Between(item=col("born"), low=lit("1900-01-01"), high=ir.Today()),
                    ir.IsNull(item=col("born")),
                )
            ),
        ),
        model.RowRule(
            table=KITCHEN,
            kind="filter",
            allow=audit,
            where=ir.BoolOr(
                items=(
                    ir.Compare(op="=", left=col("owner"), right=ir.UserRef(attr="name")),
                    ir.InUser(item=col("owner"), ref=ir.UserRef(attr="groups")),
                    ir.Compare(op=">", left=col("small"), right=lit(0)),
                    ir.BoolNot(
                        item=ir.Compare(
                            op=">=", left=col("ratio"), right=ir.Neg(item=lit(Decimal("0.5")))
                        )
                    ),
                )
            ),
        ),
        model.RowRule(
            table=KITCHEN,
            kind="restrict",
            allow=ir.CondOr(items=(fd, audit, ir.CondNot(item=group("contractors")))),
        ),
    )

    def project(
        p: str,
        purpose_name: str,
        members: tuple[str, ...],
        state: model.PurposeState = model.PurposeState.APPROVED,
    ) -> model.ProjectInfo:
        pp = model.ProjectPurpose(purpose=purpose_name, state=state)
        return model.ProjectInfo(name=p, purposes=(pp,), members=members, sources=(KITCHEN,))

    projects = (
        project("lab_audit", "Audit", ("bob", "erin")),
        project("lab_chargebacks", "Fraud Detection.Chargebacks", ("bob",)),
        project("lab_fraud", "Fraud Detection", ("alice", "chris")),
        project("lab_stale", "Fraud Detection", ("chris",), model.PurposeState.STALE),
    )
    purposes = tuple(
        model.PurposeInfo(name=n)
        for n in ("Audit", "Fraud Detection", "Fraud Detection.Chargebacks")
    )
    return model.Program(
        tables=(model.CatalogTable(key=KITCHEN, columns=cols),),
        purposes=purposes,
        groups=groups,
        users=users,
        projects=projects,
        masks=masks,
        row_rules=rules,
    )


HOSTILE_TABLE: model.TableKey = (HOSTILE_NAME, "t$$x")
HOSTILE_GROUP = HOSTILE_NAME + " group"


def hostile_program() -> model.Program:
    """Hostile text as a schema, a table, a column, a purpose, a project, a group, a user, an
    attribute value, a constant, a regex, a row-filter literal and an acknowledgement text."""
    cols = (
        column("id", "integer"),
        column(HOSTILE_NAME, "text"),
        column("note", "text"),
        column("tag", "text"),
    )
    table = model.CatalogTable(key=HOSTILE_TABLE, columns=cols)
    masks = (
        unless(HOSTILE_TABLE, cols[1], methods.MaskConstant(value=HOSTILE), purpose(HOSTILE_NAME)),
        unless(
            HOSTILE_TABLE,
            cols[2],
            methods.MaskRegex(pattern="[$';\"\\\\]", replacement="\\&"),
            group(HOSTILE_GROUP),
        ),
    )
    rules = (
        model.RowRule(
            table=HOSTILE_TABLE,
            kind="filter",
            allow=purpose(HOSTILE_NAME),
            where=ir.BoolOr(
                items=(
                    ir.Compare(op="=", left=col("tag"), right=ir.Literal(value=HOSTILE)),
                    ir.InUser(item=col("tag"), ref=ir.UserRef(attr=HOSTILE_NAME)),
                )
            ),
        ),
    )
    project = model.ProjectInfo(
        name=HOSTILE_NAME,
        purposes=(approved(HOSTILE_NAME),),
        members=(HOSTILE_NAME,),
        sources=(HOSTILE_TABLE,),
        documentation=HOSTILE,
    )
    users = (model.UserInfo(name=HOSTILE_NAME, attributes=((HOSTILE_NAME, (HOSTILE,)),)),)
    return model.Program(
        tables=(table,),
        purposes=(model.PurposeInfo(name=HOSTILE_NAME, acknowledgement=HOSTILE),),
        groups=(HOSTILE_GROUP,),
        users=users,
        projects=(project,),
        masks=masks,
        row_rules=rules,
    )


def pg() -> PostgresTarget:
    return PostgresTarget()


_TOKENS = re.compile(r"""--[^\n]*|'(?:[^']|'')*'|"(?:[^"]|"")*"|(\$veil\d*\$).*?\1""", re.S)


def strip_quoted(script: str) -> str:
    """The script without comments, string literals, quoted identifiers and `$veil$` bodies."""
    return _TOKENS.sub(" ", script)


def dollar_bodies(script: str) -> list[str]:
    """The text of every `$tag$ … $tag$` body outside string literals and comments."""
    bodies: list[str] = []
    for match in re.finditer(r"(?m)^(?:DO|AS) (\$veil\d*\$)", script):
        tag = match.group(1)
        end = script.index(tag, match.end())
        bodies.append(script[match.end() : end])
    return bodies


# -------------------------------------------------------------------------------- registry


def test_the_registry_builds_the_postgres_target() -> None:
    target = get_target("postgres")
    assert isinstance(target, PostgresTarget)
    assert target.name == "postgres"
    assert target.max_identifier == 63


@pytest.mark.parametrize(
    ("veil_type", "sql"),
    [
        (SqlType(name="boolean"), "boolean"),
        (SqlType(name="smallint"), "smallint"),
        (SqlType(name="integer"), "integer"),
        (SqlType(name="bigint"), "bigint"),
        (SqlType(name="decimal", precision=12, scale=2), "numeric(12, 2)"),
        (SqlType(name="decimal"), "numeric"),
        (SqlType(name="real"), "real"),
        (SqlType(name="double"), "double precision"),
        (SqlType(name="varchar", length=19), "varchar(19)"),
        (SqlType(name="varchar"), "varchar"),
        (SqlType(name="char", length=2), "char(2)"),
        (SqlType(name="text"), "text"),
        (SqlType(name="date"), "date"),
        (SqlType(name="timestamp"), "timestamp"),
        (SqlType(name="timestamptz"), "timestamptz"),
        (SqlType(name="binary"), "bytea"),
        (SqlType(name="json"), "jsonb"),
    ],
)
def test_type_map(veil_type: SqlType, sql: str) -> None:
    assert pg().sql_type(veil_type) == sql


# -------------------------------------------------------------------------------- quoting


def test_identifiers_are_always_quoted_and_double_their_quotes() -> None:
    assert pg().ident("id") == '"id"'
    assert pg().ident(HOSTILE_NAME) == '"O\'Brien""; DROP TABLE x; --"'
    assert pg().qualified(("a.b", 'c"d')) == '"a.b"."c""d"'


@pytest.mark.parametrize("bad", ["", "a\0b"])
def test_impossible_identifiers_are_refused(bad: str) -> None:
    with pytest.raises(ValueError, match="cannot be a PostgreSQL identifier"):
        pg().ident(bad)


def test_string_literals_double_single_quotes_and_nothing_else() -> None:
    assert pg().literal(HOSTILE) == "'" + HOSTILE.replace("'", "''") + "'"
    assert pg().literal("back\\slash") == "'back\\slash'"  # standard_conforming_strings
    with pytest.raises(ValueError, match="NUL"):
        pg().literal("a\0b")


def test_other_literals() -> None:
    t = pg()
    assert t.literal(None) == "NULL"
    assert t.literal(True) == "TRUE"
    assert t.literal(Decimal("-1.50")) == "-1.50"
    assert t.literal(("b", "it's")) == "ARRAY['b', 'it''s']::text[]"
    assert t.literal(()) == "'{}'::text[]"
    assert t.literal(float("inf")) == "CAST('inf' AS double precision)"
    assert t.literal(Decimal("NaN")) == "CAST('NaN' AS numeric)"


def test_dollar_quote_picks_a_tag_absent_from_the_body() -> None:
    assert dollar_quote("SELECT 1\n") == "$veil$\nSELECT 1\n$veil$"
    assert dollar_quote("a $veil$ b $veil1$") == "$veil2$\na $veil$ b $veil1$$veil2$"


def test_source_key_is_injective() -> None:
    assert source_key(("sales", "transactions")) == "sales.transactions"
    assert source_key(("a.b", "c")) != source_key(("a", "b.c"))


# -------------------------------------------------------------------------------- atoms


def test_purpose_atoms_are_scalar_subselects() -> None:
    t = pg()
    assert t.purpose_sql("Fraud Detection", TX) == (
        "(SELECT \"veil\".\"has_purpose\"(current_user, 'Fraud Detection', 'sales.transactions'))"
    )
    assert t.purpose_sql(None, TX) == (
        '(SELECT "veil"."has_purpose"(current_user, NULL::text, \'sales.transactions\'))'
    )


def test_group_attribute_and_user_atoms() -> None:
    t = pg()
    assert t.group_sql("it's") == (
        "(SELECT pg_catalog.pg_has_role(current_user, 'it''s', 'MEMBER'))"
    )
    assert t.attribute_sql("region", "EMEA") == (
        "(SELECT \"veil\".\"has_attribute\"(current_user, 'region', 'EMEA'))"
    )
    assert t.user_sql("alice") == "(current_user = 'alice')"


def test_in_user_sets_use_an_initplan_array() -> None:
    t = pg()
    assert t.in_user_sql('"region"', "region", negated=False) == (
        '(CAST("region" AS text) = ANY ((SELECT "veil"."user_values"(current_user, '
        "'region'))::text[]))"
    )
    assert t.in_user_sql("x", "groups", negated=True) == (
        '(NOT (CAST(x AS text) = ANY ((SELECT "veil"."user_groups"(current_user))::text[])))'
    )


def test_governance_schema_option_names_functions_and_roles() -> None:
    t = PostgresTarget(Options(governance_schema="gov", view_schema_suffix="_v"))
    assert '"gov"."has_purpose"' in t.purpose_sql("P", TX)
    assert (t.owner_role, t.view_role) == ("gov_owner", "gov_views")
    assert t.view_of(TX) == ("sales_v", "transactions")


# -------------------------------------------------------------------------------- methods


def test_hash_is_keyed_and_reads_the_key_from_the_key_table() -> None:
    def sha(text: str) -> str:
        return f"pg_catalog.encode(pg_catalog.sha256(pg_catalog.convert_to({text}, 'UTF8')), 'hex')"

    # the table's key in one uncorrelated sub-select (an InitPlan: once per query), the value
    # hashed once per row behind it
    table_key = (
        f"""(SELECT LEFT({sha('k."key_hex" || ' + "':it''s'")}, 32) FROM "veil"."hash_key" AS k)"""
    )
    assert pg().hash_sql("c", "it's") == sha(f"{table_key} || CAST(c AS text)")


@pytest.mark.parametrize(
    ("veil", "postgres"),
    [
        ("\\1-\\9", "\\1-\\9"),
        ("\\\\", "\\\\"),
        ("\\&", "\\\\&"),  # PostgreSQL's whole-match reference, literal in veil
        ("\\0 \\n", "\\\\0 \\\\n"),
        ("end\\", "end\\\\"),
        ("[removed]", "[removed]"),
    ],
)
def test_regex_replacements_are_rewritten_for_regexp_replace(veil: str, postgres: str) -> None:
    assert pg_replacement(veil) == postgres


def test_regex_uses_the_c_collation_and_every_match() -> None:
    assert pg().regex_sql("c", "a'b", "\\1") == (
        "pg_catalog.regexp_replace(CAST(c AS text) COLLATE \"C\", 'a''b', '\\1', 'g')"
    )


def test_truncate_per_type() -> None:
    t = pg()
    assert t.truncate_sql("c", "year", SqlType(name="date")) == (
        "pg_catalog.date_trunc('year', CAST(c AS timestamp))"
    )
    assert t.truncate_sql("c", "month", SqlType(name="timestamp")) == (
        "pg_catalog.date_trunc('month', c)"
    )
    assert t.truncate_sql("c", "hour", SqlType(name="timestamptz")) == (
        "pg_catalog.date_trunc('hour', c, 'Etc/UTC')"
    )


def test_email_domain_and_today() -> None:
    assert pg().email_domain_sql("c") == "SUBSTRING(CAST(c AS text) FROM '@([^@]*)$')"
    assert pg().now_sql() == "(CURRENT_TIMESTAMP AT TIME ZONE 'Etc/UTC')"
    assert pg().today_sql() == "CAST((CURRENT_TIMESTAMP AT TIME ZONE 'Etc/UTC') AS date)"


def test_masks_are_cast_to_the_exact_column_type() -> None:
    prog = small_program()
    card = prog.masks_of(TX)[0]
    sql = pg().mask_sql(card, lambda n: "t." + pg().ident(n))
    assert sql.startswith('CAST(CASE WHEN (SELECT "veil"."has_purpose"(')
    assert sql.endswith(" END AS varchar(19))")


# -------------------------------------------------------------------------------- the script


def test_script_layout() -> None:
    script = pg().render(small_program())
    assert script.startswith("-- Generated by veil ")
    assert script.endswith(";\n")
    order = [
        "SAVEPOINT veil_apply;",
        'CREATE SCHEMA IF NOT EXISTS "veil";',
        "CREATE ROLE %I NOLOGIN",
        'CREATE OR REPLACE FUNCTION "veil".has_purpose',
        'CREATE OR REPLACE FUNCTION "veil".use_project',
        'ALTER TABLE "sales"."customers" ENABLE ROW LEVEL SECURITY;',
        'CREATE OR REPLACE VIEW "sales_protected"."customers"',
        'CREATE OR REPLACE VIEW "sales_protected"."transactions"',
        "REVOKE ALL ON TABLE %s FROM %s CASCADE",
    ]
    positions = [script.index(s) for s in order]
    assert positions == sorted(positions)


def test_script_has_no_transaction_control() -> None:
    script = pg().render(small_program())
    for line in script.splitlines():
        assert not re.match(r"\s*(BEGIN|COMMIT|ROLLBACK|START TRANSACTION)\s*;", line, re.I), line


PUBLIC_FUNCTIONS = (
    "has_purpose",
    "use_project",
    "acknowledgement_texts",
    "acknowledge",
    "has_attribute",
    "user_values",
    "user_groups",
)
INTERNAL_FUNCTIONS = ("require_member", "audit_append", "audit_log_is_append_only", "set_hash_key")


def test_every_function_is_hardened() -> None:
    script = pg().render(small_program())
    functions = re.findall(r"CREATE OR REPLACE FUNCTION (\S+)\(", script)
    assert sorted(functions) == sorted(
        f'"veil".{f}' for f in (*PUBLIC_FUNCTIONS, *INTERNAL_FUNCTIONS)
    )
    # the pre-flight check knows every one of them (anything else in the schema stops a script)
    assert sorted(f.split("(")[0] for f in FUNCTIONS) == sorted(
        (*PUBLIC_FUNCTIONS, *INTERNAL_FUNCTIONS)
    )
    assert script.count("LANGUAGE sql STABLE PARALLEL SAFE SECURITY DEFINER") == 4
    assert script.count("LANGUAGE plpgsql STABLE SECURITY DEFINER") == 2
    assert script.count("LANGUAGE plpgsql VOLATILE SECURITY DEFINER") == 3
    assert script.count("SET search_path = pg_catalog, pg_temp") == len(functions)
    for f in functions:
        assert re.search(rf"ALTER FUNCTION {re.escape(f)}\(.*\) OWNER TO \"veil_owner\";", script)
        assert re.search(rf"REVOKE ALL ON FUNCTION {re.escape(f)}\(.*\) FROM PUBLIC;", script)
        granted = re.search(rf"GRANT EXECUTE ON FUNCTION {re.escape(f)}\(.*\) TO PUBLIC;", script)
        assert bool(granted) == (f.split(".")[1] in PUBLIC_FUNCTIONS), f


def test_one_restrictive_policy_per_table_named_by_its_using() -> None:
    """All the row rules of a table in one policy, `veil_rows_<hash of its USING>`: a second
    rule on sales.transactions joins the first one's policy."""
    base = small_program()
    second = model.RowRule(table=TX, kind="restrict", allow=group("auditors"))
    program = dataclasses.replace(base, row_rules=(*base.row_rules, second))
    script = pg().render(program)
    found = re.findall(
        r"CREATE POLICY \"(veil_rows_[0-9a-f]{8})\" ON \"sales\"\.\"(\w+)\" "
        r"AS RESTRICTIVE FOR SELECT TO PUBLIC",
        script,
    )
    expected = []
    for table in ("customers", "transactions"):
        row_policy = pg().row_policy(program, ("sales", table))
        assert row_policy is not None
        name, using = row_policy
        assert name == f"veil_rows_{digest(using)[:8]}"
        expected.append((name, table))
    assert found == expected
    assert script.count("AS RESTRICTIVE") == 2
    assert pg().row_policy(base, TX) != pg().row_policy(program, TX)
    assert script.count('AS PERMISSIVE FOR SELECT\n  TO "veil_views" USING (TRUE);') == 2


def test_views_select_every_column_in_catalog_order() -> None:
    script = pg().render(small_program())
    view = script[script.index('CREATE OR REPLACE VIEW "sales_protected"."transactions"') :]
    view = view[: view.index("\nFROM ") + 1]
    # no barrier: PostgreSQL flattens the view into the reader's query (docs/performance.md)
    assert "security_barrier" not in view
    assert re.findall(r' AS "(\w+)",?\n', view) == [
        "id",
        "credit_card",
        "email",
        "amount",
        "region",
        "created_at",
    ]


def test_governance_rows_include_roles_sources_and_protected_tables() -> None:
    rows = pg().governance_rows(small_program())
    assert rows["managed_role"] == [
        ("analysts", "group"),
        ("contractors", "group"),
        ("stewards", "group"),
        ("veil_auditors", "auditors"),
        ("veil_owner", "owner"),
        ("veil_views", "views"),
    ]
    assert rows["project_source"] == [
        ("fraud_q4", "sales.customers"),
        ("fraud_q4", "sales.transactions"),
    ]
    [customers, transactions] = rows["protected_table"]
    assert customers[:4] == ("sales", "customers", "sales_protected", "customers")
    policies = customers[4]
    assert isinstance(policies, tuple)
    assert policies[0] == "veil_base" and policies[1].startswith("veil_rows_")
    assert transactions[5] == ("id", "credit_card", "email", "amount", "region", "created_at")


def test_project_purposes_carry_their_effective_acknowledgement_text() -> None:
    base = small_program()
    [project] = base.projects
    program = dataclasses.replace(
        base,
        purposes=(
            model.PurposeInfo(name="Fraud Detection", acknowledgement="I will. It's 'quoted'."),
            # inherited, as the checker resolves it
            model.PurposeInfo(
                name="Fraud Detection.Chargebacks", acknowledgement="I will. It's 'quoted'."
            ),
            model.PurposeInfo(name="Marketing"),
        ),
        projects=(
            dataclasses.replace(
                project,
                purposes=(
                    approved("Fraud Detection"),
                    approved("Fraud Detection.Chargebacks"),
                    approved("Marketing"),
                ),
            ),
        ),
    )
    rows = pg().governance_rows(program)["project_purpose"]
    assert [(r[1], r[-1]) for r in rows] == [
        ("Fraud Detection", "I will. It's 'quoted'."),
        ("Fraud Detection.Chargebacks", "I will. It's 'quoted'."),
        ("Marketing", None),
    ]
    script = pg().render(program)
    assert "'I will. It''s ''quoted''.')" in script
    # runtime data: created once, never synchronised or deleted by the script
    assert 'CREATE TABLE IF NOT EXISTS "veil".audit_log (' in script
    assert 'CREATE TABLE IF NOT EXISTS "veil".member_acknowledgement (' in script
    for table in ("audit_log", "member_acknowledgement"):
        assert not re.search(rf"(DELETE FROM|TRUNCATE|DROP TABLE) \"veil\".{table}\b", script)
    assert 'GRANT SELECT ON TABLE "veil".audit_log TO "veil_auditors";' in script


def test_hostile_text_is_quoted_and_never_inside_a_dollar_quoted_body() -> None:
    script = pg().render(hostile_program())
    assert pg().literal(HOSTILE) in script
    assert pg().ident(HOSTILE_NAME + "_protected") in script
    bodies = dollar_bodies(script)
    assert len(bodies) >= 9
    for body in bodies:
        assert "O'Brien" not in body and "Brien" not in body
    # outside string literals, quoted identifiers and comments it never appears
    assert "Brien" in script
    assert "Brien" not in strip_quoted(script)
    for line in script.splitlines():
        assert line.isprintable(), line


def test_comments_cannot_be_broken_by_a_newline() -> None:
    assert (
        get_target("postgres").comment("a\nDROP TABLE x; --\t\u2603")
        == "a\\u000aDROP TABLE x; --\\u0009\u2603"
    )


# -------------------------------------------------------------------------------- target rules


def codes(program: model.Program, options: Options | None = None) -> list[tuple[str, Severity]]:
    return [(d.code, d.severity) for d in PostgresTarget(options).check(program)]


def test_a_clean_program_has_no_diagnostics() -> None:
    assert codes(small_program()) == []
    assert codes(kitchen_program()) == []
    assert codes(hostile_program()) == []


def test_long_identifiers_are_errors() -> None:
    prog = small_program()
    long_table = model.CatalogTable(key=("s", "x" * 64), columns=(column("y" * 64, "text"),))
    prog = dataclasses.replace(prog, tables=(*prog.tables, long_table))
    assert codes(prog) == [("T0301", Severity.ERROR)] * 2
    with pytest.raises(ValueError, match="longer than 63 bytes"):
        pg().render(prog)


def test_tables_need_a_schema() -> None:
    prog = small_program()
    prog = dataclasses.replace(prog, tables=(model.CatalogTable(key=("t",), columns=()),))
    assert codes(prog) == [("T0302", Severity.ERROR)]


@pytest.mark.parametrize(
    "key", [("sales_protected", "transactions"), ("veil", "t"), ("db", "veil", "t")]
)
def test_names_that_clash_with_veil_objects(key: model.TableKey) -> None:
    prog = small_program()
    clash = model.CatalogTable(key=key, columns=(column("id", "integer"),))
    rule = model.RowRule(table=key, kind="restrict", allow=ir.AnyPurpose())
    prog = dataclasses.replace(
        prog, tables=(*prog.tables, clash), row_rules=(*prog.row_rules, rule)
    )
    assert codes(prog) == [("T0306", Severity.ERROR)]


@pytest.mark.parametrize(
    ("group_name", "code"),
    [
        ("public", ("T0303", Severity.ERROR)),
        ("veil_views", ("T0303", Severity.ERROR)),
        ("veil_auditors", ("T0303", Severity.ERROR)),
        ("pg_monitor", ("T0305", Severity.WARNING)),
    ],
)
def test_group_names_that_cannot_be_roles(group_name: str, code: tuple[str, Severity]) -> None:
    prog = small_program()
    prog = dataclasses.replace(prog, groups=(*prog.groups, group_name))
    assert codes(prog) == [code]


@pytest.mark.parametrize(
    "options",
    [
        Options(governance_schema="Veil"),
        Options(governance_schema="a$$b"),
        Options(view_schema_suffix="-v"),
        Options(governance_schema="g" * 55),  # `<schema>_auditors` would be 64 bytes
    ],
)
def test_bad_options(options: Options) -> None:
    assert codes(small_program(), options) == [("T0304", Severity.ERROR)]


def test_the_longest_governance_schema() -> None:
    assert codes(small_program(), Options(governance_schema="g" * 54)) == []
