"""`veil fmt`: canonical, idempotent, comment-keeping, and it never changes the IR."""

from __future__ import annotations

import datetime as dt
import random
from collections import Counter
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.test_printer import _conds, _idents, _names, _parts, _preds, _strings
from veil import approvals, ir
from veil.cli import main
from veil.formatter import WIDTH, FormatError, format_source, print_statements
from veil.parser import parse_file, parse_file_with_comments

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").rglob("*.veil"))
PARSING = [p for p in EXAMPLES if parse_file(p.read_text(encoding="utf-8"), str(p))[0]]


def fmt(text: str) -> str:
    return format_source(text, "t.veil")


def statements(text: str) -> tuple[ir.Statement, ...]:
    f, diags = parse_file(text, "t.veil")
    assert f is not None, diags
    return f.statements


def comment_texts(text: str) -> Counter[str]:
    return Counter(c.text for c in parse_file_with_comments(text, "t.veil")[2])


# --------------------------------------------------------------------------------------------
# The examples


def test_every_example_but_the_syntax_error_parses() -> None:
    assert {p.name for p in EXAMPLES} - {p.name for p in PARSING} == {"syntax.veil"}


@pytest.mark.parametrize("path", PARSING, ids=lambda p: str(p.relative_to(ROOT)))
def test_examples_are_formatted(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    out = format_source(text, str(path))
    assert comment_texts(out) == comment_texts(text)
    assert statements(out) == statements(text)
    assert out == text, f"run `veil fmt {path.relative_to(ROOT)}`"


def test_fmt_check_passes_on_the_examples(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(ROOT)
    paths = [str(p.relative_to(ROOT)) for p in PARSING]
    result = CliRunner().invoke(main, ["fmt", "--check", *paths])
    assert result.exit_code == 0, result.output
    assert "would reformat" not in result.output


def test_fmt_check_on_examples_reports_only_the_syntax_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.chdir(ROOT)
    result = CliRunner().invoke(main, ["fmt", "--check", "examples"])
    assert result.exit_code == 1
    assert "examples/broken/syntax.veil:11:42: error[P0001]: unexpected `for`" in result.output
    assert "would reformat" not in result.output


def test_approvals_print_as_veil_approve_writes_them() -> None:
    text = (ROOT / "examples" / "payments" / "projects.veil").read_text(encoding="utf-8")
    out = fmt(text)
    approves = [s for s in statements(text) if isinstance(s, ir.Approve)]
    assert approves
    for a in approves:
        assert a.record is not None
        line = approvals.approve_line(
            a.project.value, a.purpose.value, a.by.value, a.at, a.digest, a.record
        )
        assert line in out
    revoke = approvals.revoke_line("p", "Fraud Detection", "carol", dt.datetime(2026, 1, 2, 3))
    assert fmt(revoke) == revoke


# --------------------------------------------------------------------------------------------
# Layout

MESSY = """\
# head


group a, b,   # on the group
  c ; group d
user x { groups a ; region "EMEA" }  # one-line user
user yy { groups b; dept "x", "y" }
user z {
  region "R"   # attribute first
  # before groups
  groups a, \\
    b
}
table s.u {

  # leading
  `odd name`  int tags x.y   # t1
  b bigint
  # dangling

}  # after the block
mask x with hash unless (group a   # inside parentheses
   or group b) # end of mask
mask y with null unless purpose "Fraud Detection"
mask z { reveal for group a; with null otherwise }
mask zz when a = 1 {
  reveal for group a
  with show_last(4) for user x or purpose "P.Q"
  with null otherwise
}
mask w with truncate("month") for group a; mask v with constant(abc) unless any purpose
project p1 {
  documentation "doc"   # doc comment
  members a
  purposes A
  description "d"
  members b
}
# tail
"""

CANONICAL = """\
# head

group a, b, c  # on the group
group d

user x  { groups a; region "EMEA" }  # one-line user
user yy { groups b; dept "x", "y" }
user z {
  # before groups
  groups a, b
  region "R"  # attribute first
}

table s.u {
  # leading
  `odd name`  int     tags x.y  # t1
  b           bigint
  # dangling
}  # after the block

# inside parentheses
mask x with hash unless group a or group b  # end of mask
mask y unless purpose Fraud Detection
mask z { reveal for group a; with null otherwise }
mask zz when a = 1 {
  reveal            for group a
  with show_last(4) for user x or purpose "P.Q"
  with null         otherwise
}
mask w with truncate(month) for group a
mask v with constant("abc") unless any purpose

project p1 {
  purposes A
  members  a, b
  description "d"
  documentation "doc"  # doc comment
}
# tail
"""


def test_canonical_layout() -> None:
    assert fmt(MESSY) == CANONICAL
    assert fmt(CANONICAL) == CANONICAL


def test_blank_lines() -> None:
    text = "\n\ngroup a\n\n\n\ngroup b\ngroup c\nuser u\n\n# end\n\n\n"
    assert fmt(text) == "group a\n\ngroup b\ngroup c\n\nuser u\n\n# end\n"
    assert fmt("") == ""
    assert fmt("# only a comment") == "# only a comment\n"


def test_mask_forms_are_kept() -> None:
    text = (
        "mask a with hash\n"
        "mask b with hash unless group g\n"
        "mask c with hash for group g\n"
        "mask d with null for group g\n"
        "mask e { with hash otherwise }\n"
        "mask f with null\n"
    )
    assert fmt(text) == text


def test_long_statements_are_wrapped_with_a_backslash() -> None:
    cond = " or ".join(f"purpose Purpose Number {'ABCDEFGH'[i]}" for i in range(8))
    head = 'mask sales.transactions.notes with constant("[redacted]") when region = "EMEA"'
    text = f"{head} unless {cond}\n"
    out = fmt(text)
    assert all(len(line) <= WIDTH for line in out.splitlines())
    assert out.splitlines()[0].endswith(" \\")
    assert statements(out) == statements(text)
    members = ", ".join(f"member_number_{i}" for i in range(12))
    out = fmt(f"project p {{ members {members} }}\n")
    assert all(len(line) <= WIDTH for line in out.splitlines())
    assert "  members  member_number_0," in out


def test_comment_after_a_backslash_is_kept() -> None:
    text = "filter t where a = 1 \\  # why\n  unless group g\n"
    assert fmt(text) == "filter t where a = 1 unless group g  # why\n"


def test_a_file_that_does_not_parse_is_not_formatted() -> None:
    with pytest.raises(FormatError) as e:
        fmt("restrict t to purpose Audit for Tax\n")
    assert e.value.diagnostics[0].code == "P0001"


def test_fmt_rewrites_files_and_check_lists_them(tmp_path: Path) -> None:
    messy = tmp_path / "a.veil"
    messy.write_text("group  a\nuser b {groups a}\n", encoding="utf-8")
    clean = tmp_path / "b.veil"
    clean.write_text("group a\n", encoding="utf-8")
    runner = CliRunner()
    check = runner.invoke(main, ["fmt", "--check", str(tmp_path)])
    assert check.exit_code == 1
    listed = [x for x in check.output.splitlines() if x.startswith("would reformat")]
    assert listed == [f"would reformat {messy}"]
    assert messy.read_text(encoding="utf-8") == "group  a\nuser b {groups a}\n"
    diff = runner.invoke(main, ["fmt", "--diff", str(messy)])
    assert diff.exit_code == 1 and "+user b { groups a }" in diff.output
    done = runner.invoke(main, ["fmt", str(tmp_path)])
    assert done.exit_code == 0, done.output
    assert messy.read_text(encoding="utf-8") == "group a\n\nuser b { groups a }\n"
    assert runner.invoke(main, ["fmt", "--check", str(tmp_path)]).exit_code == 0


def test_fmt_exits_1_on_a_syntax_error_and_writes_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "bad.veil"
    bad.write_text("group  a\nmask x with\n", encoding="utf-8")
    result = CliRunner().invoke(main, ["fmt", str(bad)])
    assert result.exit_code == 1
    assert "error[P0001]" in result.output
    assert bad.read_text(encoding="utf-8") == "group  a\nmask x with\n"


# --------------------------------------------------------------------------------------------
# Property: generated programs

_objects = st.lists(_parts, min_size=1, max_size=3).map(lambda ps: ir.ObjectName(parts=tuple(ps)))
_tags = st.lists(_parts, min_size=1, max_size=3).map(lambda ps: ir.TagPath(parts=tuple(ps)))
_long_names = st.lists(_idents.map(str.capitalize), min_size=4, max_size=8).map(
    lambda ws: ir.Name(value=" ".join(ws))
)
_any_names = _names | _long_names
_values = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(10**6), 10**6),
    st.decimals(allow_nan=False, allow_infinity=False, places=2, min_value=-999, max_value=999),
    _strings,
)
_methods = st.just(ir.Method(name="null")) | st.builds(
    lambda name, args: ir.Method(name=name, args=tuple(args)),
    _idents,
    st.lists(_values | st.sampled_from(["month", "year"]), max_size=2),
)
_long_conds = st.lists(_long_names, min_size=2, max_size=5).map(
    lambda ns: ir.CondOr(items=tuple(ir.PurposeIs(purpose=x) for x in ns))
)
_who = _conds | _long_conds
_long_compare = st.builds(
    lambda c, v: ir.Compare(
        op="=", left=ir.ColumnRef(name=ir.ObjectName(parts=(c,))), right=ir.Literal(value=v)
    ),
    _idents.map(lambda x: x * 5),
    st.text(alphabet="ab cd", min_size=10, max_size=30),
)
_long_preds = st.lists(_long_compare | _preds, min_size=3, max_size=6).flatmap(
    lambda xs: st.sampled_from([ir.BoolAnd(items=tuple(xs)), ir.BoolOr(items=tuple(xs))])
)
_where = _preds | _long_preds
_opt_text = st.none() | _strings


def _mask(
    target: ir.MaskTarget,
    form: str,
    method: ir.Method,
    cond: ir.Condition,
    when: ir.Expr | None,
    block: list[tuple[ir.Method | None, ir.Condition | None]],
) -> ir.Mask:
    reveal, masking = ir.MaskClause(method=None, cond=None), ir.MaskClause(method=method, cond=None)
    clauses = {
        "always": (masking,),
        "unless": (ir.MaskClause(method=None, cond=cond), masking),
        "for": (ir.MaskClause(method=method, cond=cond), reveal),
        "block": tuple(ir.MaskClause(method=m, cond=c) for m, c in block),
    }[form]
    return ir.Mask(target=target, clauses=clauses, when=when, form=form)  # type: ignore[arg-type]


_masks = st.builds(
    _mask,
    _objects.map(lambda o: ir.ColumnTarget(name=o)) | _tags.map(lambda x: ir.TagTarget(tag=x)),
    st.sampled_from(["always", "unless", "for", "block"]),
    _methods,
    _who,
    st.none() | _where,
    st.lists(st.tuples(st.none() | _methods, st.none() | _who), max_size=3),
)
_columns = st.builds(
    lambda name, ty, params, tags: ir.Column(
        name=name, type=ir.ColumnType(name=ty, params=tuple(params)), tags=tuple(tags)
    ),
    _parts,
    st.sampled_from(["bigint", "varchar", "decimal", "text", "timestamp"]),
    st.lists(st.integers(0, 99), max_size=2),
    st.lists(_tags, max_size=2),
)
_times = st.datetimes(
    min_value=dt.datetime(1000, 1, 1),
    max_value=dt.datetime(9999, 12, 30),
    timezones=st.just(dt.UTC),
).map(lambda d: d if d.microsecond % 2 else d.replace(microsecond=0))
_records = st.builds(
    lambda p, m, s, a: ir.ApprovalRecord(
        purposes=tuple(p),
        members=tuple(m),
        sources=tuple(s),
        acknowledgements=tuple(ir.Acknowledged(purpose=x, text=y) for x, y in a),
    ),
    st.lists(_names, max_size=2),
    st.lists(_names, max_size=3),
    st.lists(_objects, max_size=2),
    st.lists(st.tuples(_names, _strings), max_size=2),
)
_expectations = st.one_of(
    st.builds(lambda c: ir.ExpectColumn(column=c, outcome="clear"), _objects),
    st.builds(
        lambda c, m: ir.ExpectColumn(column=c, outcome="masked", method=m),
        _objects,
        st.none() | _methods,
    ),
    st.builds(
        lambda tb, fs, o: ir.ExpectRow(
            table=tb, row=tuple(ir.RowField(column=c, value=v) for c, v in fs), outcome=o
        ),
        _objects,
        st.lists(st.tuples(_parts, _values), min_size=1, max_size=3),
        st.sampled_from(["visible", "hidden"]),
    ),
    st.builds(
        lambda c, fs, o: ir.ExpectCell(
            column=c, row=tuple(ir.RowField(column=x, value=v) for x, v in fs), **o
        ),
        _objects,
        st.lists(st.tuples(_parts, _values), min_size=1, max_size=3),
        st.one_of(
            _values.map(lambda v: {"outcome": "is", "value": v}),
            st.just({"outcome": "clear"}),
            (st.none() | _methods).map(lambda m: {"outcome": "masked", "method": m}),
        ),
    ),
)
_statements = st.one_of(
    st.builds(
        lambda o, cs: ir.Table(name=o, columns=tuple(cs)), _objects, st.lists(_columns, max_size=4)
    ),
    st.builds(
        lambda ts, o: ir.TagOn(tags=tuple(ts), target=o),
        st.lists(_tags, min_size=1, max_size=2),
        _objects,
    ),
    st.builds(
        lambda x, d, a: ir.Purpose(name=x, description=d, acknowledgement=a),
        _names,
        _opt_text,
        _opt_text,
    ),
    _any_names.map(lambda x: ir.Group(name=x)),
    st.builds(
        lambda x, gs, attrs: ir.User(
            name=x,
            groups=tuple(gs),
            attributes=tuple(ir.Attribute(key=k, values=tuple(v)) for k, v in attrs),
        ),
        _names,
        st.lists(_names, max_size=3),
        st.lists(st.tuples(_parts, st.lists(_strings, min_size=1, max_size=3)), max_size=2),
    ),
    st.builds(
        lambda x, p, m, s, doc, desc: ir.Project(
            name=x,
            purposes=tuple(p),
            members=tuple(m),
            sources=tuple(s),
            documentation=doc,
            description=desc,
        ),
        _names,
        st.lists(_names, max_size=2),
        st.lists(_any_names, max_size=12),
        st.lists(_objects, max_size=3),
        _opt_text,
        _opt_text,
    ),
    st.builds(
        lambda xs, p: ir.Approvers(names=tuple(xs), purpose=p),
        st.lists(_any_names, min_size=1, max_size=6),
        st.none() | _names,
    ),
    st.builds(
        lambda p, pu, by, at, d, r: ir.Approve(
            project=p, purpose=pu, by=by, at=at, digest=d, record=r
        ),
        _names,
        _names,
        _names,
        _times,
        _strings,
        st.none() | _records,
    ),
    st.builds(
        lambda p, pu, by, at: ir.Revoke(project=p, purpose=pu, by=by, at=at),
        _names,
        _names,
        _names,
        _times,
    ),
    _masks,
    st.builds(
        lambda tb, w, u: ir.Filter(table=tb, where=w, unless=u), _objects, _where, st.none() | _who
    ),
    st.builds(
        lambda tb, to, u: ir.Restrict(table=tb, to=tuple(to), unless=u),
        _objects,
        st.lists(
            _names.map(lambda x: ir.PurposeIs(purpose=x)) | st.just(ir.AnyPurpose()),
            min_size=1,
            max_size=3,
        ),
        st.none() | _who,
    ),
    st.builds(
        lambda name, u, p, es: ir.TestCase(
            name=name, user=u, project=p if u is not None else None, expectations=tuple(es)
        ),
        _strings,
        st.none() | _names,
        st.none() | _names,
        st.lists(_expectations, max_size=3),
    ),
)


def _sprinkle(text: str, rnd: random.Random) -> str:
    """Comments and blank lines wherever the grammar allows them."""
    out: list[str] = []
    continued = False
    for i, line in enumerate(text.split("\n")[:-1]):
        if not continued and rnd.random() < 0.3:
            out.append(rnd.choice(["", "   ", f"{' ' * rnd.randint(0, 4)}# own {i} 'x' \"#\""]))
        if line.endswith("\\"):
            continued = True
            if rnd.random() < 0.2:
                line += f"   # after backslash {i}"
        else:
            continued = False
            if rnd.random() < 0.3:
                line += f"{' ' * rnd.randint(0, 3)}#trailing {i}"
        out.append(line)
    return "\n".join(out) + "\n"


# Hypothesis's default of 100 examples: drawing these programs costs more than formatting them
# (250 examples took 12 s of CPU, 100 take 5.5 s); outside CI each run draws new ones.
@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(_statements, max_size=8), st.booleans(), st.randoms(use_true_random=False))
def test_formatting_generated_programs_keeps_their_ir_and_is_idempotent(
    program: list[ir.Statement], one_line: bool, rnd: random.Random
) -> None:
    printed = print_statements(program, one_line=one_line)
    assert statements(printed) == tuple(program)  # the printer prints every form back
    assert fmt(printed) == printed  # printed IR is already canonical
    text = _sprinkle(printed, rnd)
    once = fmt(text)
    assert statements(once) == tuple(program)
    assert comment_texts(once) == comment_texts(text)
    assert fmt(once) == once
