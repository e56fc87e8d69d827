"""PostgreSQL databases for tests: each test gets one of its own.

The server is the one at DIGEST_TEST_POSTGRES (default: the local server on
127.0.0.1:5432, user postgres, trust auth). A database is created with a
unique name before the test and dropped after it, whatever the test left
connected. Where no server answers, PostgreSQL tests are skipped with the
reason, unless DIGEST_REQUIRE_POSTGRES=1 (CI) makes that a failure.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import threading
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from ulid import ULID

ADMIN_URL = os.environ.get(
    "DIGEST_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/postgres"
)
REQUIRED = os.environ.get("DIGEST_REQUIRE_POSTGRES", "") not in ("", "0")

T = TypeVar("T")


def run_apart(coro: Coroutine[Any, Any, T]) -> T:
    """Run `coro` on a loop of its own, so that sync and async tests alike
    can make and drop databases."""
    result: list[T] = []
    failure: list[BaseException] = []

    def work() -> None:
        try:
            result.append(asyncio.run(coro))
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=work, name="test-postgres")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


async def _admin(sql: str) -> None:
    connection = await asyncpg.connect(ADMIN_URL, timeout=5)
    try:
        await connection.execute(sql)
    finally:
        await connection.close()


_reachable: bool | None = None


def server_reachable() -> bool:
    global _reachable
    if _reachable is None:
        try:
            run_apart(_admin("SELECT 1"))
            _reachable = True
        except (OSError, asyncpg.PostgresError, TimeoutError):
            _reachable = False
    return _reachable


def require_server() -> None:
    """Skip (or, with DIGEST_REQUIRE_POSTGRES=1, fail) without a server."""
    if server_reachable():
        return
    reason = f"no PostgreSQL server answers at {ADMIN_URL} (set DIGEST_TEST_POSTGRES)"
    if REQUIRED:
        pytest.fail(reason)
    pytest.skip(reason)


def database_url_for(name: str) -> str:
    """The SQLAlchemy URL of database `name` on the test server."""
    url = make_url(ADMIN_URL).set(drivername="postgresql+asyncpg", database=name)
    return url.render_as_string(hide_password=False)


def create_database(prefix: str = "digest_test") -> str:
    """A new empty database; returns its name."""
    require_server()
    name = f"{prefix}_{str(ULID()).lower()}"
    run_apart(_admin(f'CREATE DATABASE "{name}"'))
    return name


def drop_database(name: str) -> None:
    # FORCE ends the connections a killed backend or a pool left behind.
    run_apart(_admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


@contextlib.contextmanager
def temporary_database(prefix: str = "digest_test") -> Iterator[str]:
    """The URL of a fresh database, dropped on the way out."""
    name = create_database(prefix)
    try:
        yield database_url_for(name)
    finally:
        drop_database(name)
