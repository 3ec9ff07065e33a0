"""Programs, contexts and sample rows for the Snowflake and Databricks target tests.

A scenario is a checked program plus every (user, project) context worth trying — each declared
user, an undeclared one, with no project, each project of the program and an unknown one — and
sample rows for every protected table. `expected` gives the reference evaluator's answer for a
context: per row, whether it is visible and the value shown in each masked column. The targets'
SQL, run offline, must give the same answer for every cell and row.

Every context says what its user acknowledged (`Context.acknowledged`), and the targets' tests put
exactly those rows in the acknowledgement table (`acknowledgement_rows`). Members acknowledged the
current text of every purpose of their projects, except where `LAPSES` says otherwise: a member who
never acknowledged (`never`), who acknowledged only an earlier text (`old`), or who acknowledged
the current text in another project (`elsewhere`) acts under no purpose there; one who
acknowledged only one of the project's purposes (`partial`) acts under that one only.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from veil import ir, model
from veil.api import check
from veil.evaluator import Context, coerce_row, mask_value, visible_row

ROOT = Path(__file__).resolve().parents[2]
PAYMENTS = ROOT / "examples" / "payments"
HOSTILE = "O'Brien\"; DROP TABLE x; -- \\ ${spark.app.name} $$ é漢😀"
UNDECLARED_USER = "mallory"
UNKNOWN_PROJECT = "no_such_project"

#: A program that reaches every atom, method and identifier rule the targets render, with hostile
#: strings in names, values and attributes. Its purposes are approved by `approve_all`.
EDGE_VEIL = r"""
table shop.orders {
  id          bigint
  customer    varchar(80)
  `Order Note` text
  email       varchar(64)
  code        varchar(10)
  region      varchar(8)
  principal   varchar(40)
  owner       varchar(16)
  qty         integer
  price       decimal(10,3)
  ratio       double
  placed_on   date
  placed_at   timestamp
  seen_at     timestamptz
  flag        boolean
  `we"ird``col` varchar(30)
  order       integer
}

purpose "Fraud Detection" { acknowledgement "I will look at card data only to chase fraud." }
purpose "Fraud Detection.Chargebacks"
purpose "O'Brien\"; DROP TABLE x; -- \\ $$ é漢😀" {
  acknowledgement "O'Brien\"; DROP TABLE x; -- \\ ${spark.app.name} $$ é漢😀\nsecond line"
}
purpose Marketing { acknowledgement "Aggregates only." }
purpose Audit { acknowledgement "Audit only." }

group analysts
group "Data-Eng"
group "O'Brien\"; DROP TABLE x; --"

user alice { groups analysts; region "EMEA", "APAC"; team "O'Brien\"; DROP TABLE x; --" }
user bob   { groups "Data-Eng"; region "AMER" }
user "x'y\\z" { groups "O'Brien\"; DROP TABLE x; --", analysts; region "EMEA" }
user carol

project p1 {
  purposes "Fraud Detection.Chargebacks"
  members alice, bob
  sources shop.orders
}
project "p'2 ${spark.app.name}" {
  purposes "O'Brien\"; DROP TABLE x; -- \\ $$ é漢😀", Marketing
  members alice, "x'y\\z"
  sources shop.orders
}
project p3 {
  purposes Marketing
  members carol, bob
  sources shop.orders
}
project pending {
  purposes Audit
  members alice, carol
  sources shop.orders
}

approvers dan

mask shop.orders.customer \
  with constant("O'Brien\"; DROP TABLE x; -- \\ ${spark.app.name} $$ é漢😀") \
  when qty > 12 or flag unless purpose "Fraud Detection"
mask shop.orders.`Order Note` with regex("([a-z]+)-([0-9]+)", "\\2$\\1\\\\0") \
  unless group "Data-Eng"
mask shop.orders.email with email_domain for attribute team = "O'Brien\"; DROP TABLE x; --"
mask shop.orders.code with hash unless user bob
mask shop.orders.region with show_last(2) when region != "EMEA" unless any purpose
mask shop.orders.qty with round(5) unless purpose Marketing
mask shop.orders.price with round(0.25) unless not group analysts
mask shop.orders.ratio with round(2) unless purpose "O'Brien\"; DROP TABLE x; -- \\ $$ é漢😀"
mask shop.orders.placed_on with truncate(quarter) unless group "O'Brien\"; DROP TABLE x; --"
mask shop.orders.placed_at with truncate(hour) unless purpose Audit
mask shop.orders.seen_at with truncate(day) unless purpose Marketing and group analysts
mask shop.orders.owner with show_first(3) when principal in user.region or principal is null
mask shop.orders.`we"ird``col` with show_last(1) when order > 12 unless group "Data-Eng"

filter shop.orders where principal not in user.groups or owner = user.name \
  unless purpose "Fraud Detection"
filter shop.orders where placed_at between now() - 400 days and now() or qty is null
filter shop.orders where not (region in user.region) or flag unless group analysts
"""

#: Projects of EDGE_VEIL whose purposes stay pending (they must grant nothing).
PENDING_PROJECTS = frozenset({"pending"})

#: An earlier acknowledgement text (a member who acknowledged only this has to acknowledge again).
OLD_TEXT = "I will use the data with care."

#: Per scenario, members whose acknowledgements are not all current: user -> project -> `never`
#: (nothing acknowledged there), `old` (OLD_TEXT instead of each current text), `elsewhere` (the
#: current texts, acknowledged in another project that has the same purpose) or `partial` (only
#: the first purpose of the project that has a text).
LAPSES: dict[str, dict[str, dict[str, str]]] = {
    "payments": {"chris": {"fraud_q4": "never"}, "bob": {"fraud_q4": "old"}},
    "edge": {
        "bob": {"p1": "old"},
        "carol": {"p3": "elsewhere"},
        "x'y\\z": {"p'2 ${spark.app.name}": "partial"},
    },
}


@dataclass(frozen=True)
class Scenario:
    name: str
    program: model.Program
    contexts: tuple[Context, ...]
    rows: Mapping[model.TableKey, tuple[dict[str, object], ...]]


@dataclass(frozen=True)
class Expected:
    visible: bool
    cells: dict[str, object]  # masked column -> shown value


def check_text(text: str, name: str = "edge.veil") -> model.Program:
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, name).write_text(text, encoding="utf-8")
        checked = check([tmp])
    assert checked.program is not None, [f"{d.code} {d.message}" for d in checked.diagnostics]
    return checked.program


def approve_all(
    program: model.Program, keep_pending: frozenset[str] = frozenset()
) -> model.Program:
    """Every project purpose approved (as if `veil approve` had run), except `keep_pending`."""
    projects = tuple(
        p
        if p.name in keep_pending
        else dataclasses.replace(
            p,
            purposes=tuple(
                dataclasses.replace(
                    pp,
                    state=model.PurposeState.APPROVED,
                    approved_by="dan",
                    approved_at="2026-11-20T10:00:00Z",
                )
                for pp in p.purposes
            ),
        )
        for p in program.projects
    )
    return dataclasses.replace(program, projects=projects)


def acknowledged(
    program: model.Program, user: str, lapses: Mapping[str, str] | None = None
) -> frozenset[tuple[str, str, str]]:
    """(project, purpose, text) that `user` acknowledged: the current text of every purpose of
    their projects that has one, except the projects in `lapses` (see LAPSES)."""
    out = set()
    for project in program.projects:
        if user not in project.members:
            continue
        lapse = (lapses or {}).get(project.name)
        for pp in project.purposes:
            info = program.purpose(pp.purpose)
            text = info.acknowledgement if info else None
            if text is None or lapse == "never":
                continue
            if lapse == "partial":
                out.add((project.name, pp.purpose, text))
                break
            if lapse == "old":
                out.add((project.name, pp.purpose, OLD_TEXT))
            elif lapse == "elsewhere":
                other = next(
                    q.name
                    for q in program.projects
                    if q.name != project.name and any(x.purpose == pp.purpose for x in q.purposes)
                )
                out.add((other, pp.purpose, text))
            else:
                assert lapse is None, lapse
                out.add((project.name, pp.purpose, text))
    return frozenset(out)


def contexts(
    program: model.Program, now: dt.datetime, lapses: Mapping[str, Mapping[str, str]] | None = None
) -> tuple[Context, ...]:
    users = [u.name for u in program.users] + [UNDECLARED_USER]
    projects: list[str | None] = [None, *(p.name for p in program.projects), UNKNOWN_PROJECT]
    done = {u: acknowledged(program, u, (lapses or {}).get(u)) for u in users}
    return tuple(
        Context(user=u, project=p, now=now, acknowledged=done[u]) for u in users for p in projects
    )


def acknowledgement_rows(scenario: Scenario) -> list[tuple[str, str, str, str]]:
    """(principal, project, purpose, text): what the users of the scenario's contexts
    acknowledged, as the acknowledgement table holds it."""
    return sorted({(c.user, *done) for c in scenario.contexts for done in c.acknowledged or ()})


def lapsed(scenario: Scenario) -> list[Context]:
    """The contexts of a member in a project of LAPSES (no purpose for want of acknowledgement)."""
    lapses = LAPSES.get(scenario.name, {})
    return [c for c in scenario.contexts if c.project in lapses.get(c.user, {})]


# -------------------------------------------------------------------------------------------------
# Sample rows


def _strings(program: model.Program) -> list[str]:
    literals = [lit.value for lit in _find(program, ir.Literal) if isinstance(lit.value, str)]
    people = [u.name for u in program.users] + [UNDECLARED_USER]
    values = [v for u in program.users for _, vs in u.attributes for v in vs]
    groups = [g for u in program.users for g in u.groups]
    fixed = [
        None,
        "",
        "EMEA",
        "x.y@Example.com",
        "@",
        "a@b@c",
        "no-at",
        "+4930123456",
        "4111111111111111",
        "abc-123 and xyz-9",
        "é漢😀",
        "ab",
        "O'Brien\"; --",
        "a\\b",
    ]
    out: list[str] = []
    for s in [*fixed, *literals, *people, *values, *groups]:
        if s not in out:
            out.append(s)  # type: ignore[arg-type]
    return out


def _find(node: object, cls: type) -> list[object]:
    from veil.targets.lookup import find_nodes

    return list(find_nodes(node, cls))


def _samples(program: model.Program, col: model.CatalogColumn, now: dt.datetime) -> list[object]:
    ty = col.type
    utc = dt.UTC
    match ty.family:
        case model.Family.STRING:
            values = _strings(program)
            if ty.length is not None:
                values = [v if v is None else v[: ty.length] for v in values]
            return values
        case model.Family.INTEGER:
            return [None, 0, 1, -7, 12, 13, -12, -13, 250, 12345]
        case model.Family.DECIMAL:
            scale = ty.scale or 0
            raw = ["0", "12.34", "149.875", "150.125", "-150.125", "0.375", "-0.125", "99.99"]
            return [None, *(Decimal(r).quantize(Decimal(1).scaleb(-scale)) for r in raw)]
        case model.Family.FLOAT:
            return [None, 0.0, 1.0, -1.0, 3.0, 5.5, -5.0, 149.75, 1.0e6]
        case model.Family.BOOLEAN:
            return [None, True, False]
        case model.Family.DATE:
            return [
                None,
                dt.date(2024, 2, 29),
                dt.date(2023, 12, 31),
                dt.date(2024, 5, 17),
                dt.date(2024, 1, 1),
            ]
        case model.Family.TIMESTAMP if ty.name == "timestamptz":
            return [
                None,
                dt.datetime(2024, 5, 17, 3, 4, 5, tzinfo=utc),
                dt.datetime(2024, 1, 1, 1, 30, tzinfo=dt.timezone(dt.timedelta(hours=2))),
                (now - dt.timedelta(days=10)).replace(microsecond=0),
            ]
        case model.Family.TIMESTAMP:
            naive = now.astimezone(utc).replace(tzinfo=None, microsecond=0)
            return [
                None,
                naive - dt.timedelta(days=10),
                naive - dt.timedelta(days=800),
                dt.datetime(2024, 5, 17, 3, 4, 5),
                naive - dt.timedelta(days=200, hours=5),
            ]
        case _:
            return [None]


def sample_rows(
    program: model.Program, table: model.CatalogTable, now: dt.datetime
) -> tuple[dict[str, object], ...]:
    """Rows that mix every column's sample values (each column cycles at its own pace)."""
    samples = {c.name: _samples(program, c, now) for c in table.columns}
    count = max(len(v) for v in samples.values()) * 2
    primes = (1, 2, 3, 5, 7, 11, 13, 17, 19, 23, 29, 31, 37, 41, 43, 47)
    paces = {}
    for j, c in enumerate(table.columns):  # a pace coprime with the column's sample count
        n = len(samples[c.name])  # visits every sample of the column
        paces[c.name] = [p for p in primes if math.gcd(p, n) == 1][j % 4]
    rows = []
    for i in range(count):
        rows.append(
            {
                c.name: samples[c.name][(i * paces[c.name] + j) % len(samples[c.name])]
                for j, c in enumerate(table.columns)
            }
        )
    return tuple(rows)


# -------------------------------------------------------------------------------------------------
# Scenarios


def payments(now: dt.datetime) -> Scenario:
    checked = check([PAYMENTS])
    assert checked.program is not None
    program = checked.program
    rows = {tb.key: sample_rows(program, tb, now) for tb in program.protected_tables}
    return Scenario("payments", program, contexts(program, now, LAPSES["payments"]), rows)


def edge(now: dt.datetime) -> Scenario:
    program = approve_all(check_text(EDGE_VEIL), PENDING_PROJECTS)
    rows = {tb.key: sample_rows(program, tb, now) for tb in program.protected_tables}
    return Scenario("edge", program, contexts(program, now, LAPSES["edge"]), rows)


#: Two tables whose parts joined by `.` read the same (`a.b.c`), each the source of its own
#: project: a purpose check or `hash` that confused them would show one table's clear values
#: under the other's project, or join their pseudonyms.
DOTTED_VEIL = r"""
table `a.b`.c {
  id    bigint
  phone varchar(64) tags contact.phone
}
table a.`b.c` {
  id    bigint
  phone varchar(64) tags contact.phone
}

purpose Support

user ann
user bob

project one {
  purposes Support
  members ann
  sources `a.b`.c
}
project two {
  purposes Support
  members bob
  sources a.`b.c`
}

mask tagged contact with hash unless purpose Support
"""


def dotted(now: dt.datetime) -> Scenario:
    program = approve_all(check_text(DOTTED_VEIL, "dotted.veil"))
    rows = {tb.key: sample_rows(program, tb, now) for tb in program.protected_tables}
    return Scenario("dotted", program, contexts(program, now), rows)


CASES = ROOT / "tests" / "cases"


def case(name: str, now: dt.datetime) -> Scenario:
    """A golden case of tests/cases (its approvals as written)."""
    checked = check([CASES / name])
    assert checked.program is not None
    program = checked.program
    rows = {tb.key: sample_rows(program, tb, now) for tb in program.protected_tables}
    return Scenario(f"case {name}", program, contexts(program, now), rows)


def build(name: str, now: dt.datetime) -> Scenario:
    """`payments`, `edge`, `dotted`, or `case:<directory of tests/cases>`."""
    if name.startswith("case:"):
        return case(name.removeprefix("case:"), now)
    scenario: Scenario = globals()[name](now)
    return scenario


def golden_cases() -> list[str]:
    """The golden cases that compile (a case with errors has no script)."""
    return [
        f"case:{p.name}"
        for p in sorted(CASES.iterdir())
        if p.is_dir() and p.name[0] != "_" and check([p]).program is not None
    ]


def expected(
    program: model.Program, key: model.TableKey, rows: tuple[dict[str, object], ...], ctx: Context
) -> list[Expected]:
    table = program.table(key)
    assert table is not None
    out = []
    for row in rows:
        values = coerce_row(table, row)
        cells = {
            m.column: mask_value(program, m, row.get(m.column), values, ctx).value
            for m in program.masks_of(key)
        }
        out.append(Expected(visible_row(program, key, row, ctx).visible, cells))
    return out


# -------------------------------------------------------------------------------------------------
# Comparing engine values with the evaluator's


def same(engine: object, reference: object) -> bool:
    """Equal as SQL values: numbers by value, instants by instant (a naive value is UTC)."""
    if engine is None or reference is None:
        return engine is None and reference is None
    if isinstance(reference, bool) or isinstance(engine, bool):
        return engine is reference
    if isinstance(reference, int | Decimal | float) and isinstance(engine, int | Decimal | float):
        if isinstance(reference, float) or isinstance(engine, float):
            return math.isclose(float(engine), float(reference), rel_tol=1e-12, abs_tol=1e-12)
        return Decimal(engine) == Decimal(reference)
    if isinstance(reference, dt.datetime) and isinstance(engine, dt.datetime):
        return _utc(engine) == _utc(reference)
    if isinstance(reference, dt.date) and isinstance(engine, dt.date):
        return not isinstance(engine, dt.datetime) and engine == reference
    return engine == reference


def _utc(value: dt.datetime) -> dt.datetime:
    if value.tzinfo is None:
        return value.replace(tzinfo=dt.UTC)
    return value.astimezone(dt.UTC)


def mismatches(
    scenario: Scenario,
    key: model.TableKey,
    ctx: Context,
    visible: list[object],
    cells: Mapping[str, list[object]],
) -> Iterator[str]:
    """Every cell and row where the engine (`visible`, `cells`) and the evaluator disagree."""
    rows = scenario.rows[key]
    for i, exp in enumerate(expected(scenario.program, key, rows, ctx)):
        where = f"{scenario.name} {model.table_str(key)} row {i} as {ctx.user!r} in {ctx.project!r}"
        if (visible[i] is True) != exp.visible:
            yield f"{where}: visible {visible[i]!r}, evaluator {exp.visible!r} ({rows[i]})"
        for column, want in exp.cells.items():
            got = cells[column][i]
            if not same(got, want):
                yield f"{where}: {column} = {got!r}, evaluator {want!r} (clear {rows[i][column]!r})"
