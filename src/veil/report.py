"""`veil report`: one self-contained HTML page of who sees what (`veil.access`).

The page has no script and loads nothing: its Content-Security-Policy forbids every fetch, and
its style sheet is inline. It is rendered by Jinja with autoescaping on, so a name or a string
from the policies (a table called `<script>`) is shown as text, never read as markup. The same
policies give the same bytes: no timestamp, everything in program order.
"""

from __future__ import annotations

from dataclasses import dataclass

import jinja2

from veil import access, model
from veil.plan import state_source


@dataclass(frozen=True, slots=True, kw_only=True)
class _Purpose:
    purpose: str
    state: str
    detail: str


@dataclass(frozen=True, slots=True, kw_only=True)
class _Project:
    name: str
    documentation: str | None
    purposes: tuple[_Purpose, ...]
    members: tuple[str, ...]
    sources: tuple[str, ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class _User:
    name: str
    span: int  # how many columns of the matrix are this user's


def _environment() -> jinja2.Environment:
    return jinja2.Environment(
        loader=jinja2.PackageLoader("veil", "templates"),
        autoescape=True,  # every value is text: a hostile name must not become markup
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        keep_trailing_newline=True,
    )


def _project(p: model.ProjectInfo) -> _Project:
    purposes = tuple(
        _Purpose(
            purpose=pp.purpose,
            state=pp.state.value,
            detail=state_source(pp).removeprefix(pp.state.value).strip(" ;"),
        )
        for pp in p.purposes
    )
    return _Project(
        name=p.name,
        documentation=p.documentation,
        purposes=purposes or (_Purpose(purpose="(none)", state="pending", detail=""),),
        members=p.members,
        sources=tuple(model.table_str(s) for s in p.sources),
    )


def render_report(program: model.Program, *, title: str) -> str:
    """The whole page for `program`; `title` names the policies (e.g. the path given)."""
    accesses = access.matrix(program)
    users: list[_User] = []
    for a in accesses:
        if users and users[-1].name == a.user:
            users[-1] = _User(name=a.user, span=users[-1].span + 1)
        else:
            users.append(_User(name=a.user, span=1))
    template = _environment().get_template("report.html.j2")
    return template.render(
        title=title,
        projects=[_project(p) for p in program.projects],
        users=users,
        columns=accesses,
        tables=access.grid(accesses),
    )
