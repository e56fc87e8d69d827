"""Server-Sent Events for one job: its state now, then every change.

The stream re-reads the job at a short interval rather than waiting on a
notification, so a client always reaches the terminal state even if a
change happened between two reads; it is told the newest state, never an
intermediate one it has not seen being skipped in silence (progress events
carry the count done, not a delta).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from sse_starlette import EventSourceResponse, ServerSentEvent

from backend.api.schemas import SummaryOut
from backend.errors import NotFound
from backend.store import Job, JobNotFound, JobStore

router = APIRouter(prefix="/api/summaries", tags=["summaries"])

POLL_SECONDS = 0.25
HEARTBEAT_SECONDS = 15
FINAL_EVENT = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The job's events"},
        404: {"description": "No such job"},
    },
)
async def job_events(request: Request, job_id: str) -> EventSourceResponse:
    """The job's status first, then `progress` per finished step, then
    `completed`, `failed` or `cancelled`, after which the stream ends."""
    store: JobStore = request.app.state.store
    try:
        job = await store.get_job(job_id.upper())
    except JobNotFound:
        raise NotFound(f"no summary job with id '{job_id}'") from None
    return EventSourceResponse(
        _events(store, job, request), ping=HEARTBEAT_SECONDS, send_timeout=30
    )


async def _events(
    store: JobStore, job: Job, request: Request
) -> AsyncIterator[ServerSentEvent]:
    yield _event("status", job)
    seen_done, seen_status = job.progress.done, job.status
    while not job.is_terminal:
        await asyncio.sleep(POLL_SECONDS)
        if await request.is_disconnected():
            return
        job = await store.get_job(job.id)
        if job.progress.done > seen_done:
            yield _event("progress", job)
        elif job.status != seen_status and not job.is_terminal:
            yield _event("status", job)
        seen_done, seen_status = job.progress.done, job.status
    yield _event(FINAL_EVENT[job.status], job)


def _event(kind: str, job: Job) -> ServerSentEvent:
    body: dict[str, Any] = SummaryOut.from_job(job).model_dump(mode="json")
    # The id grows with every change, so a client that reconnects with
    # Last-Event-ID can tell whether what it receives is news.
    change = job.progress.done * 2 + (1 if job.is_terminal else 0)
    return ServerSentEvent(data=json.dumps(body), event=kind, id=str(change))
