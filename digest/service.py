"""What Digest's ASGI apps share: the job store's lifespan and health routes.

Both the backend (`backend.app`) and the functions service (`functions.app`)
open the process's job store when they start, close it and the CPU pool
when they stop, and answer `/healthz` and `/readyz` the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from backend.store import (
    DatabaseUnreachable,
    JobStore,
    MigrationRequired,
    UnsupportedDatabase,
)
from backend.store.shared import close_shared_stores, shared_store
from digest.profile import (
    UnsafeSettings,
    refuse_bad_profile,
    secret_fingerprints,
    uses_inngest_cloud,
)
from digest.settings import Settings
from functions.cpu import shutdown_pool

log = logging.getLogger("digest.service")

health_router = APIRouter(tags=["health"])

DATABASE_CHECK_SECONDS = 5.0
# Below this, a SQLite database's next page or log frame may not fit: a
# replica that cannot write should not be sent new jobs.
MIN_ROOM_FOR_WRITES = 1024 * 1024


__all__ = [
    "QuietRefusedStart",
    "StartRefused",
    "UnsafeSettings",
    "health_router",
    "job_store_open",
    "refuse_bad_profile",
]


class StartRefused(RuntimeError):
    """The app cannot start, for a reason already logged in one line."""


@contextlib.asynccontextmanager
async def job_store_open(settings: Settings) -> AsyncIterator[JobStore]:
    """The process's job store, open for as long as the app runs.

    On the way out the CPU pool stops (work not started is dropped and its
    step retried) and the store closes. A database that cannot be reached,
    or (in prod) is not migrated, is one error line and StartRefused.
    """
    # Dev migrates its database on start, whichever it is; prod refuses to
    # start on an unmigrated one, since migrating is a release step.
    try:
        store = await shared_store(settings.database_url, migrate=settings.is_dev)
    except (DatabaseUnreachable, MigrationRequired, UnsupportedDatabase) as exc:
        log.error("refusing to start: %s", exc)
        raise StartRefused(str(exc)) from exc
    try:
        yield store
    finally:
        shutdown_pool()
        await close_shared_stores()


class QuietRefusedStart:
    """ASGI middleware: a StartRefused start ends without a traceback.

    Starlette reports a failed start to the server with the traceback as
    its message, which uvicorn logs in full; for StartRefused the log has
    the one line that matters already, so the report goes out empty.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def hold_failure(message: Message) -> None:
            # Sent just before the exception is re-raised, which says
            # whether the report is wanted.
            if message["type"] == "lifespan.startup.failed":
                held.append(message)
            else:
                await send(message)

        try:
            await self.app(scope, receive, hold_failure)
        except StartRefused:
            await send({"type": "lifespan.startup.failed", "message": ""})
            raise
        except BaseException:
            for message in held:
                await send(message)
            raise
        else:
            for message in held:
                await send(message)


@health_router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@health_router.get(
    "/readyz",
    responses={
        200: {"description": "The database and the executor answer"},
        503: {"description": "The database or the executor does not answer"},
    },
)
async def readyz(request: Request) -> JSONResponse:
    """The database answers and the executor is reachable."""
    settings: Settings = request.app.state.settings
    store: JobStore = request.app.state.store
    checks: dict[str, str] = {}
    try:
        # A database host that drops packets would otherwise hold the probe
        # for asyncpg's 60-second connect timeout.
        await asyncio.wait_for(store.ping(), timeout=DATABASE_CHECK_SECONDS)
        checks["database"] = _room_check(store.room_for_writes())
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["executor"] = await _executor_check(settings)
    ready = all(value == "ok" for value in checks.values())
    # Which keys this process holds, by fingerprint only, so an operator can
    # tell two deployments apart without the secrets ever leaving them.
    keys = {k: v for k, v in secret_fingerprints(settings).items() if v}
    return JSONResponse(
        {
            "status": "ready" if ready else "not ready",
            "profile": settings.app_env,
            "checks": checks,
            "keys": keys,
        },
        status_code=200 if ready else 503,
    )


def _room_check(free_bytes: int | None) -> str:
    if free_bytes is None or free_bytes >= MIN_ROOM_FOR_WRITES:
        return "ok"
    return (
        f"no room for writes: {free_bytes // 1024} KiB free on the database's "
        "disk; reads work, new jobs are refused with 503 until space is freed"
    )


async def _executor_check(settings: Settings) -> str:
    if uses_inngest_cloud(settings):
        # Inngest Cloud has no unauthenticated health route; reaching it is
        # proved by the event sends themselves.
        return "ok"
    url = f"{settings.executor_url}/health"
    try:
        async with httpx.AsyncClient(timeout=2.0) as client:
            answer = await client.get(url)
    except httpx.HTTPError as exc:
        return f"unreachable at {settings.executor_url}: {type(exc).__name__}"
    return "ok" if answer.status_code == 200 else f"answered {answer.status_code}"
