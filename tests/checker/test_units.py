"""`veil check` file by file (`checker/units.py`): after any edit, the diagnostics read from the
units kept in the check cache are those of a whole check without any cache, text and order;
a re-check after one file changed checks that file's unit only."""

from __future__ import annotations

import random
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.test_performance import synthetic  # bench/synthetic.py
from veil.api import check
from veil.checker import units
from veil.diagnostics import render_text


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Nine tables in three catalog files, a private cache home, the repository as the
    working directory."""
    monkeypatch.delenv("VEIL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    root = synthetic.write(9, tmp_path / "repo", per_file=3)
    monkeypatch.chdir(root)
    return root


Runs = dict[str, list[str]]


@pytest.fixture
def runs(monkeypatch: pytest.MonkeyPatch) -> Runs:
    """The units and contexts checked (by file name), and the whole checks."""
    seen: Runs = {"units": [], "whole": []}
    real = units._check

    def counting(sources: list[object], unit: str | None, *rest: object) -> object:
        seen["units"].append(unit or "<context>")
        return real(sources, unit, *rest)  # type: ignore[arg-type]

    monkeypatch.setattr(units, "_check", counting)
    import veil.checker

    whole = veil.checker.check
    monkeypatch.setattr(veil.checker, "check", lambda p: seen["whole"].append("x") or whole(p))
    return seen


def _output(*, cache: bool) -> tuple[bool, str]:
    checked = check(["."], cache=cache, program=False)
    text = "".join(render_text(d, checked.sources) + "\n" for d in checked.diagnostics)
    return checked.ok, text


def _same_as_a_whole_check(runs: Runs) -> Runs:
    for seen in runs.values():
        seen.clear()
    cached = _output(cache=True)
    done = {k: list(v) for k, v in runs.items()}
    assert cached == _output(cache=False)
    return done


def _edit(path: Path, change: Callable[[str], str]) -> None:
    path.write_text(change(path.read_text(encoding="utf-8")), encoding="utf-8")


def test_one_changed_file_checks_that_files_unit_only(repo: Path, runs: Runs) -> None:
    first = _same_as_a_whole_check(runs)
    assert sorted(first["units"]) == [
        "<context>",
        "catalog/f000.veil",
        "catalog/f001.veil",
        "catalog/f002.veil",
    ]
    assert first["whole"] == []
    _edit(
        repo / "catalog" / "f001.veil",
        lambda s: s.replace("  score integer\n", "  score integer\n  x text\n", 1),
    )
    assert _same_as_a_whole_check(runs) == {"units": ["catalog/f001.veil"], "whole": []}
    _edit(repo / "catalog" / "f001.veil", lambda s: "# shifts every span\n" + s)
    assert _same_as_a_whole_check(runs) == {"units": ["catalog/f001.veil"], "whole": []}
    _edit(repo / "people.veil", lambda s: s + "user extra\n")  # every unit reads the users
    assert sorted(_same_as_a_whole_check(runs)["units"]) == [
        "<context>",
        "catalog/f000.veil",
        "catalog/f001.veil",
        "catalog/f002.veil",
    ]
    _edit(repo / "projects.veil", lambda s: "# a comment\n" + s)  # units read no project
    assert _same_as_a_whole_check(runs) == {"units": ["<context>"], "whole": []}


CROSS_FILE_EDITS: list[tuple[str, str, Callable[[str], str]]] = [
    # a tag no column carries, then carried by a column of another file
    ("policies.veil", "a tag mask", lambda s: s + "mask tagged phi.ssn with null\n"),
    (
        "catalog/f002.veil",
        "the tag",
        lambda s: s.replace("  score integer\n", "  ssn text tags phi.ssn\n", 1),
    ),
    # a bare column no table has (an error), then added to a table of another file
    ("policies.veil", "a column mask", lambda s: s + "mask taxid with null\n"),
    (
        "catalog/f000.veil",
        "the column",
        lambda s: s.replace("  score integer\n", "  score integer\n  taxid text\n", 1),
    ),
    # a method that fits no column of the tag: one warning per column, in every unit
    (
        "policies.veil",
        "a fallback",
        lambda s: s.replace(
            "mask tagged pii.card with show_last(4)", "mask tagged pii.card with round(10)"
        ),
    ),
    # `= null` in a `when`: a warning per table the mask reaches
    ("policies.veil", "a null comparison", lambda s: s.replace("when ok = true", "when ok = null")),
    # a misspelled tag in two files: warned once, where first written
    ("catalog/f001.veil", "a near tag", lambda s: s.replace("tags pii.email", "tags pii_email")),
    ("catalog/f002.veil", "a near tag", lambda s: s.replace("tags pii.email", "tags pii_email")),
    ("catalog/f000.veil", "a near tag", lambda s: s.replace("tags pii.email", "tags pii_email")),
    # a conflict between a mask of the context and a tag of a catalog file
    ("policies.veil", "a second tag mask", lambda s: s + "mask tagged pii.email with hash\n"),
    (
        "catalog/f001.veil",
        "a column with both tags",
        lambda s: s.replace("tags pii.card", "tags pii.card, pii.email", 1),
    ),
    (
        "catalog/f001.veil",
        "the conflict resolved",
        lambda s: s.replace("tags pii.card, pii.email", "tags pii.card", 1),
    ),
    # a condition on a user, who is then removed
    (
        "catalog/f002.veil",
        "a user condition",
        lambda s: s.replace("unless purpose Fraud\n", "unless user u3\n", 1),
    ),
    ("people.veil", "the user removed", lambda s: s.replace("user u3 ", "user u3x ")),
    ("people.veil", "the user back", lambda s: s.replace("user u3x ", "user u3 ")),
    # a table declared twice, in two files
    ("catalog/f000.veil", "a duplicate", lambda s: s + "table s0.t5 { id bigint }\n"),
    ("catalog/f000.veil", "no duplicate", lambda s: s.replace("table s0.t5 { id bigint }\n", "")),
    # a context file before the catalog, then a table in a context file
    ("a_first.veil", "a context file first", lambda s: "purpose Extra\nmask score with null\n"),
    ("people.veil", "a table in the context", lambda s: s + "table hr.people { id bigint }\n"),
    ("people.veil", "no table", lambda s: s.replace("table hr.people { id bigint }\n", "")),
    # `tag … on` in a context file: a near tag, an unknown column and table, a conflict,
    # the tagged column removed from its table, a bare column name (checked as a whole)
    ("tags.veil", "a tag on", lambda s: s + "tag phi.contcat on s0.t4.note\n"),
    ("tags.veil", "another tag on", lambda s: s + "tag phi.contcat on s0.t7.note\n"),
    ("tags.veil", "a tag on an unknown column", lambda s: s + "tag pii on s0.t4.nothing\n"),
    ("tags.veil", "tag on fixed", lambda s: s.replace("tag pii on s0.t4.nothing\n", "")),
    ("tags.veil", "a tag on an unknown table", lambda s: s + "tag pii on s7.t1.note\n"),
    ("tags.veil", "tag on fixed again", lambda s: s.replace("tag pii on s7.t1.note\n", "")),
    ("tags.veil", "a conflicting tag on", lambda s: s + "tag pii.email on s0.t4.card\n"),
    ("tags.veil", "no conflict", lambda s: s.replace("tag pii.email on s0.t4.card\n", "")),
    (
        "catalog/f001.veil",
        "the tagged column gone",
        lambda s: s.replace("  note text tags pii\n", "", 2),
    ),
    (
        "catalog/f001.veil",
        "the tagged column back",
        lambda s: s.replace("  placed_at", "  note text tags pii\n  placed_at", 2),
    ),
    ("tags.veil", "a tag on a bare name", lambda s: s + "tag pii on score\n"),
    ("tags.veil", "no bare name", lambda s: s.replace("tag pii on score\n", "")),
    # `test` blocks naming tables of several files, by full, partial and bare names; a row of
    # the wrong type; a column removed that a test names; a name two tables share
    (
        "tests.veil",
        "a test",
        lambda s: (
            s
            + 'test "a" {\n  as u1 in project p1\n  expect s0.t4.email masked\n'
            + '  expect t7.card masked\n  expect s0.t1 row { region: "EU" } visible\n}\n'
        ),
    ),
    ("tests.veil", "a bare test name", lambda s: s.replace("expect t7.card", "expect taxid")),
    (
        "catalog/f001.veil",
        "a test's column gone",
        lambda s: s.replace("  email varchar(254) tags pii_email\n", "  gone text\n", 2),
    ),
    (
        "catalog/f001.veil",
        "the test's column back",
        lambda s: s.replace("  gone text\n", "  email varchar(254) tags pii_email\n"),
    ),
    ("tests.veil", "a wrong row", lambda s: s.replace('region: "EU"', "region: 3")),
    ("tests.veil", "a right row", lambda s: s.replace("region: 3", 'region: "EU"')),
    (
        "catalog/f002.veil",
        "a second taxid",
        lambda s: s.replace("  score integer\n", "  score integer\n  taxid text\n", 1),
    ),
    ("catalog/f002.veil", "one taxid", lambda s: s.replace("  taxid text\n", "", 1)),
    (
        "tests.veil",
        "a test of another file",
        lambda s: s.replace("expect s0.t4.email", "expect s0.t8.email"),
    ),
    # rules of a context file on tables of catalog files: a filter, a mask that conflicts with
    # the table's own, one that does not, `= null` in a filter, a table named by a part of its
    # name (checked as a whole)
    (
        "rules.veil",
        "a filter elsewhere",
        lambda s: s + "filter s0.t4 where amount > 10 unless user u2\n",
    ),
    ("rules.veil", "a conflicting mask elsewhere", lambda s: s + "mask s0.t7.phone with hash\n"),
    (
        "rules.veil",
        "no conflict elsewhere",
        lambda s: s.replace("mask s0.t7.phone with hash\n", ""),
    ),
    (
        "rules.veil",
        "a mask elsewhere",
        lambda s: s + "mask s0.t7.score with round(10) unless purpose Fraud\n",
    ),
    ("rules.veil", "a null filter elsewhere", lambda s: s + "filter s0.t1 where region = null\n"),
    ("rules.veil", "a partial table name", lambda s: s + "restrict t5 to purpose Fraud\n"),
    ("rules.veil", "the full table name", lambda s: s.replace("restrict t5 ", "restrict s0.t5 ")),
    # a project source that does not exist, then exists
    ("projects.veil", "an unknown source", lambda s: s.replace("sources ", "sources s9.t99, ", 1)),
    ("catalog/f002.veil", "the source declared", lambda s: s + "table s9.t99 { id bigint }\n"),
]


def test_cross_file_edits_give_what_a_whole_check_gives(repo: Path, runs: Runs) -> None:
    _same_as_a_whole_check(runs)
    whole = []
    seen: dict[str, list[str]] = {}
    for rel, what, change in CROSS_FILE_EDITS:
        path = repo / rel
        if not path.exists():
            path.write_text("", encoding="utf-8")
        _edit(path, change)
        went = _same_as_a_whole_check(runs)
        seen[what] = went["units"]
        if went["whole"]:
            whole.append(what)
    # The others were checked file by file; an error is reported by a whole check.
    assert whole == [
        "a column mask",
        "a column with both tags",
        "the user removed",
        "a duplicate",
        "a table in the context",
        "a tag on an unknown column",
        "a tag on an unknown table",
        "a conflicting tag on",
        "the tagged column gone",
        "a tag on a bare name",
        "a test's column gone",
        "a wrong row",
        "a second taxid",
        "a conflicting mask elsewhere",
        "a partial table name",
        "an unknown source",
    ]
    assert seen["a null filter elsewhere"] == ["<context>", "catalog/f000.veil"]  # s0.t1's
    assert seen["another tag on"] == ["<context>", "catalog/f002.veil"]  # s0.t7's file only
    assert seen["a near tag"] == ["catalog/f000.veil"]


def test_a_corrupt_or_stale_index_never_changes_an_answer(
    repo: Path, runs: Runs, monkeypatch: pytest.MonkeyPatch
) -> None:
    _edit(repo / "policies.veil", lambda s: s + "mask tagged phi.ssn with null\n")
    _edit(repo / "catalog" / "f001.veil", lambda s: s.replace("tags pii.email", "tags pii_email"))
    expected = _output(cache=False)
    assert _output(cache=True) == expected
    entries = list((repo / ".veil-cache" / "index").iterdir())
    assert len(entries) == 1  # the units, summaries and context, one entry
    shutil.rmtree(repo / ".veil-cache" / "result")
    blobs = [e.read_bytes() for e in entries]
    damages = [
        lambda b: b[: len(b) // 2],
        lambda b: b[:-2] + bytes([b[-2] ^ 1]) + b[-1:],
        lambda b: bytes([b[0] ^ 1]) + b[1:],
        lambda b: b"",
    ]
    for damage in damages:
        for entry, blob in zip(entries, blobs, strict=True):
            entry.write_bytes(damage(blob))
        shutil.rmtree(repo / ".veil-cache" / "result", ignore_errors=True)
        assert _output(cache=True) == expected
    results = list((repo / ".veil-cache" / "result").iterdir())
    result = results[0].read_bytes()
    results[0].write_bytes(blobs[0])  # the index under the result's name
    entries[0].write_bytes(result)  # and the other way round
    assert _output(cache=True) == expected
    for entry, blob in zip(entries, blobs, strict=True):
        entry.write_bytes(blob)
    shutil.rmtree(repo / ".veil-cache" / "result", ignore_errors=True)
    runs["units"].clear()
    assert _output(cache=True) == expected and runs["units"] == []  # all read back
    import veil.cache

    _edit(repo / "catalog" / "f001.veil", lambda s: s.replace("tags pii_email", "tags pii.email"))
    expected = _output(cache=False)
    monkeypatch.setattr(veil.cache, "_source_fingerprint", lambda: b"another veil")
    runs["units"].clear()
    assert _output(cache=True) == expected  # a stale veil: every entry misses
    assert len(runs["units"]) == 4


def _random_edit(repo: Path, rng: random.Random, originals: dict[Path, str]) -> None:
    """One edit that may change what other files read (or break the repository), or a file
    put back as it was (so that broken repositories get fixed again)."""
    if rng.random() < 0.3:
        path = rng.choice(sorted(originals))
        path.write_text(originals[path], encoding="utf-8")
        return
    catalog = sorted((repo / "catalog").glob("*.veil"))
    f = rng.choice(catalog)
    column = rng.choice(["taxid", "note", "email", "ssn", "ok"])
    tag = rng.choice(["pii", "pii.card", "pii.x", "phi.ssn", "pii_email", "phi.contcat"])
    method = rng.choice(["null", "hash", "round(10)", "show_last(2)", 'constant("x")'])
    mask_line = rng.choice(
        [
            f"mask tagged {tag} with {method}\n",
            f"mask {column} with {method} unless purpose Fraud\n",
            f"mask tagged {tag} with {method} when ok = null\n",
            f"mask {column} with {method} unless user u{rng.randrange(22)}\n",
        ]
    )
    edits: list[tuple[Path, Callable[[str], str]]] = [
        (f, lambda s: s.replace("  score integer\n", f"  score integer\n  {column} text\n", 1)),
        (f, lambda s: s.replace(f"  {column} text\n", "", 1)),
        (f, lambda s: s.replace("  ok boolean\n", f"  ok boolean tags {tag}\n", 1)),
        (f, lambda s: s.replace(f" tags {tag}\n", "\n", 1)),
        (f, lambda s: "# a comment\n" + s),
        (f, lambda s: s + "table s0.t1 { id bigint }\n"),
        (repo / "policies.veil", lambda s: s + mask_line),
        (repo / "policies.veil", lambda s: s.replace(s.splitlines(keepends=True)[-1], "")),
        (repo / "people.veil", lambda s: s.replace(f"user u{rng.randrange(20)} ", "user gone ")),
        (
            repo / "a.veil",
            lambda s: s + rng.choice(["purpose Extra\n", "group extras\n", mask_line]),
        ),
        (repo / "tags.veil", lambda s: s + f"tag {tag} on s0.t{rng.randrange(10)}.{column}\n"),
        (repo / "tags.veil", lambda s: "".join(s.splitlines(keepends=True)[1:])),
        (repo / "tests.veil", lambda s: s + _random_test(rng, column)),
        (
            repo / "rules.veil",
            lambda s: (
                s
                + rng.choice(
                    [
                        f"filter s0.t{rng.randrange(10)} where {column} = null\n",
                        f"mask s0.t{rng.randrange(10)}.{column} with {method}\n",
                        f"restrict s0.t{rng.randrange(10)} to purpose Fraud\n",
                    ]
                )
            ),
        ),
        (repo / "rules.veil", lambda s: "".join(s.splitlines(keepends=True)[1:])),
        (repo / "tests.veil", lambda s: "".join(s.splitlines(keepends=True)[5:])),
    ]
    path, change = rng.choice(edits)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    path.write_text(change(text), encoding="utf-8")


def _random_test(rng: random.Random, column: str) -> str:
    """A `test` block of four lines naming a table or column in one of several ways."""
    table = f"s0.t{rng.randrange(10)}"
    expect = rng.choice(
        [
            f"expect {table}.{column} masked",
            f"expect t{rng.randrange(10)}.{column} clear",
            f"expect {column} masked",
            f'expect {table} row {{ region: "EU" }} visible',
            f"expect {table}.{column} row {{ region: 3 }} is null",
        ]
    )
    return f'test "t" {{\n  as u{rng.randrange(22)}\n  {expect}\n}}\n'


@pytest.mark.parametrize("seed", [2, 8])
def test_random_edits_give_what_a_whole_check_gives(repo: Path, runs: Runs, seed: int) -> None:
    """Thirty random edits in a row (30 seeds of them were run once: 900 edits, all equal)."""
    rng = random.Random(seed)
    originals = {p: p.read_text(encoding="utf-8") for p in repo.rglob("*.veil")}
    by_file = 0
    for _ in range(30):
        _random_edit(repo, rng, originals)
        done = _same_as_a_whole_check(runs)
        by_file += not done["whole"]
    assert by_file >= 10  # answered without a whole check (file by file, or the kept result)
