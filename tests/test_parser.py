"""The grammar and the transformer: every form of the language parses into the expected IR."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest

from veil import ir
from veil.diagnostics import Diagnostic
from veil.parser import parse_file


def parse(text: str) -> tuple[ir.Statement, ...]:
    f, diags = parse_file(text, "t.veil")
    assert diags == [], diags
    assert f is not None
    return f.statements


def one(text: str) -> ir.Statement:
    stmts = parse(text)
    assert len(stmts) == 1, stmts
    return stmts[0]


def fail(text: str) -> Diagnostic:
    f, diags = parse_file(text, "t.veil")
    assert f is None
    assert len(diags) == 1, diags
    return diags[0]


def N(v: str) -> ir.Name:
    return ir.Name(value=v)


def obj(*parts: str) -> ir.ObjectName:
    return ir.ObjectName(parts=parts)


def col(name: str) -> ir.ColumnRef:
    return ir.ColumnRef(name=obj(name))


def lit(v: ir.LiteralValue) -> ir.Literal:
    return ir.Literal(value=v)


FD = ir.PurposeIs(purpose=N("Fraud Detection"))


def test_the_one_line_sentence() -> None:
    assert one("mask credit_card unless purpose Fraud Detection") == ir.Mask(
        target=ir.ColumnTarget(name=obj("credit_card")),
        clauses=(
            ir.MaskClause(method=None, cond=FD),
            ir.MaskClause(method=ir.Method(name="null"), cond=None),
        ),
        form="unless",
    )


def test_bare_names_end_at_keywords_and_strings_are_the_same_name() -> None:
    bare = one("mask x with hash unless purpose Fraud Detection or group data stewards")
    quoted = one('mask x with hash unless purpose "Fraud Detection" or group "data stewards"')
    assert bare == quoted
    assert isinstance(bare, ir.Mask)
    assert bare.clauses[0].cond == ir.CondOr(items=(FD, ir.InGroup(group=N("data stewards"))))


def test_and_binds_tighter_than_or_and_not_nests() -> None:
    m = one("mask x for group a or group b and not user c")
    assert isinstance(m, ir.Mask)
    assert m.form == "for"
    assert m.clauses == (
        ir.MaskClause(
            method=ir.Method(name="null"),
            cond=ir.CondOr(
                items=(
                    ir.InGroup(group=N("a")),
                    ir.CondAnd(
                        items=(ir.InGroup(group=N("b")), ir.CondNot(item=ir.IsUser(user=N("c"))))
                    ),
                )
            ),
        ),
        ir.MaskClause(method=None, cond=None),
    )


def test_backquoted_identifiers_and_doubled_backquotes() -> None:
    m = one("mask sales.`Order Lines`.`unit ``price``` with round(10)")
    assert isinstance(m, ir.Mask)
    assert m.target == ir.ColumnTarget(name=obj("sales", "Order Lines", "unit `price`"))
    assert m.clauses == (ir.MaskClause(method=ir.Method(name="round", args=(10,)), cond=None),)
    assert m.form == "always"


def test_catalog_table_and_tag_on() -> None:
    stmts = parse("""
table sales.transactions {
  id           bigint
  credit_card  varchar(19)    tags pii.card
  email        varchar        tags pii.email, contact
  amount       decimal(12,2)
}
tag pii.card on payments.cards.pan        # a tag added outside the table block
""")
    assert stmts == (
        ir.Table(
            name=obj("sales", "transactions"),
            columns=(
                ir.Column(name="id", type=ir.ColumnType(name="bigint")),
                ir.Column(
                    name="credit_card",
                    type=ir.ColumnType(name="varchar", params=(19,)),
                    tags=(ir.TagPath(parts=("pii", "card")),),
                ),
                ir.Column(
                    name="email",
                    type=ir.ColumnType(name="varchar"),
                    tags=(ir.TagPath(parts=("pii", "email")), ir.TagPath(parts=("contact",))),
                ),
                ir.Column(name="amount", type=ir.ColumnType(name="decimal", params=(12, 2))),
            ),
        ),
        ir.TagOn(tags=(ir.TagPath(parts=("pii", "card")),), target=obj("payments", "cards", "pan")),
    )


def test_purposes_groups_users_projects_approvers() -> None:
    stmts = parse("""
purpose "Fraud Detection" {
  description "Investigate suspicious card activity"
  acknowledgement "I will use card data only to investigate fraud."
}
purpose "Fraud Detection.Chargebacks"            # a sub-purpose
group analysts
user alice { groups analysts; region "EMEA", "APAC"; department "Risk" }
project fraud_q4 {
  purposes "Fraud Detection"
  members  alice, bob
  sources  sales.transactions
  documentation "Card fraud investigations for Q4."
}
approvers carol, dan
approvers erin for purpose Fraud Detection
""")
    assert stmts == (
        ir.Purpose(
            name=N("Fraud Detection"),
            description="Investigate suspicious card activity",
            acknowledgement="I will use card data only to investigate fraud.",
        ),
        ir.Purpose(name=N("Fraud Detection.Chargebacks")),
        ir.Group(name=N("analysts")),
        ir.User(
            name=N("alice"),
            groups=(N("analysts"),),
            attributes=(
                ir.Attribute(key="region", values=("EMEA", "APAC")),
                ir.Attribute(key="department", values=("Risk",)),
            ),
        ),
        ir.Project(
            name=N("fraud_q4"),
            purposes=(N("Fraud Detection"),),
            members=(N("alice"), N("bob")),
            sources=(obj("sales", "transactions"),),
            documentation="Card fraud investigations for Q4.",
        ),
        ir.Approvers(names=(N("carol"), N("dan"))),
        ir.Approvers(names=(N("erin"),), purpose=N("Fraud Detection")),
    )


def test_approve_line_with_record_and_revoke() -> None:
    stmts = parse("""
approve fraud_q4 purpose "Fraud Detection" by carol at 2026-11-20T10:00:00Z digest "sha256:ab" {
  purposes "Fraud Detection"
  members alice, bob
  sources sales.transactions
  acknowledgement "Fraud Detection" "I will."
}
revoke fraud_q4 purpose Fraud Detection by carol at 2026-11-21T09:30:00+01:00
""")
    at = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)
    assert stmts[0] == ir.Approve(
        project=N("fraud_q4"),
        purpose=N("Fraud Detection"),
        by=N("carol"),
        at=at,
        digest="sha256:ab",
        record=ir.ApprovalRecord(
            purposes=(N("Fraud Detection"),),
            members=(N("alice"), N("bob")),
            sources=(obj("sales", "transactions"),),
            acknowledgements=(ir.Acknowledged(purpose=N("Fraud Detection"), text="I will."),),
        ),
    )
    assert stmts[1] == ir.Revoke(
        project=N("fraud_q4"),
        purpose=N("Fraud Detection"),
        by=N("carol"),
        at=dt.datetime(2026, 11, 21, 8, 30, tzinfo=dt.UTC),
    )


@pytest.mark.parametrize(
    ("text", "method"),
    [
        ("mask tagged pii with null", ir.Method(name="null")),
        ("mask tagged pii.card with show_last(4)", ir.Method(name="show_last", args=(4,))),
        ('mask x with constant("REDACTED")', ir.Method(name="constant", args=("REDACTED",))),
        ("mask x with constant(-1.5)", ir.Method(name="constant", args=(Decimal("-1.5"),))),
        ("mask x with truncate(month)", ir.Method(name="truncate", args=("month",))),
        ('mask x with regex("[0-9]", "#")', ir.Method(name="regex", args=("[0-9]", "#"))),
        ("mask x with email_domain", ir.Method(name="email_domain")),
    ],
)
def test_methods(text: str, method: ir.Method) -> None:
    m = one(text)
    assert isinstance(m, ir.Mask)
    assert m.clauses == (ir.MaskClause(method=method, cond=None),)


def test_tagged_target_and_cell_masking() -> None:
    m = one('mask notes with constant("REDACTED") when region = "EU" unless purpose "GDPR Review"')
    assert isinstance(m, ir.Mask)
    assert m.when == ir.Compare(op="=", left=col("region"), right=lit("EU"))
    assert m.form == "unless"
    t = one("mask tagged pii.card with hash")
    assert isinstance(t, ir.Mask)
    assert t.target == ir.TagTarget(tag=ir.TagPath(parts=("pii", "card")))


def test_block_form_first_match_wins() -> None:
    m = one("""mask email {
  reveal      for purpose "Support"
  with hash   for purpose "Marketing" or group marketing
  with null   otherwise
}""")
    assert m == ir.Mask(
        target=ir.ColumnTarget(name=obj("email")),
        form="block",
        clauses=(
            ir.MaskClause(method=None, cond=ir.PurposeIs(purpose=N("Support"))),
            ir.MaskClause(
                method=ir.Method(name="hash"),
                cond=ir.CondOr(
                    items=(ir.PurposeIs(purpose=N("Marketing")), ir.InGroup(group=N("marketing")))
                ),
            ),
            ir.MaskClause(method=ir.Method(name="null"), cond=None),
        ),
    )


def test_filters() -> None:
    f1, f2 = parse("""
filter sales.transactions where region in user.region unless purpose "Fraud Detection"
filter sales.transactions where created_at >= now() - 90 days unless group auditors
""")
    assert f1 == ir.Filter(
        table=obj("sales", "transactions"),
        where=ir.InUser(item=col("region"), ref=ir.UserRef(attr="region")),
        unless=FD,
    )
    assert f2 == ir.Filter(
        table=obj("sales", "transactions"),
        where=ir.Compare(
            op=">=",
            left=col("created_at"),
            right=ir.Arith(op="-", left=ir.Now(), right=ir.Interval(amount=90, unit="days")),
        ),
        unless=ir.InGroup(group=N("auditors")),
    )


def test_predicates_all_forms_and_parentheses_span_lines() -> None:
    f = one("""filter t where (a = 1 or
      b between 2 and 3) and c is not null and d not in ('x', 'y') \\
      and e is null and not f <> -2 and g in (1, 2) and h not between 0 and 1 \\
      and owner = user.name and 'ops' not in user.groups and day < today()""")
    assert isinstance(f, ir.Filter)
    assert f.where == ir.BoolAnd(
        items=(
            ir.BoolOr(
                items=(
                    ir.Compare(op="=", left=col("a"), right=lit(1)),
                    ir.Between(item=col("b"), low=lit(2), high=lit(3)),
                )
            ),
            ir.IsNull(item=col("c"), negated=True),
            ir.InList(item=col("d"), options=(lit("x"), lit("y")), negated=True),
            ir.IsNull(item=col("e")),
            ir.BoolNot(item=ir.Compare(op="!=", left=col("f"), right=lit(-2))),
            ir.InList(item=col("g"), options=(lit(1), lit(2))),
            ir.Between(item=col("h"), low=lit(0), high=lit(1), negated=True),
            ir.Compare(op="=", left=col("owner"), right=ir.UserRef(attr="name")),
            ir.InUser(item=lit("ops"), ref=ir.UserRef(attr="groups"), negated=True),
            ir.Compare(op="<", left=col("day"), right=ir.Today()),
        )
    )


def test_restrict_forms() -> None:
    r1, r2, r3 = parse("""
restrict sales.transactions to purpose "Fraud Detection", purpose "Audit"
restrict hr.survey to any purpose
restrict hr.survey to purpose "Employee Retention" unless group hr_admins
""")
    assert r1 == ir.Restrict(
        table=obj("sales", "transactions"), to=(FD, ir.PurposeIs(purpose=N("Audit")))
    )
    assert r2 == ir.Restrict(table=obj("hr", "survey"), to=(ir.AnyPurpose(),))
    assert r3 == ir.Restrict(
        table=obj("hr", "survey"),
        to=(ir.PurposeIs(purpose=N("Employee Retention")),),
        unless=ir.InGroup(group=N("hr_admins")),
    )


def test_attribute_condition_and_strings_with_escapes() -> None:
    m = one(r"""mask x unless attribute department = 'R\'s "D"\n\u00e9'""")
    assert isinstance(m, ir.Mask)
    assert m.clauses[0].cond == ir.HasAttribute(key="department", value='R\'s "D"\né')


def test_test_blocks() -> None:
    t = one("""test "fraud analysts see card numbers in their project" {
  as alice in project fraud_q4
  expect sales.transactions.credit_card clear
  expect sales.transactions.email masked with hash
  expect sales.transactions.notes masked
  expect sales.transactions row { region: "LATAM", amount: 10.5 } hidden
}""")
    assert t == ir.TestCase(
        name="fraud analysts see card numbers in their project",
        user=N("alice"),
        project=N("fraud_q4"),
        expectations=(
            ir.ExpectColumn(column=obj("sales", "transactions", "credit_card"), outcome="clear"),
            ir.ExpectColumn(
                column=obj("sales", "transactions", "email"),
                outcome="masked",
                method=ir.Method(name="hash"),
            ),
            ir.ExpectColumn(column=obj("sales", "transactions", "notes"), outcome="masked"),
            ir.ExpectRow(
                table=obj("sales", "transactions"),
                outcome="hidden",
                row=(
                    ir.RowField(column="region", value="LATAM"),
                    ir.RowField(column="amount", value=Decimal("10.5")),
                ),
            ),
        ),
    )


def test_semicolons_comments_blank_lines_and_no_final_newline() -> None:
    stmts = parse("# header\n\n group a ; group b   # trailing\n\n\ngroup c")
    assert [s.name.value for s in stmts if isinstance(s, ir.Group)] == ["a", "b", "c"]


def test_spans_point_at_the_source() -> None:
    m = one("\n  mask credit_card unless purpose Fraud Detection")
    assert isinstance(m, ir.Mask)
    assert (m.span.line, m.span.col) == (2, 3)
    cond = m.clauses[0].cond
    assert isinstance(cond, ir.PurposeIs)
    assert (cond.purpose.span.line, cond.purpose.span.col, cond.purpose.span.end_col) == (2, 35, 50)


# ------------------------------------------------------------------------ syntax errors


def test_keyword_inside_bare_name_is_reported_with_a_hint() -> None:
    d = fail("mask x unless purpose Fraud in Detection")
    assert (d.code, d.message, d.span.line, d.span.col) == ("P0001", "unexpected `in`", 1, 29)
    assert d.help is not None and "must be quoted" in d.help


def test_keyword_as_a_name_is_reserved() -> None:
    d = fail("purpose Fraud table x")
    assert (d.code, d.span.col) == ("P0003", 15)
    assert "`table` is a keyword" in d.message


def test_missing_name_after_purpose() -> None:
    d = fail("mask x unless purpose\n")
    assert (d.code, d.message, d.span.line, d.span.col) == (
        "P0001",
        "unexpected end of line",
        1,
        22,
    )
    assert d.help is not None and "a name" in d.help


def test_unterminated_string_and_unknown_character() -> None:
    assert fail('mask x with hash unless purpose "abc').code == "P0002"
    d = fail("mask x with hash unless purpose ab%c")
    assert (d.code, d.message, d.span.col) == ("P0001", "unexpected character `%`", 35)


def test_bad_escape_and_bad_timestamp() -> None:
    assert fail(r'purpose "a\qb"').code == "P0004"
    d = fail('revoke p purpose q by r at "yesterday"')
    assert (d.code, d.message) == ("P0005", "invalid timestamp `yesterday`")


def test_unclosed_block_reports_end_of_file() -> None:
    d = fail("table t {\n  a integer\n")
    assert d.code == "P0001"
    assert "end of file" in d.message


def test_lists_continue_after_a_comma_and_backslash_takes_a_comment() -> None:
    p = one("project p {\n  members alice,\n          bob\n  sources a.b, \\ # more\n c.d\n}")
    assert isinstance(p, ir.Project)
    assert p.members == (N("alice"), N("bob"))
    assert p.sources == (obj("a", "b"), obj("c", "d"))


def test_negative_numbers_in_test_rows() -> None:
    t = one('test "t" {\n expect a.b row { x: -1, y: -2.5 } visible\n}')
    assert isinstance(t, ir.TestCase)
    row = t.expectations[0]
    assert isinstance(row, ir.ExpectRow)
    assert [f.value for f in row.row] == [-1, Decimal("-2.5")]


def test_cell_expectations() -> None:
    t = one(
        'test "t" {\n'
        ' expect a.b.c in row { x: 1, y: "ONC" } is "555"\n'
        " expect c in row { x: -1 } is -2.5\n"
        " expect a.b.c in row { x: null } is null\n"
        " expect a.b.c in row { x: true } clear\n"
        " expect a.b.c in row { x: 1 } masked with show_last(4)\n"
        " expect a.b.c in row { x: 1 } masked\n"
        "}"
    )
    assert isinstance(t, ir.TestCase)
    row = (ir.RowField(column="x", value=1),)
    abc = obj("a", "b", "c")
    assert t.expectations == (
        ir.ExpectCell(
            column=abc,
            row=(*row, ir.RowField(column="y", value="ONC")),
            outcome="is",
            value="555",
        ),
        ir.ExpectCell(
            column=obj("c"),
            row=(ir.RowField(column="x", value=-1),),
            outcome="is",
            value=Decimal("-2.5"),
        ),
        ir.ExpectCell(column=abc, row=(ir.RowField(column="x", value=None),), outcome="is"),
        ir.ExpectCell(column=abc, row=(ir.RowField(column="x", value=True),), outcome="clear"),
        ir.ExpectCell(
            column=abc, row=row, outcome="masked", method=ir.Method(name="show_last", args=(4,))
        ),
        ir.ExpectCell(column=abc, row=row, outcome="masked"),
    )


def test_dotted_bare_purpose_suggests_quoting() -> None:
    d = fail("mask x unless purpose Fraud Detection.Chargebacks")
    assert d.help is not None and "must be quoted" in d.help


def test_hostile_nesting_is_a_diagnostic_not_a_recursion_error() -> None:
    d = fail("filter a.t where " + "(" * 3000 + "x = 1" + ")" * 3000)
    assert (d.code, d.message) == ("P0006", "expression nested too deeply")
    d = fail("mask x unless " + "not " * 3000 + "group g")
    assert d.code == "P0006"


def test_deep_but_reasonable_nesting_parses() -> None:
    f = one("filter a.t where " + "(" * 50 + "x = 1" + ")" * 50)
    assert isinstance(f, ir.Filter)
    assert f.where == ir.Compare(op="=", left=col("x"), right=lit(1))
