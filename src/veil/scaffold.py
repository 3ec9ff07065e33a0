"""`veil init`: a small, valid policy repository to start from.

The files live in the package folder `veil/scaffold/` (package data); `FILES` says where each one
goes in the new repository. The workflow is the one documented in docs/ci.md.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

#: path in the new repository -> file in veil/scaffold/
FILES: dict[str, str] = {
    "README.md": "README.md",
    "catalog.veil": "catalog.veil",
    "purposes.veil": "purposes.veil",
    "people.veil": "people.veil",
    "projects.veil": "projects.veil",
    "policies.veil": "policies.veil",
    "tests.veil": "tests.veil",
    "veil.toml": "veil.toml",
    ".github/workflows/veil.yml": "veil.yml",
}

#: Entries a directory may already hold and still count as empty (`git init` first is fine).
IGNORED_ENTRIES = frozenset({".git"})


class ScaffoldError(Exception):
    """The directory cannot be scaffolded (not empty, or not a directory)."""


def template(name: str) -> str:
    """The text of one scaffold file."""
    return (importlib.resources.files("veil") / "scaffold" / name).read_text(encoding="utf-8")


def check_target(directory: Path) -> None:
    """Raise ScaffoldError unless `directory` is missing or empty (apart from `.git`)."""
    if directory.exists() and not directory.is_dir():
        raise ScaffoldError(f"`{directory}` exists and is not a directory")
    if directory.is_dir():
        entries = sorted(p.name for p in directory.iterdir() if p.name not in IGNORED_ENTRIES)
        if entries:
            shown = ", ".join(f"`{e}`" for e in entries[:5]) + (", …" if len(entries) > 5 else "")
            raise ScaffoldError(
                f"`{directory}` is not empty ({shown}); `veil init` only writes into a new or "
                "empty directory"
            )


def init(directory: Path) -> list[Path]:
    """Write the scaffold into `directory` (created if missing); returns the files written."""
    check_target(directory)
    directory.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for rel, name in FILES.items():
        path = directory / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("x", encoding="utf-8", newline="\n") as f:  # never overwrite
            f.write(template(name))
        written.append(path)
    return written
