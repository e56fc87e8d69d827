"""When the database cannot serve a request: 503 with a retry hint, not 500.

A database that restarts, drops a connection in the middle of a query,
refuses new connections or has no disk left is a passing fault of the
service, not a bug in the request, so the API answers

    503 {"error": {"code": "database_unavailable", "message": ...}}
    Retry-After: <seconds>

and a client (or a load balancer) tries again. Nothing has to be restarted
for the next request to work: on PostgreSQL the engine's pre-ping replaces
pooled connections the server dropped, and a connection that broke during
a request is invalidated by SQLAlchemy, so the pool opens a new one; SQLite
has no connection to lose, and a full disk is over once space is freed.

An error of the database that is not one of these (a constraint, a bad
query) is still a bug: it is left to the generic 500 handler in
`backend.errors`.
"""

from __future__ import annotations

import logging
import sqlite3
from dataclasses import dataclass
from types import TracebackType

import asyncpg
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import exc as sa

log = logging.getLogger("digest.backend.api")

# PostgreSQL error classes (SQLSTATE) that mean "not now" rather than "never":
# 08 connection exception, 53 insufficient resources (53100 disk full, 53300
# too many connections), 57P01-57P03 shutting down, crashed or starting up,
# 58 system error (58030 I/O error).
_PG_PASSING_CLASSES = ("08", "53", "57P01", "57P02", "57P03", "58")
_PG_DISK_FULL = "53100"

_SQLITE_FULL = "SQLITE_FULL"
_SQLITE_PASSING = ("SQLITE_BUSY", "SQLITE_LOCKED", "SQLITE_CANTOPEN", "SQLITE_IOERR")

# Driver code that a raw OSError or asyncpg error must have passed through to
# count as the database's: opening a connection is not wrapped by SQLAlchemy.
_DRIVER_MODULES = ("sqlalchemy.", "asyncpg.", "aiosqlite.")


@dataclass(frozen=True)
class DatabaseFault:
    """Why the database cannot serve now, and when to ask again."""

    message: str
    retry_after: int


UNAVAILABLE = DatabaseFault(
    "the database is unavailable (restarting, unreachable or overloaded); "
    "try again in a few seconds. A request cut off this way may or may not "
    "have been saved: list your jobs before submitting the same one again",
    retry_after=2,
)
FULL = DatabaseFault(
    "the database has no room for new writes (its disk is full); reading "
    "jobs still works; try again once an operator has freed space",
    retry_after=30,
)


def _passed_through_driver(traceback: TracebackType | None) -> bool:
    while traceback is not None:
        module = traceback.tb_frame.f_globals.get("__name__", "")
        if module.startswith(_DRIVER_MODULES):
            return True
        traceback = traceback.tb_next
    return False


def _sqlstate(error: BaseException) -> str:
    state = getattr(error, "sqlstate", None)
    return state if isinstance(state, str) else ""


def _classify_one(error: BaseException) -> DatabaseFault | None:
    if isinstance(error, sa.DBAPIError) and error.connection_invalidated:
        return UNAVAILABLE
    if isinstance(error, sa.DisconnectionError | sa.TimeoutError):
        # TimeoutError here is the pool's: every connection is in use.
        return UNAVAILABLE
    if isinstance(error, sqlite3.Error):
        name = getattr(error, "sqlite_errorname", "") or ""
        if name == _SQLITE_FULL:
            return FULL
        if name.startswith(_SQLITE_PASSING):
            return UNAVAILABLE
        return None
    state = _sqlstate(error)
    if state == _PG_DISK_FULL:
        return FULL
    if state.startswith(_PG_PASSING_CLASSES):
        return UNAVAILABLE
    return None


def classify(error: BaseException) -> DatabaseFault | None:
    """The passing fault behind `error`, or None if it is not one.

    SQLAlchemy wraps the driver's error, which wraps the server's reason;
    any link of that chain may carry the answer.
    """
    if isinstance(error, OSError | asyncpg.PostgresError) and not isinstance(
        error, sqlite3.Error
    ):
        # Raw network and asyncpg errors only come this far when opening a
        # connection; elsewhere an OSError is somebody else's.
        if not _passed_through_driver(error.__traceback__):
            return None
        if isinstance(error, OSError):
            return UNAVAILABLE
    seen: set[int] = set()
    link: BaseException | None = error
    while link is not None and id(link) not in seen:
        seen.add(id(link))
        fault = _classify_one(link)
        if fault is not None:
            return fault
        orig = getattr(link, "orig", None)
        link = orig if isinstance(orig, BaseException) else link.__cause__
    return None


def answer(fault: DatabaseFault) -> JSONResponse:
    body = {"error": {"code": "database_unavailable", "message": fault.message}}
    return JSONResponse(
        body, status_code=503, headers={"Retry-After": str(fault.retry_after)}
    )


def install_database_fault_handlers(app: FastAPI) -> None:
    """Answer 503 for the database's passing faults; leave other errors to
    the generic handler."""

    async def _database_fault(request: Request, error: Exception) -> JSONResponse:
        fault = classify(error)
        if fault is None:
            # Not a passing fault: the 500 handler logs it as a bug.
            raise error
        log.warning(
            "%s %s: database unavailable, answered 503 (%s: %s)",
            request.method,
            request.url.path,
            type(error).__name__,
            str(error).splitlines()[0][:200] if str(error) else "",
        )
        return answer(fault)

    for kind in (sa.SQLAlchemyError, asyncpg.PostgresError, OSError):
        app.add_exception_handler(kind, _database_fault)
