"""`veil sandbox`: sample data, roles, the compiled script, and what each user sees."""

from __future__ import annotations

import datetime as dt
import importlib.util
import os
import re
import shlex
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner

from tests.pg import PgDatabase, PgServer, fail_or_skip
from veil import ir, model
from veil.approvals import approval_record, approve_line, project_digest
from veil.cli import main
from veil.model import SqlType
from veil.sample_data import sample_rows, value_hints
from veil.sandbox import (
    SandboxError,
    TableView,
    _match,
    database_name,
    observe,
    pg_type,
    prepare,
    render_view,
    report,
)
from veil.scaffold import init

TODAY = dt.date(2026, 1, 15)
PREFIX = "sbx_"
PEOPLE = ("alice", "bob", "sam", "analysts", "stewards")


def col(
    name: str,
    type_: str,
    length: int | None = None,
    *tags: str,
    precision: int | None = None,
    scale: int | None = None,
) -> model.CatalogColumn:
    return model.CatalogColumn(
        name=name,
        type=SqlType(name=type_, length=length, precision=precision, scale=scale),
        tags=tuple(ir.TagPath(parts=tuple(t.split("."))) for t in tags),
    )


def ref(name: str) -> ir.ColumnRef:
    return ir.ColumnRef(name=ir.ObjectName(parts=(name,)))


KEY = ("s", "all types")
TABLE = model.CatalogTable(
    key=KEY,
    columns=(
        col("id", "bigint"),
        col("small", "smallint"),
        col("n", "integer"),
        col("amount", "decimal", precision=5, scale=2),
        col("whole", "decimal", precision=3, scale=0),
        col("anynum", "decimal"),
        col("r", "real"),
        col("d", "double"),
        col("b", "boolean"),
        col("v", "varchar", 4),
        col("vv", "varchar"),
        col("c", "char", 2),
        col("t", "text"),
        col("contact", "varchar", 40, "pii.email"),
        col("pan", "varchar", 19, "pii.card"),
        col("phone", "varchar", 16),
        col("customer", "text"),
        col("region", "varchar", 8),
        col("country", "char", 2),
        col("status", "text"),
        col("day", "date"),
        col("at", "timestamp"),
        col("attz", "timestamptz"),
        col("raw", "binary"),
        col("doc", "json"),
        col('Odd "name"', "text"),
    ),
)
PROGRAM = model.Program(
    tables=(TABLE,),
    purposes=(),
    groups=(),
    users=(model.UserInfo(name="u1", attributes=(("region", ("EMEA", "APAC")),)),),
    projects=(),
    masks=(),
    row_rules=(
        model.RowRule(
            table=KEY,
            kind="filter",
            allow=ir.CondConst(value=False),
            where=ir.InUser(item=ref("region"), ref=ir.UserRef(attr="region")),
        ),
        model.RowRule(
            table=KEY,
            kind="filter",
            allow=ir.CondConst(value=False),
            where=ir.BoolOr(
                items=(
                    ir.Compare(op="=", left=ref("status"), right=ir.Literal(value="paid")),
                    ir.InList(item=ref("n"), options=(ir.Literal(value=7), ir.Literal(value=9))),
                )
            ),
        ),
    ),
)


# -- sample data (no database) ---------------------------------------------------------------


def test_sample_rows_are_deterministic_and_fit_their_types() -> None:
    rows = sample_rows(PROGRAM, TABLE, 30, TODAY)
    assert rows == sample_rows(PROGRAM, TABLE, 30, TODAY)
    assert len(rows) == 30
    by = {c.name: [r[i] for r in rows] for i, c in enumerate(TABLE.columns)}
    assert by["id"] == list(range(1, 31))
    assert all(-32768 <= v <= 32767 for v in by["small"])  # type: ignore[operator]
    for v in by["amount"]:
        assert isinstance(v, Decimal) and abs(v) < 1000 and -v.as_tuple().exponent == 2
    assert all(isinstance(v, Decimal) and abs(v) < 1000 for v in by["whole"])
    assert all(len(str(v)) <= 4 for v in by["v"])
    assert all(len(str(v)) <= 2 for v in by["c"] + by["country"])
    assert all(re.fullmatch(r"[a-z.-]+\d+@[a-z.]+", str(v)) for v in by["contact"])
    for v in by["pan"]:
        digits = [int(ch) for ch in str(v)]
        assert len(digits) == 16
        assert (
            sum(sum(divmod(d * 2, 10)) if i % 2 else d for i, d in enumerate(reversed(digits))) % 10
            == 0
        )  # Luhn
    assert all(str(v).startswith("+") for v in by["phone"])
    assert all(isinstance(v, dt.date) and v <= TODAY for v in by["day"])
    assert all(isinstance(v, dt.datetime) and v.tzinfo is None for v in by["at"])
    assert all(isinstance(v, dt.datetime) and v.tzinfo is not None for v in by["attz"])
    assert all(isinstance(v, bytes) for v in by["raw"])


def test_sample_rows_fall_on_both_sides_of_the_filters() -> None:
    hints = value_hints(PROGRAM, KEY)
    assert hints == {"n": [7, 9], "region": ["APAC", "EMEA"], "status": ["paid"]}
    rows = sample_rows(PROGRAM, TABLE, 20, TODAY)
    region = [r[17] for r in rows]
    assert {"APAC", "EMEA"} <= set(region) and set(region) - {"APAC", "EMEA"}
    status = [r[19] for r in rows]
    assert "paid" in status and set(status) - {"paid"}
    n = [r[2] for r in rows]
    assert {7, 9} <= set(n)


def test_pg_types_and_names() -> None:
    assert [pg_type(c.type) for c in TABLE.columns[:12]] == [
        "bigint",
        "smallint",
        "integer",
        "numeric(5, 2)",
        "numeric(3, 0)",
        "numeric",
        "real",
        "double precision",
        "boolean",
        "varchar(4)",
        "varchar",
        "char(2)",
    ]
    assert database_name(PROGRAM) == "veil_sandbox"
    three = model.CatalogTable(key=("shop", "sales", "t"), columns=())
    prog = model.Program(
        tables=(three,), purposes=(), groups=(), users=(), projects=(), masks=(), row_rules=()
    )
    assert database_name(prog) == "shop"
    other = model.CatalogTable(key=("erp", "sales", "u"), columns=())
    with pytest.raises(SandboxError, match="several databases"):
        database_name(
            model.Program(
                tables=(three, other),
                purposes=(),
                groups=(),
                users=(),
                projects=(),
                masks=(),
                row_rules=(),
            )
        )


def test_matching_view_rows_to_stored_rows() -> None:
    base = [(1, "a", "x"), (2, "b", "x"), (3, "c", "y"), (4, "d", "y")]
    seen = [(1, "*", "x"), (3, "*", "y")]  # column 1 masked, rows 2 and 4 hidden
    shown, extra = _match(base, seen, keys=[0, 2])
    assert shown == [(1, "*", "x"), None, (3, "*", "y"), None]
    assert extra == []
    shown, extra = _match(base, [(9, "z", "q")], keys=[0])
    assert shown == [None] * 4 and extra == [(9, "z", "q")]
    # duplicates line up in scan order
    shown, _ = _match([(1,), (1,), (1,)], [(1,), (1,)], keys=[0])
    assert shown == [(1,), (1,), None]


def test_render_view_marks_masked_cells_and_hidden_rows() -> None:
    table = model.CatalogTable(key=("s", "t"), columns=(col("id", "bigint"), col("card", "text")))
    tv = TableView(
        table=table,
        view="s_protected.t",
        base=[(1, "4111"), (2, "4222")],
        shown=[(1, None), None],
        extra=[],
    )
    lines = render_view(tv)
    assert lines[0] == "  s_protected.t   rows visible: 1/2   masked cells: 1"
    assert lines[1].split() == ["row", "id", "card"]
    assert lines[2].split() == ["1", "1", "NULL*"]
    assert lines[3].split() == ["2", "hidden", "2", "4222"]
    denied = TableView(
        table=table,
        view="s_protected.t",
        base=[],
        shown=[],
        extra=[],
        error="permission denied for view t",
    )
    assert render_view(denied) == ["  s_protected.t: permission denied for view t"]


# -- a real database -----------------------------------------------------------------------------


def _scaffold(tmp_path: Path, *, approve: bool) -> Path:
    """The `veil init` repository with its people renamed (roles are cluster-wide) and, if
    `approve`, the project approved as `veil approve` would."""
    repo = tmp_path / "repo"
    init(repo)
    for f in repo.glob("*.veil"):
        text = f.read_text(encoding="utf-8")
        text = re.sub(rf"\b({'|'.join(PEOPLE)})\b", lambda m: PREFIX + m.group(1), text)
        f.write_text(text, encoding="utf-8")
    if approve:
        program = _program(repo)
        project = program.project("fraud_review")
        assert project is not None
        purposes = {p.name: p for p in program.purposes}
        line = approve_line(
            "fraud_review",
            "Fraud Detection",
            "carol",
            dt.datetime(2026, 1, 2, tzinfo=dt.UTC),
            project_digest(project, purposes),
            approval_record(project, purposes),
        )
        with (repo / "projects.veil").open("a", encoding="utf-8") as f:
            f.write(line)
    return repo


def _program(repo: Path) -> model.Program:
    from veil.api import check

    checked = check([repo])
    assert checked.program is not None, [str(d) for d in checked.diagnostics]
    return checked.program


def _script(program: model.Program) -> str:
    from veil.api import compile_program

    script, diags = compile_program(program, "postgres")
    assert script is not None, diags
    return script


@pytest.fixture
def people(pg_server: PgServer) -> Iterator[None]:
    yield
    for name in PEOPLE:
        pg_server.drop_role(PREFIX + name)


def _prepare(
    db: PgDatabase,
    program: model.Program,
    script: str,
    *,
    rows: int = 20,
    data: Path | None = None,
    echo: Callable[[str], None] = print,
) -> None:
    prepare(
        db.dsn, program, script, rows=rows, data=data, today=TODAY, psql=db.server.psql, echo=echo
    )


def test_what_each_user_sees(pg_db: PgDatabase, people: None, tmp_path: Path) -> None:
    program = _program(_scaffold(tmp_path, approve=True))
    project = program.project("fraud_review")
    assert project is not None and project.active_purposes == ("Fraud Detection",)
    _prepare(pg_db, program, _script(program), rows=12)

    names = [c.name for c in program.tables[0].columns]
    card, email, country = (names.index(n) for n in ("card_number", "email", "country"))

    problem, (alice,) = observe(pg_db.dsn, program, "sbx_alice", None)
    assert problem is None and alice.error is None, alice.error
    assert alice.view == "shop_protected.orders" and len(alice.base) == 12
    visible = [r for r in alice.shown if r is not None]
    assert visible and all(r[country] in ("DE", "FR") for r in visible)
    assert len(visible) < 12  # the filter hides the other countries
    assert all(r[card] is None for r in visible)
    assert all(r[email] != b[email] for r, b in zip(alice.shown, alice.base, strict=True) if r)

    problem, (fraud,) = observe(pg_db.dsn, program, "sbx_alice", "fraud_review")
    assert problem is None
    assert all(r is not None for r in fraud.shown)  # the purpose lifts the filter
    assert [r[card] for r in fraud.shown if r] == [b[card] for b in fraud.base]  # clear

    problem, (bob,) = observe(pg_db.dsn, program, "sbx_bob", "fraud_review")
    assert problem is not None  # not a member: use_project refuses
    assert all(r is None or r[country] == "US" for r in bob.shown)
    assert all(r is None or r[card] is None for r in bob.shown)

    _, (sam,) = observe(pg_db.dsn, program, "sbx_sam", None)
    assert [r[email] for r in sam.shown if r] == [
        b[email] for b, r in zip(sam.base, sam.shown, strict=True) if r
    ]

    lines: list[str] = []
    report(pg_db.dsn, program, lines.append)
    text = "\n".join(lines)
    assert "sbx_alice — no active project" in text
    assert "sbx_alice — project fraud_review (Fraud Detection: approved)" in text
    assert "shop_protected.orders   rows visible: 12/12" in text
    assert "use_project failed" not in text.split("sbx_bob")[0]
    assert "sbx_bob — no active project" in text and "sbx_sam — no active project" in text


def test_csv_data(pg_db: PgDatabase, people: None, tmp_path: Path) -> None:
    program = _program(_scaffold(tmp_path, approve=False))
    data = tmp_path / "data"
    data.mkdir()
    (data / "shop.orders.csv").write_text(
        'id,country,email\n1,DE,a@example.com\n2,US,"b,c"@example.com\n', encoding="utf-8"
    )
    (data / "stray.csv").write_text("x\n", encoding="utf-8")
    echoed: list[str] = []
    _prepare(pg_db, program, _script(program), data=data, echo=echoed.append)
    assert any("stray.csv names no catalog table" in e for e in echoed)
    rows = pg_db.query_as(None, "SELECT id, country, email, amount FROM shop.orders ORDER BY id")
    assert rows == [(1, "DE", "a@example.com", None), (2, "US", "b,c@example.com", None)]


def test_csv_with_an_unknown_column(pg_db: PgDatabase, people: None, tmp_path: Path) -> None:
    program = _program(_scaffold(tmp_path, approve=False))
    data = tmp_path / "data"
    data.mkdir()
    (data / "shop.orders.csv").write_text("id,nope\n1,2\n", encoding="utf-8")
    with pytest.raises(SandboxError, match=r"no column `nope` in table `shop\.orders`"):
        prepare(pg_db.dsn, program, "SELECT 1;", data=data, today=TODAY)


def test_generated_rows_load_into_postgres(pg_db: PgDatabase) -> None:
    try:
        prepare(pg_db.dsn, PROGRAM, "SELECT 1;", rows=50, today=TODAY, psql=None)
        rows = pg_db.query_as(None, 'SELECT count(*), max(length(v)) FROM s."all types"')
        assert rows == [(50, 4)]
    finally:
        pg_db.server.drop_role("u1")


def test_a_failing_script_is_reported(pg_db: PgDatabase, tmp_path: Path) -> None:
    empty = model.Program(
        tables=(), purposes=(), groups=(), users=(), projects=(), masks=(), row_rules=()
    )
    with pytest.raises(SandboxError, match="the compiled script failed"):
        prepare(pg_db.dsn, empty, "SELECT 1/0;", psql=pg_db.server.psql)
    with pytest.raises(SandboxError, match="division by zero"):
        prepare(pg_db.dsn, empty, "SELECT 1/0;", psql=None)


# -- the command -------------------------------------------------------------------------------


def test_sandbox_refuses_a_broken_repository(tmp_path: Path) -> None:
    (tmp_path / "bad.veil").write_text("mask nothing.here with hash\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["sandbox", str(tmp_path)])
    assert result.exit_code == 1
    assert "starting" not in result.output


def _need_pgserver() -> None:
    if importlib.util.find_spec("pgserver") is None:  # pragma: no cover
        fail_or_skip("pgserver is not installed")


@pytest.mark.postgres
def test_sandbox_command_end_to_end(tmp_path: Path) -> None:
    _need_pgserver()
    repo = _scaffold(tmp_path, approve=True)
    _script(_program(repo))
    result = CliRunner().invoke(main, ["sandbox", str(repo), "--rows", "6"])
    assert result.exit_code == 0, result.output
    assert "sbx_alice — project fraud_review (Fraud Detection: approved)" in result.stdout
    assert "rows visible: 6/6" in result.stdout
    assert "keeps running" not in result.stdout


@pytest.mark.postgres
def test_sandbox_keep_leaves_a_server_to_connect_to(tmp_path: Path) -> None:
    _need_pgserver()
    import psycopg

    repo = _scaffold(tmp_path, approve=False)
    _script(_program(repo))
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from veil.cli import run; sys.argv[0] = 'veil'; run()",
            "sandbox",
            str(repo),
            "--rows",
            "3",
            "--keep",
        ],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    uri = re.search(r"keeps running: \S+ '([^']+)'", done.stdout)
    stop = re.search(r"stop and delete it with: python (.+)$", done.stdout, re.M)
    data = re.search(r"data in (\S+)", done.stdout)
    try:
        assert done.returncode == 0, done.stdout + done.stderr
        assert uri and stop and data, done.stdout
        with psycopg.connect(uri.group(1)) as conn:
            row = conn.execute("SELECT count(*) FROM shop.orders").fetchone()
        assert row == (3,)
    finally:
        if stop:
            subprocess.run(
                f"{shlex.quote(sys.executable)} {stop.group(1)}",
                shell=True,
                timeout=120,
                check=True,
                env=env,
            )
        elif data:  # pragma: no cover - only when the command failed
            shutil.rmtree(data.group(1), ignore_errors=True)
    assert uri and data
    with pytest.raises(psycopg.OperationalError):
        psycopg.connect(uri.group(1), connect_timeout=3)
    assert not Path(data.group(1)).exists()
