"""`veil plan --from OLD --to NEW --target T`: the script that takes a database where OLD was
applied to the state of NEW (veil.plan, and each target's `plan`).

OLD and NEW are each a path (a policy directory or file) or a git revision: `REV` (the policy
directory is then `--path`, default `.`, inside the revision) or `REV:path` (git's own syntax:
the path is from the top of the repository, or from the working directory when it starts with
`./` or `../`). A revision's files are read as committed (`git ls-tree` and `git cat-file`;
`git archive` would apply the export-ignore and export-subst attributes) into a temporary
directory. A path that exists wins over a revision of the same name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import posixpath
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click

from veil.api import Checked, check
from veil.cli_common import (
    EXIT_POLICY,
    STRICT,
    TARGET,
    Suggesting,
    effective_strict,
    effective_target,
    emit_diagnostics,
    one_path,
    path_alias,
    repository_config,
    write_atomic,
)
from veil.config import Config, accept

GIT_TIMEOUT_S = 120


class SourceError(Exception):
    """OLD or NEW is neither an existing path nor a git revision that can be read."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Source:
    """A policy set to check: `path` on disk; `label` says where it came from (no temporary
    path in it, so a plan's header is the same on every run)."""

    spec: str
    label: str
    path: Path


def _git(repo: Path, *args: str, stdin: bytes = b"") -> bytes:
    try:
        done = subprocess.run(
            ["git", "-C", str(repo), *args],
            capture_output=True,
            input=stdin,
            timeout=GIT_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise SourceError("git is not installed (needed to read a revision)") from None
    if done.returncode != 0:
        detail = done.stderr.decode(errors="replace").strip().splitlines()
        raise SourceError(f"git {args[0]} failed: {detail[-1] if detail else 'no message'}")
    return done.stdout


def _inside(repo: Path, spec: str, rev: str, inner: str | None, path: str) -> tuple[Path, str, str]:
    """(top of the repository, full commit id, path from the top) of a revision spec."""
    try:
        top = Path(_git(repo, "rev-parse", "--show-toplevel").decode().strip())
        prefix = _git(repo, "rev-parse", "--show-prefix").decode().strip()
    except SourceError:
        raise SourceError(
            f"`{spec}` is not a path, and `{repo}` is not a git repository to read it from"
        ) from None
    try:
        commit = (
            _git(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{rev}^{{commit}}")
            .decode()
            .strip()
        )
    except SourceError:
        raise SourceError(f"`{spec}` is neither a path nor a git revision") from None
    if inner is None:
        where = posixpath.join(prefix, path)
    elif inner.startswith(("./", "../")) or inner in (".", ".."):
        where = posixpath.join(prefix, inner)
    else:
        where = inner
    where = posixpath.normpath(where or ".")
    if where.startswith("../") or where == ".." or posixpath.isabs(where):
        raise SourceError(f"`{where}` is outside the repository")
    return top, commit, where


def _extract(repo: Path, commit: str, where: str, dest: Path) -> Path:
    obj = f"{commit}:{'' if where == '.' else where}"
    try:
        kind = _git(repo, "cat-file", "-t", obj).decode().strip()
    except SourceError:
        raise SourceError(f"`{where}` does not exist in commit {commit[:12]}") from None
    if kind == "blob":
        target = dest / posixpath.basename(where)
        target.write_bytes(_git(repo, "cat-file", "blob", obj))
        return target
    if kind != "tree":
        raise SourceError(f"`{where}` in commit {commit[:12]} is a {kind}, not a directory")
    # The files as committed: `git archive` would apply export-ignore and export-subst.
    files: list[tuple[str, str]] = []
    for entry in _git(repo, "ls-tree", "-r", "-z", obj).split(b"\0"):
        meta, _, raw = entry.partition(b"\t")
        mode, _, rest = meta.partition(b" ")
        if rest.startswith(b"blob ") and mode != b"120000":  # no symlinks, no submodules
            files.append((rest.split(b" ")[1].decode(), raw.decode(errors="surrogateescape")))
    data = _git(repo, "cat-file", "--batch", stdin="".join(f"{o}\n" for o, _ in files).encode())
    at = 0
    root = dest.resolve()
    for _, name in files:
        head_end = data.index(b"\n", at)
        size = int(data[at:head_end].split(b" ")[2])
        target = (root / name).resolve()
        if root not in target.parents:
            raise SourceError(f"`{name}` in commit {commit[:12]} is not a plain path")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(data[head_end + 1 : head_end + 1 + size])
        at = head_end + 1 + size + 1
    return dest


@contextlib.contextmanager
def open_source(spec: str, *, repo: Path | str = ".", path: str = ".") -> Iterator[Source]:
    """The policy set that `spec` names, on disk while the context lasts."""
    if not spec:
        raise SourceError("an empty OLD or NEW")
    if Path(spec).exists():
        yield Source(spec=spec, label=spec, path=Path(spec))
        return
    rev, sep, inner = spec.partition(":")
    if not rev:
        raise SourceError(f"`{spec}` is neither a path nor a git revision")
    top, commit, where = _inside(Path(repo), spec, rev, inner if sep else None, path)
    tmp = Path(tempfile.mkdtemp(prefix="veil-plan-"))
    try:
        found = _extract(top, commit, where, tmp)
        label = f"{rev}:{where} (commit {commit[:12]})"
        yield Source(spec=spec, label=label, path=found)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _checked(source: Source, role: str, strict: bool, conf: Config | None = None) -> Checked:
    if conf is not None and not Path(source.spec).exists():
        # a revision, read into a temporary directory: `file` acceptances cannot point there
        conf = dataclasses.replace(conf, accepts=tuple(a for a in conf.accepts if a.file is None))
    checked = check([source.path], strict=strict, config=conf)
    if not checked.ok:
        click.echo(f"error: {role} ({source.label}) has errors:", err=True)
        emit_diagnostics(checked.diagnostics, checked.sources, "text")
        raise SystemExit(EXIT_POLICY)
    return checked


@click.command("plan")
@click.option(
    "--from",
    "old_spec",
    required=True,
    metavar="OLD",
    help="What the database holds: a policy path, or a git revision (REV, REV:path).",
)
@click.option(
    "--to",
    "new_spec",
    required=True,
    metavar="NEW",
    help="What it should hold: a policy path, or a git revision (REV, REV:path).",
)
@TARGET
@click.argument("path", required=False)
@path_alias("Same as PATH (the older spelling).")
@click.option(
    "--repo",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="The git repository that revisions are read from.",
)
@click.option(
    "-o",
    "--output",
    type=click.Path(dir_okay=False, writable=True),
    help="Write the plan here (atomically) instead of standard output.",
)
@click.option(
    "--format",
    "fmt",
    type=Suggesting(["sql", "markdown"]),
    default="sql",
    show_default=True,
    help="sql: the script with the plan in its header; markdown: a pull-request comment.",
)
@STRICT
def plan_cmd(
    old_spec: str,
    new_spec: str,
    target: str | None,
    path: str | None,
    path_option: str | None,
    repo: str,
    output: str | None,
    fmt: str,
    strict: bool | None,
) -> None:
    """Write the script that takes a database where OLD was applied to the state of NEW.

    PATH (default: `.`) is the policy directory inside a revision given as REV.

    Its header lists every change (+ added, - removed, ~ changed), who gains or loses which
    cells and rows, and what will be dropped. `--format markdown` writes the same as a
    pull-request comment, with the script folded at the end.
    Both OLD and NEW must check without errors. Nothing is written when there is any error.
    """
    from veil.api import target_options
    from veil.plan import plan_script
    from veil.targets.script import PlanUnsupported

    subpath = one_path(path, path_option)
    # the working tree's veil.toml (target, strict), also when OLD and NEW are revisions
    local = Path(repo) / subpath
    conf = repository_config([str(local if local.exists() else Path(repo))])
    target, strict = effective_target(target, conf), effective_strict(strict, conf)
    try:
        with contextlib.ExitStack() as stack:
            old = stack.enter_context(open_source(old_spec, repo=repo, path=subpath))
            new = stack.enter_context(open_source(new_spec, repo=repo, path=subpath))
            old_checked = _checked(old, "OLD", strict=False)
            new_checked = _checked(new, "NEW", strict=strict, conf=conf)
    except SourceError as e:
        raise click.UsageError(str(e)) from None
    assert old_checked.program is not None and new_checked.program is not None
    try:
        plan = plan_script(
            old_checked.program,
            new_checked.program,
            target,
            old_label=old.label,
            new_label=new.label,
            options=target_options(conf, target),
        )
    except PlanUnsupported as e:
        click.echo(f"error: {e}", err=True)
        raise SystemExit(EXIT_POLICY) from None
    if plan.old_diagnostics:
        click.echo(f"error: OLD ({old.label}) breaks the rules of {target}:", err=True)
        emit_diagnostics(plan.old_diagnostics, old_checked.sources, "text")
    diags = accept(
        conf,
        plan.new_diagnostics,
        new_checked.policies,
        new_checked.sources.line,
        report_unused=False,
    )
    if strict:
        diags = [d.as_error() for d in diags]
    if new_checked.diagnostics or diags:
        emit_diagnostics([*new_checked.diagnostics, *diags], new_checked.sources, "text")
    if plan.sql is None or any(d.is_error for d in diags):
        raise SystemExit(EXIT_POLICY)
    text = plan.sql
    if fmt == "markdown":
        from veil.plan_markdown import render_markdown

        text = render_markdown(plan, target=target, old_label=old.label, new_label=new.label)
    if output:
        write_atomic(Path(output), text)
    else:
        click.echo(text, nl=False)


def register(main: click.Group) -> None:
    main.add_command(plan_cmd)
