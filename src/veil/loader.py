"""Reading a policy repository: every `*.veil` file under the given paths, in sorted path order."""

from __future__ import annotations

import os
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from veil import ir
from veil.cache import ParseCache
from veil.diagnostics import Diagnostic, SourceMap, Span, error, sort_diagnostics
from veil.parser import parse_file

MAX_FILE_BYTES = 8 * 1024 * 1024


@dataclass(frozen=True, slots=True, kw_only=True)
class Loaded:
    """`result_key`: the name of the check result of exactly these parsed files in the cache
    (when `load` was given one and asked for it); `reused`: that result, when `load` found it
    (then `policies` is None: nothing was loaded)."""

    policies: ir.PolicySet | None
    sources: SourceMap
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[Path, ...]
    result_key: str | None = None
    reused: object | None = None


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


def _parse(
    text: str, name: str, data: bytes, cache: ParseCache | None
) -> tuple[ir.SourceFile | None, list[Diagnostic]]:
    if cache is not None:
        hit = cache.get(name, data)
        if _parsed(hit):
            return t.cast(tuple[ir.SourceFile | None, list[Diagnostic]], hit)
    parsed = parse_file(text, name)
    if cache is not None:
        cache.put(name, data, parsed)
    return parsed


def _parsed(value: object) -> bool:
    return (
        isinstance(value, tuple)
        and len(value) == 2
        and (value[0] is None or isinstance(value[0], ir.SourceFile))
        and isinstance(value[1], list)
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
    result_key = None
    fresh: dict[int, tuple[ir.SourceFile | None, list[Diagnostic]]] = {}
    if cache is not None and reuse and not diags:
        digests: list[tuple[str, bytes]] = []
        for i, (name, text, data) in enumerate(read):
            digest = cache.digest(name, data)
            if digest is None:  # parse it now; the result may still be there
                fresh[i] = parse_file(text, name)
                digest = cache.put(name, data, fresh[i])
            if digest is None:
                break
            digests.append((name, digest))
        else:
            result_key = cache.result_key(digests)
            reused = cache.get_result(result_key)
            if reused is not None:
                return Loaded(
                    policies=None,
                    sources=sources,
                    diagnostics=(),
                    files=tuple(files),
                    result_key=result_key,
                    reused=reused,
                )
    parsed: list[ir.SourceFile] = []
    for i, (name, text, data) in enumerate(read):
        source_file, file_diags = fresh[i] if i in fresh else _parse(text, name, data, cache)
        diags.extend(file_diags)
        if source_file is not None:
            parsed.append(source_file)
    ok = not any(d.is_error for d in diags)
    return Loaded(
        policies=ir.PolicySet(files=tuple(parsed)) if ok else None,
        sources=sources,
        diagnostics=tuple(sort_diagnostics(diags)),
        files=tuple(files),
        result_key=result_key,
    )
