"""Which database a test's backend runs on: SQLite, PostgreSQL, or both.

A module whose tests should run on both databases says so with
    pytestmark = ON_BOTH_DATABASES("digest_stack")   (or "lone_backend");
the fixture is then made once per database for the module.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import text

from backend.store import create_engine
from tests import pg


def ON_BOTH_DATABASES(fixture: str) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(
        fixture, ["sqlite", "postgresql"], indirect=True, scope="module"
    )


# The database behind each backend a fixture started, by the backend's URL.
DATABASE_OF: dict[str, str] = {}


@contextlib.contextmanager
def database_for(request: pytest.FixtureRequest, home: Path) -> Iterator[str]:
    """The database a parametrized stack fixture asked for (SQLite if none)."""
    if getattr(request, "param", "sqlite") == "sqlite":
        yield f"sqlite+aiosqlite:///{home / 'digest.db'}"
        return
    with pg.temporary_database() as url:
        yield url


def count_rows(database_url: str, table: str) -> int:
    """How many rows `table` holds, read from any test, sync or async."""

    async def count() -> int:
        engine = create_engine(database_url)
        try:
            async with engine.connect() as connection:
                found = await connection.scalar(text(f"SELECT count(*) FROM {table}"))
                return int(found or 0)
        finally:
            await engine.dispose()

    return pg.run_apart(count())
