"""Compilation targets: one module per platform, each a `Target` subclass stating its
differences."""

from __future__ import annotations

import importlib
import typing as t

if t.TYPE_CHECKING:
    from veil.targets.base import Options, Target

#: `--target` name -> "module:Class". Adding a target is one module plus a templates folder.
TARGETS: dict[str, str] = {
    "postgres": "veil.targets.postgres:PostgresTarget",
    "snowflake": "veil.targets.snowflake:SnowflakeTarget",
    "databricks": "veil.targets.databricks:DatabricksTarget",
}


def get_target(name: str, options: Options | None = None) -> Target:
    module_name, _, cls_name = TARGETS[name].partition(":")
    cls: type[Target] = getattr(importlib.import_module(module_name), cls_name)
    return cls(options)


def __getattr__(name: str) -> t.Any:
    """`Options` and `Target` are imported on first use: the CLI needs only the names in
    `TARGETS`, and the lowering (with Jinja) is imported by the commands that compile."""
    if name in ("Options", "Target"):
        from veil.targets import base

        return getattr(base, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = ["TARGETS", "Options", "Target", "get_target"]
