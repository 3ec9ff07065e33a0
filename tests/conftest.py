"""Shared pytest fixtures for veil's tests. Each section has an owner; add new sections below."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterator, Sequence

import pytest

from tests.pg import (
    PgDatabase,
    PgServer,
    PgUnavailable,
    RoleFactory,
    fail_or_skip,
    temporary_database,
)

# =================================================================================================
# Workers (pytest-xdist, `-n auto` in pyproject.toml)
# =================================================================================================


def pytest_xdist_auto_num_workers(config: pytest.Config) -> int:
    """One worker per core, at most four (each starts its own PostgreSQL and, for the Spark
    tests, its own JVM); one where VEIL_TEST_DSN names a server the workers would share, since
    tests create roles by fixed names and roles belong to the whole server."""
    if os.environ.get("VEIL_TEST_DSN"):
        return 1
    return max(1, min(4, os.cpu_count() or 1))


# =================================================================================================
# PostgreSQL (tests/pg.py explains where the server comes from)
#
#   pg_server      session: the server; create/drop databases and roles, apply_script, query_as
#   pg_db          function: a fresh database (PgDatabase), dropped after the test
#   pg_login_role  function: factory of roles, dropped after the test
#
# Every test that uses one of them is marked `postgres` automatically. Without a server they skip,
# or fail when CI=true.
# =================================================================================================


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    try:
        server = PgServer.from_environment()
    except PgUnavailable as exc:
        fail_or_skip(str(exc))
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
def pg_db(pg_server: PgServer) -> Iterator[PgDatabase]:
    with temporary_database(pg_server) as db:
        yield db


@pytest.fixture
def pg_login_role(pg_server: PgServer) -> Iterator[RoleFactory]:
    created: list[str] = []

    def make(name: str | None = None, *, login: bool = True, member_of: Sequence[str] = ()) -> str:
        role = pg_server.create_role(name, login=login, member_of=member_of)
        created.append(role)
        return role

    yield make
    for role in reversed(created):
        pg_server.drop_role(role)


#: The files that run longest (each about two minutes of one worker in CI's `--durations` list;
#: the next is under 30 s). A worker takes a whole file (`--dist loadfile`), and xdist hands out
#: files in collection order, two to each worker to begin with: these two go first so that each
#: worker starts with one of them, and the short files fill in behind. Left to the default order
#: (most tests first) both came last and could land on one worker, which then ran for a minute
#: and a half after the other had finished.
LONGEST_FILES = ("tests/targets/test_databricks.py", "tests/targets/test_databricks_tags.py")


def _file_of(item: pytest.Item) -> str:
    return item.nodeid.split("::", 1)[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the PostgreSQL server `postgres` (so `-m "not postgres"` works),
    and order the files for the workers: `LONGEST_FILES` first, then files with more tests first
    (what xdist would do; pyproject.toml turns its own reordering off). The sort is stable, so a
    file's tests keep their order and stay together.

    pytest keeps one function of this name per conftest: extend this one rather than adding another.
    """
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.postgres)
    tests_in = Counter(_file_of(item) for item in items)
    rank = {path: i for i, path in enumerate(LONGEST_FILES)}
    items.sort(key=lambda item: (rank.get(_file_of(item), len(rank)), -tests_in[_file_of(item)]))


# =================================================================================================
# (end of PostgreSQL section)
# =================================================================================================


# =================================================================================================
# Golden files: `pytest --update-goldens` rewrites them (review the diff before committing)
# =================================================================================================


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite golden files from the current output instead of comparing",
    )


@pytest.fixture
def update_goldens(request: pytest.FixtureRequest) -> bool:
    return bool(request.config.getoption("--update-goldens"))
