"""`veil catalog import` against a real PostgreSQL (tests/pg.py: embedded or VEIL_TEST_DSN)."""

from __future__ import annotations

import stat
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from tests.pg import PgDatabase
from veil import ir
from veil.catalog_import import map_type
from veil.cli import main
from veil.parser import parse_file

HOSTILE = "O'Brien\"; --"

SCHEMA_SQL = f"""
CREATE SCHEMA sales;
CREATE DOMAIN sales.card_no AS varchar(19);
CREATE TYPE sales.mood AS ENUM ('ok', 'meh');
CREATE TABLE sales.everything (
  id bigint,
  small smallint,
  n integer,
  amount numeric(12,2),
  anynum numeric,
  card varchar(19),
  v varchar,
  c char(2),
  bp bpchar,
  t text,
  b boolean,
  d date,
  ts timestamp(3),
  tstz timestamptz,
  r real,
  dp double precision,
  bin bytea,
  j json,
  jb jsonb,
  u uuid,
  arr integer[],
  tm time,
  dom sales.card_no,
  m sales.mood,
  neg numeric(5,-2)
);
CREATE TABLE sales.dropped_soon (id integer);
CREATE TABLE sales.empty ();
CREATE VIEW sales.not_a_table AS SELECT 1 AS one;
CREATE TABLE sales.parted (id integer, region text) PARTITION BY LIST (region);
CREATE TABLE sales.parted_emea PARTITION OF sales.parted FOR VALUES IN ('EMEA');
CREATE SCHEMA "{HOSTILE.replace('"', '""')}";
CREATE TABLE "{HOSTILE.replace('"', '""')}"."Order Lines" (
  "unit price" numeric(10,4),
  "table" integer,
  "back`quote" text,
  "{HOSTILE.replace('"', '""')}" text,
  "line
break" text
);
CREATE SCHEMA hr;
CREATE TABLE hr.survey (employee_id varchar(64), comment text);
CREATE SCHEMA veil;
CREATE TABLE veil.projects (name text);
"""

EXPECTED_TYPES = {
    "id": "bigint",
    "small": "smallint",
    "n": "integer",
    "amount": "decimal(12,2)",
    "anynum": "decimal",
    "card": "varchar(19)",
    "v": "varchar",
    "c": "char(2)",
    "bp": "text",
    "t": "text",
    "b": "boolean",
    "d": "date",
    "ts": "timestamp",
    "tstz": "timestamptz",
    "r": "real",
    "dp": "double",
    "bin": "binary",
    "j": "json",
    "jb": "json",
    "u": "text",
    "arr": "text",
    "tm": "text",
    "dom": "varchar(19)",
    "m": "text",
    "neg": "text",
}


def run(*args: str) -> Result:
    return CliRunner().invoke(main, ["catalog", "import", *args])


def tables_of(path: Path) -> dict[tuple[str, ...], ir.Table]:
    source, diags = parse_file(path.read_text(encoding="utf-8"), str(path))
    assert source is not None, diags
    return {s.name.parts: s for s in source.statements if isinstance(s, ir.Table)}


def columns(table: ir.Table) -> dict[str, tuple[str, tuple[str, ...]]]:
    return {c.name: (str(c.type), tuple(str(tag) for tag in c.tags)) for c in table.columns}


@pytest.fixture
def shop(pg_db: PgDatabase) -> PgDatabase:
    pg_db.apply_script(SCHEMA_SQL)
    return pg_db


def test_imports_every_type_and_hostile_name(shop: PgDatabase, tmp_path: Path) -> None:
    out = tmp_path / "catalog.veil"
    result = run("--dsn", shop.dsn, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "skipped" in result.stderr and "line\\nbreak" in result.stderr
    assert "sales.everything.u (uuid) has no veil type" in result.stderr
    text = out.read_text(encoding="utf-8")
    tables = tables_of(out)
    assert list(tables) == [
        (HOSTILE, "Order Lines"),
        ("hr", "survey"),
        ("sales", "dropped_soon"),
        ("sales", "empty"),
        ("sales", "everything"),
        ("sales", "parted"),
    ]
    everything = columns(tables["sales", "everything"])
    assert {name: typ for name, (typ, _) in everything.items()} == EXPECTED_TYPES
    assert list(everything) == list(EXPECTED_TYPES)  # column order of the table
    for was in (
        "uuid",
        "integer[]",
        "time without time zone",
        "sales.mood",
        "numeric(5,-2)",
        "bpchar",
    ):
        assert f"# was {was}\n" in text
    hostile = columns(tables[HOSTILE, "Order Lines"])
    assert list(hostile) == ["unit price", "table", "back`quote", HOSTILE]
    assert "table `O'Brien\"; --`.`Order Lines` {" in text
    assert "`back``quote`" in text
    assert tables["sales", "empty"].columns == ()
    assert (
        "not_a_table" not in text
        and "parted_emea" not in text
        and "veil" not in {parts[0] for parts in tables}
    )
    assert stat.S_IMODE(out.stat().st_mode) == 0o644


def test_output_reads_back_through_the_checker(shop: PgDatabase, tmp_path: Path) -> None:
    out = tmp_path / "catalog.veil"
    assert run("--dsn", shop.dsn, "--schema", "sales", "-o", str(out)).exit_code == 0
    from veil.api import check

    checked = check([out])
    assert [d for d in checked.diagnostics if d.is_error] == []


def test_reimport_keeps_tags_and_drops_what_is_gone(shop: PgDatabase, tmp_path: Path) -> None:
    out = tmp_path / "catalog.veil"
    assert run("--dsn", shop.dsn, "-o", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    text = text.replace("  card    varchar(19)", "  card    varchar(19) tags pii.card, `odd tag`")
    text = text.replace("  `unit price`", "  `unit price` decimal(10,4) tags finance.price #", 1)
    text = text.replace("  t       text", "  t       text tags pii.free_text")
    out.write_text(text, encoding="utf-8")
    before = columns(tables_of(out)["sales", "everything"])
    assert before["card"][1] == ("pii.card", "`odd tag`")

    shop.apply_script(
        "ALTER TABLE sales.everything DROP COLUMN t, ADD COLUMN added date;"
        "DROP TABLE sales.dropped_soon;"
    )
    result = run("--dsn", shop.dsn, "-o", str(out))
    assert result.exit_code == 0, result.output
    assert "kept 3 tags" in result.stderr
    assert "removed table `sales.dropped_soon`" in result.stderr
    tables = tables_of(out)
    assert ("sales", "dropped_soon") not in tables
    after = columns(tables["sales", "everything"])
    assert "t" not in after
    assert after["added"] == ("date", ())
    assert after["card"] == ("varchar(19)", ("pii.card", "`odd tag`"))
    assert columns(tables[HOSTILE, "Order Lines"])["unit price"] == (
        "decimal(10,4)",
        ("finance.price",),
    )

    again = run("--dsn", shop.dsn, "-o", str(out))
    assert again.exit_code == 0
    assert tables_of(out) == tables  # stable: a second import changes nothing
    first = out.read_text(encoding="utf-8")
    run("--dsn", shop.dsn, "-o", str(out))
    assert out.read_text(encoding="utf-8") == first


def test_importing_one_schema_keeps_the_others(shop: PgDatabase, tmp_path: Path) -> None:
    out = tmp_path / "catalog.veil"
    assert run("--dsn", shop.dsn, "-o", str(out)).exit_code == 0
    out.write_text(
        out.read_text(encoding="utf-8").replace(
            "  comment      text", "  comment      text tags pii.free_text"
        ),
        encoding="utf-8",
    )
    shop.apply_script("DROP TABLE hr.survey; DROP TABLE sales.dropped_soon;")
    result = run("--dsn", shop.dsn, "--schema", "sales", "-o", str(out))
    assert result.exit_code == 0, result.output
    tables = tables_of(out)
    assert columns(tables["hr", "survey"])["comment"] == ("text", ("pii.free_text",))
    assert ("sales", "dropped_soon") not in tables
    assert ("sales", "everything") in tables


def test_stdout_and_explicit_schemas(shop: PgDatabase) -> None:
    result = run("--dsn", shop.dsn, "--schema", "hr", "--schema", "veil")
    assert result.exit_code == 0, result.output
    assert "table hr.survey {" in result.stdout
    assert "table veil.projects {" in result.stdout  # named explicitly: imported
    assert "sales" not in result.stdout.split("\n", 1)[1]


def test_unknown_schema_is_an_error(shop: PgDatabase) -> None:
    result = run("--dsn", shop.dsn, "--schema", "nope", "--schema", "sales")
    assert result.exit_code == 1
    assert "no schema `nope`" in result.stderr


def test_refuses_to_rewrite_a_file_with_other_statements(shop: PgDatabase, tmp_path: Path) -> None:
    out = tmp_path / "catalog.veil"
    original = "table a.b {\n  x int\n}\nmask x with hash\n"
    out.write_text(original, encoding="utf-8")
    result = run("--dsn", shop.dsn, "-o", str(out))
    assert result.exit_code == 1
    assert "holds statements other than `table` blocks" in result.stderr
    assert out.read_text(encoding="utf-8") == original
    out.write_text("table a.b {\n", encoding="utf-8")
    result = run("--dsn", shop.dsn, "-o", str(out))
    assert result.exit_code == 1 and "cannot read the existing" in result.stderr


def test_unreachable_server(tmp_path: Path) -> None:
    result = run("--dsn", f"host={tmp_path} port=1 dbname=x user=x connect_timeout=2")
    assert result.exit_code == 1
    assert "cannot connect to PostgreSQL" in result.stderr


def test_without_psycopg(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "psycopg", None)
    result = run("--dsn", "dbname=x")
    assert result.exit_code == 1
    assert "pip install 'psycopg[binary]'" in result.stderr


@pytest.mark.parametrize(
    ("typname", "typmod", "expected"),
    [
        ("int2", -1, ("smallint", True)),
        ("varchar", 23, ("varchar(19)", True)),
        ("varchar", -1, ("varchar", True)),
        ("bpchar", 6, ("char(2)", True)),
        ("bpchar", -1, ("text", False)),
        ("numeric", (12 << 16 | 2) + 4, ("decimal(12,2)", True)),
        ("numeric", (5 << 16 | 0x7FE) + 4, ("text", False)),  # numeric(5,-2)
        ("numeric", -1, ("decimal", True)),
        ("float8", -1, ("double", True)),
        ("uuid", -1, ("text", False)),
    ],
)
def test_map_type(typname: str, typmod: int, expected: tuple[str, bool]) -> None:
    assert map_type(typname, typmod, typname) == expected


def test_user_types_named_like_builtins_fall_back() -> None:
    assert map_type("int4", -1, "myschema.int4", builtin=False) == ("text", False)
