"""veil: a policy-as-code compiler for purpose-based access control.

The public API: `load`, `check`, `compile`, `explain`, and `Diagnostic` / `VeilError`.
"""

from __future__ import annotations

__version__ = "0.1.0"

from veil.api import Checked, check, compile
from veil.diagnostics import Diagnostic, Severity, Span, VeilError
from veil.loader import load


def explain(
    paths: list[str], user: str, project: str | None = None, table: str | None = None
) -> object:
    """What `user` sees (no database): see `veil.explain.explain`."""
    from veil.explain import explain as run_explain

    checked = check(paths)
    if checked.program is None:
        raise VeilError(checked.diagnostics)
    key = tuple(table.split(".")) if table else None
    return run_explain(checked.program, user, project, key)


__all__ = [
    "Checked",
    "Diagnostic",
    "Severity",
    "Span",
    "VeilError",
    "__version__",
    "check",
    "compile",
    "explain",
    "load",
]
