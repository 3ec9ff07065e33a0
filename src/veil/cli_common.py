"""What every `veil` command module shares: exit codes, the choice type that suggests, atomic
writes, diagnostics output and the common arguments.

The command modules (`cli`, `cli_lifecycle`, `cli_authoring`, `cli_tools`, `cli_plan`) import
from here and never from each other, so each imports on its own.
"""

from __future__ import annotations

import difflib
import os
import tempfile
import typing as t
from pathlib import Path

import click

from veil.api import Checked, check
from veil.config import Config
from veil.diagnostics import Diagnostic, SourceMap, render_github, render_json, render_text
from veil.targets import TARGETS

EXIT_OK, EXIT_POLICY, EXIT_USAGE, EXIT_INTERNAL = 0, 1, 2, 3


class Suggesting(click.Choice[str]):
    """A choice that says "did you mean" for a near miss (`--target postgress`)."""

    def convert(
        self, value: t.Any, param: click.Parameter | None, ctx: click.Context | None
    ) -> str:
        if value in self.choices:
            return str(value)
        close = difflib.get_close_matches(str(value), [str(c) for c in self.choices], n=1)
        hint = f"; did you mean `{close[0]}`?" if close else ""
        self.fail(
            f"unknown {param.name if param else 'value'} `{value}` "
            f"(choose from {', '.join(map(str, self.choices))}){hint}",
            param,
            ctx,
        )


def write_atomic(path: Path, text: str) -> None:
    """Write through a temporary file in the same directory, then rename: a failure leaves
    the old file (or nothing) in place, never half a script. Mode 0644 like any other file."""
    path = path.resolve()
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8", newline="\n") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def emit_diagnostics(diags: t.Sequence[Diagnostic], sources: SourceMap, fmt: str) -> None:
    if fmt == "json":
        click.echo(render_json(diags))
        return
    if fmt == "github":
        if diags:
            click.echo(render_github(diags))
        return
    if fmt == "sarif":
        from veil.sarif import render_sarif

        click.echo(render_sarif(diags))
        return
    for d in diags:
        click.echo(render_text(d, sources), err=True)
        click.echo("", err=True)
    errors = sum(1 for d in diags if d.is_error)
    accepted = sum(1 for d in diags if d.accepted is not None)
    warnings = len(diags) - errors - accepted
    if diags:
        click.echo(
            f"{errors} error{'s' * (errors != 1)}, {warnings} warning{'s' * (warnings != 1)}"
            + (f", {accepted} accepted" if accepted else ""),
            err=True,
        )


def repository_config(paths: t.Sequence[str], fmt: str = "text") -> Config:
    """The repository's `veil.toml` (an empty config without one); a bad one is reported
    (file:line:col) and exits 1 before anything else runs."""
    from veil import config

    conf, diags, texts = config.load(paths)
    if diags:
        emit_diagnostics(diags, SourceMap(texts), fmt)
        raise SystemExit(EXIT_POLICY)
    return conf


def effective_strict(option: bool | None, conf: Config) -> bool:
    """`--strict` / `--no-strict` when given, else `strict` of veil.toml, else off."""
    return option if option is not None else bool(conf.strict)


def effective_target(option: str | None, conf: Config) -> str:
    """`--target` when given, else `target` of veil.toml."""
    if option is not None:
        return option
    if conf.target is not None:
        return conf.target
    raise click.UsageError('missing `--target` (or `target = "…"` in veil.toml)')


def checked_or_exit(
    paths: t.Sequence[str], strict: bool, fmt: str = "text", conf: Config | None = None
) -> Checked:
    checked = check(paths, strict=strict, config=conf, cache=True)
    if not checked.ok:
        emit_diagnostics(checked.diagnostics, checked.sources, fmt)
        raise SystemExit(EXIT_POLICY)
    return checked


def known_name(kind: str, value: str, names: t.Sequence[str]) -> None:
    """A `--user`, `--project` or `--table` must name a declared one: a typo is a usage error
    (exit 2) with "did you mean", never a silent answer about nobody."""
    if value in names:
        return
    close = difflib.get_close_matches(value, sorted(names), n=1)
    raise click.UsageError(
        f"unknown {kind} `{value}`; "
        + (f"did you mean `{close[0]}`?" if close else f"{len(names)} {kind}s are declared")
    )


PATHS = click.argument("paths", nargs=-1, required=True, type=click.Path())


def path_alias(help_: str = "Same as PATH (the older spelling).") -> t.Callable[[t.Any], t.Any]:
    """`--path DIR`, kept working for the commands that took the repository that way before
    every command took it as a positional PATH."""
    return click.option("--path", "path_option", metavar="DIR", help=help_)


def one_path(positional: str | None, option: str | None, default: str = ".") -> str:
    """PATH, or its `--path` alias; both at once must agree."""
    if positional is not None and option is not None and positional != option:
        raise click.UsageError(f"PATH `{positional}` and `--path {option}` disagree; give one")
    return positional or option or default


STRICT = click.option(
    "--strict/--no-strict",
    default=None,
    help="Treat warnings as errors (default: `strict` of veil.toml, else no).",
)
TARGET = click.option(
    "--target",
    "-t",
    type=Suggesting(sorted(TARGETS)),
    help="The platform (default: `target` of veil.toml).",
)
