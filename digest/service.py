"""What Digest's ASGI apps share: the job store's lifespan and health routes.

Both the backend (`backend.app`) and the functions service (`functions.app`)
open the process's job store when they start, close it and the CPU pool
when they stop, and answer `/healthz` and `/readyz` the same way.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from backend.store import JobStore
from backend.store.shared import close_shared_stores, shared_store
from digest.settings import Settings
from functions.cpu import shutdown_pool

health_router = APIRouter(tags=["health"])


class UnsafeSettings(RuntimeError):
    pass


def refuse_unsafe_fetch(settings: Settings) -> None:
    """Refuse a prod profile whose `load` step may fetch from the server's own
    network (both the backend and the functions service run that step)."""
    if not settings.is_dev and settings.fetch_allow_loopback_for_tests:
        raise UnsafeSettings("FETCH_ALLOW_LOOPBACK_FOR_TESTS is for tests; unset it")


@contextlib.asynccontextmanager
async def job_store_open(settings: Settings) -> AsyncIterator[JobStore]:
    """The process's job store, open for as long as the app runs.

    On the way out the CPU pool stops (work not started is dropped and its
    step retried) and the store closes.
    """
    # Dev migrates its SQLite file on start; prod refuses to start on an
    # unmigrated database, since migrating is a deliberate release step.
    store = await shared_store(settings.database_url, migrate=settings.is_dev)
    try:
        yield store
    finally:
        shutdown_pool()
        await close_shared_stores()


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
        await store.ping()
        checks["database"] = "ok"
    except Exception as exc:
        checks["database"] = f"unreachable: {type(exc).__name__}"
    checks["executor"] = await _executor_check(settings)
    ready = all(value == "ok" for value in checks.values())
    return JSONResponse(
        {"status": "ready" if ready else "not ready", "checks": checks},
        status_code=200 if ready else 503,
    )


async def _executor_check(settings: Settings) -> str:
    if not settings.is_dev and not settings.inngest_base_url:
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
