"""Fixtures for every test folder (tests/unit and tests/integration alike).

``postgres_server`` is one throwaway PostgreSQL server per test session
(tests/postgres_server.py); ``postgres_url`` gives each test a fresh, empty database on it.
A missing PostgreSQL fails the test that asks for it: it is never a skip.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Iterator

import pytest

from slawatch.dev.postgres import PostgresServer

_databases = itertools.count(1)


@pytest.fixture(scope="session")
def postgres_server() -> Iterator[PostgresServer]:
    """A started PostgreSQL server for the session, stopped (and its cluster removed) at
    the end."""
    with PostgresServer() as server:
        yield server


@pytest.fixture
def postgres_url(request: pytest.FixtureRequest, postgres_server: PostgresServer) -> str:
    """SQLAlchemy's URL (``postgresql+psycopg://...``) of a database made for this test."""
    slug = re.sub(r"[^a-z0-9]+", "_", request.node.name.lower()).strip("_")
    return postgres_server.create_database(f"t{next(_databases)}_{slug}"[:63].rstrip("_"))
