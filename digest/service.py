"""What Digest's ASGI apps share: the job store's lifespan and health routes.

Both the backend (`backend.app`) and the functions service (`functions.app`)
open the process's job store when they start, close it and the CPU pool
when they stop, and answer `/healthz` and `/readyz` the same way.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from backend.store import JobStore
from backend.store.shared import close_shared_stores, shared_store
from digest.profile import UnsafeSettings, refuse_bad_profile, secret_fingerprints
from digest.settings import Settings
from functions.cpu import shutdown_pool

health_router = APIRouter(tags=["health"])

DATABASE_CHECK_SECONDS = 5.0


__all__ = ["UnsafeSettings", "health_router", "job_store_open", "refuse_bad_profile"]


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
        # A database host that drops packets would otherwise hold the probe
        # for asyncpg's 60-second connect timeout.
        await asyncio.wait_for(store.ping(), timeout=DATABASE_CHECK_SECONDS)
        checks["database"] = "ok"
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
