"""Hand-built checked Programs and IR shorthands for the evaluator and explain tests."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from veil import ir, methods, model
from veil.diagnostics import Span
from veil.evaluator import Context

NOW = dt.datetime(2024, 3, 31, 12, 30, tzinfo=dt.UTC)
TX: model.TableKey = ("sales", "transactions")
SURVEY: model.TableKey = ("hr", "survey")
OPEN: model.TableKey = ("ref", "countries")


def span(line: int, file: str = "policies.veil") -> Span:
    return Span(file=file, line=line, col=1, end_line=line, end_col=2)


def T(name: str, **kw: int) -> model.SqlType:
    return model.SqlType(name=name, **kw)


def col(name: str) -> ir.ColumnRef:
    return ir.ColumnRef(name=ir.ObjectName(parts=(name,)))


def lit(value: ir.LiteralValue) -> ir.Literal:
    return ir.Literal(value=value)


def purpose(name: str) -> ir.PurposeIs:
    return ir.PurposeIs(purpose=ir.Name(value=name))


def group(name: str) -> ir.InGroup:
    return ir.InGroup(group=ir.Name(value=name))


def cmp(op: ir.CompareOp, left: ir.Expr, right: ir.Expr) -> ir.Compare:
    return ir.Compare(op=op, left=left, right=right)


def ctx(user: str = "alice", project: str | None = None, now: dt.datetime = NOW) -> Context:
    return Context(user=user, project=project, now=now)


def pp(
    name: str,
    state: model.PurposeState = model.PurposeState.APPROVED,
    changes: tuple[str, ...] = (),
) -> model.ProjectPurpose:
    return model.ProjectPurpose(purpose=name, state=state, changes=changes)


TX_TABLE = model.CatalogTable(
    key=TX,
    columns=(
        model.CatalogColumn(name="id", type=T("bigint")),
        model.CatalogColumn(name="credit_card", type=T("varchar", length=19)),
        model.CatalogColumn(name="email", type=T("varchar")),
        model.CatalogColumn(name="amount", type=T("decimal", precision=12, scale=2)),
        model.CatalogColumn(name="region", type=T("varchar")),
        model.CatalogColumn(name="created_at", type=T("timestamp")),
        model.CatalogColumn(name="notes", type=T("text")),
    ),
)
SURVEY_TABLE = model.CatalogTable(
    key=SURVEY,
    columns=(
        model.CatalogColumn(name="id", type=T("integer")),
        model.CatalogColumn(name="answer", type=T("text")),
    ),
)
OPEN_TABLE = model.CatalogTable(
    key=OPEN, columns=(model.CatalogColumn(name="code", type=T("char", length=2)),)
)

USERS = (
    model.UserInfo(
        name="alice",
        groups=("analysts",),
        attributes=(("department", ("Risk",)), ("region", ("EMEA", "APAC"))),
    ),
    model.UserInfo(name="bob", groups=("stewards",)),
    model.UserInfo(name="carol"),
)

PROJECTS = (
    model.ProjectInfo(
        name="chargebacks",
        purposes=(pp("Fraud Detection.Chargebacks"),),
        members=("alice",),
        sources=(TX,),
    ),
    model.ProjectInfo(
        name="fraud_q4", purposes=(pp("Fraud Detection"),), members=("alice", "bob"), sources=(TX,)
    ),
    model.ProjectInfo(
        name="mixed",
        purposes=(pp("Audit"), pp("Marketing", model.PurposeState.PENDING)),
        members=("alice",),
        sources=(TX, SURVEY),
    ),
    model.ProjectInfo(
        name="pending_p",
        purposes=(pp("Fraud Detection", model.PurposeState.PENDING),),
        members=("alice",),
        sources=(TX,),
    ),
    model.ProjectInfo(
        name="revoked_p",
        purposes=(pp("Fraud Detection", model.PurposeState.REVOKED),),
        members=("alice",),
        sources=(TX,),
    ),
    model.ProjectInfo(
        name="stale_p",
        purposes=(
            pp("Fraud Detection", model.PurposeState.STALE, ("members changed: added `bob`",)),
        ),
        members=("alice", "bob"),
        sources=(TX,),
    ),
)

PURPOSES = tuple(
    model.PurposeInfo(name=n)
    for n in ("Audit", "Fraud Detection", "Fraud Detection.Chargebacks", "Marketing")
)


def program(
    masks: tuple[model.ColumnMask, ...] = (), rules: tuple[model.RowRule, ...] = ()
) -> model.Program:
    return model.Program(
        tables=(SURVEY_TABLE, OPEN_TABLE, TX_TABLE),
        purposes=PURPOSES,
        groups=("analysts", "stewards"),
        users=USERS,
        projects=PROJECTS,
        masks=masks,
        row_rules=rules,
    )


def unless(
    table: model.TableKey,
    column: str,
    action: methods.MaskAction,
    cond: ir.Condition,
    *,
    when: ir.Expr | None = None,
    line: int = 1,
) -> model.ColumnMask:
    """`mask table.column with action unless cond` as the checker lowers it."""
    tb = {TX: TX_TABLE, SURVEY: SURVEY_TABLE}[table]
    column_type = next(c.type for c in tb.columns if c.name == column)
    return model.ColumnMask(
        table=table,
        column=column,
        type=column_type,
        when=when,
        arms=(
            model.MaskArm(action=None, cond=cond, span=span(line)),
            model.MaskArm(action=action, cond=None, span=span(line)),
        ),
        policies=(span(line),),
    )


def always(
    table: model.TableKey,
    column: str,
    action: methods.MaskAction,
    *,
    when: ir.Expr | None = None,
    line: int = 1,
) -> model.ColumnMask:
    tb = {TX: TX_TABLE, SURVEY: SURVEY_TABLE}[table]
    column_type = next(c.type for c in tb.columns if c.name == column)
    return model.ColumnMask(
        table=table,
        column=column,
        type=column_type,
        when=when,
        arms=(model.MaskArm(action=action, cond=None, span=span(line)),),
        policies=(span(line),),
    )


DEC = Decimal
