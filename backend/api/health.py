"""Liveness and readiness."""

from __future__ import annotations

import httpx
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from backend.store import JobStore
from digest.settings import Settings

router = APIRouter(tags=["health"])


@router.get("/healthz")
async def healthz() -> dict[str, str]:
    """The process is up and answering."""
    return {"status": "ok"}


@router.get(
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
