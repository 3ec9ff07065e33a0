"""The public API: load, check, compile, explain. The CLI is a thin layer over these."""

from __future__ import annotations

import contextlib
import gc
import typing as t
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from veil import ir, model
from veil.config import Config, accept, display_path
from veil.diagnostics import Diagnostic, SourceMap, VeilError, sort_diagnostics
from veil.loader import Loaded, load

if t.TYPE_CHECKING:
    from veil.targets.base import Options


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """A loaded and checked repository. `program` is None when there are errors."""

    program: model.Program | None
    diagnostics: tuple[Diagnostic, ...]
    sources: SourceMap
    files: tuple[Path, ...]
    policies: ir.PolicySet | None = None  # as parsed, for `veil.toml` acceptances
    #: The caller asked for the diagnostics only (`check(..., program=False)`): `program` and
    #: `policies` may be None although there is no error.
    diagnostics_only: bool = False

    @property
    def ok(self) -> bool:
        return (self.program is not None or self.diagnostics_only) and not any(
            d.is_error for d in self.diagnostics
        )


@contextlib.contextmanager
def acyclic_work() -> Iterator[None]:
    """Pause the cyclic garbage collector while parsing, checking or lowering.

    These stages allocate millions of small objects (tokens, IR nodes, SQL fragments) that form
    no reference cycles, so reference counting frees everything they drop; the collector would
    only rescan the growing heap again and again (35-45 % of `veil check` time at 10,000 tables).
    Afterwards the survivors (the program, the script) are frozen (`gc.freeze`) before the
    collector is switched back on: otherwise its next run scans every one of them once more
    (another 15 % at 2,000 tables). Frozen objects are still freed by reference counting when
    dropped; only a reference cycle made meanwhile would stay until exit, and veil's stages
    make none worth the scan. This is the one place veil touches the collector.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.freeze()
            gc.enable()


def check(
    paths: Sequence[str | Path],
    *,
    strict: bool = False,
    config: Config | None = None,
    cache: bool = False,
    program: bool = True,
) -> Checked:
    """Load and check; with `strict`, warnings count as errors. `config` (a `veil.toml`) marks
    the warnings it accepts, which then count as neither. `cache`: read and write parsed files
    in `.veil-cache/` of the working directory (see `veil.cache`; the CLI turns it on).
    `program=False`: the caller needs the diagnostics only (`veil check`); with `cache`, the
    diagnostics of a repository whose parsed files are all as in an earlier check are then
    read from the cache, and nothing is loaded or checked."""
    with acyclic_work():
        return _check(paths, strict=strict, config=config, cache=cache, program=program)


def _check(
    paths: Sequence[str | Path],
    *,
    strict: bool,
    config: Config | None,
    cache: bool,
    program: bool,
) -> Checked:
    from veil.cache import ParseCache
    from veil.checker import check as run_checker

    parse_cache = ParseCache.open() if cache else None
    # The result depends on the parsed files only; acceptances read the IR, so a repository
    # with some is checked every time.
    reuse = not program and not (config is not None and config.accepts)
    loaded: Loaded = load(paths, parse_cache, reuse=reuse)
    diags: list[Diagnostic]
    checked_program: model.Program | None = None
    if loaded.reused is not None:
        # Checked file by file: kept for the whole repository too, as a whole check is.
        diags = list(loaded.reused)
    else:
        diags = list(loaded.diagnostics)
        if loaded.policies is not None:
            result = run_checker(loaded.policies)
            diags.extend(result.diagnostics)
            checked_program = result.program
    key = loaded.result_key() if loaded.result_key is not None else None
    if parse_cache is not None and key is not None:
        parse_cache.put_result(key, tuple(diags))
    if config is not None and config.accepts:
        diags = accept(config, diags, loaded.policies, loaded.sources.line)
        if config.path is not None:
            loaded.sources.add(display_path(config.path), config.path.read_text(encoding="utf-8"))
    if strict:
        diags = [d.as_error() for d in diags]
    diags = sort_diagnostics(diags)
    if any(d.is_error for d in diags):
        checked_program = None
    return Checked(
        program=checked_program,
        diagnostics=tuple(diags),
        sources=loaded.sources,
        files=loaded.files,
        policies=loaded.policies,
        diagnostics_only=not program,
    )


def target_options(config: Config, target: str) -> Options:
    """The compile options of `target` that the repository's `veil.toml` sets."""
    from veil.targets.base import Options

    return Options(native_tags=target in config.native_tags)


def compile_program(
    program: model.Program, target: str, options: Options | None = None
) -> tuple[str | None, list[Diagnostic]]:
    """Render a checked program; the target's own rules are checked first."""
    from veil.targets import get_target

    tgt = get_target(target, options)
    with acyclic_work():
        diags = sort_diagnostics(tgt.check(program))
        if any(d.is_error for d in diags):
            return None, diags
        return tgt.render(program), diags


def compile(paths: Sequence[str | Path], target: str, *, strict: bool = False) -> str:
    """Check and compile; raises VeilError with the diagnostics on any error."""
    checked = check(paths, strict=strict)
    if checked.program is None:
        raise VeilError(checked.diagnostics)
    sql, diags = compile_program(checked.program, target)
    if strict:
        diags = [d.as_error() for d in diags]
    if sql is None or any(d.is_error for d in diags):
        raise VeilError(diags)
    return sql
