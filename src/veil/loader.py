"""Reading a policy repository: every `*.veil` file under the given paths, in sorted path order."""

from __future__ import annotations

import os
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
    policies: ir.PolicySet | None
    sources: SourceMap
    diagnostics: tuple[Diagnostic, ...]
    files: tuple[Path, ...]


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
        if (
            isinstance(hit, tuple)
            and len(hit) == 2
            and (hit[0] is None or isinstance(hit[0], ir.SourceFile))
            and isinstance(hit[1], list)
        ):
            return hit
    parsed = parse_file(text, name)
    if cache is not None:
        cache.put(name, data, parsed)
    return parsed


def load(paths: Sequence[str | Path], cache: ParseCache | None = None) -> Loaded:
    """Parse every file; all syntax errors of all files are reported together. With `cache`,
    a file parsed before with the same name and bytes is read from it instead."""
    files, diags = find_files(paths)
    sources = SourceMap()
    parsed: list[ir.SourceFile] = []
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
        source_file, file_diags = _parse(text, name, data, cache)
        diags.extend(file_diags)
        if source_file is not None:
            parsed.append(source_file)
    ok = not any(d.is_error for d in diags)
    return Loaded(
        policies=ir.PolicySet(files=tuple(parsed)) if ok else None,
        sources=sources,
        diagnostics=tuple(sort_diagnostics(diags)),
        files=tuple(files),
    )
