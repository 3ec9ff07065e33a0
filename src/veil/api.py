"""The public API: load, check, compile, explain. The CLI is a thin layer over these."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from veil import model
from veil.diagnostics import Diagnostic, SourceMap, VeilError, sort_diagnostics
from veil.loader import Loaded, load


@dataclass(frozen=True, slots=True, kw_only=True)
class Checked:
    """A loaded and checked repository. `program` is None when there are errors."""

    program: model.Program | None
    diagnostics: tuple[Diagnostic, ...]
    sources: SourceMap
    files: tuple[Path, ...]

    @property
    def ok(self) -> bool:
        return self.program is not None and not any(d.is_error for d in self.diagnostics)


def check(paths: Sequence[str | Path], *, strict: bool = False) -> Checked:
    """Load and check; with `strict`, warnings count as errors."""
    from veil.checker import check as run_checker

    loaded: Loaded = load(paths)
    diags = list(loaded.diagnostics)
    program: model.Program | None = None
    if loaded.policies is not None:
        result = run_checker(loaded.policies)
        diags.extend(result.diagnostics)
        program = result.program
    if strict:
        diags = [d.as_error() for d in diags]
    diags = sort_diagnostics(diags)
    if any(d.is_error for d in diags):
        program = None
    return Checked(
        program=program, diagnostics=tuple(diags), sources=loaded.sources, files=loaded.files
    )


def compile_program(program: model.Program, target: str) -> tuple[str | None, list[Diagnostic]]:
    """Render a checked program; the target's own rules are checked first."""
    from veil.targets import get_target

    tgt = get_target(target)
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
