"""`veil.toml`: a repository's settings, and the diagnostics it accepts.

The file sits at the root of the policy repository; a command looks for it in the directory of
its first PATH (the file's directory for a file) and then upwards, stopping at the directory that
holds `.git`. Command-line options override every setting.

    now = 2026-12-01T00:00:00Z     # the test clock of `veil test` (a TOML date-time or a string)
    strict = true                  # `--strict` for check, compile and plan (`--no-strict` undoes)
    target = "postgres"            # the default `--target` of compile and plan
    native_tags = ["snowflake"]    # targets whose `mask tagged` is a native tag policy

    [[accept]]                     # a warning accepted on purpose: reported as "accepted"
    code = "W0203"
    statement = "mask hr.survey.employee_id"   # the statement it is about, as it starts
    file = "policies/hr.veil"                  # or (and) the file, from this file's directory
    reason = "HR asked for 8-character pseudonyms"

A statement is named by the words it starts with, compared word by word (`mask
hr.survey.employee_id` names `mask hr.survey.employee_id with hash(8) unless group hr`). Only
warnings can be accepted: an error means nothing would be compiled. An accepted diagnostic no
longer counts as a warning (nor as an error under `strict`); every output format still shows it,
as accepted, with its reason. An `accept` that matches nothing is itself a warning (W0501), so
acceptances do not outlive what they were written for.

A bad file is a diagnostic with file:line:col (L0101 syntax, L0102 a setting), never a traceback.
"""

from __future__ import annotations

import datetime as dt
import difflib
import re
import tomllib
import typing as t
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from veil import ir, targets
from veil.diagnostics import Diagnostic, Span, error, sort_diagnostics, warning

FILE_NAME = "veil.toml"
BAD_CONFIG_SYNTAX = "L0101"
BAD_SETTING = "L0102"
UNUSED_ACCEPT = "W0501"
TARGETS = tuple(sorted(targets.TARGETS))


@dataclass(frozen=True, slots=True, kw_only=True)
class Accept:
    code: str
    reason: str
    statement: tuple[str, ...] | None = None  # the words it starts with
    file: Path | None = None  # resolved
    span: Span  # the `[[accept]]` table, for W0501


@dataclass(frozen=True, slots=True, kw_only=True)
class Config:
    """The settings of one `veil.toml` (all None / empty without one)."""

    path: Path | None = None
    now: dt.datetime | None = None
    strict: bool | None = None
    target: str | None = None
    #: Targets that compile `mask tagged` to the platform's own tag policies as well
    #: (docs/targets/snowflake.md, "Native tag policies").
    native_tags: tuple[str, ...] = ()
    accepts: tuple[Accept, ...] = field(default=())


def find(paths: Sequence[str | Path]) -> Path | None:
    """The `veil.toml` of the repository at the first path, if any."""
    if not paths:
        return None
    start = Path(paths[0]).resolve()
    here = start if start.is_dir() else start.parent
    for d in (here, *here.parents):
        if (d / FILE_NAME).is_file():
            return d / FILE_NAME
        if (d / ".git").exists():
            return None
    return None


def display_path(path: Path) -> str:
    """As diagnostics show a path: relative to the working directory when below it."""
    try:
        return str(path.relative_to(Path.cwd()))
    except ValueError:
        return str(path)


class _Positions:
    """Where a key or a `[[accept]]` table is written, for diagnostics (tomllib gives positions
    of syntax errors only)."""

    def __init__(self, file: str, text: str) -> None:
        self.file = file
        self.lines = text.splitlines()

    def _span(self, line: int, col: int, width: int) -> Span:
        return Span(file=self.file, line=line, col=col, end_line=line, end_col=col + max(width, 1))

    def key(self, key: str, after: int = 0) -> Span:
        """The first `key = …` line at or after line `after` (0-based)."""
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        for i, line in enumerate(self.lines[after:], start=after):
            if pattern.match(line):
                col = len(line) - len(line.lstrip()) + 1
                return self._span(i + 1, col, len(key))
        return self._span(1, 1, 1)

    def tables(self, name: str) -> list[int]:
        """0-based lines of each `[[name]]` header."""
        pattern = re.compile(rf"^\s*\[\[\s*{re.escape(name)}\s*\]\]")
        return [i for i, line in enumerate(self.lines) if pattern.match(line)]

    def in_table(self, start: int, key: str) -> Span:
        return self.key(key, after=start)

    def header(self, start: int) -> Span:
        line = self.lines[start]
        return self._span(start + 1, len(line) - len(line.lstrip()) + 1, len(line.strip()))


def load(paths: Sequence[str | Path]) -> tuple[Config, list[Diagnostic], dict[str, str]]:
    """The config of the repository at `paths` (empty when there is none), its diagnostics,
    and its text by displayed name (for carets)."""
    path = find(paths)
    if path is None:
        return Config(), [], {}
    shown = display_path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        return Config(), [error(BAD_CONFIG_SYNTAX, f"cannot read `{shown}`: {e}", _at(shown))], {}
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        # Python 3.11's message ends in "(at line L, column C)"; 3.14 also has attributes
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (1, 1)
        message = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e)) or "invalid TOML"
        span = Span(file=shown, line=line, col=col, end_line=line, end_col=col + 1)
        return (
            Config(),
            [
                error(
                    BAD_CONFIG_SYNTAX,
                    f"`{FILE_NAME}` is not valid TOML: {message[:1].lower()}{message[1:]}",
                    span,
                    help="see docs/cli.md#veiltoml for the settings and their syntax",
                )
            ],
            {shown: text},
        )
    pos = _Positions(shown, text)
    config, diags = _settings(data, pos, path.parent)
    return replace(config, path=path), sort_diagnostics(diags), {shown: text}


def _at(file: str) -> Span:
    return Span(file=file, line=1, col=1, end_line=1, end_col=2)


def _settings(
    data: dict[str, t.Any], pos: _Positions, root: Path
) -> tuple[Config, list[Diagnostic]]:
    diags: list[Diagnostic] = []

    def bad(key: str, message: str, help_: str, span: Span | None = None) -> None:
        diags.append(error(BAD_SETTING, message, span or pos.key(key), help=help_))

    known = {"now", "strict", "target", "native_tags", "accept"}
    for key in sorted(set(data) - known):
        close = [k for k in sorted(known) if _close(key, k)]
        bad(
            key,
            f"unknown setting `{key}` in `{FILE_NAME}`",
            f"did you mean `{close[0]}`?"
            if close
            else "the settings: now, strict, target, native_tags, accept",
        )
    now = data.get("now")
    if now is not None:
        now = _time(now)
        if now is None:
            bad("now", "`now` is not a time", "write an ISO-8601 time: now = 2026-12-01T00:00:00Z")
    strict = data.get("strict")
    if strict is not None and not isinstance(strict, bool):
        bad("strict", "`strict` must be `true` or `false`", "strict = true")
        strict = None
    target = data.get("target")
    if target is not None and target not in TARGETS:
        close = [x for x in TARGETS if _close(str(target), x)]
        bad(
            "target",
            f"unknown target `{target}`",
            f"did you mean `{close[0]}`?" if close else f"one of {', '.join(TARGETS)}",
        )
        target = None
    native = _native_tags(data.get("native_tags"), pos, diags)
    accepts, found = _accepts(data.get("accept"), pos, root)
    diags.extend(found)
    config = Config(now=now, strict=strict, target=target, native_tags=native, accepts=accepts)
    return config, diags


#: The targets with native tag policies.
NATIVE_TAG_TARGETS = ("databricks", "snowflake")


def _native_tags(value: object, pos: _Positions, diags: list[Diagnostic]) -> tuple[str, ...]:
    if value is None:
        return ()
    names = value if isinstance(value, list) else None
    if names is None or not all(isinstance(n, str) for n in names):
        diags.append(
            error(
                BAD_SETTING,
                "`native_tags` must be a list of target names",
                pos.key("native_tags"),
                help='native_tags = ["snowflake"]',
            )
        )
        return ()
    for name in names:
        if name not in NATIVE_TAG_TARGETS:
            close = [x for x in NATIVE_TAG_TARGETS if _close(str(name), x)]
            diags.append(
                error(
                    BAD_SETTING,
                    f"`{name}` has no native tag policies veil compiles to",
                    pos.key("native_tags"),
                    help=f"did you mean `{close[0]}`?"
                    if close
                    else "targets with native tag policies: " + ", ".join(NATIVE_TAG_TARGETS),
                )
            )
    return tuple(sorted({n for n in names if n in NATIVE_TAG_TARGETS}))


def _close(a: str, b: str) -> bool:
    return bool(difflib.get_close_matches(a, [b], n=1))


def _time(value: object) -> dt.datetime | None:
    if isinstance(value, dt.datetime):
        return value if value.tzinfo else value.replace(tzinfo=dt.UTC)
    if isinstance(value, dt.date):
        return dt.datetime(value.year, value.month, value.day, tzinfo=dt.UTC)
    if isinstance(value, str):
        try:
            parsed = dt.datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=dt.UTC)
    return None


def _accepts(
    value: object, pos: _Positions, root: Path
) -> tuple[tuple[Accept, ...], list[Diagnostic]]:
    if value is None:
        return (), []
    starts = pos.tables("accept")
    if not isinstance(value, list) or len(starts) != len(value):
        return (), [
            error(
                BAD_SETTING,
                "`accept` must be a list of `[[accept]]` tables",
                pos.key("accept"),
                help='[[accept]] with code = "W0203", statement = "…" or file = "…", reason',
            )
        ]
    out: list[Accept] = []
    diags: list[Diagnostic] = []
    for start, entry in zip(starts, value, strict=True):
        header = pos.header(start)

        def bad(key: str | None, message: str, help_: str, start: int = start) -> None:
            span = pos.in_table(start, key) if key else pos.header(start)
            diags.append(error(BAD_SETTING, message, span, help=help_))

        if not isinstance(entry, dict):
            bad(None, "an `accept` entry must be a table", "[[accept]]")
            continue
        for key in sorted(set(entry) - {"code", "statement", "file", "reason"}):
            bad(key, f"unknown key `{key}` in `[[accept]]`", "keys: code, statement, file, reason")
        code, reason = entry.get("code"), entry.get("reason")
        statement, file = entry.get("statement"), entry.get("file")
        if not isinstance(code, str) or not re.fullmatch(r"[A-Z]\d{4}", code):
            bad(
                "code" if "code" in entry else None,
                "`[[accept]]` needs a diagnostic `code`",
                'code = "W0203" (the code a warning is printed with)',
            )
            continue
        if code[0] not in "WT":  # a T code is a warning or an error: decided when reported
            bad(
                "code",
                f"`{code}` is an error and cannot be accepted",
                "only warnings can be accepted; an error means nothing is compiled",
            )
            continue
        if not isinstance(reason, str) or not reason.strip():
            bad(
                "reason" if "reason" in entry else None,
                f"accepting `{code}` needs a `reason`",
                'say why it is fine, for the reviewer: reason = "…"',
            )
            continue
        if statement is None and file is None:
            bad(
                None,
                f"accepting `{code}` needs a `statement` or a `file`",
                'statement = "mask t.c" (how the statement starts) or file = "policies/x.veil"',
            )
            continue
        words: tuple[str, ...] | None = None
        if statement is not None:
            if not isinstance(statement, str) or not statement.split():
                bad(
                    "statement",
                    "`statement` must be the words a statement starts with",
                    'statement = "mask hr.survey.employee_id"',
                )
                continue
            words = tuple(statement.split())
        where: Path | None = None
        if file is not None:
            if not isinstance(file, str) or not file:
                bad("file", "`file` must be a path", 'file = "policies/hr.veil"')
                continue
            where = (root / file).resolve()
        out.append(
            Accept(code=code, reason=reason.strip(), statement=words, file=where, span=header)
        )
    return tuple(out), diags


# --------------------------------------------------------------------------------------------
# Accepting diagnostics


def accept(
    config: Config,
    diags: Sequence[Diagnostic],
    policies: ir.PolicySet | None,
    sources: t.Callable[[str, int], str | None],
    *,
    report_unused: bool = True,
) -> list[Diagnostic]:
    """`diags` with each warning an `accept` entry matches marked accepted (with its reason),
    then a W0501 warning for each entry that matched nothing (when `report_unused`)."""
    if not config.accepts:
        return list(diags)
    used: set[int] = set()
    out: list[Diagnostic] = []
    for d in diags:
        if d.is_error or d.accepted is not None:
            out.append(d)
            continue
        for i, a in enumerate(config.accepts):
            if a.code == d.code and _matches(a, d.span, policies, sources):
                used.add(i)
                d = replace(d, accepted=a.reason)
                break
        out.append(d)
    if report_unused:  # target codes (T) are reported by compile and plan only: not here
        for i, a in enumerate(config.accepts):
            if i not in used and a.code.startswith("W"):
                what = " ".join(a.statement) if a.statement else None
                out.append(
                    warning(
                        UNUSED_ACCEPT,
                        f"`{a.code}` is accepted for "
                        + (f"`{what}`" if what else f"`{display_path(a.file or Path())}`")
                        + f", but no {a.code} is reported there",
                        a.span,
                        help="remove the entry, or correct its statement or file",
                    )
                )
    return out


def _matches(
    a: Accept,
    span: Span,
    policies: ir.PolicySet | None,
    sources: t.Callable[[str, int], str | None],
) -> bool:
    if a.file is not None and Path(span.file).resolve() != a.file:
        return False
    if a.statement is None:
        return True
    stmt = _statement_at(policies, span)
    if stmt is None:
        return False
    first = sources(stmt.span.file, stmt.span.line)
    if first is None:
        return False
    words = tuple(first[stmt.span.col - 1 :].split())
    return words[: len(a.statement)] == a.statement


def _statement_at(policies: ir.PolicySet | None, span: Span) -> ir.Statement | None:
    if policies is None:
        return None
    for f in policies.files:
        for s in f.statements:
            if s.span.file != span.file:
                break
            if s.span.line <= span.line <= s.span.end_line:
                return s
    return None
