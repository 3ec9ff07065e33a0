"""Parse tree -> IR. Shape only: no name is resolved here (that is the checker's job).

`ToIR` has one method per grammar rule, called bottom-up by `parser.py` (the only module that
imports Lark) with the rule's position and its already-built children. Tokens and positions
are described here by what they offer, so this module never imports the parser library.
"""

from __future__ import annotations

import datetime as dt
import typing as t
from decimal import Decimal

from veil import ir
from veil.cache import keyword_maker, make_span
from veil.diagnostics import Diagnostic, Span, error

_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", "\\": "\\", '"': '"', "'": "'", "0": "\0"}


class Token(t.Protocol):
    """A token of the parse tree: a `str` with its terminal type and position."""

    type: str
    value: t.Any
    line: int | None
    column: int | None
    end_line: int | None
    end_column: int | None

    def __str__(self) -> str: ...


class Meta(t.Protocol):
    """The position of a rule: empty for a rule that matched nothing."""

    empty: bool
    line: int
    column: int
    end_line: int
    end_column: int


class TransformError(Exception):
    def __init__(self, diagnostic: Diagnostic) -> None:
        super().__init__(diagnostic.message)
        self.diagnostic = diagnostic


def unescape(raw: str, span: Span) -> str:
    """The value of a string literal (quotes included in `raw`)."""
    body = raw[1:-1]
    out: list[str] = []
    i = 0
    while i < len(body):
        c = body[i]
        if c != "\\":
            out.append(c)
            i += 1
            continue
        nxt = body[i + 1] if i + 1 < len(body) else ""
        if nxt in _ESCAPES:
            out.append(_ESCAPES[nxt])
            i += 2
        elif nxt == "u" and len(body) >= i + 6:
            try:
                out.append(chr(int(body[i + 2 : i + 6], 16)))
            except ValueError:
                raise TransformError(
                    error(
                        "P0004",
                        "invalid `\\u` escape in string",
                        span,
                        help="write \\u followed by four hex digits",
                    )
                ) from None
            i += 6
        else:
            raise TransformError(
                error(
                    "P0004",
                    f"unknown escape `\\{nxt}` in string",
                    span,
                    help="known escapes: \\n \\t \\r \\\\ \\\" \\' \\0 \\uXXXX",
                )
            )
    return "".join(out)


def _tok_span(path: str, tok: Token) -> Span:
    line = tok.line or 1
    col = tok.column or 1
    end_line = tok.end_line or line
    end_col = tok.end_column or col + len(str(tok))
    return make_span((path, line, col, end_line, end_col))


_T = t.TypeVar("_T")

# The IR nodes a catalog has most of, made at a third of their `__init__`'s cost.
_ObjectName = keyword_maker(ir.ObjectName)
_TagPath = keyword_maker(ir.TagPath)
_Name = keyword_maker(ir.Name)
_ColumnType = keyword_maker(ir.ColumnType)
_Column = keyword_maker(ir.Column)


class ToIR:
    """Builds IR nodes; collects reserved-word misuse as diagnostics."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.diagnostics: list[Diagnostic] = []

    # ------------------------------------------------------------ helpers
    def _span(self, meta: Meta) -> Span:
        if getattr(meta, "empty", True):
            return Span.point(self.path, 1, 1)
        return make_span((self.path, meta.line, meta.column, meta.end_line, meta.end_column))

    def _word(self, tok: Token) -> str:
        if tok.type == "NAME" and str(tok) in ir.KEYWORDS:
            self.diagnostics.append(
                error(
                    "P0003",
                    f"`{tok}` is a keyword and cannot be used in a name",
                    _tok_span(self.path, tok),
                    help=f'quote the name ("… {tok} …") or backquote the identifier (`{tok}`)',
                )
            )
        return str(tok)

    def _string(self, tok: Token) -> str:
        return unescape(str(tok), _tok_span(self.path, tok))

    # ------------------------------------------------------------ file
    def start(self, meta: Meta, *stmts: ir.Statement | list[ir.Group]) -> list[ir.Statement]:
        return flatten(list(stmts))

    # ------------------------------------------------------------ names
    def ident(self, meta: Meta, tok: Token) -> str:
        if tok.type == "QIDENT":
            return str(tok)[1:-1].replace("``", "`")
        return self._word(tok)

    def object_name(self, meta: Meta, *parts: str) -> ir.ObjectName:
        return _ObjectName(parts=tuple(parts), span=self._span(meta))

    def tag_path(self, meta: Meta, *parts: str) -> ir.TagPath:
        return _TagPath(parts=tuple(parts), span=self._span(meta))

    def tag_list(self, meta: Meta, *tags: ir.TagPath) -> tuple[ir.TagPath, ...]:
        return tags

    def object_list(self, meta: Meta, *names: ir.ObjectName) -> tuple[ir.ObjectName, ...]:
        return names

    def quoted_name(self, meta: Meta, tok: Token) -> ir.Name:
        return _Name(value=self._string(tok), span=self._span(meta))

    def bare_name(self, meta: Meta, *toks: Token) -> ir.Name:
        return _Name(value=" ".join(self._word(tk) for tk in toks), span=self._span(meta))

    def name_list(self, meta: Meta, *names: ir.Name) -> tuple[ir.Name, ...]:
        return names

    def string_list(self, meta: Meta, *toks: Token) -> tuple[str, ...]:
        return tuple(self._string(tk) for tk in toks)

    # ------------------------------------------------------------ catalog
    def type_spec(self, meta: Meta, name: Token, *params: Token | None) -> ir.ColumnType:
        return _ColumnType(
            name=str(name).lower(),
            params=tuple(int(str(p)) for p in params if p is not None),
            span=self._span(meta),
        )

    def column_decl(
        self, meta: Meta, name: str, type_: ir.ColumnType, tags: tuple[ir.TagPath, ...] | None
    ) -> ir.Column:
        return _Column(name=name, type=type_, tags=tags or (), span=self._span(meta))

    def table_stmt(self, meta: Meta, name: ir.ObjectName, *columns: ir.Column) -> ir.Table:
        return ir.Table(name=name, columns=columns, span=self._span(meta))

    def tag_stmt(self, meta: Meta, tags: tuple[ir.TagPath, ...], target: ir.ObjectName) -> ir.TagOn:
        return ir.TagOn(tags=tags, target=target, span=self._span(meta))

    # ------------------------------------------------------------ purposes, people, projects
    def description(self, meta: Meta, tok: Token) -> tuple[str, str]:
        return ("description", self._string(tok))

    def acknowledgement(self, meta: Meta, tok: Token) -> tuple[str, str]:
        return ("acknowledgement", self._string(tok))

    def purpose_stmt(self, meta: Meta, name: ir.Name, *items: tuple[str, str] | None) -> ir.Purpose:
        fields = dict(i for i in items if i is not None)
        return ir.Purpose(
            name=name,
            description=fields.get("description"),
            acknowledgement=fields.get("acknowledgement"),
            span=self._span(meta),
        )

    def group_stmt(self, meta: Meta, names: tuple[ir.Name, ...]) -> list[ir.Group]:
        return [ir.Group(name=n, span=n.span) for n in names]

    def user_groups(self, meta: Meta, names: tuple[ir.Name, ...]) -> tuple[str, object]:
        return ("groups", names)

    def user_attribute(self, meta: Meta, key: str, values: tuple[str, ...]) -> tuple[str, object]:
        return ("attribute", ir.Attribute(key=key, values=values, span=self._span(meta)))

    def user_stmt(self, meta: Meta, name: ir.Name, *items: tuple[str, t.Any] | None) -> ir.User:
        groups: list[ir.Name] = []
        attrs: list[ir.Attribute] = []
        for item in items:
            if item is None:
                continue
            kind, value = item
            if kind == "groups":
                groups.extend(value)
            else:
                attrs.append(value)
        return ir.User(
            name=name, groups=tuple(groups), attributes=tuple(attrs), span=self._span(meta)
        )

    def project_purposes(self, meta: Meta, names: tuple[ir.Name, ...]) -> tuple[str, object]:
        return ("purposes", names)

    def project_members(self, meta: Meta, names: tuple[ir.Name, ...]) -> tuple[str, object]:
        return ("members", names)

    def project_sources(self, meta: Meta, names: tuple[ir.ObjectName, ...]) -> tuple[str, object]:
        return ("sources", names)

    def project_documentation(self, meta: Meta, tok: Token) -> tuple[str, object]:
        return ("documentation", self._string(tok))

    def project_description(self, meta: Meta, tok: Token) -> tuple[str, object]:
        return ("description", self._string(tok))

    def project_stmt(
        self, meta: Meta, name: ir.Name, *items: tuple[str, t.Any] | None
    ) -> ir.Project:
        lists: dict[str, list[t.Any]] = {"purposes": [], "members": [], "sources": []}
        texts: dict[str, str] = {}
        for item in items:
            if item is None:
                continue
            kind, value = item
            if kind in lists:
                lists[kind].extend(value)
            else:
                texts[kind] = value
        return ir.Project(
            name=name,
            purposes=tuple(lists["purposes"]),
            members=tuple(lists["members"]),
            sources=tuple(lists["sources"]),
            documentation=texts.get("documentation"),
            description=texts.get("description"),
            span=self._span(meta),
        )

    def approvers_stmt(
        self, meta: Meta, names: tuple[ir.Name, ...], purpose: ir.Name | None
    ) -> ir.Approvers:
        return ir.Approvers(names=names, purpose=purpose, span=self._span(meta))

    def timestamp(self, meta: Meta, tok: Token) -> dt.datetime:
        raw = self._string(tok) if tok.type == "STRING" else str(tok)
        try:
            value = dt.datetime.fromisoformat(raw.replace("Z", "+00:00"))
        except ValueError:
            raise TransformError(
                error(
                    "P0005",
                    f"invalid timestamp `{raw}`",
                    _tok_span(self.path, tok),
                    help="write an ISO-8601 time such as 2026-11-20T10:00:00Z",
                )
            ) from None
        if value.tzinfo is None:
            value = value.replace(tzinfo=dt.UTC)
        return value.astimezone(dt.UTC)

    def record_purposes(self, meta: Meta, names: tuple[ir.Name, ...]) -> tuple[str, object]:
        return ("purposes", names)

    def record_members(self, meta: Meta, names: tuple[ir.Name, ...]) -> tuple[str, object]:
        return ("members", names)

    def record_sources(self, meta: Meta, names: tuple[ir.ObjectName, ...]) -> tuple[str, object]:
        return ("sources", names)

    def record_no_members(self, meta: Meta) -> tuple[str, object]:
        return ("members", ())

    def record_no_sources(self, meta: Meta) -> tuple[str, object]:
        return ("sources", ())

    def record_acknowledgement(
        self, meta: Meta, purpose: ir.Name, tok: Token
    ) -> tuple[str, object]:
        return (
            "acknowledgements",
            (ir.Acknowledged(purpose=purpose, text=self._string(tok), span=self._span(meta)),),
        )

    def approval_record(self, meta: Meta, *items: tuple[str, t.Any] | None) -> ir.ApprovalRecord:
        lists: dict[str, list[t.Any]] = {
            "purposes": [],
            "members": [],
            "sources": [],
            "acknowledgements": [],
        }
        for item in items:
            if item is not None:
                lists[item[0]].extend(item[1])
        return ir.ApprovalRecord(
            purposes=tuple(lists["purposes"]),
            members=tuple(lists["members"]),
            sources=tuple(lists["sources"]),
            acknowledgements=tuple(lists["acknowledgements"]),
            span=self._span(meta),
        )

    def approve_stmt(
        self,
        meta: Meta,
        project: ir.Name,
        purpose: ir.Name,
        by: ir.Name,
        at: dt.datetime,
        digest: Token,
        record: ir.ApprovalRecord | None,
    ) -> ir.Approve:
        return ir.Approve(
            project=project,
            purpose=purpose,
            by=by,
            at=at,
            digest=self._string(digest),
            record=record,
            span=self._span(meta),
        )

    def revoke_stmt(
        self, meta: Meta, project: ir.Name, purpose: ir.Name, by: ir.Name, at: dt.datetime
    ) -> ir.Revoke:
        return ir.Revoke(project=project, purpose=purpose, by=by, at=at, span=self._span(meta))

    # ------------------------------------------------------------ conditions
    def cond_or(self, meta: Meta, *items: ir.Condition) -> ir.Condition:
        return items[0] if len(items) == 1 else ir.CondOr(items=items, span=self._span(meta))

    def cond_and(self, meta: Meta, *items: ir.Condition) -> ir.Condition:
        return items[0] if len(items) == 1 else ir.CondAnd(items=items, span=self._span(meta))

    def cond_not(self, meta: Meta, item: ir.Condition) -> ir.Condition:
        return ir.CondNot(item=item, span=self._span(meta))

    def purpose_atom(self, meta: Meta, name: ir.Name) -> ir.Condition:
        return ir.PurposeIs(purpose=name, span=self._span(meta))

    def any_purpose(self, meta: Meta) -> ir.Condition:
        return ir.AnyPurpose(span=self._span(meta))

    def group_atom(self, meta: Meta, name: ir.Name) -> ir.Condition:
        return ir.InGroup(group=name, span=self._span(meta))

    def user_atom(self, meta: Meta, name: ir.Name) -> ir.Condition:
        return ir.IsUser(user=name, span=self._span(meta))

    def attribute_atom(self, meta: Meta, key: str, _eq: Token, value: Token) -> ir.Condition:
        return ir.HasAttribute(key=key, value=self._string(value), span=self._span(meta))

    # ------------------------------------------------------------ masks
    def tag_target(self, meta: Meta, tag: ir.TagPath) -> ir.MaskTarget:
        return ir.TagTarget(tag=tag, span=self._span(meta))

    def column_target(self, meta: Meta, name: ir.ObjectName) -> ir.MaskTarget:
        return ir.ColumnTarget(name=name, span=self._span(meta))

    def null_method(self, meta: Meta) -> ir.Method:
        return ir.Method(name="null", span=self._span(meta))

    def method(self, meta: Meta, name: Token, *args: ir.Literal | str | None) -> ir.Method:
        values = tuple(a.value if isinstance(a, ir.Literal) else a for a in args if a is not None)
        return ir.Method(name=str(name), args=values, span=self._span(meta))

    def word_arg(self, meta: Meta, tok: Token) -> str:
        return str(tok)

    def negative_arg(self, meta: Meta, _minus: Token, tok: Token) -> ir.Literal:
        value = -int(str(tok)) if tok.type == "INT" else -Decimal(str(tok))
        return ir.Literal(value=value, span=self._span(meta))

    def unless_cond(self, meta: Meta, cond: ir.Condition) -> tuple[str, ir.Condition]:
        return ("unless", cond)

    def for_cond(self, meta: Meta, cond: ir.Condition) -> tuple[str, ir.Condition]:
        return ("for", cond)

    def when_clause(self, meta: Meta, pred: ir.Expr) -> ir.Expr:
        return pred

    def clause_cond(self, meta: Meta, cond: ir.Condition) -> ir.Condition:
        return cond

    def otherwise(self, meta: Meta) -> None:
        return None

    def reveal_clause(self, meta: Meta, cond: ir.Condition | None) -> ir.MaskClause:
        return ir.MaskClause(method=None, cond=cond, span=self._span(meta))

    def with_clause(
        self, meta: Meta, method: ir.Method, cond: ir.Condition | None
    ) -> ir.MaskClause:
        return ir.MaskClause(method=method, cond=cond, span=self._span(meta))

    def mask_line(
        self,
        meta: Meta,
        target: ir.MaskTarget,
        method: ir.Method | None,
        when: ir.Expr | None,
        cond: tuple[str, ir.Condition] | None,
    ) -> ir.Mask:
        span = self._span(meta)
        m = method or ir.Method(name="null", span=target.span)
        clauses: tuple[ir.MaskClause, ...]
        if cond is None:
            clauses = (ir.MaskClause(method=m, cond=None, span=span),)
            form: ir.MaskForm = "always"
        elif cond[0] == "unless":
            clauses = (
                ir.MaskClause(method=None, cond=cond[1], span=cond[1].span),
                ir.MaskClause(method=m, cond=None, span=span),
            )
            form = "unless"
        else:
            clauses = (
                ir.MaskClause(method=m, cond=cond[1], span=cond[1].span),
                ir.MaskClause(method=None, cond=None, span=span),
            )
            form = "for"
        return ir.Mask(target=target, clauses=clauses, when=when, form=form, span=span)

    def mask_block(
        self,
        meta: Meta,
        target: ir.MaskTarget,
        when: ir.Expr | None,
        *clauses: ir.MaskClause | None,
    ) -> ir.Mask:
        return ir.Mask(
            target=target,
            clauses=tuple(c for c in clauses if c is not None),
            when=when,
            form="block",
            span=self._span(meta),
        )

    # ------------------------------------------------------------ rows
    def filter_stmt(
        self, meta: Meta, table: ir.ObjectName, where: ir.Expr, unless: ir.Condition | None
    ) -> ir.Filter:
        return ir.Filter(table=table, where=where, unless=unless, span=self._span(meta))

    def restrict_stmt(
        self, meta: Meta, table: ir.ObjectName, *rest: ir.Condition | None
    ) -> ir.Restrict:
        *to, unless = rest
        return ir.Restrict(
            table=table,
            to=tuple(c for c in to if c is not None),
            unless=unless,
            span=self._span(meta),
        )

    def pred_or(self, meta: Meta, *items: ir.Expr) -> ir.Expr:
        return items[0] if len(items) == 1 else ir.BoolOr(items=items, span=self._span(meta))

    def pred_and(self, meta: Meta, *items: ir.Expr) -> ir.Expr:
        return items[0] if len(items) == 1 else ir.BoolAnd(items=items, span=self._span(meta))

    def pred_not(self, meta: Meta, item: ir.Expr) -> ir.Expr:
        return ir.BoolNot(item=item, span=self._span(meta))

    def compare(self, meta: Meta, left: ir.Expr, op: Token, right: ir.Expr) -> ir.Expr:
        o = "!=" if str(op) == "<>" else str(op)
        return ir.Compare(op=t.cast(ir.CompareOp, o), left=left, right=right, span=self._span(meta))

    def _in(
        self, meta: Meta, item: ir.Expr, options: tuple[ir.Expr, ...] | ir.UserRef, negated: bool
    ) -> ir.Expr:
        if isinstance(options, ir.UserRef):
            return ir.InUser(item=item, ref=options, negated=negated, span=self._span(meta))
        return ir.InList(item=item, options=options, negated=negated, span=self._span(meta))

    def in_(self, meta: Meta, item: ir.Expr, options: t.Any) -> ir.Expr:
        return self._in(meta, item, options, False)

    def not_in(self, meta: Meta, item: ir.Expr, options: t.Any) -> ir.Expr:
        return self._in(meta, item, options, True)

    def value_list(self, meta: Meta, *items: ir.Expr) -> tuple[ir.Expr, ...]:
        return items

    def between(self, meta: Meta, item: ir.Expr, low: ir.Expr, high: ir.Expr) -> ir.Expr:
        return ir.Between(item=item, low=low, high=high, span=self._span(meta))

    def not_between(self, meta: Meta, item: ir.Expr, low: ir.Expr, high: ir.Expr) -> ir.Expr:
        return ir.Between(item=item, low=low, high=high, negated=True, span=self._span(meta))

    def is_null(self, meta: Meta, item: ir.Expr) -> ir.Expr:
        return ir.IsNull(item=item, span=self._span(meta))

    def is_not_null(self, meta: Meta, item: ir.Expr) -> ir.Expr:
        return ir.IsNull(item=item, negated=True, span=self._span(meta))

    def arith(self, meta: Meta, left: ir.Expr, op: Token, right: ir.Expr) -> ir.Expr:
        return ir.Arith(
            op="+" if str(op) == "+" else "-", left=left, right=right, span=self._span(meta)
        )

    def neg(self, meta: Meta, _minus: Token, item: ir.Expr) -> ir.Expr:
        if (
            isinstance(item, ir.Literal)
            and isinstance(item.value, int | Decimal)
            and not isinstance(item.value, bool)
        ):
            return ir.Literal(value=-item.value, span=self._span(meta))
        return ir.Neg(item=item, span=self._span(meta))

    def column_ref(self, meta: Meta, name: ir.ObjectName) -> ir.Expr:
        return ir.ColumnRef(name=name, span=self._span(meta))

    def user_ref(self, meta: Meta, tok: Token | None = None) -> ir.UserRef:
        return ir.UserRef(attr=str(tok) if tok is not None else "groups", span=self._span(meta))

    def now(self, meta: Meta) -> ir.Expr:
        return ir.Now(span=self._span(meta))

    def today(self, meta: Meta) -> ir.Expr:
        return ir.Today(span=self._span(meta))

    def interval(self, meta: Meta, amount: Token, unit: Token) -> ir.Expr:
        return ir.Interval(amount=int(str(amount)), unit=str(unit), span=self._span(meta))

    def string(self, meta: Meta, tok: Token) -> ir.Literal:
        return ir.Literal(value=self._string(tok), span=self._span(meta))

    def integer(self, meta: Meta, tok: Token) -> ir.Literal:
        return ir.Literal(value=int(str(tok)), span=self._span(meta))

    def decimal(self, meta: Meta, tok: Token) -> ir.Literal:
        return ir.Literal(value=Decimal(str(tok)), span=self._span(meta))

    def true(self, meta: Meta) -> ir.Literal:
        return ir.Literal(value=True, span=self._span(meta))

    def false(self, meta: Meta) -> ir.Literal:
        return ir.Literal(value=False, span=self._span(meta))

    def null(self, meta: Meta) -> ir.Literal:
        return ir.Literal(value=None, span=self._span(meta))

    # ------------------------------------------------------------ tests
    def test_as(
        self, meta: Meta, user: ir.Name, project: ir.Name | None
    ) -> tuple[str, ir.Name, ir.Name | None]:
        return ("as", user, project)

    def expect_clear(self, meta: Meta, column: ir.ObjectName) -> ir.Expectation:
        return ir.ExpectColumn(column=column, outcome="clear", span=self._span(meta))

    def expect_masked(
        self, meta: Meta, column: ir.ObjectName, method: ir.Method | None
    ) -> ir.Expectation:
        return ir.ExpectColumn(
            column=column, outcome="masked", method=method, span=self._span(meta)
        )

    def row_field(self, meta: Meta, column: str, value: ir.Literal) -> ir.RowField:
        return ir.RowField(column=column, value=value.value, span=self._span(meta))

    def negative_row_field(self, meta: Meta, column: str, _minus: Token, tok: Token) -> ir.RowField:
        value = -int(str(tok)) if tok.type == "INT" else -Decimal(str(tok))
        return ir.RowField(column=column, value=value, span=self._span(meta))

    def visible(self, meta: Meta) -> str:
        return "visible"

    def hidden(self, meta: Meta) -> str:
        return "hidden"

    def row(self, meta: Meta, *fields: ir.RowField) -> tuple[ir.RowField, ...]:
        return fields

    def expect_row(
        self, meta: Meta, table: ir.ObjectName, row: tuple[ir.RowField, ...], outcome: str
    ) -> ir.Expectation:
        return ir.ExpectRow(
            table=table,
            row=row,
            outcome=t.cast(t.Literal["visible", "hidden"], outcome),
            span=self._span(meta),
        )

    def cell_is(self, meta: Meta, value: ir.Literal) -> dict[str, t.Any]:
        return {"outcome": "is", "value": value.value}

    def cell_is_negative(self, meta: Meta, _minus: Token, tok: Token) -> dict[str, t.Any]:
        value = -int(str(tok)) if tok.type == "INT" else -Decimal(str(tok))
        return {"outcome": "is", "value": value}

    def cell_clear(self, meta: Meta) -> dict[str, t.Any]:
        return {"outcome": "clear"}

    def cell_masked(self, meta: Meta, method: ir.Method | None) -> dict[str, t.Any]:
        return {"outcome": "masked", "method": method}

    def expect_cell(
        self,
        meta: Meta,
        column: ir.ObjectName,
        row: tuple[ir.RowField, ...],
        outcome: dict[str, t.Any],
    ) -> ir.Expectation:
        return ir.ExpectCell(column=column, row=row, **outcome, span=self._span(meta))

    def test_stmt(self, meta: Meta, name: Token, *items: t.Any) -> ir.TestCase:
        user: ir.Name | None = None
        project: ir.Name | None = None
        expectations: list[ir.Expectation] = []
        for item in items:
            if item is None:
                continue
            if isinstance(item, tuple) and item[0] == "as":
                user, project = item[1], item[2]
            else:
                expectations.append(item)
        return ir.TestCase(
            name=self._string(name),
            user=user,
            project=project,
            expectations=tuple(expectations),
            span=self._span(meta),
        )


def flatten(stmts: list[t.Any]) -> list[ir.Statement]:
    out: list[ir.Statement] = []
    for s in stmts:
        if isinstance(s, list):
            out.extend(s)
        else:
            out.append(s)
    return out
