"""Reading a policy repository: every `*.veil` file under the given paths, in sorted path order."""

from __future__ import annotations

import os
import pickle
import sys
import threading
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from veil import ir
from veil.cache import ParseCache, dumps
from veil.diagnostics import Diagnostic, SourceMap, Span, error, sort_diagnostics
from veil.parser import parse_file

MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """`result_key()`: the name of the check result of exactly these parsed files in the
    cache (when `load` was given one and asked for it), or None when some file could not be
    stored; it may wait for the process that stores them. `reused`: that result, when `load`
    found it (then `policies` is None: nothing was loaded)."""

    policies: ir.PolicySet | None
    sources: SourceMap
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[Path, ...]
    result_key: t.Callable[[], str | None] | None = None
    reused: tuple[Diagnostic, ...] | None = None


def _display(path: Path) -> str:
    """Paths relative to the working directory when below it, so diagnostics stay short."""
    try:
        return os.path.relpath(path) if not os.path.relpath(path).startswith("..") else str(path)
    except ValueError:  # pragma: no cover - another drive on Windows
        return str(path)


def find_files(paths: Sequence[str | Path]) -> tuple[list[Path], list[Diagnostic]]:
    files: list[Path] = []
    diags: list[Diagnostic] = []
    for raw in paths:
        p = Path(raw)
        where = Span.point(str(raw), 1, 1)
        if not p.exists():
            diags.append(
                error(
                    "L0001",
                    f"no such file or directory `{raw}`",
                    where,
                    help="give a policy file or a directory of *.veil files",
                )
            )
        elif p.is_dir():
            found = sorted(q for q in p.rglob("*.veil") if q.is_file())
            if not found:
                diags.append(
                    error(
                        "L0002",
                        f"no `*.veil` files under `{raw}`",
                        where,
                        help="policy files end in .veil",
                    )
                )
            files.extend(found)
        else:
            files.append(p)
    unique = sorted({f.resolve(): f for f in files}.values(), key=lambda f: str(f.resolve()))
    return unique, diags


Parsed = tuple[ir.SourceFile | None, list[Diagnostic]]

#: Below this much text, parsing on a second process costs more than it saves.
PARALLEL_CHARS = 1 << 20
#: Set to 1 to parse on one process only.
JOBS = "VEIL_JOBS"


def parse_many(batch: list[tuple[str, str]]) -> list[tuple[Parsed, bytes | None]]:
    """Parse (text, name) pairs, in order: each file's IR or diagnostics, and the pickle of
    it (`cache.dumps`) when another process parsed it.

    A large batch is split by size and its last files parsed by a forked process,
    which sends the parsed files back pickled (reading a pickle costs about a fifth of
    parsing). The parent writes those pickles to the cache as they are. Should the child fail
    in any way, the parent parses its files too; the result is the same either way.
    """
    total = sum(len(text) for text, _ in batch)
    if total < PARALLEL_CHARS or len(batch) < 2 or not _two_cores():
        return [(parse_file(text, name), None) for text, name in batch]
    # The child also pickles what it parses and pays for the pages it copies from the parent
    # (together its files cost it about 1.6 times what parsing them costs the parent), so it
    # takes about two fifths of the text, to finish when the parent does.
    half, size = 0, 0
    while size < total * 3 // 5:
        size += len(batch[half][0])
        half += 1
    mine, theirs = batch[:half], batch[half:]
    child = _fork_parse(theirs)
    out: list[tuple[Parsed, bytes | None]] = [(parse_file(text, name), None) for text, name in mine]
    blobs = child()
    if blobs is None or len(blobs) != len(theirs):
        return out + [(parse_file(text, name), None) for text, name in theirs]
    for (text, name), blob in zip(theirs, blobs, strict=True):
        value = pickle.loads(blob)  # from our own child
        out.append((value, blob) if _parsed(value) else (parse_file(text, name), None))
    return out


def _two_cores() -> bool:
    """Forking is worth it and safe: Linux, two cores and one of them idle (the load average
    below the cores less a half), and no other thread (a forked child of a threaded program
    could wait forever on a lock another thread held)."""
    if os.environ.get(JOBS, "").strip() == "1" or sys.platform != "linux":
        return False  # fork is Linux's to trust here; elsewhere one process does it all
    if threading.active_count() != 1:
        return False
    try:
        cores = len(os.sched_getaffinity(0))
        # A second process only helps when a core is idle; on a busy machine it costs CPU
        # that other programs would have used, for no earlier answer.
        return cores >= 2 and os.getloadavg()[0] < cores - 0.5
    except (AttributeError, OSError):  # pragma: no cover - no affinity on this system
        return False


def _fork_parse(batch: list[tuple[str, str]]) -> t.Callable[[], list[bytes] | None]:
    """Start parsing `batch` in a forked process; the returned function waits for its
    pickles (None if the child failed or could not start)."""
    return _fork(lambda: [dumps(parse_file(text, name)) for text, name in batch])


_T = t.TypeVar("_T")


def _fork(work: t.Callable[[], list[_T]]) -> t.Callable[[], list[_T] | None]:
    """Run `work` in a forked process; the returned function waits for the list it made
    (None if the child failed or could not start)."""
    try:
        read_end, write_end = os.pipe()
        pid = os.fork()
    except OSError:
        return lambda: None
    if pid == 0:  # the child: work, send, and leave without running the parent's exit code
        code = 1
        try:
            os.close(read_end)
            payload = pickle.dumps(work())
            with os.fdopen(write_end, "wb") as pipe:
                pipe.write(payload)
            code = 0
        finally:
            os._exit(code)
    os.close(write_end)

    def wait() -> list[_T] | None:
        with os.fdopen(read_end, "rb") as pipe:
            payload = pipe.read()
        _, status = os.waitpid(pid, 0)
        if status != 0:
            return None
        made = pickle.loads(payload)  # from our own child, through a pipe
        return made if isinstance(made, list) else None

    return wait


def _parsed(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and (value[0] is None or isinstance(value[0], ir.SourceFile))
        and isinstance(value[1], list)
    )


def _from_cache(cache: ParseCache | None, name: str, data: bytes) -> Parsed | None:
    """The parsed file kept in `cache` for this name and bytes, if any."""
    hit = cache.get(name, data) if cache is not None else None
    return t.cast(Parsed, hit) if _parsed(hit) else None


def _check_by_file(
    cache: ParseCache,
    read: list[tuple[str, str, bytes]],
    values: dict[int, Parsed],
    parse: t.Callable[[list[int]], None],
) -> tuple[Diagnostic, ...] | None:
    """The diagnostics of loading and checking these files, file by file from the cache
    (`checker/units.py`), reading or parsing only the files it needs; None when the
    repository must be checked as a whole."""
    from veil.checker.units import File, check_quickly

    def parsed(i: int) -> Parsed:
        if i not in values:
            hit = _from_cache(cache, read[i][0], read[i][2])
            if hit is not None:
                values[i] = hit
            else:
                parse([i])
        return values[i]

    return check_quickly(
        cache,
        [
            File(name=name, data=data, parsed=lambda i=i: parsed(i))  # type: ignore[misc]
            for i, (name, _, data) in enumerate(read)
        ],
    )


def load(
    paths: Sequence[str | Path], cache: ParseCache | None = None, *, reuse: bool = False
) -> Loaded:
    """Parse every file; all syntax errors of all files are reported together. With `cache`,
    a file parsed before with the same name and bytes is read from it instead. With `reuse`
    too, the cached result of checking the same parsed files is looked up first (by the
    digests of the parsed files, without reading them), and nothing is loaded when it is
    there."""
    files, diags = find_files(paths)
    sources = SourceMap()
    read: list[tuple[str, str, bytes]] = []
    for f in files:
        name = _display(f)
        where = Span.point(name, 1, 1)
        try:
            data = f.read_bytes()
        except OSError as e:
            diags.append(error("L0003", f"cannot read `{name}`: {e.strerror}", where))
            continue
        if len(data) > MAX_FILE_BYTES:
            diags.append(
                error(
                    "L0004",
                    f"`{name}` is larger than {MAX_FILE_BYTES} bytes",
                    where,
                    help="policy files are text; split large catalogs into files",
                )
            )
            continue
        if b"\0" in data:
            diags.append(
                error(
                    "L0004",
                    f"`{name}` is a binary file, not a policy file",
                    where,
                    help="policy files are UTF-8 text",
                )
            )
            continue
        try:
            text = data.decode("utf-8-sig")
        except UnicodeDecodeError as e:
            line = data[: e.start].count(b"\n") + 1
            diags.append(
                error(
                    "L0005",
                    f"`{name}` is not valid UTF-8",
                    Span.point(name, line, 1),
                    help="save the file as UTF-8",
                )
            )
            continue
        sources.add(name, text)
        read.append((name, text, data))
    values: dict[int, Parsed] = {}
    digests: dict[int, bytes | None] = {}
    pending: list[tuple[list[int], t.Callable[[], list[bytes | None] | None]]] = []

    def parse(indices: list[int]) -> None:
        """Parse these files (into `values`) and store them in the cache (their digests into
        `digests`). When another process parsed some of them, the parent's own are stored by a
        forked process meanwhile (pickling them is a tenth of the parse), whose digests
        `pending` waits for."""
        batch = [(read[i][1], read[i][0]) for i in indices]
        parsed = parse_many(batch)
        own = []
        for i, (value, blob) in zip(indices, parsed, strict=True):
            values[i] = value
            if cache is not None and blob is not None:
                digests[i] = cache.put(read[i][0], read[i][2], value, blob)
            elif cache is not None:
                own.append(i)
        if cache is None or not own:
            return
        if len(own) < len(indices):  # two processes parsed them: two store them
            store = cache
            pending.append((own, _fork(lambda: [store.put(*read_value(i)) for i in own])))
        else:
            digests.update((i, cache.put(*read_value(i))) for i in own)

    def read_value(i: int) -> tuple[str, bytes, Parsed]:
        return read[i][0], read[i][2], values[i]

    def result_key() -> str | None:
        assert cache is not None
        for own, wait in pending:
            stored = wait()
            digests.update(zip(own, stored or [None] * len(own), strict=True))
        pending.clear()
        known = [(read[i][0], digests.get(i)) for i in range(len(read))]
        if any(d is None for _, d in known):
            return None
        return cache.result_key(t.cast(list[tuple[str, bytes]], known))

    keyed = cache is not None and reuse and not diags
    if keyed:
        assert cache is not None
        digests.update((i, cache.digest(name, data)) for i, (name, _, data) in enumerate(read))
        parse([i for i, d in digests.items() if d is None])
        # Every file has its digest, unless so many were parsed that they are still being
        # stored (a result for them would be a coincidence): the result may still be there.
        if not pending:
            key = result_key()
            reused = cache.get_result(key) if key is not None else None
            if reused is not None:
                return Loaded(
                    policies=None,
                    sources=sources,
                    diagnostics=(),
                    files=tuple(files),
                    reused=reused,
                )
        quick = _check_by_file(cache, read, values, parse)
        if quick is not None:
            return Loaded(
                policies=None,
                sources=sources,
                diagnostics=(),
                files=tuple(files),
                result_key=result_key,
                reused=quick,
            )
    missing = []
    for i, (name, _, data) in enumerate(read):
        if i not in values:
            hit = _from_cache(cache, name, data)
            if hit is not None:
                values[i] = hit
            else:
                missing.append(i)
    parse(missing)
    if pending and not keyed:
        result_key()  # wait for the files to be stored (nobody asks for the key)
    parsed: list[ir.SourceFile] = []
    for i in range(len(read)):
        source_file, file_diags = values[i]
        diags.extend(file_diags)
        if source_file is not None:
            parsed.append(source_file)
    ok = not any(d.is_error for d in diags)
    return Loaded(
        policies=ir.PolicySet(files=tuple(parsed)) if ok else None,
        sources=sources,
        diagnostics=tuple(sort_diagnostics(diags)),
        files=tuple(files),
        result_key=result_key if keyed else None,
    )
