"""The layout of policy bodies (targets/sqllines.py): one condition per line, and nothing but
whitespace between tokens changes."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from veil.api import check
from veil.targets import TARGETS, get_target
from veil.targets.sqllines import _parse, _Printer, _tokens, lay_out, tokens_outside_literals

ROOT = Path(__file__).resolve().parent.parent.parent
SOURCES = [ROOT / "examples" / "payments", *sorted((ROOT / "tests" / "cases").glob("[!_]*/"))]


def _bodies(target: str) -> list[str]:
    """Every one-line body the target lowers, for the example and each golden case."""
    tgt = get_target(target)
    out = []
    for source in SOURCES:
        program = check([source]).program
        if program is None or any(d.is_error for d in tgt.check(program)):
            continue
        for mask in program.masks:
            out.append(tgt.mask_sql(mask, lambda c: tgt.ident(c)))
        for tb in program.protected_tables:
            rules = program.rules_of(tb.key)
            if rules:
                out.append(tgt.row_sql(rules, lambda c: tgt.ident(c)))
    return out


@pytest.mark.parametrize("target", sorted(TARGETS))
def test_layout_changes_only_whitespace(target: str) -> None:
    tgt = get_target(target)
    bodies = _bodies(target)
    assert len(bodies) > 20
    for body in bodies:
        laid = tgt.lay_out(body, "  ")
        assert tokens_outside_literals(laid, backslash=tgt.backslash_literals) == (
            tokens_outside_literals(body, backslash=tgt.backslash_literals)
        )
        assert _squeezed(laid) == _squeezed(body)


def _squeezed(sql: str) -> str:
    """Whitespace runs as one space, none beside a parenthesis or a comma."""
    out = " ".join(sql.split())
    for c in "()[],":
        out = out.replace(f" {c}", c).replace(f"{c} ", c)
    return out


def test_one_condition_per_line() -> None:
    sql = (
        "CAST(CASE WHEN (a OR (b AND c)) THEN x WHEN d BETWEEN 1 AND 2 THEN y "
        "ELSE CAST(NULL AS text) END AS text)"
    )
    assert lay_out(sql).split("\n") == [
        "CAST(",
        "  CASE",
        "    WHEN (",
        "      a",
        "      OR (",
        "        b",
        "        AND c",
        "      )",
        "    ) THEN x",
        "    WHEN d BETWEEN 1 AND 2 THEN y",
        "    ELSE CAST(NULL AS text)",
        "  END AS text",
        ")",
    ]


def test_long_lists_one_item_per_line_short_ones_stay() -> None:
    items = ", ".join(f"'value number {i}'" for i in range(8))
    assert lay_out(f"(x IN ({items}))", indent="  ").split("\n") == [
        "(",
        "    x IN (",
        *(f"      'value number {i}'," for i in range(7)),
        "      'value number 7'",
        "    )",
        "  )",
    ]
    assert lay_out("COALESCE((x IN ('a', 'b')), FALSE)") == "COALESCE((x IN ('a', 'b')), FALSE)"


def test_literals_and_quoted_names_are_never_split() -> None:
    sql = "((\"a AND b\" = 'x OR y') OR (c = 'it''s ( CASE'))"
    assert lay_out(sql) == "(\n  (\"a AND b\" = 'x OR y')\n  OR (c = 'it''s ( CASE')\n)"
    backslashed = r"((a = 'it\'s OR') OR (b = 'c'))"
    assert lay_out(backslashed, backslash=True) == "(\n  (a = 'it\\'s OR')\n  OR (b = 'c')\n)"


@pytest.mark.parametrize("sql", ["(a OR b", "a OR b)", "(a OR 'b)", "(a] OR b)"])
def test_unreadable_text_is_left_as_it_is(sql: str) -> None:
    assert lay_out(sql) == sql


def test_long_select_one_clause_per_line() -> None:
    where = " AND ".join(f"t.column_{i} = s.column_{i}" for i in range(6))
    sql = f"SELECT t.a FROM x t LEFT JOIN y s ON t.k = s.k WHERE {where}"
    lines = lay_out(sql).split("\n")
    assert lines[:3] == ["SELECT t.a", "FROM x t", "LEFT JOIN y s ON t.k = s.k"]
    assert lines[3] == "WHERE t.column_0 = s.column_0"
    assert lines[4:] == [f"  AND t.column_{i} = s.column_{i}" for i in range(1, 6)]


def _read(sql: str, indent: str = "", backslash: bool = False) -> str:
    tokens = _tokens(sql, backslash)
    items = None if tokens is None else _parse(tokens)
    return sql if items is None else _Printer().seq(items, indent)


def test_quoted_tokens_do_not_change_the_layout_but_their_length_does() -> None:
    """`lay_out` lays out a shape shared by many texts (their quoted tokens blanked) and puts
    the tokens back: the result is what reading each text gives, also where a quoted token's
    length decides whether a list is broken."""
    for backslash in (False, True):
        escaped = "'it\\'s OR ('" if backslash else "'it''s OR ('"
        shapes: dict[tuple[str, str], str] = {}
        lines = set()
        for k in range(60, 90):
            for c in "az":
                sql = (
                    f'COALESCE((x IN (\'{c * k}\', {escaped}, "b AND ""c", `d`)), FALSE) '
                    f"AND y IN ('{c}', '2')"
                )
                laid = lay_out(sql, indent="  ", backslash=backslash, shapes=shapes)
                assert laid == _read(sql, "  ", backslash)
                assert tokens_outside_literals(laid, backslash=backslash) == (
                    tokens_outside_literals(sql, backslash=backslash)
                )
                lines.add(laid.count("\n"))
        assert len(lines) > 1  # the lists are broken from some lengths on
        assert len(shapes) == 30  # one per length


@settings(max_examples=300, deadline=None)
@example(["(", " ", "a", ")"])
@example(["f", "(", "x", " ", "]"])
@example(["a", "  ", "b"])
@example([" ", "a"])
@example(["(", "'it''s OR'", " ", "OR", " ", "'", "b", ")"])
@example(["(", "'a\\' OR'", " ", "OR", " ", '"q AND"', " ", "AND", " ", "b", ")"])
@given(
    st.lists(
        st.sampled_from(
            [
                "a",
                "b",
                "and",
                "OR",
                "Case",
                "brand",
                "(",
                ")",
                "[",
                "]",
                ",",
                "'x  y'",
                "'it''s OR'",
                "'",
                '"q AND"',
                '"',
                "'a\\' OR'",
                "'a long literal, with a comma, OR ( a bracket'",
                " ",
                "  ",
                "\n",
                "\t",
                "SELECT",
                "x1",
            ]
        ),
        max_size=30,
    )
)
def test_what_lay_out_returns_unread_is_what_reading_it_gives(parts: list[str]) -> None:
    """The shortcut for short plain texts, and laying out the text's shape (its quoted tokens
    blanked) before putting them back, give exactly what reading the text itself gives."""
    sql = "".join(parts)
    for backslash in (False, True):
        assert lay_out(sql, indent="  ", backslash=backslash) == _read(sql, "  ", backslash)
