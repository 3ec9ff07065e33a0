"""The pass table: order, stopping after the first failing pass, the error cap, determinism."""

from __future__ import annotations

from tests.checker.helpers import BASE, codes, policies, run
from veil.checker import MAX_ERRORS, PASSES, check
from veil.checker.facts import Facts


def test_pass_table() -> None:
    assert [name for name, _ in PASSES] == [
        "collect_declarations",
        "apply_tags",
        "resolve_names",
        "check_predicates",
        "resolve_conflicts",
        "check_masks",
        "check_rows",
        "compute_approvals",
        "check_tests",
    ]


def test_passes_are_pure() -> None:
    ps = policies({"0base.veil": BASE, "p.veil": "mask email with hash"})
    facts = Facts()
    for _, run_pass in PASSES:
        first = run_pass(ps, facts)
        assert run_pass(ps, facts) == first
        facts = first[0]


def test_stops_after_the_first_pass_with_an_error() -> None:
    # the unknown purpose (resolve_names) is not reported while a declaration is wrong
    r = run("table t { a int }\nmask email with hash unless purpose Nope")
    assert codes(r) == ["E0201"]
    assert r.program is None


def test_warnings_of_the_failing_pass_are_kept() -> None:
    r = run("mask tagged nothing with null\nmask emial with null")
    assert codes(r) == ["W0101", "E0102"]


def test_errors_are_capped() -> None:
    text = "\n".join(f"mask col{i} with null" for i in range(MAX_ERRORS + 10))
    text += "\nmask tagged nothing with null"
    r = run(text)
    assert codes(r).count("E0102") == MAX_ERRORS
    assert "W0101" in codes(r)  # warnings are not capped
    assert [d.span.line for d in r.diagnostics if d.is_error] == list(range(1, MAX_ERRORS + 1))


def test_diagnostics_are_sorted() -> None:
    r = run("mask zz with null\nfilter nope where id > 1\nmask aa with null")
    assert [d.span.line for d in r.diagnostics] == [1, 2, 3]


def test_program_does_not_depend_on_file_order() -> None:
    a = "mask tagged pii with null\nfilter hr.survey where id > 1\nuser zoe { groups ops }"
    b = "restrict sales.transactions to any purpose\nmask email with hash\ngroup aaa"
    one = check(policies({"0base.veil": BASE, "a.veil": a, "b.veil": b})).program
    two = check(policies({"0base.veil": BASE, "a.veil": b, "b.veil": a})).program
    assert one is not None and two is not None
    assert one.masks == two.masks
    assert one.tables == two.tables and one.users == two.users and one.groups == two.groups
    assert [r.table for r in one.row_rules] == [r.table for r in two.row_rules]


def test_the_sample_repository_checks() -> None:
    r = run(SAMPLE, base=None)
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    assert r.diagnostics == ()
    assert len(r.program.masks) == 6
    assert len(r.program.row_rules) == 5


SAMPLE = """\
table sales.transactions {
  id           bigint
  credit_card  varchar(19)    tags pii.card
  email        varchar        tags pii.email, contact
  amount       decimal(12,2)
  region       varchar
  created_at   timestamp      tags event_time
  notes        text
}
table hr.survey { id bigint; answer text tags pii }
purpose "Fraud Detection" {
  description "Investigate suspicious card activity"
  acknowledgement "I will use card data only to investigate fraud."
}
purpose "Fraud Detection.Chargebacks"
purpose Marketing; purpose Support; purpose "GDPR Review"; purpose Audit
purpose "Employee Retention"
group analysts, stewards, contractors, auditors, hr_admins, marketing
user alice { groups analysts; region "EMEA", "APAC"; department "Risk" }
user bob
project fraud_q4 {
  purposes "Fraud Detection"
  members  alice, bob
  sources  sales.transactions
}
approvers carol, dan
mask credit_card unless purpose Fraud Detection
mask sales.transactions.email with hash unless purpose "Marketing" or group stewards
mask tagged pii with null
mask tagged pii.card with hash unless purpose "Fraud Detection"
mask amount with round(100) for group contractors
mask notes with constant("REDACTED") when region = "EU" unless purpose "GDPR Review"
mask region {
  reveal      for purpose "Support"
  with hash   for purpose "Marketing" or group marketing
  with null   otherwise
}
filter sales.transactions where region in user.region unless purpose "Fraud Detection"
filter sales.transactions where created_at >= now() - 90 days unless group auditors
restrict sales.transactions to purpose "Fraud Detection", purpose "Audit"
restrict hr.survey to any purpose
restrict hr.survey to purpose "Employee Retention" unless group hr_admins
test "fraud analysts see card numbers in their project" {
  as alice in project fraud_q4
  expect sales.transactions.credit_card clear
  expect sales.transactions.email masked with hash
  expect sales.transactions row { region: "LATAM" } hidden
}
"""
