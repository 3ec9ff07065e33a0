"""The Snowflake target: grammar (sqlfluff), semantics (policy bodies run in DuckDB through sqlglot
and compared with the reference evaluator), acknowledgements and the audit log, re-apply safety,
determinism, hostile strings and the target's own diagnostics."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import pytest
import sqlglot
from sqlglot import exp

from tests.targets import scenarios
from tests.targets.scenarios import Scenario
from tests.verify.attach_rules import sf_row_attachments
from tests.verify.snowflake_duck import PolicyDDL, SnowflakeDuck, TableSpec, parse_policy_ddl
from tests.verify.sqlfluff_check import parse_script, split_statements
from veil import methods, model
from veil.evaluator import Context, mask_value
from veil.masking import TEST_HASH_KEY
from veil.targets import get_target, governance
from veil.targets.snowflake import SnowflakeTarget

#: sqlfluff gaps a generated Snowflake script may need (docs/targets/snowflake.md lists them).
DOCUMENTED_GAPS = {"sf_exempt_other_policies"}

#: The governance tables the script synchronises, and the runtime tables the procedures write
#: (the active project is set directly by the tests).
SYNCED = governance.tables("lookup", "repository")
RUNTIME = {
    tb.name: tb for tb in governance.tables("lookup", "runtime") if tb.name != "active_project"
}


@pytest.fixture(scope="module")
def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(microsecond=0)


@pytest.fixture(scope="module")
def target() -> SnowflakeTarget:
    tgt = get_target("snowflake")
    assert isinstance(tgt, SnowflakeTarget)
    return tgt


@pytest.fixture(scope="module", params=["payments", "edge", "dotted", *scenarios.golden_cases()])
def scenario(request: pytest.FixtureRequest, now: dt.datetime) -> Scenario:
    return scenarios.build(request.param, now)


@pytest.fixture(scope="module")
def script(target: SnowflakeTarget, scenario: Scenario) -> str:
    return target.render(scenario.program)


def policies(script: str) -> dict[str, PolicyDDL]:
    """The policies of a script, by name: the signature of its CREATE … POLICY statement, the
    body its ALTER … SET BODY gives it."""
    out = {}
    for statement in split_statements(script):
        if re.match(r"CREATE (MASKING|ROW ACCESS) POLICY", statement):
            ddl = parse_policy_ddl(statement)
            out[ddl.name] = ddl
        elif re.match(r"ALTER (MASKING|ROW ACCESS) POLICY", statement):
            ddl = parse_policy_ddl(statement)
            out[ddl.name] = dataclasses.replace(out[ddl.name], body=ddl.body)
    return out


# -------------------------------------------------------------------------------------------------
# (a) grammar


def test_every_statement_parses_with_sqlfluff(script: str) -> None:
    reports = parse_script(script, "snowflake")
    used = {gap for r in reports for gap in r.gaps}
    assert used <= DOCUMENTED_GAPS, f"undocumented sqlfluff gaps: {used - DOCUMENTED_GAPS}"
    # the $$ bodies of the procedures, the function and the blocks were parsed on their own
    with_body = [
        r for r in reports if r.statement.startswith(("CREATE OR REPLACE", "EXECUTE IMMEDIATE"))
    ]
    assert all(r.bodies_checked == 1 for r in with_body)
    routines = [r.statement.split("(", 1)[0] for r in with_body if r.statement.startswith("CREATE")]
    assert routines == [
        "CREATE OR REPLACE PROCEDURE VEIL.USE_PROJECT",
        "CREATE OR REPLACE SECURE FUNCTION VEIL.ACKNOWLEDGEMENT_TEXTS",
        "CREATE OR REPLACE PROCEDURE VEIL.ACKNOWLEDGE",
        "CREATE OR REPLACE PROCEDURE VEIL.SET_HASH_KEY",
        "CREATE OR REPLACE FUNCTION VEIL.ACTIVE_PURPOSES",
        "CREATE OR REPLACE FUNCTION VEIL.USER_GROUPS",
        "CREATE OR REPLACE FUNCTION VEIL.USER_VALUES",
    ]


# -------------------------------------------------------------------------------------------------
# (b) semantics: every policy body, every (user, project), every sample row


def governance(
    target: SnowflakeTarget, program: model.Program
) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    rows = target.governance_rows(program)
    tables = {}
    for tb in SYNCED:
        specs = [
            f"{target.ident(c.name)} {'BOOLEAN' if c.type == 'boolean' else 'VARCHAR'}"
            for c in tb.columns
        ]
        tables[target.gov(tb.name)] = (specs, rows[tb.name])
    # the hash key, set to the evaluator's as the tests of a real account would
    tables[target.gov("hash_key")] = ([f"{target.ident('key_hex')} VARCHAR"], [(TEST_HASH_KEY,)])
    return tables


def active_project(
    target: SnowflakeTarget, rows: list[tuple[object, ...]]
) -> dict[str, tuple[list[str], list[tuple[object, ...]]]]:
    cols = [
        f"{target.ident(c)} {ty}"
        for c, ty in (
            ("principal", "VARCHAR"),
            ("project_name", "VARCHAR"),
            ("set_at", "TIMESTAMP_LTZ"),
        )
    ]
    return {target.gov("active_project"): (cols, rows)}


def runtime(
    target: SnowflakeTarget, name: str, rows: list[tuple[object, ...]]
) -> dict[str, TableSpec]:
    """A runtime table (RUNTIME) holding `rows`."""
    cols = [
        f"{target.ident(c.name)} {'TIMESTAMP_LTZ' if c.type == 'timestamptz' else 'VARCHAR'}"
        for c in RUNTIME[name].columns
    ]
    return {target.gov(name): (cols, rows)}


def acknowledgements(
    target: SnowflakeTarget, rows: list[tuple[str, str, str, str]], at: dt.datetime
) -> dict[str, TableSpec]:
    """The acknowledgement table holding (principal, project, purpose, text) rows."""
    return runtime(target, "member_acknowledgement", [(*r, at) for r in rows])


def test_policies_agree_with_the_evaluator(
    target: SnowflakeTarget, scenario: Scenario, script: str, now: dt.datetime
) -> None:
    program = scenario.program
    ddl = policies(script)
    exempt = target.exempt_columns(program)
    problems: list[str] = []
    tables = {
        **governance(target, program),
        **acknowledgements(target, scenarios.acknowledgement_rows(scenario), now),
    }
    with SnowflakeDuck(tables) as duck:
        duck.set_tables(active_project(target, []))
        duck.define_functions(script)
        duck.query("SET TimeZone = 'UTC'")
        for ctx in scenario.contexts:
            active = [(ctx.user, ctx.project, now)] if ctx.project else []
            duck.set_tables(active_project(target, active))
            info = program.user(ctx.user)
            roles = {target.stored_name(g) for g in (info.groups if info else ())}
            for key, rows in scenario.rows.items():
                cells = {}
                for mask in program.masks_of(key):
                    ctx_mask = target.mask_policy(program, mask, (key, mask.column) in exempt)
                    args = target.mask_args(program, mask)
                    cells[mask.column] = duck.evaluate_policy(
                        ddl[ctx_mask.name],
                        [tuple(r[c.name] for c in args) for r in rows],
                        user=ctx.user,
                        roles=roles,
                    )
                visible: list[object] = [True] * len(rows)
                if program.rules_of(key):
                    rap = target.rows_policy(program, key)
                    args = target.row_args(program, key)
                    visible = duck.evaluate_policy(
                        ddl[rap.name],
                        [tuple(r[c.name] for c in args) for r in rows],
                        user=ctx.user,
                        roles=roles,
                    )
                problems += scenarios.mismatches(scenario, key, ctx, visible, cells)
    assert not problems, "\n".join(problems[:30]) + f"\n({len(problems)} mismatches)"


def test_user_names_match_case_insensitively(target: SnowflakeTarget, now: dt.datetime) -> None:
    """Snowflake folds unquoted user names (CURRENT_USER() = 'ALICE' for user alice)."""
    scenario = scenarios.payments(now)
    program = scenario.program
    mask = next(m for m in program.masks if m.column == "credit_card")
    script = target.render(program)
    body = policies(script)[target.mask_policy(program, mask, False).name]
    text = program.purpose("Fraud Detection").acknowledgement  # type: ignore[union-attr]
    acked = [("alice", "fraud_q4", "Fraud Detection", text)]
    with SnowflakeDuck(
        {**governance(target, program), **acknowledgements(target, acked, now)}
    ) as duck:
        duck.set_tables(active_project(target, [("Alice", "fraud_q4", now)]))
        duck.define_functions(script)
        shown = duck.evaluate_policy(body, [("4111111111111111",)], user="ALICE")
    assert shown == ["4111111111111111"]


# -------------------------------------------------------------------------------------------------
# Acknowledgements


def test_scenarios_exercise_missing_acknowledgements(scenario: Scenario) -> None:
    """Each member of LAPSES sees something masked that a member who acknowledged sees clear:
    the agreement above then covers unacknowledged, old and misplaced acknowledgements."""
    for ctx in scenarios.lapsed(scenario):
        done = scenarios.acknowledged(scenario.program, ctx.user)  # everything current
        assert any(
            scenarios.expected(scenario.program, key, rows, ctx)
            != scenarios.expected(
                scenario.program, key, rows, dataclasses.replace(ctx, acknowledged=done)
            )
            for key, rows in scenario.rows.items()
        ), (ctx.user, ctx.project)


def credit_card(
    target: SnowflakeTarget,
    program: model.Program,
    acked: list[tuple[str, ...]],
    user: str,
    now: dt.datetime,
) -> object:
    """What `user`, in fraud_q4, sees of a card number (DuckDB), given acknowledgement rows."""
    mask = next(m for m in program.masks if m.column == "credit_card")
    script = target.render(program)
    body = policies(script)[target.mask_policy(program, mask, False).name]
    tables = {
        **governance(target, program),
        **runtime(target, "member_acknowledgement", [(*r, now) for r in acked]),
        **active_project(target, [(user, "fraud_q4", now)]),
    }
    with SnowflakeDuck(tables) as duck:
        duck.define_functions(script)
        shown = duck.evaluate_policy(body, [("4111111111111111",)], user=user)[0]
    ctx = Context(
        user=user,
        project="fraud_q4",
        now=now,
        acknowledged=frozenset((p, pu, t) for u, p, pu, t in acked if u == user),
    )
    row = {"credit_card": "4111111111111111"}
    assert shown == mask_value(program, mask, row["credit_card"], row, ctx).value
    return shown


def test_a_member_who_did_not_acknowledge_sees_masked_values(
    target: SnowflakeTarget, now: dt.datetime
) -> None:
    program = scenarios.payments(now).program
    text = program.purpose("Fraud Detection").acknowledgement  # type: ignore[union-attr]
    assert text is not None
    assert credit_card(target, program, [], "chris", now) is None
    # acknowledged by someone else, or in another project, or another purpose's text: no
    others = [
        ("alice", "fraud_q4", "Fraud Detection", text),
        ("chris", "chargebacks", "Fraud Detection", text),
        ("chris", "fraud_q4", "Fraud Detection.Chargebacks", text),
    ]
    assert credit_card(target, program, others, "chris", now) is None
    mine = [("chris", "fraud_q4", "Fraud Detection", text)]
    assert credit_card(target, program, mine, "chris", now) == "4111111111111111"


def test_a_changed_text_must_be_acknowledged_again(
    target: SnowflakeTarget, now: dt.datetime
) -> None:
    program = scenarios.payments(now).program
    old = program.purpose("Fraud Detection").acknowledgement  # type: ignore[union-attr]
    new = "I will use card data only to investigate fraud, and delete my extracts weekly."
    changed = dataclasses.replace(
        program,
        purposes=tuple(
            dataclasses.replace(p, acknowledgement=new)
            if p.name.startswith("Fraud Detection")
            else p
            for p in program.purposes
        ),
    )
    acked = [("alice", "fraud_q4", "Fraud Detection", old)]
    assert credit_card(target, program, acked, "alice", now) == "4111111111111111"
    assert credit_card(target, changed, acked, "alice", now) is None
    again = [*acked, ("alice", "fraud_q4", "Fraud Detection", new)]
    assert credit_card(target, changed, again, "alice", now) == "4111111111111111"


def duck_statement(sql: str, user: str) -> str:
    """A Snowflake statement as DuckDB SQL, CURRENT_USER() bound to `user`."""
    tree = sqlglot.parse_one(sql, read="snowflake")
    tree = tree.transform(
        lambda n: exp.Literal.string(user) if isinstance(n, exp.CurrentUser) else n
    )
    return tree.sql(dialect="duckdb")


def test_acknowledge_records_exactly_what_it_audits(
    target: SnowflakeTarget, now: dt.datetime
) -> None:
    """The two statements of VEIL.ACKNOWLEDGE and the query of VEIL.ACKNOWLEDGEMENT_TEXTS (from
    the same generator, with literals where the procedure binds `:P_PROJECT` and `:ack_at`), run
    in DuckDB: a changed text is audited and recorded again, repeating an acknowledgement audits
    it again but records it once, the texts show what the caller acknowledged, and only to
    members."""
    program = scenarios.payments(now).program
    old = program.purpose("Fraud Detection").acknowledgement  # type: ignore[union-attr]
    tables = {
        **governance(target, program),
        **runtime(target, "member_acknowledgement", []),
        **runtime(target, "audit_log", []),
    }
    project = target.literal("fraud_q4")
    texts = target.acknowledgement_texts_sql(project)
    with SnowflakeDuck(tables) as duck:

        def acknowledge(user: str, at: dt.datetime) -> None:
            stamp = f"CAST({target.literal(at.isoformat())} AS TIMESTAMP_LTZ)"
            for statement in target.acknowledge_sql(project, stamp):
                duck.query(duck_statement(statement, user))

        assert duck.query(duck_statement(texts, "alice")) == [("Fraud Detection", old, False)]
        first = now - dt.timedelta(days=2)
        acknowledge("alice", first)
        acknowledge("alice", now - dt.timedelta(days=1))  # again: audited, recorded once
        assert duck.query(duck_statement(texts, "alice")) == [("Fraud Detection", old, True)]
        assert duck.query(duck_statement(texts, "mallory")) == []  # not a member
        duck.query(
            f"UPDATE {target.gov('project_purpose')} SET ACKNOWLEDGEMENT = 'v2' "
            "WHERE PROJECT_NAME = 'fraud_q4'"
        )
        assert duck.query(duck_statement(texts, "alice")) == [("Fraud Detection", "v2", False)]
        acknowledge("alice", now)
        audit = duck.query(f"SELECT * FROM {target.gov('audit_log')} ORDER BY 1")
        recorded = duck.query(f"SELECT * FROM {target.gov('member_acknowledgement')} ORDER BY 5")
    assert [row[1:] for row in audit] == [
        ("alice", "acknowledge", "fraud_q4", "Fraud Detection", text, "acknowledged")
        for text in (old, old, "v2")
    ]
    assert [row[:4] for row in recorded] == [
        ("alice", "fraud_q4", "Fraud Detection", old),
        ("alice", "fraud_q4", "Fraud Detection", "v2"),
    ]
    assert recorded[0][4] == audit[0][0] == first


def test_runtime_tables_are_written_only_by_the_procedures(
    target: SnowflakeTarget, script: str
) -> None:
    """The script creates them and never writes them (but for moving the rows of the old switch
    log into the audit log); it grants nothing on them but SELECT on the audit log to the
    auditors' role."""
    names = "|".join(re.escape(target.gov(t)) for t in ("active_project", *RUNTIME))
    writes = re.compile(
        rf"\b(INSERT INTO|MERGE INTO|DELETE FROM|UPDATE|TRUNCATE( TABLE)?|"
        rf"DROP TABLE)\s+({names})\b"
    )
    for statement in split_statements(script):
        if statement.startswith("CREATE OR REPLACE PROCEDURE VEIL."):
            continue
        found = [m.group(0) for m in writes.finditer(statement)]
        if statement.startswith(f"INSERT INTO {target.gov('hash_key')} "):  # seeded once
            assert statement.endswith(f"WHERE NOT EXISTS (SELECT 1 FROM {target.gov('hash_key')})")
            continue
        if "IF (old_log > 0) THEN" in statement:  # the migration block, when the old log exists
            assert found == [f"INSERT INTO {target.gov('audit_log')}"]
            assert f"FROM {target.gov('project_switch')}" in statement
            continue
        assert found == [], (found, statement[:100])
    grants = [s for s in split_statements(script) if s.startswith(("GRANT", "REVOKE"))]
    assert grants == [
        "GRANT USAGE ON SCHEMA VEIL TO ROLE PUBLIC",
        "GRANT USAGE ON PROCEDURE VEIL.USE_PROJECT(VARCHAR) TO ROLE PUBLIC",
        "GRANT USAGE ON PROCEDURE VEIL.ACKNOWLEDGE(VARCHAR) TO ROLE PUBLIC",
        "GRANT USAGE ON FUNCTION VEIL.ACKNOWLEDGEMENT_TEXTS(VARCHAR) TO ROLE PUBLIC",
        "GRANT SELECT ON TABLE VEIL.AUDIT_LOG TO ROLE VEIL_AUDITORS",
    ]


def test_procedures_audit_every_call(script: str) -> None:
    """Each path of USE_PROJECT and ACKNOWLEDGE writes the audit log before it returns or
    raises, and both writes of a successful call are one transaction."""
    for name, events in (
        ("USE_PROJECT", ("'cleared'", "'refused: not a member'", "'switched'")),
        ("ACKNOWLEDGE", ("'refused: not a member'", "'acknowledged'")),
    ):
        body = next(
            s
            for s in split_statements(script)
            if s.startswith(f"CREATE OR REPLACE PROCEDURE VEIL.{name}(")
        )
        for event in events:
            at = body.index(event)
            assert body.rfind("INSERT INTO VEIL.AUDIT_LOG", 0, at) > body.rfind(";", 0, at) - 400
        assert body.count("BEGIN TRANSACTION;") == body.count("COMMIT;") >= 1


def merge_source(script: str, table: str) -> list[tuple[object, ...]]:
    """The rows the `MERGE INTO <table>` of a script writes, read back through DuckDB."""
    merge = next(
        (s for s in split_statements(script) if s.startswith(f"MERGE INTO {table} ")), None
    )
    if merge is None:
        return []
    source = re.search(r"USING \(SELECT .*? FROM (VALUES\n.*?)\n\) s\n", merge, re.S)
    assert source is not None
    with SnowflakeDuck() as duck:
        return duck.query(
            sqlglot.transpile(f"SELECT * FROM {source.group(1)}", read="snowflake", write="duckdb")[
                0
            ]
        )


def test_cleanup_selects_only_what_the_script_no_longer_attaches(
    target: SnowflakeTarget, script: str
) -> None:
    block = next(s for s in split_statements(script) if "stale CURSOR FOR" in s)
    select = re.search(r"CURSOR FOR\s+(WITH .*?ORDER BY 1)", block, re.S)
    assert select is not None
    current = merge_source(script, target.gov("applied_object"))
    assert current
    rows = [
        *current,
        ("VEIL.MASK__OLD", "masking policy", current[0][2], "DETACH A", "DROP A"),
        ("VEIL.ROWS__GONE", "row access policy", "table gone.t", "DETACH B", "DROP B"),
    ]
    cols = [
        f"{c} VARCHAR" for c in ("OBJECT_NAME", "OBJECT_KIND", "TARGET", "DETACH_SQL", "DROP_SQL")
    ]
    with SnowflakeDuck({target.gov("applied_object"): (cols, rows)}) as duck:
        got = duck.query(sqlglot.transpile(select.group(1), read="snowflake", write="duckdb")[0])
    assert got == [("VEIL.MASK__OLD", None, "DROP A"), ("VEIL.ROWS__GONE", "DETACH B", "DROP B")]


# -------------------------------------------------------------------------------------------------
# (c) re-apply safety and determinism


def test_policies_are_never_created_or_replaced(script: str) -> None:
    assert not re.search(r"CREATE\s+OR\s+REPLACE\s+(MASKING|ROW\s+ACCESS)\s+POLICY", script, re.I)
    for statement in split_statements(script):
        if re.match(r"CREATE (MASKING|ROW ACCESS) POLICY", statement):
            assert " POLICY IF NOT EXISTS " in statement


def test_every_policy_is_created_closed_and_given_its_body_before_it_is_attached(
    script: str,
) -> None:
    """CREATE … IF NOT EXISTS gives a new policy a body that shows nothing (NULL, or FALSE for
    rows); SET BODY, on new and existing policies alike, gives the real one before the policy is
    attached (so the body is written once, and never attached unset)."""
    created: dict[str, str] = {}
    bodies: set[str] = set()
    for statement in split_statements(script):
        if re.match(r"CREATE (MASKING|ROW ACCESS) POLICY", statement):
            ddl = parse_policy_ddl(statement)
            closed = "FALSE" if ddl.kind == "ROW ACCESS POLICY" else f"CAST(NULL AS {ddl.returns})"
            assert ddl.body == closed, ddl.body
            created[ddl.name] = ddl.body
        elif re.match(r"ALTER (MASKING|ROW ACCESS) POLICY", statement):
            bodies.add(parse_policy_ddl(statement).name)
        attached = re.findall(r"SET MASKING POLICY (\S+)", statement)
        attached += [pol for _, pol, _, _ in sf_row_attachments(statement)]
        for name in attached:
            assert name in bodies, f"{name} is attached before SET BODY"
    assert bodies == set(created)


def test_the_hash_key_is_drawn_once_and_kept(target: SnowflakeTarget, script: str) -> None:
    """The script's key statements, run twice in DuckDB: one random key of 64 lowercase hex
    characters, kept by the second run; policies read it from the table, never hold it."""
    key_table = target.gov("hash_key")
    statements = [
        s
        for s in split_statements(script)
        if s.startswith((f"CREATE TABLE IF NOT EXISTS {key_table} ", f"INSERT INTO {key_table} "))
    ]
    assert len(statements) == 2
    with SnowflakeDuck() as duck:
        duck.query(f"CREATE SCHEMA IF NOT EXISTS {target.ident('veil')}")
        for statement in statements:
            duck.query(duck_statement(statement, "OWNER"))
        [(first,)] = duck.query(f"SELECT * FROM {key_table}")
        for statement in statements:
            duck.query(duck_statement(statement, "OWNER"))
        assert duck.query(f"SELECT * FROM {key_table}") == [(first,)]
    assert re.fullmatch(r"[0-9a-f]{64}", first)
    assert TEST_HASH_KEY not in script


def test_every_statement_can_run_again(script: str) -> None:
    """Each top-level statement is one that succeeds and changes nothing when repeated."""
    allowed = (
        r"CREATE SCHEMA IF NOT EXISTS ",
        r"CREATE TABLE IF NOT EXISTS ",
        r"MERGE INTO ",
        r"DELETE FROM ",
        r"CREATE OR REPLACE PROCEDURE ",
        r"GRANT USAGE ON ",
        r"ALTER TABLE \S+ ADD COLUMN IF NOT EXISTS ",
        r"CREATE OR REPLACE SECURE FUNCTION ",
        r"CREATE OR REPLACE FUNCTION ",
        r"DROP FUNCTION IF EXISTS ",
        r"CREATE ROLE IF NOT EXISTS ",
        r"GRANT SELECT ON TABLE ",
        r"CREATE (MASKING|ROW ACCESS) POLICY IF NOT EXISTS ",
        r"ALTER (MASKING|ROW ACCESS) POLICY \S+ SET BODY ->",
        r"ALTER TABLE .* SET MASKING POLICY .* FORCE$",
        r"EXECUTE IMMEDIATE \$\$",
        r"INSERT INTO \S+ \(\S+\)\s+SELECT .*\s+WHERE NOT EXISTS \(SELECT 1 FROM \S+\)$",
    )
    for statement in split_statements(script):
        assert any(re.match(p, statement, re.S) for p in allowed), statement[:200]
        if "ADD ROW ACCESS POLICY" in statement:  # only inside the guarded block
            assert statement.startswith("EXECUTE IMMEDIATE")


def test_output_is_deterministic(target: SnowflakeTarget, scenario: Scenario, script: str) -> None:
    assert target.render(scenario.program) == script


def test_signature_change_makes_a_new_policy_and_keeps_the_old_name_for_cleanup(
    target: SnowflakeTarget, now: dt.datetime
) -> None:
    program = scenarios.payments(now).program
    mask = next(m for m in program.masks if m.column == "credit_card")
    wide = model.SqlType(name="varchar", length=32)
    tables = tuple(
        dataclasses.replace(
            tb,
            columns=tuple(
                dataclasses.replace(c, type=wide) if c.name == "credit_card" else c
                for c in tb.columns
            ),
        )
        if tb.key == mask.table
        else tb
        for tb in program.tables
    )
    wider = dataclasses.replace(program, tables=tables)
    old = target.mask_policy(program, mask, False)
    new = target.mask_policy(wider, dataclasses.replace(mask, type=wide), False)
    assert old.name != new.name
    assert old.name.rsplit("__", 1)[0] == new.name.rsplit("__", 1)[0]


# -------------------------------------------------------------------------------------------------
# (d) hostile strings


@pytest.mark.parametrize(
    "value",
    [
        scenarios.HOSTILE,
        "'",
        "\\",
        "\\'",
        "''",
        "\n\t\r",
        "${x}",
        "$$",
        "\u2028é漢😀",
        "a\\'; DROP TABLE t; --",
    ],
)
def test_string_literals_round_trip(target: SnowflakeTarget, value: str) -> None:
    with SnowflakeDuck() as duck:
        got = duck.query(
            sqlglot.transpile(f"SELECT {target.literal(value)}", read="snowflake", write="duckdb")[
                0
            ]
        )
    assert got == [(value,)]
    parse_script(f"SELECT {target.literal(value)} AS x;", "snowflake")


def test_governance_rows_round_trip(
    target: SnowflakeTarget, scenario: Scenario, script: str
) -> None:
    """The VALUES of every MERGE read back exactly as the repository's rows (edge: hostile)."""
    rows = target.governance_rows(scenario.program)
    for name in (tb.name for tb in SYNCED):
        got = merge_source(script, target.gov(name))
        assert sorted(got, key=repr) == sorted(rows[name], key=repr)


@pytest.mark.parametrize(
    "name, sql",
    [
        ("credit_card", "CREDIT_CARD"),
        ("Order Note", '"Order Note"'),
        ('a"b', '"a""b"'),
        ("order", '"ORDER"'),
        ("x$1", "X$1"),
        ("_x", "_X"),
        ("1x", '"1x"'),
        ("lower case", '"lower case"'),
    ],
)
def test_identifiers(target: SnowflakeTarget, name: str, sql: str) -> None:
    assert target.ident(name) == sql


# -------------------------------------------------------------------------------------------------
# The target's own checks


def codes(diags: list[object]) -> list[str]:
    return [d.code for d in diags]  # type: ignore[attr-defined]


def test_payments_compiles(target: SnowflakeTarget, now: dt.datetime) -> None:
    diags = target.check(scenarios.payments(now).program)
    assert codes(diags) == []


def test_decimal_without_precision_is_an_error(target: SnowflakeTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; amount decimal }\nmask t.x.amount with round(10)\n"
    )
    diags = target.check(program)
    assert codes(diags) == ["T0101"]
    assert diags[0].message == (
        "`t.x.amount` is `decimal` without precision, which is `NUMBER(38, 0)` on snowflake"
    )
    assert diags[0].span.line == 1


def test_value_longer_than_column(target: SnowflakeTarget) -> None:
    """The checker cuts hashes and regex results to the column; a program that does not (built
    by hand here) is refused, since Snowflake fails a query whose mask overflows the column."""
    program = scenarios.check_text(
        'table t.x { id bigint; code varchar(8) }\nmask t.x.code with regex("a", "bbb")\n'
    )
    program = dataclasses.replace(
        program,
        masks=tuple(
            dataclasses.replace(
                m,
                arms=tuple(
                    dataclasses.replace(a, action=dataclasses.replace(a.action, length=None))
                    if isinstance(a.action, methods.MaskRegex)
                    else a
                    for a in m.arms
                ),
            )
            for m in program.masks
        ),
    )
    diags = target.check(program)
    assert codes(diags) == ["T0102"]
    assert diags[0].is_error and "unbounded" in diags[0].message and diags[0].span.line == 2


def test_mixed_case_and_dollar_names(target: SnowflakeTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; CreditCard varchar; `a$$b` varchar }\n"
        "group Analysts\nmask t.x.CreditCard unless group Analysts\nmask t.x.`a$$b`\n"
    )
    diags = target.check(program)
    assert sorted(codes(diags)) == ["T0103", "T0104"]
    folded = [d for d in diags if d.code == "T0103"]
    # group names are values of veil's tables, never Snowflake roles: nothing folds them
    assert {d.message for d in folded} == {"`CreditCard` is folded to `CREDITCARD` on snowflake"}


def test_users_and_columns_that_fold_together(target: SnowflakeTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; region varchar; REGION varchar }\n"
        "user ann\nuser ANN\nmask t.x.region\n"
    )
    assert sorted(codes(target.check(program))) == ["T0106", "T0106"]


def test_exempt_policy_when_rows_read_a_masked_column(
    target: SnowflakeTarget, now: dt.datetime
) -> None:
    program = scenarios.edge(now).program
    script = target.render(program)
    exempt = [s for s in split_statements(script) if "EXEMPT_OTHER_POLICIES = TRUE" in s]
    names = sorted(re.findall(r"POLICY IF NOT EXISTS \S+__ORDERS__(\w+?)__", " ".join(exempt)))
    # the masked columns that the row access policy reads (or another column's `when`)
    assert names == ["OWNER", "PLACED_AT", "QTY", "REGION"]
    first_attach = [s for s in split_statements(script) if "SET MASKING POLICY" in s][:4]
    assert all(re.search("__(OWNER|PLACED_AT|QTY|REGION)__", s) for s in first_attach)


def test_row_access_policy_always_has_an_argument(target: SnowflakeTarget) -> None:
    program = scenarios.check_text(
        "table t.x { id bigint; secret varchar }\npurpose P\nrestrict t.x to purpose P\n"
        "mask t.x.id\n"
    )
    rap = target.rows_policy(program, ("t", "x"))
    assert rap.params == (("SECRET", "VARCHAR"),)
