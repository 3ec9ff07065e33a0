"""`veil check --format sarif`: SARIF 2.1.0 that GitHub code scanning accepts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import typing as t
from pathlib import Path

import pytest
from click.testing import CliRunner

import veil
from veil.cli import main
from veil.diagnostics import Diagnostic, Severity, Span, error, warning
from veil.sarif import render_sarif, sarif_log

# The parts of the SARIF 2.1.0 schema (sarif-schema-2.1.0.json, OASIS) that a log written by veil
# exercises: the required keys and the types and ranges of what we write. jsonschema checks it
# when installed; `_check_required` walks the same rules by hand so the test never depends on it.
_MESSAGE = {"type": "object", "required": ["text"], "properties": {"text": {"type": "string"}}}
_REGION = {
    "type": "object",
    "properties": {
        "startLine": {"type": "integer", "minimum": 1},
        "startColumn": {"type": "integer", "minimum": 1},
        "endLine": {"type": "integer", "minimum": 1},
        "endColumn": {"type": "integer", "minimum": 1},
    },
}
_LOCATION = {
    "type": "object",
    "properties": {
        "id": {"type": "integer", "minimum": -1},
        "message": _MESSAGE,
        "physicalLocation": {
            "type": "object",
            "required": ["artifactLocation"],
            "properties": {
                "artifactLocation": {
                    "type": "object",
                    "required": ["uri"],
                    "properties": {
                        "uri": {"type": "string", "format": "uri-reference"},
                        "uriBaseId": {"type": "string"},
                    },
                },
                "region": _REGION,
            },
        },
    },
}
SARIF_SUBSET: dict[str, t.Any] = {
    "type": "object",
    "required": ["version", "runs"],
    "properties": {
        "$schema": {"type": "string", "format": "uri"},
        "version": {"enum": ["2.1.0"]},
        "runs": {
            "type": "array",
            "items": {
                "type": "object",
                "required": ["tool"],
                "properties": {
                    "columnKind": {"enum": ["utf16CodeUnits", "unicodeCodePoints"]},
                    "tool": {
                        "type": "object",
                        "required": ["driver"],
                        "properties": {
                            "driver": {
                                "type": "object",
                                "required": ["name"],
                                "properties": {
                                    "name": {"type": "string"},
                                    "version": {"type": "string"},
                                    "semanticVersion": {"type": "string"},
                                    "rules": {
                                        "type": "array",
                                        "uniqueItems": True,
                                        "items": {
                                            "type": "object",
                                            "required": ["id"],
                                            "properties": {
                                                "id": {"type": "string"},
                                                "name": {"type": "string"},
                                                "shortDescription": _MESSAGE,
                                                "defaultConfiguration": {
                                                    "type": "object",
                                                    "properties": {
                                                        "level": {
                                                            "enum": [
                                                                "none",
                                                                "note",
                                                                "warning",
                                                                "error",
                                                            ]
                                                        }
                                                    },
                                                },
                                            },
                                        },
                                    },
                                },
                            }
                        },
                    },
                    "results": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "required": ["message"],
                            "properties": {
                                "ruleId": {"type": "string"},
                                "ruleIndex": {"type": "integer", "minimum": -1},
                                "level": {"enum": ["none", "note", "warning", "error"]},
                                "message": _MESSAGE,
                                "locations": {"type": "array", "items": _LOCATION},
                                "relatedLocations": {"type": "array", "items": _LOCATION},
                            },
                        },
                    },
                },
            },
        },
    },
}


def _check_required(value: object, schema: dict[str, t.Any], where: str = "$") -> None:
    """A tiny validator for SARIF_SUBSET: required keys, types, enums and minimums."""
    kind = schema.get("type")
    if kind == "object":
        assert isinstance(value, dict), where
        for key in schema.get("required", ()):
            assert key in value, f"{where}: missing `{key}`"
        for key, sub in schema.get("properties", {}).items():
            if key in value:
                _check_required(value[key], sub, f"{where}.{key}")
    elif kind == "array":
        assert isinstance(value, list), where
        for i, item in enumerate(value):
            _check_required(item, schema.get("items", {}), f"{where}[{i}]")
    elif kind == "integer":
        assert isinstance(value, int) and not isinstance(value, bool), where
        assert value >= schema.get("minimum", value), where
    elif kind == "string":
        assert isinstance(value, str), where
    if "enum" in schema:
        assert value in schema["enum"], f"{where}: {value!r}"


def validate(log: object) -> None:
    import jsonschema

    _check_required(log, SARIF_SUBSET)
    jsonschema.validate(log, SARIF_SUBSET)


def span(
    file: str, line: int, col: int, end_line: int | None = None, end_col: int | None = None
) -> Span:
    return Span(
        file=file, line=line, col=col, end_line=end_line or line, end_col=end_col or col + 1
    )


DIAGS = [
    warning(
        "W0301",
        "approvers are not declared; any approver is accepted",
        span("projects.veil", 3, 1, 3, 9),
    ),
    error(
        "E0101",
        "unknown table `sales.transaction`",
        span("policies/sales.veil", 4, 8, 4, 25),
        help="did you mean `sales.transactions`?",
    ),
    error(
        "E0201",
        "conflicting masks on `sales.transactions.email`",
        span("policies/sales.veil", 9, 1, 10, 5),
        related=(span("policies/other.veil", 2, 1),),
    ),
    error("E0101", "unknown column `emial`", span("policies/sales.veil", 12, 6, 12, 11)),
]


def test_log_shape_and_required_keys() -> None:
    log = json.loads(render_sarif(DIAGS))
    validate(log)
    assert log["version"] == "2.1.0"
    assert log["$schema"].endswith("sarif-2.1.0.json")
    (run,) = log["runs"]
    driver = run["tool"]["driver"]
    assert driver["name"] == "veil"
    assert driver["version"] == veil.__version__
    assert [r["id"] for r in driver["rules"]] == ["E0101", "E0201", "W0301"]
    levels = {r["id"]: r["defaultConfiguration"]["level"] for r in driver["rules"]}
    assert levels == {"E0101": "error", "E0201": "error", "W0301": "warning"}


def test_results_in_position_order_with_rule_indexes_and_regions() -> None:
    log = sarif_log(DIAGS)
    run = t.cast(list[dict[str, t.Any]], log["runs"])[0]
    rules = [r["id"] for r in run["tool"]["driver"]["rules"]]
    results = run["results"]
    assert [(r["ruleId"], r["level"]) for r in results] == [
        ("E0101", "error"),
        ("E0201", "error"),
        ("E0101", "error"),
        ("W0301", "warning"),
    ]
    for r in results:
        assert rules[r["ruleIndex"]] == r["ruleId"]
    first = results[0]
    assert first["message"]["text"] == (
        "unknown table `sales.transaction`\nhelp: did you mean `sales.transactions`?"
    )
    (loc,) = first["locations"]
    assert loc["physicalLocation"] == {
        "artifactLocation": {"uri": "policies/sales.veil", "uriBaseId": "%SRCROOT%"},
        "region": {"startLine": 4, "startColumn": 8, "endLine": 4, "endColumn": 25},
    }
    multi = results[1]
    assert multi["locations"][0]["physicalLocation"]["region"] == {
        "startLine": 9,
        "startColumn": 1,
        "endLine": 10,
        "endColumn": 5,
    }
    (rel,) = multi["relatedLocations"]
    assert rel["id"] == 1 and rel["message"] == {"text": "see also"}
    assert rel["physicalLocation"]["artifactLocation"]["uri"] == "policies/other.veil"


def test_deterministic_whatever_the_input_order() -> None:
    assert render_sarif(DIAGS) == render_sarif(list(reversed(DIAGS)))
    assert render_sarif(DIAGS) == render_sarif(DIAGS)


def test_no_diagnostics_is_an_empty_run() -> None:
    log = json.loads(render_sarif([]))
    validate(log)
    assert log["runs"][0]["results"] == []
    assert log["runs"][0]["tool"]["driver"]["rules"] == []


def test_uris_are_relative_and_escaped(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    inside = tmp_path / "my policies" / "a#b.veil"
    outside = tmp_path.parent / "elsewhere.veil"
    diags = [
        error("E1", "inside, absolute", span(str(inside), 1, 1)),
        error("E2", "relative with a space", span("my policies/x y.veil", 1, 1)),
        error("E3", "outside", span(str(outside), 1, 1)),
        error("E4", "above", span("../up.veil", 1, 1)),
        Diagnostic(
            code="E5",
            message="no place",
            span=Span(file="<veil>", line=0, col=0, end_line=0, end_col=0),
        ),
        error("E6", "a file without a position", span("x.veil", 0, 0, 0, 0)),
    ]
    results = t.cast(list[dict[str, t.Any]], sarif_log(diags)["runs"])[0]["results"]
    validate(sarif_log(diags))
    artifacts = {
        r["ruleId"]: [loc["physicalLocation"]["artifactLocation"] for loc in r["locations"]]
        for r in results
    }
    assert artifacts["E1"] == [{"uri": "my%20policies/a%23b.veil", "uriBaseId": "%SRCROOT%"}]
    assert artifacts["E2"] == [{"uri": "my%20policies/x%20y.veil", "uriBaseId": "%SRCROOT%"}]
    assert artifacts["E3"] == [{"uri": outside.as_uri()}]
    assert artifacts["E4"] == [{"uri": (tmp_path.parent / "up.veil").as_uri()}]
    assert artifacts["E5"] == []
    e6 = next(r for r in results if r["ruleId"] == "E6")
    assert "region" not in e6["locations"][0]["physicalLocation"]


def test_malformed_spans_never_end_before_they_start() -> None:
    diags = [
        error("E1", "backwards", Span(file="a.veil", line=5, col=9, end_line=4, end_col=2)),
        error("E2", "empty", Span(file="a.veil", line=5, col=9, end_line=5, end_col=9)),
    ]
    results = t.cast(list[dict[str, t.Any]], sarif_log(diags)["runs"])[0]["results"]
    regions = [r["locations"][0]["physicalLocation"]["region"] for r in results]
    assert regions == [
        {"startLine": 5, "startColumn": 9, "endLine": 5, "endColumn": 9},
        {"startLine": 5, "startColumn": 9, "endLine": 5, "endColumn": 9},
    ]


def test_strict_warning_codes_report_the_most_severe_default_level() -> None:
    d = warning("W1", "w", span("a.veil", 1, 1))
    log = sarif_log([d, d.as_error()])
    run = t.cast(list[dict[str, t.Any]], log["runs"])[0]
    assert run["tool"]["driver"]["rules"][0]["defaultConfiguration"]["level"] == "error"
    assert [r["level"] for r in run["results"]] == ["error", "warning"]
    assert Severity.ERROR.value == "error"


def test_check_format_sarif_on_a_broken_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "bad.veil").write_text(
        "table sales.t {\n  id bigint\n}\nmask sales.t.id with\n", encoding="utf-8"
    )
    result = CliRunner().invoke(main, ["check", "--format", "sarif", "."])
    assert result.exit_code == 1, result.output
    log = json.loads(result.stdout)
    validate(log)
    (res,) = log["runs"][0]["results"]
    assert res["level"] == "error"
    loc = res["locations"][0]["physicalLocation"]
    assert loc["artifactLocation"] == {"uri": "bad.veil", "uriBaseId": "%SRCROOT%"}
    assert loc["region"]["startLine"] == 4


def test_byte_identical_across_hash_seeds(tmp_path: Path) -> None:
    (tmp_path / "bad.veil").write_text(
        "mask a.b.c with hash\nmask x.y unless group g\n", encoding="utf-8"
    )
    outputs = set()
    for seed in ("0", "1", "12345"):
        done = subprocess.run(
            [
                sys.executable,
                "-c",
                "import sys; from veil.cli import run; sys.argv = "
                "['veil', 'check', '--format', 'sarif', '.']; run()",
            ],
            cwd=tmp_path,
            env={**os.environ, "PYTHONHASHSEED": seed},
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode in (0, 1), done.stderr
        outputs.add(done.stdout)
    assert len(outputs) == 1
