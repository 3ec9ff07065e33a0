"""Leaky functions and operators against the views, which are plain views that PostgreSQL
flattens into the reader's query (no `security_barrier`: docs/targets/postgres.md, "Why the views
have no barrier").

What a barrier would otherwise guarantee must hold without it: the reader's conditions that are
not leakproof run after the row policies of the table, wherever they are written (`WHERE`,
`JOIN`, `ORDER BY`, windows, `HAVING`, sub-queries, `LATERAL`, views of the reader's own), and a
condition on a masked column sees the masked value. Each function prints its arguments and costs
1e-7, so the planner would run it before anything else if it could.
"""

from __future__ import annotations

import pytest

from tests.pg import fetch_all
from tests.security.world import World

V = "sales_protected.transactions"
TX = "sales.transactions"
#: Every column of the view that could carry a secret, in text, the id first.
ARGS = "{v}.id::text, {v}.credit_card, {v}.email, {v}.notes, {v}.region, {v}.amount::text"
LEAK = (
    "CREATE FUNCTION pg_temp.leak(VARIADIC a text[]) RETURNS boolean LANGUAGE plpgsql"
    " COST 0.0000001 AS $$ BEGIN"
    " RAISE NOTICE 'leak %', pg_catalog.array_to_string(a, '|', 'NULL'); RETURN true; END $$"
)


#: The leaky call on the view's alias `v`.
LEAK_CALL = "pg_temp.leak(" + ARGS.format(v="v") + ")"


#: Where an attacker puts the leaky call; `{leak}` on the view's alias `v`.
ATTACKS = {
    "where": f"SELECT v.id FROM {V} AS v WHERE {{leak}}",
    "where, beside a leakproof condition": f"SELECT v.id FROM {V} AS v WHERE v.id > 0 AND {{leak}}",
    "where, in an OR": f"SELECT v.id FROM {V} AS v WHERE {{leak}} OR v.id < 0",
    "join on": (
        f"SELECT v.id FROM generate_series(1, 1000) AS g(n)"
        f" JOIN {V} AS v ON v.id = g.n AND {{leak}}"
    ),
    "outer join on": f"SELECT u.id FROM {V} AS u LEFT JOIN {V} AS v ON v.id = u.id AND {{leak}}",
    "order by": f"SELECT v.id FROM {V} AS v ORDER BY {{leak}}",
    "window": f"SELECT v.id, count(*) OVER (PARTITION BY {{leak}}) FROM {V} AS v",
    "having, pushed down to where": (
        f"SELECT v.id FROM {V} AS v"
        " GROUP BY v.id, v.credit_card, v.email, v.notes, v.region, v.amount HAVING {leak}"
    ),
    "exists": f"SELECT EXISTS (SELECT 1 FROM {V} AS v WHERE {{leak}})",
    "in": f"SELECT u.id FROM {V} AS u WHERE u.id IN (SELECT v.id FROM {V} AS v WHERE {{leak}})",
    "scalar sub-select": (
        f"SELECT (SELECT {{leak}} FROM {V} AS v WHERE v.id = g.n)"
        " FROM generate_series(1, 1000) AS g(n)"
    ),
    "lateral": (
        "SELECT s.id FROM generate_series(1, 1000) AS g(n),"
        f" LATERAL (SELECT v.id FROM {V} AS v WHERE v.id = g.n AND {{leak}}) AS s"
    ),
    "cte": f"WITH c AS (SELECT * FROM {V}) SELECT v.id FROM c AS v WHERE {{leak}}",
    "union all": (
        f"SELECT v.id FROM (SELECT * FROM {V} UNION ALL SELECT * FROM {V}) AS v WHERE {{leak}}"
    ),
    "whole row": f"SELECT v.id FROM {V} AS v WHERE pg_temp.leak(v.id::text, v::text)",
    "a view of the reader's": (
        f"CREATE TEMP VIEW mine AS SELECT * FROM {V}; SELECT v.id FROM mine AS v WHERE {{leak}}"
    ),
}


def exposure(w: World, role: str) -> tuple[set[str], list[str]]:
    """(ids `role` sees, base values `role` must never see: every clear card and email long
    enough to be told from a masked value, which the view masks for `role`)."""
    visible = {str(i) for (i,) in w.run(role, f"SELECT id FROM {V}")}
    base = w.admin(f"SELECT credit_card, email FROM {TX}")
    hidden = sorted({v for row in base for v in row if v is not None and len(v) >= 8})
    assert visible and len(visible) < len(base)
    return visible, hidden


@pytest.mark.parametrize("role", ["maya", "erin"])
@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_leaky_function_sees_visible_rows_and_masked_values(
    w: World, role: str, attack: str
) -> None:
    visible, hidden = exposure(w, role)
    notices: list[str] = []
    with w.attempt(role) as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        fetch_all(conn, LEAK)
        for statement in ATTACKS[attack].format(leak=LEAK_CALL).split("; "):
            fetch_all(conn, statement)
    assert notices, attack  # the function ran: the attack is not vacuous
    seen = {n.removeprefix("leak ").split("|")[0] for n in notices}
    assert seen <= visible, (attack, seen - visible)
    assert not [n for n in notices for s in hidden if s in n], attack


#: A comparison operator of the reader's with the built-in estimator of `<`: were the planner to
#: hand it the table's statistics, it would print most-common values and histogram bounds,
#: hidden rows' included.
LEAKY_OPERATOR = tuple(
    statement
    for ty in ("text", "bigint", "numeric")
    for statement in (
        f"CREATE FUNCTION pg_temp.lt({ty}, {ty}) RETURNS boolean LANGUAGE plpgsql"
        " COST 0.0000001 AS $$ BEGIN RAISE NOTICE 'lt %', $1; RETURN $1 < $2; END $$",
        f"CREATE OPERATOR pg_temp.<<< (LEFTARG = {ty}, RIGHTARG = {ty},"
        " FUNCTION = pg_temp.lt, RESTRICT = scalarltsel)",
    )
)


@pytest.mark.parametrize(
    "condition",
    [
        "v.id OPERATOR(pg_temp.<<<) CAST(30 AS bigint)",
        "v.region OPERATOR(pg_temp.<<<) 'M'",
        "v.merchant OPERATOR(pg_temp.<<<) 'M'",
        "v.email OPERATOR(pg_temp.<<<) 'M'",
        "v.amount OPERATOR(pg_temp.<<<) CAST(50 AS numeric)",
    ],
)
def test_a_leaky_operator_gets_no_statistics_of_the_table(w: World, condition: str) -> None:
    w.admin(f"ANALYZE {TX}")
    notices: list[str] = []
    with w.attempt("maya") as conn:
        conn.add_notice_handler(lambda d: notices.append(str(d.message_primary)))
        for s in LEAKY_OPERATOR:
            fetch_all(conn, s)
        fetch_all(conn, f"EXPLAIN SELECT v.id FROM {V} AS v WHERE {condition}")
        assert notices == [], (condition, notices)
        # not vacuous: on a table of maya's own the same estimate does call the operator
        fetch_all(conn, f"CREATE TEMP TABLE mine AS SELECT * FROM {V}")
        fetch_all(conn, "ANALYZE mine")
        fetch_all(conn, f"EXPLAIN SELECT v.id FROM mine AS v WHERE {condition}")
    assert notices, condition
