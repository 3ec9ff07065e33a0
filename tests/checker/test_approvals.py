"""Projects and approvals: digests, records, purpose states, approvers (veil.approvals + the
compute_approvals pass)."""

from __future__ import annotations

import datetime as dt
import json

from hypothesis import given
from hypothesis import strategies as st

from tests.checker.helpers import BASE, codes, one, policies, run, where
from veil import approvals, ir, model
from veil.diagnostics import Severity
from veil.parser import parse_file

PROJECT = """\
project fraud_q4 {
  purposes "Fraud Detection", Marketing
  members  alice, bob
  sources  sales.transactions
}
approvers carol, dan
approvers erin for purpose Fraud Detection
"""
AT = dt.datetime(2026, 11, 20, 10, 0, tzinfo=dt.UTC)


def program(text: str, base: str = BASE) -> model.Program:
    r = run(text, base=base)
    assert r.program is not None, [(str(d.span), d.code, d.message) for d in r.diagnostics]
    return r.program


def approve(
    text: str, purpose: str, by: str, *, project: str = "fraud_q4", base: str = BASE
) -> str:
    """The line `veil approve` would append to `text` (digest of the project as it is now)."""
    p = program(text, base)
    info = p.project(project)
    assert info is not None
    purposes = {x.name: x for x in p.purposes}
    return approvals.approve_line(
        project,
        purpose,
        by,
        AT,
        approvals.project_digest(info, purposes),
        approvals.approval_record(info, purposes),
    )


def states(text: str, base: str = BASE) -> dict[str, model.ProjectPurpose]:
    info = program(text, base).project("fraud_q4")
    assert info is not None
    return {p.purpose: p for p in info.purposes}


# ------------------------------------------------------------------------------ digest


def ir_project(text: str) -> ir.Project:
    source, diags = parse_file(text, "p.veil")
    assert source is not None, diags
    (proj,) = [s for s in source.statements if isinstance(s, ir.Project)]
    return proj


PURPOSES = {
    "A": model.PurposeInfo(name="A", acknowledgement="I agree"),
    "A.B": model.PurposeInfo(name="A.B", acknowledgement="I agree"),
    "C": model.PurposeInfo(name="C"),
}


def test_canonical_content() -> None:
    proj = ir_project(
        'project x { purposes C, "A.B"; members bob, alice, bob\n  sources s.t, `a b`.c }'
    )
    text = approvals.project_content(proj, PURPOSES).to_json()
    assert json.loads(text) == {
        "project": "x",
        "purposes": ["A.B", "C"],
        "members": ["alice", "bob"],
        "sources": ["`a b`.c", "s.t"],
        "acknowledgements": {"A.B": "I agree", "C": None},
    }
    assert text.startswith('{"acknowledgements":{"A.B":"I agree","C":null},"members":')


def test_digest_is_pinned() -> None:
    # changing the canonical form makes every recorded approval stale: do it deliberately
    proj = ir_project("project x { purposes A; members alice; sources s.t }")
    assert approvals.project_digest(proj, PURPOSES) == (
        "sha256:"
        + __import__("hashlib")
        .sha256(
            b'{"acknowledgements":{"A":"I agree"},"members":["alice"],"project":"x",'
            b'"purposes":["A"],"sources":["s.t"]}'
        )
        .hexdigest()
    )


@given(
    st.permutations(["alice", "bob", "carol", "dan"]),
    st.permutations(["A", "C", "A.B"]),
    st.booleans(),
)
def test_digest_ignores_order_and_repetition(
    members: list[str], purposes: list[str], repeat: bool
) -> None:
    names = members + (members[:1] if repeat else [])
    text = (
        f"project x {{ purposes {', '.join(map(ir.name_source, purposes))}\n"
        f"  members {', '.join(names)}; sources s.t, r.u }}"
    )
    reference = ir_project(
        'project x { purposes A, "A.B", C; members alice, bob, carol, dan\n  sources r.u, s.t }'
    )
    assert approvals.project_digest(ir_project(text), PURPOSES) == approvals.project_digest(
        reference, PURPOSES
    )


def test_digest_of_written_and_checked_project_agree() -> None:
    p = program(PROJECT)
    info = p.project("fraud_q4")
    assert info is not None
    purposes = {x.name: x for x in p.purposes}
    written = policies({"0base.veil": BASE, "policy.veil": PROJECT}).of_type(ir.Project)[0]
    assert approvals.project_digest(info, purposes) == approvals.project_digest(written, purposes)


def test_digest_covers_members_sources_purposes_and_acknowledgements() -> None:
    base = approvals.project_digest(ir_project("project x { purposes A; members m }"), PURPOSES)
    for other in (
        "project x { purposes A; members m, n }",
        "project x { purposes A; members m; sources s.t }",
        "project x { purposes A, C; members m }",
        "project y { purposes A; members m }",
    ):
        assert approvals.project_digest(ir_project(other), PURPOSES) != base
    changed = {**PURPOSES, "A": model.PurposeInfo(name="A", acknowledgement="changed")}
    assert (
        approvals.project_digest(ir_project("project x { purposes A; members m }"), changed) != base
    )


# ------------------------------------------------------------------------------ lines


def test_approve_line_parses_back() -> None:
    record = approvals.approval_record(
        ir_project('project "Q 4" { purposes A, "A.B"; sources `a b`.c }'), PURPOSES
    )
    line = approvals.approve_line("Q 4", "A.B", "carol", AT, "sha256:00", record)
    assert line == (
        'approve "Q 4" purpose "A.B" by carol at 2026-11-20T10:00:00Z digest "sha256:00" {\n'
        '  purposes A, "A.B"\n  members {}\n  sources `a b`.c\n'
        '  acknowledgement A "I agree"\n  acknowledgement "A.B" "I agree"\n}\n'
    )
    source, diags = parse_file(line, "a.veil")
    assert source is not None, diags
    assert source.statements == (
        ir.Approve(
            project=ir.Name(value="Q 4"),
            purpose=ir.Name(value="A.B"),
            by=ir.Name(value="carol"),
            at=AT,
            digest="sha256:00",
            record=record,
        ),
    )


def test_revoke_line_parses_back() -> None:
    line = approvals.revoke_line(
        "fraud_q4", "Fraud Detection", "carol", dt.datetime(2026, 11, 21, 9, 30, 15, 123)
    )
    assert line == "revoke fraud_q4 purpose Fraud Detection by carol at 2026-11-21T09:30:15Z\n"
    source, _ = parse_file(line, "a.veil")
    assert source is not None


# ------------------------------------------------------------------------------ changes


def test_changes_in_words() -> None:
    record = approvals.approval_record(
        ir_project("project x { purposes A, C; members bob, carol; sources hr.old }"), PURPOSES
    )
    now = ir_project('project x { purposes A, "A.B"; members carol, dave; sources hr.survey }')
    changed = {**PURPOSES, "A": model.PurposeInfo(name="A", acknowledgement="new text")}
    assert approvals.approval_changes(record, now, changed) == (
        "purpose `A.B` added",
        "purpose `C` removed",
        "member `dave` added",
        "member `bob` removed",
        "source `hr.survey` added",
        "source `hr.old` removed",
        "acknowledgement of `A` changed",
    )


def test_changes_without_a_record() -> None:
    proj = ir_project("project x { purposes A }")
    assert approvals.approval_changes(None, proj, PURPOSES) == (
        "the project changed since approval",
    )


# ------------------------------------------------------------------------------ states


def test_pending_without_approval() -> None:
    got = states(PROJECT)
    assert {p: s.state for p, s in got.items()} == {
        "Fraud Detection": model.PurposeState.PENDING,
        "Marketing": model.PurposeState.PENDING,
    }


def test_approved_with_the_current_digest() -> None:
    text = PROJECT + approve(PROJECT, "Fraud Detection", "carol")
    r = run(text)
    assert r.diagnostics == ()
    got = states(text)
    fd = got["Fraud Detection"]
    assert (fd.state, fd.approved_by, fd.approved_at) == (
        model.PurposeState.APPROVED,
        "carol",
        "2026-11-20T10:00:00Z",
    )
    assert got["Marketing"].state is model.PurposeState.PENDING
    info = program(text).project("fraud_q4")
    assert info is not None and info.active_purposes == ("Fraud Detection",)


def test_w0401_stale_approval_names_what_changed() -> None:
    line = approve(PROJECT, "Fraud Detection", "carol")
    changed = PROJECT.replace("alice, bob", "alice, dave")
    r = run(changed + line)
    d = one(r, "W0401")
    assert d.severity is Severity.WARNING
    assert d.message == "approval of `Fraud Detection` in project `fraud_q4` is stale"
    assert where(d) == "policy.veil:8:26"
    assert d.help == (
        "since `carol` approved it at 2026-11-20T10:00:00Z: member `dave` added, member `bob` "
        "removed; the purpose grants nothing until it is approved again: re-approve with "
        "`veil approve fraud_q4 --by NAME`"
    )
    assert [str(s) for s in d.related] == ["policy.veil:1:9"]
    fd = states(changed + line)["Fraud Detection"]
    assert fd.state is model.PurposeState.STALE
    assert fd.changes == ("member `dave` added", "member `bob` removed")
    assert fd.approved_by == "carol"


def test_stale_when_an_inherited_acknowledgement_changes() -> None:
    text = PROJECT.replace('"Fraud Detection", Marketing', '"Fraud Detection.Chargebacks"')
    line = approve(text, "Fraud Detection.Chargebacks", "carol")
    base = BASE.replace("investigate fraud.", "investigate fraud only.")
    fd = states(text + line, base)["Fraud Detection.Chargebacks"]
    assert fd.state is model.PurposeState.STALE
    assert fd.changes == ("acknowledgement of `Fraud Detection.Chargebacks` changed",)


def test_stale_without_a_record() -> None:
    line = approve(PROJECT, "Marketing", "carol").split(" {")[0] + "\n"
    changed = PROJECT.replace("alice, bob", "alice")
    assert states(changed + line)["Marketing"].changes == ("the project changed since approval",)


def test_the_last_line_decides() -> None:
    ok = approve(PROJECT, "Marketing", "carol")
    revoke = approvals.revoke_line("fraud_q4", "Marketing", "dan", AT)
    assert states(PROJECT + ok + revoke)["Marketing"].state is model.PurposeState.REVOKED
    assert states(PROJECT + revoke + ok)["Marketing"].state is model.PurposeState.APPROVED


def test_only_the_deciding_approval_is_checked_for_its_approver() -> None:
    old = approve(PROJECT, "Marketing", "mallory")
    new = approve(PROJECT, "Marketing", "dan")
    assert codes(run(PROJECT + old + new)) == []
    assert codes(run(PROJECT + new + old)) == ["E0402"]


# ------------------------------------------------------------------------------ errors


def test_e0107_approval_of_an_unknown_project() -> None:
    line = approve(PROJECT, "Marketing", "carol").replace("approve fraud_q4", "approve fraud_q5")
    d = one(run(PROJECT + line), "E0107")
    assert d.message == "unknown project `fraud_q5`"
    assert where(d) == "policy.veil:8:9"
    assert d.help == "did you mean `fraud_q4`?"


def test_e0401_purpose_not_in_the_project() -> None:
    text = PROJECT + approvals.revoke_line("fraud_q4", "Support", "carol", AT)
    d = one(run(text), "E0401")
    assert d.message == "`Support` is not a purpose of project `fraud_q4`"
    assert where(d) == "policy.veil:8:25"
    assert d.help == "add it to the project's `purposes`, or remove this `revoke` line"


def test_e0402_not_a_declared_approver() -> None:
    d = one(run(PROJECT + approve(PROJECT, "Marketing", "carl")), "E0402")
    assert d.message == "`carl` may not approve `Marketing`"
    assert where(d) == "policy.veil:8:39"
    assert d.help == "`carl` is not a declared approver; did you mean `carol`?"


def test_e0402_approver_for_another_purpose() -> None:
    d = one(run(PROJECT + approve(PROJECT, "Marketing", "erin")), "E0402")
    assert d.help is not None
    assert d.help.startswith("`erin` may only approve `Fraud Detection` and its sub-purposes")


def test_approver_for_a_purpose_may_approve_its_sub_purposes() -> None:
    text = PROJECT.replace('"Fraud Detection", Marketing', '"Fraud Detection.Chargebacks"')
    assert codes(run(text + approve(text, "Fraud Detection.Chargebacks", "erin"))) == []


def test_e0403_separation_of_duties() -> None:
    text = PROJECT.replace("carol, dan", "carol, dan, bob")
    d = one(run(text + approve(text, "Marketing", "bob")), "E0403")
    assert d.message == "`bob` cannot approve project `fraud_q4`, of which they are a member"
    assert where(d) == "policy.veil:8:39"
    assert d.help is not None and "separation of duties" in d.help


def test_w0402_no_approvers_accepts_anyone_with_one_warning() -> None:
    text = PROJECT.split("approvers")[0]
    lines = approve(text, "Marketing", "zoe") + approve(text, "Fraud Detection", "yann")
    r = run(text + lines)
    d = one(r, "W0402")
    assert d.message == "no `approvers` are declared, so anyone may approve a purpose"
    assert where(d) == "policy.veil:6:39"
    assert r.program is not None
    # separation of duties still holds
    assert codes(run(text + approve(text, "Marketing", "alice"))) == ["E0403", "W0402"]


def test_may_approve() -> None:
    p = program(PROJECT)
    proj = p.project("fraud_q4")
    assert proj is not None
    assert approvals.may_approve(p.approvers, proj, "Marketing", "carol") is None
    assert approvals.may_approve(p.approvers, proj, "Fraud Detection", "erin") is None
    assert approvals.may_approve(p.approvers, proj, "Marketing", "erin") == (
        "`erin` may only approve `Fraud Detection` and its sub-purposes"
    )
    assert approvals.may_approve(p.approvers, proj, "Marketing", "zed") == (
        "`zed` is not a declared approver"
    )
    assert approvals.may_approve((), proj, "Marketing", "zed") is None
    assert approvals.may_approve((), proj, "Marketing", "bob") == (
        "`bob` is a member of project `fraud_q4`, and separation of duties forbids approving "
        "one's own project"
    )
