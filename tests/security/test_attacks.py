"""Attacks on the compiled payments example, as real logins on a real server.

Each test is one attack by a role the threat model (docs/security.md) does not trust, and asserts
that the protection held: no clear card number, no hidden row, no write to what veil governs.
The example is applied once for the module (tests/security/world.py); every attack runs in a
transaction that is rolled back.
"""

from __future__ import annotations

import psycopg
import pytest

from tests.pg import fetch_all
from tests.security.world import (
    BYPASS,
    CARDS,
    CREATOR,
    DBOWNER,
    GHOST,
    LAB,
    MALLORY,
    READER,
    TARGET,
    TWIN,
    WRITER,
    World,
    leaks_a_card,
    payments_program,
)
from veil import methods, model
from veil.masking import hash_text

TX = "sales.transactions"
ALL_ROWS = 48


def masked(w: World, role: str, *setup: str, project: str | None = None) -> None:
    """`role`, after `setup`, reads no clear card and fewer than all rows of transactions."""
    rows = w.run(role, *setup, CARDS, project=project)
    assert not leaks_a_card(rows), rows
    assert len(rows) < ALL_ROWS


def test_the_world_is_not_vacuous(w: World) -> None:
    """A member under an approved, acknowledged purpose does see clear cards: the attacks below
    fail because of the protections, not because nothing is there."""
    assert leaks_a_card(w.run("alice", CARDS, project="fraud_q4"))
    assert leaks_a_card(w.run(TWIN, CARDS, project=LAB))


# ============================================================================= project spoofing


@pytest.mark.parametrize(
    "setup",
    [
        "SET veil.active_project = 'fraud_q4'",
        "SELECT set_config('veil.active_project', 'fraud_q4', false)",
        "SET LOCAL veil.active_project = 'fraud_q4'",
        "SET veil.active_project = 'no_such_project'",
        "SET veil.active_project = 'fraud_q4'' OR ''1''=''1'",
    ],
)
def test_spoofing_the_project_setting(w: World, setup: str) -> None:
    masked(w, "maya", setup)
    masked(w, MALLORY, setup)


def test_spoofing_through_connection_options(w: World) -> None:
    dsn = w.db.dsn_as("maya") + " options='-c veil.active_project=fraud_q4'"
    with psycopg.connect(dsn) as conn:
        rows = fetch_all(conn, CARDS)
    assert not leaks_a_card(rows)


def test_spoofing_through_role_settings(w: World) -> None:
    w.denied("maya", "ALTER ROLE CURRENT_USER SET veil.active_project = 'fraud_q4'")


def test_set_role_to_a_group_after_selecting_a_project(w: World) -> None:
    """alice may SET ROLE to her group, which is no member of the project (and no reader)."""
    with w.attempt("alice", "fraud_q4") as conn:
        fetch_all(conn, "SET ROLE analysts")
        assert fetch_all(
            conn, "SELECT veil.has_purpose(current_user, 'Fraud Detection', 'sales.transactions')"
        ) == [(False,)]
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            fetch_all(conn, CARDS)


def test_set_role_to_a_member(w: World) -> None:
    w.denied("maya", "SET ROLE alice")


def test_set_session_authorization(w: World) -> None:
    w.denied("maya", "SET SESSION AUTHORIZATION alice")


def test_reset_after_selecting_a_project(w: World) -> None:
    masked(w, "alice", "SELECT veil.use_project('fraud_q4')", "RESET veil.active_project")
    masked(w, "alice", "SELECT veil.use_project('fraud_q4')", "RESET ALL")


def test_a_rolled_back_use_project(w: World) -> None:
    with w.db.connect_as("alice") as conn:
        conn.execute("BEGIN")
        fetch_all(conn, "SELECT veil.use_project('fraud_q4')")
        conn.execute("ROLLBACK")
        assert not leaks_a_card(fetch_all(conn, CARDS))


def test_use_project_of_a_project_one_is_not_member_of(w: World) -> None:
    w.denied("maya", "SELECT veil.use_project('fraud_q4')", match="is not a member")


def test_a_prepared_statement_after_leaving_the_project(w: World) -> None:
    with w.attempt("alice", "fraud_q4") as conn:
        conn.execute(f"PREPARE cards AS {CARDS}")
        for _ in range(6):  # past the point where PostgreSQL switches to a generic plan
            assert leaks_a_card(fetch_all(conn, "EXECUTE cards"))
        fetch_all(conn, "SELECT veil.use_project(NULL)")
        assert not leaks_a_card(fetch_all(conn, "EXECUTE cards"))


def test_a_member_of_a_pending_or_stale_project(w: World) -> None:
    masked(w, "erin", project="audit_fy2026")
    masked(w, "erin", project="veil_e2e_pending")


# ============================================================================= hostile arguments


@pytest.mark.parametrize(
    "call",
    [
        "SELECT veil.has_purpose(current_user, NULL, 'sales.transactions')",
        "SELECT veil.has_purpose(current_user, '', 'sales.transactions')",
        "SELECT veil.has_purpose(current_user, 'Fraud Detection', NULL)",
        "SELECT veil.has_purpose(current_user, 'Fraud Detection%', 'sales.%')",
        "SELECT veil.has_purpose(NULL, 'Fraud Detection', 'sales.transactions')",
        "SELECT veil.has_purpose('alice', 'Fraud Detection', 'sales.transactions')",
        "SELECT veil.has_attribute(NULL, 'region', 'EMEA')",
        "SELECT cardinality(veil.user_values(NULL, 'region')) > 0",
        "SELECT cardinality(veil.user_groups(NULL)) > 0",
    ],
)
def test_hostile_arguments_to_the_lookups(w: World, call: str) -> None:
    assert w.run("maya", "SET veil.active_project = 'fraud_q4'", call) == [(False,)]


@pytest.mark.parametrize(
    "project", ["fraud_q4'; SELECT 1; --", "fraud_q4\\", "%", "fraud_q4 ", "FRAUD_Q4"]
)
def test_hostile_arguments_to_use_project(w: World, project: str) -> None:
    w.denied("alice", f"SELECT veil.use_project({TARGET.literal(project)})", match="does not exist")


def test_has_purpose_answers_only_for_the_caller(w: World) -> None:
    ask = "SELECT veil.has_purpose('alice', 'Fraud Detection', 'sales.transactions')"
    assert w.run("alice", ask, project="fraud_q4") == [(True,)]
    assert w.run("maya", "SET veil.active_project = 'fraud_q4'", ask) == [(False,)]


def test_user_values_answer_only_for_the_caller(w: World) -> None:
    ask = "SELECT veil.user_values('alice', 'region')"
    assert w.run("alice", ask) == [(["APAC", "EMEA"],)]
    assert w.run(MALLORY, ask) == [([],)]


def test_user_groups_answer_only_for_the_caller(w: World) -> None:
    ask = "SELECT veil.user_groups('dana')"
    assert w.run("dana", ask) == [(["hr_admins"],)]
    assert w.run(MALLORY, ask) == [([],)]


def test_has_attribute_answers_only_for_the_caller(w: World) -> None:
    ask = "SELECT veil.has_attribute('alice', 'region', 'EMEA')"
    assert w.run("alice", ask) == [(True,)]
    assert w.run(MALLORY, ask) == [(False,)]


# ============================================================================= shadowing


def test_pg_temp_tables_shadowing_the_governance_tables(w: World) -> None:
    masked(
        w,
        "maya",
        "CREATE TEMP TABLE project_member (project text, member text)",
        "INSERT INTO project_member VALUES ('fraud_q4', current_user)",
        "CREATE TEMP TABLE project (project text)",
        "SET search_path = pg_temp, veil, pg_catalog",
        "SET veil.active_project = 'fraud_q4'",
    )


def test_pg_temp_functions_shadowing_catalog_functions(w: World) -> None:
    masked(
        w,
        "maya",
        "CREATE FUNCTION pg_temp.current_setting(text, boolean) RETURNS text"
        " LANGUAGE sql AS $$ SELECT 'fraud_q4' $$",
        "SET search_path = pg_temp, pg_catalog",
    )


def test_an_operator_in_the_search_path(w: World) -> None:
    """The database owner may create schemas: an `=` for text that is always true, first in the
    search path. Policies and functions hold resolved operators and a fixed search_path."""
    masked(
        w,
        DBOWNER,
        "CREATE SCHEMA evil",
        "CREATE FUNCTION evil.yes(text, text) RETURNS boolean LANGUAGE sql AS 'SELECT true'",
        "CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.yes)",
        "SET search_path = evil, pg_catalog",
        "SET veil.active_project = 'fraud_q4'",
    )


# ============================================================================= leaks and oracles


def test_a_leaky_function_sees_only_visible_rows(w: World) -> None:
    notices: list[str] = []
    with w.attempt("maya") as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        fetch_all(
            conn,
            "CREATE FUNCTION pg_temp.leak(text, text) RETURNS boolean LANGUAGE plpgsql"
            " COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'leak %: %', $1, $2; RETURN true; END $$",
        )
        visible = fetch_all(
            conn,
            "SELECT id FROM sales_protected.transactions"
            " WHERE pg_temp.leak(id::text, coalesce(credit_card, '') || notes)",
        )
    seen = {n.split(":")[0].removeprefix("leak ") for n in notices}
    assert seen == {str(i) for (i,) in visible}
    assert not any(card in n for n in notices for card in ("4111111111111111",))


def test_an_error_oracle_on_hidden_rows(w: World) -> None:
    hidden = {int(r[0]) for r in w.admin(f"SELECT id FROM {TX}")} - {
        int(r[0]) for r in w.run("maya", "SELECT id FROM sales_protected.transactions")
    }
    assert hidden
    for h in sorted(hidden)[:5]:
        w.run("maya", f"SELECT count(*) FROM sales_protected.transactions WHERE 1 / (id - {h}) > 0")


def test_an_error_oracle_on_masked_cells(w: World) -> None:
    rows = w.run(
        "maya",
        "SELECT count(*) FROM sales_protected.transactions"
        " WHERE 1 / (CASE WHEN credit_card LIKE '4111%' THEN 0 ELSE 1 END) = 1",
    )
    assert rows == [(len(w.run("maya", "SELECT id FROM sales_protected.transactions")),)]


def test_statistics_of_the_base_table(w: World) -> None:
    w.admin(f"ANALYZE {TX}")
    assert w.run(MALLORY, "SELECT * FROM pg_stats WHERE tablename = 'transactions'") == []


# ============================================================================= base tables


@pytest.mark.parametrize(
    "statement",
    [
        f"SELECT * FROM {TX}",
        f"SELECT count(*) FROM {TX}",
        f"COPY {TX} TO STDOUT",
        f"CREATE TEMP VIEW v AS SELECT * FROM {TX}; SELECT * FROM v",
        f"INSERT INTO {TX} (id) VALUES (1) ON CONFLICT DO NOTHING",
        f"UPDATE {TX} SET notes = notes RETURNING credit_card",
        f"DELETE FROM {TX} RETURNING credit_card",
        f"TRUNCATE {TX}",
        f"ALTER TABLE {TX} DISABLE ROW LEVEL SECURITY",
        f"CREATE POLICY mine ON {TX} USING (true)",
        f"LOCK TABLE {TX} IN ACCESS EXCLUSIVE MODE",
    ],
)
def test_the_base_table_is_out_of_reach(w: World, statement: str) -> None:
    w.denied(MALLORY, *statement.split("; "))
    w.denied("alice", *statement.split("; "))


def test_a_foreign_key_probe(w: World) -> None:
    """The database owner may create tables: a foreign key to the base table would tell which
    ids exist."""
    w.admin(f"CREATE UNIQUE INDEX IF NOT EXISTS transactions_id ON {TX} (id)")
    w.denied(
        DBOWNER,
        "CREATE SCHEMA probe",
        f"CREATE TABLE probe.ids (id bigint REFERENCES {TX} (id))",
    )


def test_copy_of_the_view_is_the_view(w: World) -> None:
    copy_out = "COPY (SELECT * FROM sales_protected.transactions) TO STDOUT"
    with w.attempt("maya") as conn, conn.cursor() as cur, cur.copy(copy_out) as copy:
        data = b"".join(bytes(chunk) for chunk in copy)
    assert not any(card.encode() in data for card in ("4111111111111111",))


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO sales_protected.transactions (id) VALUES (1000)",
        "UPDATE sales_protected.transactions SET id = id",
        "DELETE FROM sales_protected.transactions",
        "DROP VIEW sales_protected.transactions",
        "CREATE OR REPLACE VIEW sales_protected.transactions AS SELECT 1 AS id",
        "CREATE TABLE sales_protected.loot (x text)",
    ],
)
def test_the_views_are_read_only_and_veils(w: World, statement: str) -> None:
    w.denied(MALLORY, statement)


# ============================================================================= governance objects


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO veil.project_member VALUES ('fraud_q4', current_user)",
        "UPDATE veil.project_purpose SET approved = true",
        "DELETE FROM veil.audit_log",
        "SELECT * FROM veil.user_attribute",
        "SELECT veil.require_member('fraud_q4')",
        "CREATE TABLE veil.loot (x text)",
        "CREATE OR REPLACE FUNCTION veil.has_purpose(name, text, text) RETURNS boolean"
        " LANGUAGE sql AS 'SELECT true'",
        "ALTER FUNCTION veil.has_purpose(name, text, text) SECURITY INVOKER",
        "SELECT nextval('veil.audit_log_id_seq')",
        "SELECT setval('veil.audit_log_id_seq', 1)",
    ],
)
def test_governance_objects_are_out_of_reach(w: World, statement: str) -> None:
    w.denied(MALLORY, statement)


def test_identity_sequences_have_no_public_grant(w: World) -> None:
    rows = w.admin(
        "SELECT c.relname, c.relacl::text FROM pg_class c"
        " WHERE c.relnamespace = 'veil'::regnamespace AND c.relkind = 'S'"
    )
    assert rows
    for name, acl in rows:  # a grant to PUBLIC reads `=privileges/grantor`
        assert acl is None or not ("{=" in acl or ",=" in acl), (name, acl)


def test_a_grant_on_the_identity_sequence_is_revoked_by_the_next_apply(w: World) -> None:
    w.admin("GRANT ALL ON SEQUENCE veil.audit_log_id_seq TO PUBLIC")
    w.admin(f"GRANT USAGE ON SEQUENCE veil.audit_log_id_seq TO {MALLORY}")
    w.db.apply_script(w.d.script)
    [(acl,)] = w.admin("SELECT relacl::text FROM pg_class WHERE relname = 'audit_log_id_seq'")
    assert acl == f"{{{TARGET.owner_role}=rwU/{TARGET.owner_role}}}"
    w.denied(MALLORY, "SELECT nextval('veil.audit_log_id_seq')")


def test_unknown_roles_cannot_flood_the_audit_log(w: World) -> None:
    count = "SELECT count(*) FROM veil.audit_log"
    [(before,)] = w.admin(count)
    with w.db.connect_as(MALLORY) as conn:
        for _ in range(20):
            fetch_all(conn, "SELECT veil.use_project(NULL)")
    assert w.admin(count) == [(before,)]


def test_a_non_member_cannot_acknowledge(w: World) -> None:
    w.denied(MALLORY, "SELECT veil.acknowledge('fraud_q4')", match="is not a member")


# ============================================================================= predefined roles


@pytest.mark.parametrize(
    "statement",
    [
        "INSERT INTO veil.project_member VALUES ('fraud_q4', current_user)",
        "INSERT INTO veil.member_acknowledgement (member, project, purpose, acknowledgement,"
        " digest) VALUES (current_user, 'fraud_q4', 'Fraud Detection', 'x', '\\x00')",
        "INSERT INTO veil.audit_log (event, project) VALUES ('switch', 'forged')",
        "INSERT INTO veil.user_attribute VALUES (current_user, 'region', 'EMEA')",
        "INSERT INTO veil.user_group VALUES (current_user, 'hr_admins')",
        "INSERT INTO veil.project_purpose (project, purpose, approved, state)"
        " VALUES ('fraud_q4', 'Marketing', true, 'approved')",
        f"INSERT INTO {TX} (id) VALUES (100000)",
        "INSERT INTO veil.role_binding (role_name, role_oid)"
        " SELECT 'alice', oid FROM pg_roles WHERE rolname = current_user",
        "TRUNCATE veil.project_member",
        "TRUNCATE veil.audit_log",
    ],
)
def test_pg_write_all_data_cannot_write_what_veil_governs(w: World, statement: str) -> None:
    w.denied(WRITER, statement)


@pytest.mark.parametrize(
    "table",
    [
        "project_member",
        "project_purpose",
        "user_attribute",
        "protected_table",
        "role_binding",
        "member_acknowledgement",
        "applied_definition",
    ],
)
def test_pg_write_all_data_cannot_change_or_delete_governance_rows(w: World, table: str) -> None:
    with w.attempt(WRITER) as conn, conn.cursor() as cur:
        cur.execute(f"DELETE FROM veil.{table}")
        assert cur.rowcount == 0


def test_pg_write_all_data_cannot_rebind_a_member(w: World) -> None:
    with w.attempt(WRITER) as conn, conn.cursor() as cur:
        cur.execute(
            "UPDATE veil.role_binding SET role_oid ="
            " (SELECT oid FROM pg_roles WHERE rolname = current_user)"
        )
        assert cur.rowcount == 0


def test_pg_write_all_data_cannot_approve(w: World) -> None:
    with w.attempt(WRITER) as conn, conn.cursor() as cur:
        cur.execute("UPDATE veil.project_purpose SET approved = true, state = 'approved'")
        assert cur.rowcount == 0


def test_pg_write_all_data_cannot_change_base_rows(w: World) -> None:
    with w.attempt(WRITER) as conn, conn.cursor() as cur:
        cur.execute(f"UPDATE {TX} SET notes = 'x'")
        assert cur.rowcount == 0


def test_pg_write_all_data_gets_no_purpose_by_forging(w: World) -> None:
    with w.attempt(WRITER) as conn:
        for statement in (
            "INSERT INTO veil.project_member VALUES ('fraud_q4', current_user)",
            "SELECT veil.use_project('fraud_q4')",
        ):
            try:
                fetch_all(conn, statement)
            except psycopg.Error:
                conn.rollback()
        assert not leaks_a_card(fetch_all(conn, CARDS))


@pytest.mark.parametrize(
    "table",
    [
        "audit_log",
        "member_acknowledgement",
        "project_member",
        "user_attribute",
        "user_group",
        "project_purpose",
        "role_binding",
    ],
)
def test_pg_read_all_data_reads_no_governance_rows(w: World, table: str) -> None:
    assert w.run(READER, f"SELECT * FROM veil.{table}") == []


def test_pg_read_all_data_reads_no_base_rows(w: World) -> None:
    assert w.run(READER, f"SELECT * FROM {TX}") == []
    assert w.run(READER, "SELECT * FROM hr.survey") == []


def test_pg_read_all_data_copies_no_base_rows(w: World) -> None:
    with w.attempt(READER) as conn, conn.cursor() as cur, cur.copy(f"COPY {TX} TO STDOUT") as cp:
        assert b"".join(bytes(chunk) for chunk in cp) == b""


def test_pg_read_all_data_reads_no_statistics_of_base_tables(w: World) -> None:
    """pg_read_all_data may read every column, but pg_stats hides tables whose row security
    applies to the reader: no most-common values of card numbers."""
    w.admin(f"ANALYZE {TX}")
    assert w.run(READER, "SELECT attname FROM pg_stats WHERE tablename = 'transactions'") == []


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE sales_protected.transactions SET id = id",
        "DELETE FROM sales_protected.transactions",
        "INSERT INTO sales_protected.transactions (id) VALUES (100000)",
    ],
)
def test_pg_write_all_data_cannot_write_through_the_views(w: World, statement: str) -> None:
    """The views are auto-updatable in their plain columns; the write runs with the view owner's
    rights on the table, and veil_views may only read it."""
    w.denied(WRITER, statement)


def test_the_audit_log_is_for_auditors(w: World) -> None:
    assert w.run(READER, "SELECT * FROM veil.audit_log") == []
    auditor = "veil_sec_auditor"
    w.server.create_role(auditor, member_of=[TARGET.auditor_role])
    try:
        assert w.run(auditor, "SELECT count(*) FROM veil.audit_log")[0][0] > 0
        w.denied(auditor, "SELECT * FROM veil.project_member")
    finally:
        w.server.drop_role(auditor)


def test_the_apply_reports_predefined_role_members_by_name(w: World) -> None:
    report = w.d.apply_stderr
    for role, why in (
        (READER, "pg_read_all_data"),
        (BYPASS, "pg_read_all_data"),
        (WRITER, "pg_write_all_data"),
        (BYPASS, "BYPASSRLS"),
    ):
        line = next((x for x in report.splitlines() if why in x and "WARNING" in x), "")
        assert role in line, report


# ============================================================================= roles


def test_a_login_created_after_the_apply_is_not_the_member(w: World) -> None:
    """GHOST is a member of sec_lab whose login did not exist at apply time; someone with
    CREATEROLE creates it and acts as that member."""
    with w.db.connect_as(CREATOR) as conn:
        conn.execute(f"CREATE ROLE {GHOST} LOGIN")
    w.admin(f"GRANT SELECT ON sales_protected.transactions TO {GHOST}")  # as for every reader
    try:
        with w.attempt(GHOST) as conn:
            try:
                fetch_all(conn, f"SELECT veil.use_project('{LAB}')")
                fetch_all(conn, f"SELECT veil.acknowledge('{LAB}')")
            except psycopg.errors.InsufficientPrivilege:
                conn.rollback()
                fetch_all(conn, f"SET veil.active_project = '{LAB}'")
            assert not leaks_a_card(fetch_all(conn, CARDS))
        # the next apply does not bind it either, and says why
        stderr = w.db.apply_script(w.d.script).stderr
        assert f"user {GHOST} gets no purpose: {CREATOR} holds ADMIN OPTION" in stderr
        w.denied(GHOST, f"SELECT veil.use_project('{LAB}')", match="is not the role")
    finally:
        w.server.drop_role(GHOST)


def test_a_namesake_of_a_dropped_member_is_not_the_member(w: World) -> None:
    with w.db.admin_connect() as conn:
        conn.execute(f"REASSIGN OWNED BY {TWIN} TO CURRENT_USER")
        conn.execute(f"DROP OWNED BY {TWIN}")
        conn.execute(f"DROP ROLE {TWIN}")
        conn.execute(f"CREATE ROLE {TWIN} LOGIN")
        conn.execute(f"GRANT SELECT ON sales_protected.transactions TO {TWIN}")
    with w.attempt(TWIN) as conn:
        try:
            fetch_all(conn, f"SELECT veil.use_project('{LAB}')")
        except psycopg.errors.InsufficientPrivilege:
            conn.rollback()
            fetch_all(conn, f"SET veil.active_project = '{LAB}'")
        assert not leaks_a_card(fetch_all(conn, CARDS))
    stderr = w.db.apply_script(w.d.script).stderr
    assert f"user {TWIN} gets no purpose: role {TWIN} is not the role veil bound" in stderr


@pytest.mark.parametrize(
    "statement",
    [
        "GRANT hr_admins TO CURRENT_USER",
        f"GRANT {TARGET.view_role} TO CURRENT_USER",
        f"GRANT {TARGET.owner_role} TO CURRENT_USER",
        f"ALTER ROLE {TARGET.owner_role} LOGIN PASSWORD 'x'",
        "ALTER ROLE alice PASSWORD 'x'",
        "DROP ROLE alice",
        "CREATE ROLE veil_sec_sneak LOGIN IN ROLE hr_admins",
        "GRANT pg_read_all_data TO CURRENT_USER",
        "GRANT pg_write_all_data TO CURRENT_USER",
        "CREATE ROLE veil_sec_sneak LOGIN BYPASSRLS",
        f"GRANT {TARGET.auditor_role} TO CURRENT_USER",
        f"CREATE ROLE veil_sec_sneak LOGIN IN ROLE {TARGET.view_role}",
    ],
)
def test_createrole_cannot_take_over_roles_veil_relies_on(w: World, statement: str) -> None:
    if w.server.server_version_num < 160000:
        pytest.skip("before PostgreSQL 16, CREATEROLE administers every role (docs/security.md)")
    w.denied(CREATOR, statement)


def test_no_outside_admin_on_veil_roles_and_groups(w: World) -> None:
    """On PostgreSQL 16+ ADMIN counts as membership for pg_has_role: nobody but superusers may
    hold it on a group veil uses or on veil's own roles."""
    rows = w.admin(
        "SELECT r.rolname, m.rolname FROM pg_auth_members a"
        " JOIN pg_roles r ON r.oid = a.roleid JOIN pg_roles m ON m.oid = a.member"
        " WHERE a.admin_option AND NOT m.rolsuper"
        " AND r.rolname IN (SELECT role_name FROM veil.managed_role)"
    )
    assert rows == []


def test_bypassrls_is_reported_not_stopped(w: World) -> None:
    """BYPASSRLS with pg_read_all_data reads every row of a base table: PostgreSQL gives no way
    around it, so the apply names the role (see the report test) and docs/security.md says so."""
    assert len(w.run(BYPASS, f"SELECT * FROM {TX}")) == ALL_ROWS


def test_veil_schemas_belong_to_veil_roles(w: World) -> None:
    rows = w.admin(
        "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace"
        " WHERE nspname IN ('veil', 'sales_protected', 'hr_protected') ORDER BY 1"
    )
    assert rows == [
        ("hr_protected", TARGET.view_role),
        ("sales_protected", TARGET.view_role),
        ("veil", TARGET.owner_role),
    ]


def test_governance_tables_have_forced_row_security(w: World) -> None:
    rows = w.admin(
        "SELECT relname, relrowsecurity, relforcerowsecurity FROM pg_class"
        " WHERE relnamespace = 'veil'::regnamespace AND relkind = 'r' ORDER BY 1"
    )
    assert rows and all(on and forced for _, on, forced in rows), rows


@pytest.mark.parametrize("value", ["9223372036854775807", "1"])
def test_pg_write_all_data_cannot_stop_or_reorder_the_audit_log(w: World, value: str) -> None:
    """setval is not transactional: the attacker's value outlives its rolled-back session."""
    seq = "veil.audit_log_id_seq"
    w.run(WRITER, f"SELECT setval('{seq}', {value})")
    try:
        with w.db.connect_as("alice") as conn:
            fetch_all(conn, "SELECT veil.use_project('fraud_q4')")
        [(last_two,)] = w.admin(
            "SELECT array_agg(who ORDER BY id) FROM"
            " (SELECT id, who FROM veil.audit_log ORDER BY id DESC LIMIT 2) AS l"
        )
        assert last_two[-1] == "alice"
    finally:
        w.admin(f"SELECT setval('{seq}', (SELECT max(id) FROM veil.audit_log))")


# ============================================================================= the hash key


@pytest.mark.parametrize("role", [MALLORY, READER, WRITER, "alice", DBOWNER, CREATOR])
def test_nobody_reads_the_hash_key(w: World, role: str) -> None:
    """No privilege on it, or (pg_read_all_data) no row through its row security."""
    try:
        rows = w.run(role, "SELECT * FROM veil.hash_key")
    except psycopg.errors.InsufficientPrivilege:
        rows = []
    assert rows == []


@pytest.mark.parametrize(
    "statement",
    [
        "SELECT veil.set_hash_key()",
        "SELECT veil.set_hash_key(repeat('0', 64))",
        "UPDATE veil.hash_key SET key_hex = repeat('0', 64)",
        "ALTER TABLE veil.hash_key DISABLE ROW LEVEL SECURITY",
    ],
)
def test_nobody_sets_the_hash_key(w: World, statement: str) -> None:
    w.denied(MALLORY, statement)


def test_pg_write_all_data_cannot_set_the_hash_key(w: World) -> None:
    with w.attempt(WRITER) as conn, conn.cursor() as cur:
        cur.execute("UPDATE veil.hash_key SET key_hex = repeat('0', 64)")
        assert cur.rowcount == 0
    w.denied(WRITER, "INSERT INTO veil.hash_key (key_hex) VALUES (repeat('0', 64))")


def table_keys(key: str) -> list[str]:
    """The key `hash` uses in each table of the example (secret like the deployment's)."""
    return [methods.table_key(key, model.table_id(tb.key)) for tb in payments_program().tables]


def test_the_hash_key_is_in_no_definition_or_setting(w: World) -> None:
    [(key,)] = w.admin("SELECT key_hex FROM veil.hash_key")
    texts = w.run(
        MALLORY,
        "SELECT string_agg(x, ' ') FROM ("
        " SELECT pg_get_viewdef(c.oid) AS x FROM pg_class c WHERE c.relkind = 'v'"
        " UNION ALL SELECT pg_get_expr(polqual, polrelid) FROM pg_policy"
        " UNION ALL SELECT prosrc FROM pg_proc"
        " UNION ALL SELECT setting FROM pg_settings"
        " UNION ALL SELECT definition FROM veil.applied_definition) AS t",
    )
    assert all(secret not in str(texts) for secret in [key, *table_keys(key)])


@pytest.mark.parametrize("role", ["bob", "chris"])
def test_neither_key_shows_in_the_plans_of_a_hashed_read(w: World, role: str) -> None:
    """The table's key is computed once per query (an InitPlan) from the deployment's: a reader
    who may EXPLAIN ANALYZE VERBOSE the read of hashed values sees the expressions, not their
    values, so neither key comes out and nobody hashes guesses offline."""
    [(key,)] = w.admin("SELECT key_hex FROM veil.hash_key")
    read = "SELECT id, email FROM sales_protected.transactions WHERE email LIKE '%' ORDER BY id"
    shown = dict(w.run(role, read))
    clear = dict(w.admin(f"SELECT id, email FROM {TX} WHERE email IS NOT NULL"))
    hashed = {i: hash_text(TX, e, None, key) for i, e in clear.items()}
    assert shown and all(shown[i] == hashed[i] for i in shown)  # the reader reads hashes
    options = ("ANALYZE, VERBOSE", "ANALYZE, VERBOSE, FORMAT JSON", "VERBOSE, GENERIC_PLAN")
    plans = [w.run(role, f"EXPLAIN ({o}) {read}") for o in options]
    text = str(plans)
    assert "InitPlan" in text and "hash_key" in text
    assert all(secret not in text for secret in [key, *table_keys(key)])
