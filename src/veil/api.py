"""The public API: load, check, compile, explain. The CLI is a thin layer over these."""

from __future__ import annotations

import contextlib
import gc
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from veil import ir, model
from veil.config import Config, accept, display_path
from veil.diagnostics import Diagnostic, SourceMap, VeilError, sort_diagnostics
from veil.loader import Loaded, load


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """A loaded and checked repository. `program` is None when there are errors."""

    program: model.Program | None
    diagnostics: tuple[Diagnostic, ...]
    sources: SourceMap
    files: tuple[Path, ...]
    policies: ir.PolicySet | None = None  # as parsed, for `veil.toml` acceptances

    @property
    def ok(self) -> bool:
        return self.program is not None and not any(d.is_error for d in self.diagnostics)


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
) -> Checked:
    """Load and check; with `strict`, warnings count as errors. `config` (a `veil.toml`) marks
    the warnings it accepts, which then count as neither. `cache`: read and write parsed files
    in `.veil-cache/` of the working directory (see `veil.cache`; the CLI turns it on)."""
    with acyclic_work():
        return _check(paths, strict=strict, config=config, cache=cache)


def _check(
    paths: Sequence[str | Path], *, strict: bool, config: Config | None, cache: bool
) -> Checked:
    from veil.cache import ParseCache
    from veil.checker import check as run_checker

    loaded: Loaded = load(paths, ParseCache.open() if cache else None)
    diags = list(loaded.diagnostics)
    program: model.Program | None = None
    if loaded.policies is not None:
        result = run_checker(loaded.policies)
        diags.extend(result.diagnostics)
        program = result.program
    if config is not None and config.accepts:
        diags = accept(config, diags, loaded.policies, loaded.sources.line)
        if config.path is not None:
            loaded.sources.add(display_path(config.path), config.path.read_text(encoding="utf-8"))
    if strict:
        diags = [d.as_error() for d in diags]
    diags = sort_diagnostics(diags)
    if any(d.is_error for d in diags):
        program = None
    return Checked(
        program=program,
        diagnostics=tuple(diags),
        sources=loaded.sources,
        files=loaded.files,
        policies=loaded.policies,
    )


def compile_program(program: model.Program, target: str) -> tuple[str | None, list[Diagnostic]]:
    """Render a checked program; the target's own rules are checked first."""
    from veil.targets import get_target

    tgt = get_target(target)
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
