"""The governance tables every target creates are exactly those `targets/governance.py` declares:
names, columns, types, nullability and keys, read back from each compiled script with sqlglot;
and only the declared readers are granted SELECT on them."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

from veil.api import check, compile_program
from veil.targets import TARGETS, get_target, governance
from veil.targets.lookup import LookupTarget
from veil.targets.postgres import PostgresTarget

CASE = Path(__file__).resolve().parent.parent / "cases" / "every_form"
DIALECT = {"postgres": "postgres", "snowflake": "snowflake", "databricks": "databricks"}


def _script(target: str) -> str:
    checked = check([CASE])
    assert checked.program is not None
    sql, _ = compile_program(checked.program, target)
    assert sql is not None
    return sql


def _family(target: str) -> governance.TargetFamily:
    return "postgres" if target == "postgres" else "lookup"


def _created(script: str) -> dict[str, str]:
    """Every `CREATE TABLE IF NOT EXISTS` of the script, by the table name as written."""
    found = re.finditer(r"^CREATE TABLE IF NOT EXISTS (\S+) \(.*?\);$", script, re.S | re.M)
    return {m.group(1): m.group(0) for m in found}


def _type(ty: str, target: str) -> str:
    tgt = get_target(target)
    written = tgt.gov_type(ty) if isinstance(tgt, LookupTarget) else ty
    return exp.DataType.build(written, dialect=DIALECT[target]).sql(DIALECT[target])


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_every_governance_table_is_created_as_declared(target: str) -> None:
    tgt = get_target(target)
    script = _script(target)
    created = _created(script)
    declared = governance.tables(_family(target))
    prefix = tgt.ident(tgt.options.governance_schema) + "."
    in_schema = {name for name in created if name.startswith(prefix)}
    assert in_schema == {tgt.gov(tb.name) if target != "postgres" else _pg(tb) for tb in declared}
    for tb in declared:
        statement = created[_pg(tb) if target == "postgres" else tgt.gov(tb.name)]
        ddl = sqlglot.parse_one(statement, read=DIALECT[target])
        schema = ddl.this
        assert isinstance(schema, exp.Schema)
        defs = [e for e in schema.expressions if isinstance(e, exp.ColumnDef)]
        assert [d.this.name.lower() for d in defs] == [c.name for c in tb.columns], tb.name
        keys: list[str] = []
        for d, c in zip(defs, tb.columns, strict=True):
            kinds = {type(k.kind) for k in d.args.get("constraints") or []}
            if exp.PrimaryKeyColumnConstraint in kinds:
                keys.append(c.name)
            not_null = kinds & {exp.NotNullColumnConstraint, exp.PrimaryKeyColumnConstraint}
            assert bool(not_null) == (not c.nullable), (tb.name, c.name)
            assert d.args["kind"].sql(DIALECT[target]) == _type(c.type, target), (tb.name, c.name)
        for pk in (e for e in schema.expressions if isinstance(e, exp.PrimaryKey)):
            keys += [k.name.lower() for k in pk.expressions]
        declares_keys = not isinstance(tgt, LookupTarget) or tgt.declares_keys
        assert tuple(keys) == (tb.key if declares_keys else ()), tb.name


def _pg(tb: governance.Table) -> str:
    return f"{PostgresTarget().ident('veil')}.{tb.name}"


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_only_declared_readers_are_granted_a_governance_table(target: str) -> None:
    tgt = get_target(target)
    script = _script(target)
    declared = governance.tables(_family(target))
    names = {(_pg(tb) if target == "postgres" else tgt.gov(tb.name)): tb for tb in declared}
    granted = re.findall(r"^GRANT (\w+) ON TABLE (\S+) TO (?:ROLE )?(\S+);$", script, re.M)
    on_governance = [(p, names[table], who) for p, table, who in granted if table in names]
    if isinstance(tgt, LookupTarget):
        auditors = tgt.principal_sql(tgt.auditor_name)
    else:
        assert isinstance(tgt, PostgresTarget)
        auditors = tgt.ident(tgt.auditor_role)
    views = tgt.ident(tgt.view_role) if isinstance(tgt, PostgresTarget) else ""
    role = {"auditors": auditors, "public": "PUBLIC", "views": views}
    assert sorted((p, tb.name, who) for p, tb, who in on_governance) == sorted(
        ("SELECT", tb.name, role[r]) for tb in declared for r in tb.readers
    )


def test_adding_a_table_is_one_entry() -> None:
    """Every table is declared once per family, with plain lower-case names (PostgreSQL's DDL
    writes them unquoted) and its key among its columns."""
    for family in ("postgres", "lookup"):
        names = [tb.name for tb in governance.tables(family)]
        assert len(names) == len(set(names))
        for tb in governance.tables(family):
            for name in (tb.name, *tb.column_names):
                assert re.fullmatch(r"[a-z_][a-z0-9_]*", name), name
            assert set(tb.key) <= set(tb.column_names)
