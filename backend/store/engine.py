"""Async engines for the job store, tuned per database.

SQLite (aiosqlite) is the zero-set-up default; PostgreSQL (asyncpg) is what
production runs, with several backend replicas on one database.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any

from sqlalchemy import URL, event
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

# Spellings of a PostgreSQL URL that people paste from their provider; all
# of them mean asyncpg here, the one async driver Digest ships.
_POSTGRES_DRIVERS = {"postgres", "postgresql", "postgresql+asyncpg"}


# Query parameters that drivers read as a password (asyncpg and libpq take
# one there as well as before the host).
_SECRET_PARAMS = {"password", "sslpassword"}


def shown_url(url: URL | str) -> str:
    """The URL for logs and errors: its password hidden wherever it is."""
    parsed = make_url(url) if isinstance(url, str) else url
    hidden = {
        key: "***" if key.lower() in _SECRET_PARAMS else value
        for key, value in parsed.query.items()
    }
    shown = parsed.set(query=hidden).render_as_string(hide_password=True)
    # The query is percent-encoded on the way out; show the mask as typed.
    return shown.replace("=%2A%2A%2A", "=***")


class UnsupportedDatabase(ValueError):
    def __init__(self, database_url: str) -> None:
        try:
            shown = shown_url(database_url)
        except ArgumentError:
            what = "DATABASE_URL is not a database URL"
        else:
            what = f"DATABASE_URL {shown} names a database Digest cannot use"
        super().__init__(
            f"{what}; use sqlite+aiosqlite:///path/to/file.db or "
            "postgresql+asyncpg://user:password@host:5432/name"
        )


class DatabaseUnreachable(RuntimeError):
    """The database cannot be connected to: down, absent, or refusing us."""

    def __init__(self, url: URL, cause: BaseException) -> None:
        shown = shown_url(url)
        if isinstance(cause, DBAPIError):
            # The driver's own words ('database "x" does not exist').
            said = str(cause.orig).strip().splitlines()
            reason = said[0] if said else type(cause.orig).__name__
        else:
            said = str(cause).strip().splitlines()
            reason = type(cause).__name__ + (f": {said[0]}" if said else "")
        if url.get_backend_name() == "sqlite":
            check = "check that its folder exists and this user may write there"
        else:
            check = (
                "check that the server is running and that DATABASE_URL has "
                "the right host, port, database name, user and password"
            )
        super().__init__(f"database unreachable at {shown} ({reason}); {check}")


async def reach(engine: AsyncEngine) -> None:
    """Connect once, so that a database that is down or absent is told
    apart from any later failure; DatabaseUnreachable if it cannot be."""
    try:
        async with engine.connect():
            pass
    except (OSError, SQLAlchemyError) as exc:
        raise DatabaseUnreachable(engine.url, exc) from exc


def database_url(raw: str) -> URL:
    """`raw` as the URL the engine uses: PostgreSQL always through asyncpg."""
    try:
        url = make_url(raw)
    except ArgumentError:
        raise UnsupportedDatabase(raw) from None
    if url.drivername in _POSTGRES_DRIVERS:
        return url.set(drivername="postgresql+asyncpg")
    if url.get_backend_name() == "sqlite":
        return url
    raise UnsupportedDatabase(raw)


def is_sqlite(raw: str) -> bool:
    return make_url(raw).get_backend_name() == "sqlite"


def is_postgres(raw: str) -> bool:
    return make_url(raw).get_backend_name() == "postgresql"


def asyncpg_dsn(raw: str) -> str:
    """The libpq-style DSN asyncpg itself takes, for connections that live
    outside the engine's pool (the LISTEN connection)."""
    url = database_url(raw).set(drivername="postgresql")
    return url.render_as_string(hide_password=False)


def create_engine(raw: str) -> AsyncEngine:
    """An engine for the database at `raw`.

    On PostgreSQL, pre-ping replaces connections the server dropped (a
    restart, an idle timeout) before a request uses them. On SQLite, WAL mode
    and a busy timeout: parallel steps write progress at the same moment;
    WAL lets readers go on while one writer commits, and the busy timeout
    makes writers queue rather than fail with "database is locked".
    """
    url = database_url(raw)
    if url.get_backend_name() == "postgresql":
        return create_async_engine(url, pool_pre_ping=True, pool_recycle=1800)

    if url.database and url.database != ":memory:":
        # A folder that cannot be made is reported on connecting, with the
        # rest of what keeps the database out of reach.
        with contextlib.suppress(OSError):
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, connect_args={"timeout": 30})

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    return engine
