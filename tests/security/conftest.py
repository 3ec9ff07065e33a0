"""The world of the attack modules: the payments example applied once per module."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.pg import PgServer, temporary_database
from tests.security.world import TARGET, World, make_world


@pytest.fixture(scope="module")
def w(pg_server: PgServer) -> Iterator[World]:
    made: list[str] = []
    try:
        with temporary_database(pg_server) as db:
            world, made = make_world(pg_server, db)
            yield world
    finally:
        for role in (*reversed(made), *TARGET.own_roles):
            pg_server.drop_role(role)
