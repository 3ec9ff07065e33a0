"""Diagnostics as SARIF 2.1.0, for GitHub code scanning (`veil check --format sarif`).

One run, one result per diagnostic, one rule per diagnostic code used. Output is deterministic:
results in position order, rules in code order, keys sorted, no timestamps or absolute paths
unless a diagnostic's file lies outside the working directory.
"""

from __future__ import annotations

import json
import os
import urllib.parse
from collections.abc import Sequence
from pathlib import Path, PurePosixPath

from veil import __version__
from veil.diagnostics import Diagnostic, Severity, Span

SARIF_VERSION = "2.1.0"
SARIF_SCHEMA = "https://json.schemastore.org/sarif-2.1.0.json"
#: Relative artifact URIs are relative to the root of the checked-out repository.
SRCROOT = "%SRCROOT%"

_LEVEL = {Severity.ERROR: "error", Severity.WARNING: "warning"}


def _artifact(file: str) -> dict[str, str] | None:
    """`artifactLocation` of a diagnostic's file: a relative URI below `%SRCROOT%` (the
    working directory), or a `file:` URI for a file outside it; None for no file."""
    if not file or file.startswith("<"):
        return None
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.relative_to(Path.cwd())
        except ValueError:
            return {"uri": path.as_uri()}
    parts = PurePosixPath(path.as_posix()).parts
    if ".." in parts:  # outside the working directory: make it absolute
        return {"uri": Path(os.path.abspath(file)).as_uri()}
    uri = urllib.parse.quote(PurePosixPath(*parts).as_posix() if parts else ".", safe="/")
    return {"uri": uri, "uriBaseId": SRCROOT}


def _region(span: Span) -> dict[str, int] | None:
    """SARIF regions are 1-based with an exclusive end column, like veil's spans."""
    if span.line < 1:
        return None
    col = max(1, span.col)
    if span.end_line > span.line:
        end_line, end_col = span.end_line, max(1, span.end_col)
    else:  # one line (or a malformed end): never end before the start
        end_line, end_col = span.line, max(col, span.end_col if span.end_line == span.line else col)
    return {"startLine": span.line, "startColumn": col, "endLine": end_line, "endColumn": end_col}


def _location(
    span: Span, message: str | None = None, ident: int | None = None
) -> dict[str, object] | None:
    artifact = _artifact(span.file)
    if artifact is None:
        return None
    physical: dict[str, object] = {"artifactLocation": artifact}
    region = _region(span)
    if region is not None:
        physical["region"] = region
    loc: dict[str, object] = {"physicalLocation": physical}
    if ident is not None:
        loc["id"] = ident
    if message is not None:
        loc["message"] = {"text": message}
    return loc


def _message(d: Diagnostic) -> str:
    return d.message + (f"\nhelp: {d.help}" if d.help else "")


def sarif_log(diags: Sequence[Diagnostic]) -> dict[str, object]:
    """The SARIF log as a JSON-ready dict (see `render_sarif`)."""
    ordered = sorted(diags, key=lambda d: (*d.sort_key(), d.severity.value))
    codes = sorted({d.code for d in ordered})
    index = {code: i for i, code in enumerate(codes)}
    rules: list[dict[str, object]] = []
    for code in codes:
        severities = {d.severity for d in ordered if d.code == code}
        level = "error" if Severity.ERROR in severities else "warning"
        rules.append(
            {
                "id": code,
                "name": code,
                "shortDescription": {"text": f"veil diagnostic {code}"},
                "defaultConfiguration": {"level": level},
            }
        )
    results: list[dict[str, object]] = []
    for d in ordered:
        result: dict[str, object] = {
            "ruleId": d.code,
            "ruleIndex": index[d.code],
            "level": _LEVEL[d.severity],
            "message": {"text": _message(d)},
        }
        primary = _location(d.span)
        result["locations"] = [primary] if primary is not None else []
        related = [
            loc
            for i, r in enumerate(d.related, start=1)
            if (loc := _location(r, "see also", i)) is not None
        ]
        if related:
            result["relatedLocations"] = related
        if d.accepted is not None:  # accepted in veil.toml: a suppression kept outside the source
            result["suppressions"] = [
                {"kind": "external", "status": "accepted", "justification": d.accepted}
            ]
        results.append(result)
    return {
        "$schema": SARIF_SCHEMA,
        "version": SARIF_VERSION,
        "runs": [
            {
                "tool": {
                    "driver": {
                        "name": "veil",
                        "version": __version__,
                        "semanticVersion": __version__,
                        "rules": rules,
                    }
                },
                "columnKind": "unicodeCodePoints",
                "results": results,
            }
        ],
    }


def render_sarif(diags: Sequence[Diagnostic]) -> str:
    """SARIF 2.1.0 JSON of `diags`; byte-identical for the same diagnostics."""
    return json.dumps(sarif_log(diags), indent=2, sort_keys=True)
