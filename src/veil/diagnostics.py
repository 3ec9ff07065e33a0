"""Diagnostics are data: a stable code, a severity, a message, a span and an optional help line.

Rendering (text with a caret, JSON) lives here too, so every command reports errors the same way.
"""

from __future__ import annotations

import enum
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True, kw_only=True, order=True)
class Span:
    """A region of one source file; lines and columns are 1-based, end is exclusive."""

    file: str
    line: int
    col: int
    end_line: int
    end_col: int

    @staticmethod
    def point(file: str, line: int, col: int) -> Span:
        return Span(file=file, line=line, col=col, end_line=line, end_col=col + 1)

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span(file="<veil>", line=0, col=0, end_line=0, end_col=0)


class Severity(enum.Enum):
    ERROR = "error"
    WARNING = "warning"


@dataclass(frozen=True, slots=True, kw_only=True)
class Diagnostic:
    code: str
    message: str
    span: Span
    severity: Severity = Severity.ERROR
    help: str | None = None
    related: tuple[Span, ...] = field(default=())
    #: Why the repository accepts this warning (`veil.toml`), or None.
    accepted: str | None = None

    @property
    def is_error(self) -> bool:
        return self.severity is Severity.ERROR

    @property
    def label(self) -> str:
        """`error`, `warning`, or `accepted` (an accepted warning)."""
        return "accepted" if self.accepted is not None else self.severity.value

    def sort_key(self) -> tuple[str, int, int, str, str]:
        return (self.span.file, self.span.line, self.span.col, self.code, self.message)

    def as_error(self) -> Diagnostic:
        """The same diagnostic as an error (`--strict`); an accepted one stays as it is."""
        if self.accepted is not None:
            return self
        return Diagnostic(
            code=self.code,
            message=self.message,
            span=self.span,
            severity=Severity.ERROR,
            help=self.help,
            related=self.related,
        )

    def to_dict(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity.value,
            "message": self.message,
            "file": self.span.file,
            "line": self.span.line,
            "column": self.span.col,
            "end_line": self.span.end_line,
            "end_column": self.span.end_col,
            "help": self.help,
            "related": [{"file": r.file, "line": r.line, "column": r.col} for r in self.related],
            "accepted": self.accepted,
        }


def error(
    code: str, message: str, span: Span, help: str | None = None, related: tuple[Span, ...] = ()
) -> Diagnostic:
    return Diagnostic(code=code, message=message, span=span, help=help, related=related)


def warning(
    code: str, message: str, span: Span, help: str | None = None, related: tuple[Span, ...] = ()
) -> Diagnostic:
    return Diagnostic(
        code=code, message=message, span=span, severity=Severity.WARNING, help=help, related=related
    )


def sort_diagnostics(diags: Iterable[Diagnostic]) -> list[Diagnostic]:
    """Sorted by position and code, duplicates removed: output never depends on pass order."""
    seen: set[tuple[object, ...]] = set()
    out: list[Diagnostic] = []
    for d in sorted(diags, key=Diagnostic.sort_key):
        key = (d.sort_key(), d.severity)
        if key not in seen:
            seen.add(key)
            out.append(d)
    return out


class VeilError(Exception):
    """Raised by the public API when policies cannot be loaded, checked or compiled."""

    def __init__(self, diagnostics: Sequence[Diagnostic]) -> None:
        self.diagnostics = tuple(diagnostics)
        first = self.diagnostics[0] if self.diagnostics else None
        super().__init__(f"{first.span}: {first.message}" if first else "veil error")


class SourceMap:
    """File name -> text, for showing the source line under a diagnostic."""

    def __init__(self, sources: dict[str, str] | None = None) -> None:
        self._sources: dict[str, str] = dict(sources or {})

    def add(self, file: str, text: str) -> None:
        self._sources[file] = text

    def line(self, file: str, line: int) -> str | None:
        text = self._sources.get(file)
        if text is None or line < 1:
            return None
        lines = text.splitlines()
        return lines[line - 1] if line <= len(lines) else None


def render_text(diag: Diagnostic, sources: SourceMap | None = None) -> str:
    """`file:line:col: error[E0101]: message`, the source line with a caret, then `help:`."""
    s = diag.span
    head = f"{s}: {diag.label}[{diag.code}]: {diag.message}"
    if diag.accepted is not None:  # accepted on purpose: one line, with the reason
        return f"{head}\n  accepted: {diag.accepted}"
    lines = [head]
    src = sources.line(s.file, s.line) if sources else None
    if src is not None:
        gutter = str(s.line)
        pad = " " * len(gutter)
        width = (s.end_col - s.col) if s.end_line == s.line and s.end_col > s.col else 1
        width = max(1, min(width, len(src) - s.col + 1)) if len(src) >= s.col else 1
        lines.append(f"{pad} |")
        lines.append(f"{gutter} | {src.expandtabs(1)}")
        lines.append(f"{pad} | {' ' * (s.col - 1)}{'^' * width}")
    for r in diag.related:
        lines.append(f"  note: see also {r}")
    if diag.help:
        lines.append(f"  help: {diag.help}")
    return "\n".join(lines)


def render_json(diags: Sequence[Diagnostic]) -> str:
    return json.dumps([d.to_dict() for d in diags], indent=2, sort_keys=True)


def _gh_escape(text: str, *, prop: bool = False) -> str:
    text = text.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    if prop:
        text = text.replace(":", "%3A").replace(",", "%2C")
    return text


def render_github(diags: Sequence[Diagnostic]) -> str:
    """GitHub Actions workflow commands (`::error file=…,line=…,col=…::message`)."""
    out = []
    for d in diags:
        kind = "error" if d.is_error else "warning"
        msg = d.message + (f" (help: {d.help})" if d.help else "")
        if d.accepted is not None:  # shown, but as a notice: it fails nothing
            kind, msg = "notice", f"accepted: {d.message} (reason: {d.accepted})"
        out.append(
            f"::{kind} file={_gh_escape(d.span.file, prop=True)},line={d.span.line},"
            f"col={d.span.col},endLine={d.span.end_line},endColumn={d.span.end_col},"
            f"title={_gh_escape(d.code, prop=True)}::{_gh_escape(msg)}"
        )
    return "\n".join(out)
