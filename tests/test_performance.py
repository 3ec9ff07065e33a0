"""The behaviour that decides performance, asserted without a clock (bench/ prints the times).

The work of a stage is counted as the lines of veil's own code it executes (a `sys.settrace`
line count, which also counts every iteration of a comprehension or generator, so a scan of the
catalog per table shows up). On the synthetic repository of bench/synthetic.py every table
brings the same declarations and policies, so a linear stage does the same work for each table
added: the work added by the second batch of tables equals the work added by the first.
A stage with a scan per table adds more work for each batch than for the one before.
"""

from __future__ import annotations

import importlib.util
import sys
import types
import typing as t
from collections.abc import Callable
from pathlib import Path

import pytest

import veil
from veil import ir, model
from veil.loader import load

ROOT = Path(__file__).resolve().parents[1]
VEIL_DIR = str(Path(veil.__file__).resolve().parent)


def _synthetic() -> types.ModuleType:
    spec = importlib.util.spec_from_file_location("synthetic", ROOT / "bench" / "synthetic.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


synthetic = _synthetic()


def lines_run(fn: Callable[[], object], counted: Callable[[str], bool] | None = None) -> int:
    """How many lines of veil's source `fn()` executes (of the files `counted` accepts)."""
    count = 0

    def local(frame: types.FrameType, event: str, arg: object) -> object:
        nonlocal count
        if event == "line":
            count += 1
        return local

    def global_(frame: types.FrameType, event: str, arg: object) -> object:
        name = frame.f_code.co_filename
        if not name.startswith(VEIL_DIR) or (counted is not None and not counted(name)):
            return None
        return local

    old = sys.gettrace()
    sys.settrace(global_)
    try:
        fn()
    finally:
        sys.settrace(old)
    return count


@pytest.fixture(scope="module")
def repos(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """Repositories of 30, 60 and 90 tables (one, two and three catalog files)."""
    root = tmp_path_factory.mktemp("synthetic")
    return [synthetic.write(n, root / f"r{n}", per_file=30) for n in (30, 60, 90)]


def assert_linear(work: list[int]) -> None:
    first, second = work[1] - work[0], work[2] - work[1]
    # Equal batches of tables must add equal work; 2 % leaves room for sorting, which is not
    # linear but is done in C and barely shows in a line count.
    assert abs(second - first) <= 0.02 * first, (work, first, second)


def test_checking_does_the_same_work_for_every_table(repos: list[Path]) -> None:
    from veil.checker import check as run_checker

    loaded = [load([repo]).policies for repo in repos]

    def run(policies: ir.PolicySet | None) -> None:
        assert policies is not None and run_checker(policies).program is not None

    assert_linear([lines_run(lambda p=policies: run(p)) for policies in loaded])


@pytest.mark.parametrize("target", ["postgres", "snowflake", "databricks"])
def test_compiling_does_the_same_work_for_every_table(repos: list[Path], target: str) -> None:
    from veil.api import check, compile_program

    programs = [check([repo]).program for repo in repos]

    def run(program: model.Program | None) -> None:
        assert program is not None and compile_program(program, target)[0] is not None

    assert_linear([lines_run(lambda p=program: run(p)) for program in programs])


def test_a_recheck_after_one_file_changed_checks_that_file_only(
    repos: list[Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`veil check` after a column is added to one catalog file of 30 tables: the checker's
    passes do the same work in repositories of one, two and three catalog files (they check
    that file's unit; the others' diagnostics are read from the check cache)."""
    import shutil

    import veil.checker
    from veil.api import check

    monkeypatch.delenv("VEIL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    checker_dir = str(Path(VEIL_DIR) / "checker")

    def passes(name: str) -> bool:  # the passes, not the loop over the files' units
        return name.startswith(checker_dir) and not name.endswith("units.py")

    work = []
    for repo in repos:
        copy = shutil.copytree(repo, tmp_path / repo.name)
        monkeypatch.chdir(copy)
        assert check(["."], cache=True, program=False).ok
        changed = copy / "catalog" / "f000.veil"
        text = changed.read_text(encoding="utf-8")
        changed.write_text(text.replace("  score integer\n", "  score integer\n  x text\n", 1))
        work.append(lines_run(lambda: check(["."], cache=True, program=False), passes))
    # (a few lines of slack for the checker's memos of types and methods, warm after the first)
    assert work[0] > 0 and all(abs(w - work[0]) <= 10 for w in work), work
    policies = load([repos[2]]).policies
    assert policies is not None
    whole = lines_run(lambda: veil.checker.check(policies), passes)
    assert work[2] < whole / 2, (work, whole)  # not the whole repository's passes


@pytest.mark.parametrize("target", ["postgres", "snowflake", "databricks"])
def test_bodies_are_read_once_per_shape_not_per_table(
    repos: list[Path], target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Laying out the policy bodies reads the tokens of each shape (a body with its quoted
    names and literals blanked) once per script: three times the tables, the same reads."""
    from veil.api import check, compile_program
    from veil.targets import sqllines

    reads: list[str] = []
    read = sqllines._read

    def counted(sql: str, indent: str, backslash: bool) -> str:
        reads.append(sql)
        return read(sql, indent, backslash)

    monkeypatch.setattr(sqllines, "_read", counted)
    counts = []
    for repo in (repos[0], repos[2]):
        reads.clear()
        program = check([repo]).program
        assert program is not None and compile_program(program, target)[0] is not None
        counts.append(len(reads))
    assert 0 < counts[0] == counts[1], counts


# --------------------------------------------------------------------------------------------
# Lark's cache of the built parser


def _parse_with_fresh_parser(text: str) -> ir.SourceFile | None:
    from veil import parser

    built = parser._build()
    return parser._parse_file(text, "x.veil", built)[0]


SAMPLE = "table s.t {\n  id bigint\n  email varchar tags pii\n}\nmask tagged pii with hash\n"


def test_parser_cache_is_used_written_and_survives_corruption(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veil import parser

    monkeypatch.delenv("VEIL_NO_LARK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    path = parser.lark_cache_file()
    assert isinstance(path, str) and path.startswith(str(tmp_path / "veil"))
    assert (tmp_path / "veil").stat().st_mode & 0o777 == 0o700
    expected = _parse_with_fresh_parser(SAMPLE)
    assert expected is not None and Path(path).stat().st_size > 0  # written on first build
    assert _parse_with_fresh_parser(SAMPLE) == expected  # read back
    Path(path).write_bytes(b"garbage\n" + bytes(range(256)))
    assert _parse_with_fresh_parser(SAMPLE) == expected  # a corrupt file is rebuilt


def test_valid_files_are_parsed_without_importing_lark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The parse tables are kept as plain data in the private cache folder, so a command on
    valid files never imports Lark; a damaged tables file is rebuilt, with the same result."""
    import subprocess

    monkeypatch.delenv("VEIL_NO_LARK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("VEIL_NO_CACHE", "1")
    script = (
        "import sys; from veil.api import check; "
        f"c = check([{str(ROOT / 'examples' / 'payments')!r}]); "
        "print(c.ok, len(c.diagnostics), 'lark' in sys.modules)"
    )

    def run() -> str:
        done = subprocess.run(
            [sys.executable, "-c", script], capture_output=True, text=True, check=True
        )
        return done.stdout.strip()

    assert run() == "True 0 True"  # builds the tables with Lark and keeps them
    (tables,) = (tmp_path / "veil").glob("tables-*.marshal")
    assert tables.stat().st_mode & 0o077 == 0
    assert run() == "True 0 False"
    for damage in (b"", b"garbage", tables.read_bytes()[:100]):
        tables.write_bytes(damage)
        assert run() == "True 0 True"  # rebuilt
        assert run() == "True 0 False"


def test_parser_cache_is_never_read_from_a_folder_others_can_write(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veil import parser

    monkeypatch.delenv("VEIL_NO_LARK_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    (tmp_path / "veil").mkdir(mode=0o700)
    (tmp_path / "veil").chmod(0o777)
    assert parser.lark_cache_file() is False
    (tmp_path / "veil").chmod(0o700)
    assert isinstance(parser.lark_cache_file(), str)
    (tmp_path / "other").write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "other"))
    assert parser.lark_cache_file() is False  # no cache folder: parse without a cache
    assert _parse_with_fresh_parser(SAMPLE) is not None


# --------------------------------------------------------------------------------------------
# The parser builds IR while parsing; it must build exactly what the tree walk built.


def _with_spans(value: object) -> object:
    """`value` with every field, spans included (IR equality leaves spans out)."""
    import dataclasses

    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return (
            type(value).__name__,
            tuple((f.name, _with_spans(getattr(value, f.name))) for f in dataclasses.fields(value)),
        )
    if isinstance(value, tuple | list):
        return tuple(_with_spans(v) for v in value)
    return value


def _via_tree(text: str, path: str) -> tuple[ir.SourceFile | None, list[object]]:
    """The former parse: a Lark tree with propagated positions, walked into IR."""
    from veil import parser
    from veil.transformer import ToIR, TransformError

    try:
        tree = parser.parse_tree(text, path, parser._lark_with_positions())
    except parser.ParseFailure as f:
        return None, [f.diagnostic]
    builder = ToIR(path)
    try:
        statements = parser._build_ir(tree, builder)
    except TransformError as e:
        return None, [e.diagnostic]
    if builder.diagnostics:
        return None, list(builder.diagnostics)
    return ir.SourceFile(path=path, statements=tuple(statements)), []


TRICKY = [
    "mask t.c with hash when (a = 1) and ((b in (1, 2))) unless (purpose P or (group g))\n",
    "filter s.t where not (x between -1 and 2 + 3) and y is not null unless not (purpose P)\n",
    "restrict s.t to purpose P, any purpose unless user bob\n",
    'mask t.c when region = "EU" {\n  reveal for purpose P\n  with hash for group g\n'
    "  with null otherwise\n}\n",
    'mask t.c with regex("a\\\\qb", "x")\nmask t.d with\n',  # bad escape, then a syntax error
    'mask t.c with constant("a\\\\qb")\n',
    "mask table.c with hash\n",
    'user `a``b` { groups x, y\n region "EU",\n "US" }\n',
    "mask t.c with round(-2)\n" + "filter t where " + "(" * 300 + "a = 1" + ")" * 300 + "\n",
    "filter t where " + "(" * 60 + "a = 1" + ")" * 60 + "\n",
    "",
    "\n\n;\n",
]


def _sources() -> list[tuple[str, str]]:
    files = sorted((ROOT / "examples").rglob("*.veil")) + sorted((ROOT / "tests").rglob("*.veil"))
    out = [(str(f.relative_to(ROOT)), f.read_text(encoding="utf-8")) for f in files]
    out += [(f"tricky{i}.veil", text) for i, text in enumerate(TRICKY)]
    out += [(f"synthetic/{k}", v) for k, v in synthetic.files(12, per_file=6).items()]
    # every prefix of every example, cut at a line end: syntax errors at every kind of place
    for path, text in list(out[: len(files)]):
        lines = text.splitlines(keepends=True)
        out += [(f"{path}:{n}", "".join(lines[:n])) for n in range(1, len(lines), 3)]
    return out


@pytest.mark.parametrize("loop", ["veil", "lark"])
def test_ir_built_while_parsing_equals_the_tree_walk_spans_included(
    loop: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from veil import parser

    if loop == "lark":  # what parses a file that veil's loop leaves to Lark's
        monkeypatch.setattr(parser, "_tables_for", lambda lark: None)
    for path, text in _sources():
        fast, fast_diags = parser.parse_file(text, path)
        slow, slow_diags = _via_tree(text, path)
        assert _with_spans(fast) == _with_spans(slow), path
        assert fast_diags == slow_diags, path


def test_lark_loop_parses_only_files_with_a_syntax_error(monkeypatch: pytest.MonkeyPatch) -> None:
    """veil's loop (`lalr.parse`) parses every valid file; Lark's only re-parses a file to
    report its syntax error."""
    from veil import lalr, parser

    fell_back: list[bool] = []
    parse = lalr.parse

    def counting(*args: object) -> object:
        try:
            result = parse(*args)  # type: ignore[arg-type]
        except lalr.Fallback:
            fell_back.append(True)
            raise
        fell_back.append(False)
        return result

    monkeypatch.setattr(lalr, "parse", counting)
    checked = 0
    for path, text in _sources():
        fell_back.clear()
        _, diags = parser.parse_file(text, path)
        syntax_error = any(d.code in ("P0001", "P0002") for d in diags)
        assert fell_back == [syntax_error], path
        checked += not syntax_error
    assert checked > 50


# --------------------------------------------------------------------------------------------
# The check cache (.veil-cache/): hit on a second run, never a changed answer


@pytest.fixture
def cache_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A working directory with a copy of examples/ and a private cache home of its own."""
    import shutil

    monkeypatch.delenv("VEIL_NO_CACHE", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "home-cache"))
    work = tmp_path / "work"
    shutil.copytree(ROOT / "examples", work / "examples")
    monkeypatch.chdir(work)
    return work


def _veil_check(*paths: str) -> tuple[int, str]:
    from click.testing import CliRunner

    from veil.cli import main

    result = CliRunner().invoke(main, ["check", *paths])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output
    return result.exit_code, result.output


CACHED_INPUTS = ("examples/payments", "examples/broken/syntax.veil", "examples/broken/names.veil")


def test_the_parse_cache_is_hit_on_a_second_run(cache_home: Path) -> None:
    from veil.cache import ParseCache

    first = ParseCache.open()
    assert first is not None
    load(["examples/payments"], first)
    files = len(list((cache_home / "examples" / "payments").rglob("*.veil")))
    assert (first.hits, first.misses) == (0, files)
    second = ParseCache.open()
    assert second is not None
    assert load(["examples/payments"], second).policies == load(["examples/payments"]).policies
    assert (second.hits, second.misses) == (files, 0)
    assert (cache_home / ".veil-cache" / ".gitignore").read_text().splitlines()[-1] == "*"
    changed = cache_home / "examples" / "payments" / "purposes.veil"
    changed.write_text(changed.read_text() + "\n# changed\n")
    third = ParseCache.open()
    assert third is not None
    load(["examples/payments"], third)
    assert (third.hits, third.misses) == (files - 1, 1)


def test_a_corrupt_or_foreign_cache_never_changes_an_answer(cache_home: Path) -> None:
    expected = [_veil_check(p) for p in CACHED_INPUTS]
    assert [_veil_check(p) for p in CACHED_INPUTS] == expected  # from the cache
    entries = sorted((cache_home / ".veil-cache" / "parse").iterdir())
    assert len(entries) >= 3
    results = sorted((cache_home / ".veil-cache" / "result").iterdir())
    assert len(results) == len(CACHED_INPUTS)
    entries += results
    blobs = [e.read_bytes() for e in entries]
    damages = [
        lambda b: b[: len(b) // 2],  # truncated
        lambda b: b[:-2] + bytes([b[-2] ^ 1]) + b[-1:],  # one bit of the pickle flipped
        lambda b: b[:33] + bytes([b[33] ^ 1]) + b[34:],  # a parsed file's digest, a result
        lambda b: bytes([b[0] ^ 1]) + b[1:],  # one bit of the signature flipped
        lambda b: b"",
    ]
    for damage in damages:
        for entry, blob in zip(entries, blobs, strict=True):
            entry.write_bytes(damage(blob))
        assert [_veil_check(p) for p in CACHED_INPUTS] == expected
    for entry, blob in zip(entries, blobs[1:] + blobs[:1], strict=True):
        entry.write_bytes(blob)  # every entry moved to another file's name
    assert [_veil_check(p) for p in CACHED_INPUTS] == expected
    for entry in entries:  # a stale version of veil: every entry misses, nothing changes
        entry.write_bytes(blobs[entries.index(entry)])
    import veil.cache

    real = veil.cache._code_fingerprint, veil.cache._source_fingerprint
    try:
        veil.cache._code_fingerprint = lambda: b"another veil"  # type: ignore[assignment]
        veil.cache._source_fingerprint = lambda: b"another veil"  # type: ignore[assignment]
        assert [_veil_check(p) for p in CACHED_INPUTS] == expected
    finally:
        veil.cache._code_fingerprint, veil.cache._source_fingerprint = real


def test_an_unsigned_cache_entry_is_never_unpickled(cache_home: Path) -> None:
    """`.veil-cache/` is in the working tree, which a pull request can write: a planted pickle
    must not run. Without the user's key it cannot be signed, so it is never loaded."""
    import hashlib
    import pickle

    from veil.cache import ParseCache

    expected = _veil_check("examples/payments")
    marker = cache_home / "pwned"

    class Payload:
        def __reduce__(self) -> tuple[object, tuple[str]]:
            return (marker.write_text, ("code ran",))

    evil = pickle.dumps(Payload())
    for entry in (cache_home / ".veil-cache" / "parse").iterdir():
        guess = hashlib.sha256(b"a guess").digest()
        entry.write_bytes(guess + hashlib.sha256(evil).digest() + evil)
    for entry in (cache_home / ".veil-cache" / "result").iterdir():
        entry.write_bytes(hashlib.sha256(b"a guess").digest() + evil)
    cache = ParseCache.open()
    assert cache is not None
    load(["examples/payments"], cache)
    assert cache.hits == 0
    assert _veil_check("examples/payments") == expected
    assert not marker.exists()


def test_the_check_result_is_reused_while_the_parsed_files_are_the_same(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """`veil check` reads the diagnostics of a repository whose parsed files (IR, spans and
    parse diagnostics) are all as in an earlier check, without loading or checking anything; any
    change to a parsed file checks again (as a whole or file by file: both count)."""
    import veil.checker
    from veil.checker import units

    runs: list[int] = []
    real, real_unit = veil.checker.check, units._check

    def counting(policies: ir.PolicySet) -> object:
        runs.append(1)
        return real(policies)

    def counting_unit(*args: t.Any) -> object:
        runs.append(1)
        return real_unit(*args)

    monkeypatch.setattr(veil.checker, "check", counting)
    monkeypatch.setattr(units, "_check", counting_unit)

    def check_runs() -> tuple[tuple[int, str], int]:
        runs.clear()
        return _veil_check("examples/payments"), len(runs)

    expected, n = check_runs()
    assert n >= 1 and expected[0] == 0
    assert check_runs() == (expected, 0)
    purposes = cache_home / "examples" / "payments" / "purposes.veil"
    original = purposes.read_text()
    purposes.write_text(original + "\n# a comment at the end moves nothing\n")
    assert check_runs() == (expected, 0)
    purposes.write_text("# a comment above moves every span\n" + original)
    output, n = check_runs()
    assert output == expected and n >= 1
    purposes.write_text(original + "mask nowhere.c with hash\n")
    (code, output), n = check_runs()
    assert n >= 1 and code == 1 and "nowhere.c" in output
    assert check_runs()[1] == 0  # the failed result is reused too
    purposes.write_text(original)
    assert check_runs() == (expected, 0)


def test_parsing_on_two_processes_gives_what_one_process_gives(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from veil import loader

    batch = [(text, path) for path, text in _sources()[:120]]
    serial = [_with_spans(value) for value, _ in loader.parse_many(batch)]
    monkeypatch.setattr(loader, "PARALLEL_CHARS", 0)
    monkeypatch.setattr(loader, "_two_cores", lambda: True)
    both = loader.parse_many(batch)
    assert [_with_spans(value) for value, _ in both] == serial
    assert all(blob is None for _, blob in both[: len(batch) // 3])  # parsed here
    assert all(blob is not None for _, blob in both[-(len(batch) // 3) :])  # by the child
    monkeypatch.setattr(loader, "_fork_parse", lambda batch: lambda: None)  # a failed child
    assert [_with_spans(value) for value, _ in loader.parse_many(batch)] == serial


def test_files_parsed_on_two_processes_are_stored_and_reused(
    cache_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With two processes, the parent's files are stored by a forked process while it checks:
    every file is in the cache afterwards, and the next run reuses the result."""
    import veil.checker
    from veil import loader

    expected = _veil_check("examples/payments")
    monkeypatch.setattr(loader, "PARALLEL_CHARS", 0)
    monkeypatch.setattr(loader, "_two_cores", lambda: True)
    import shutil

    shutil.rmtree(cache_home / ".veil-cache")
    assert _veil_check("examples/payments") == expected
    files = len(list((cache_home / "examples" / "payments").rglob("*.veil")))
    assert len(list((cache_home / ".veil-cache" / "parse").iterdir())) == files
    runs: list[int] = []
    real = veil.checker.check
    monkeypatch.setattr(veil.checker, "check", lambda p: runs.append(1) or real(p))
    assert _veil_check("examples/payments") == expected
    assert runs == []


def test_the_transformers_fast_makers_make_what_the_classes_make() -> None:
    """The IR nodes the transformer makes without their `__init__` (cache.keyword_maker) are
    the objects the classes make, field by field, defaults and spans included."""
    import dataclasses

    from veil import transformer
    from veil.cache import keyword_maker, make_span
    from veil.diagnostics import Span

    span = Span(file="f.veil", line=2, col=3, end_line=4, end_col=5)
    assert _with_spans(make_span(("f.veil", 2, 3, 4, 5))) == _with_spans(span)
    tag = ir.TagPath(parts=("pii", "email"), span=span)
    cases: list[tuple[type, dict[str, object]]] = [
        (ir.ObjectName, {"parts": ("s", "t"), "span": span}),
        (ir.ObjectName, {"parts": ("t",)}),
        (ir.TagPath, {"parts": ("pii",), "span": span}),
        (ir.Name, {"value": "Fraud Detection", "span": span}),
        (ir.ColumnType, {"name": "varchar", "params": (19,), "span": span}),
        (ir.ColumnType, {"name": "text"}),
        (ir.Column, {"name": "c", "type": ir.ColumnType(name="t"), "tags": (tag,), "span": span}),
        (ir.Column, {"name": "c", "type": ir.ColumnType(name="text")}),
    ]
    for cls, fields in cases:
        made = keyword_maker(cls)(**fields)
        assert type(made) is cls
        assert _with_spans(made) == _with_spans(cls(**fields))
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.span = span  # type: ignore[misc]
    assert transformer._Column is not ir.Column  # the transformer does use a maker
