"""The code stays clean: ruff (lint and format) and mypy --strict run as part of the suite, so
the README's one test command is also the style gate."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize(
    "args",
    [("check", "src", "tests", "bench"), ("format", "--check", "src", "tests", "bench")],
)
def test_ruff(args: tuple[str, ...]) -> None:
    if shutil.which("ruff") is None and run("ruff", "--version").returncode != 0:
        pytest.fail("ruff is not installed: pip install -e '.[test]'")
    r = run("ruff", *args)
    assert r.returncode == 0, r.stdout + r.stderr


def test_mypy_strict() -> None:
    r = run("mypy")
    assert r.returncode == 0, r.stdout + r.stderr
