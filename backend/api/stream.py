"""Server-Sent Events for one job: its state now, then every change.

Each change of the job is one event (`status`, `progress`, then one of
`completed`, `failed`, `cancelled`, after which the stream ends), read from
the job's event log. The event id is the change's sequence number, so a
client that reconnects with `Last-Event-ID` is sent exactly the changes it
missed; one that connects without it gets the current state first.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Annotated

from fastapi import APIRouter, Header, Request, Response
from sse_starlette import EventSourceResponse, ServerSentEvent

from backend.api.access import owned_job
from backend.api.feed import JobFeed
from backend.api.schemas import SummaryOut, error_responses
from backend.auth import User
from backend.errors import InvalidHeader
from backend.store import Job, JobEvent, JobStore, Progress

router = APIRouter(prefix="/api/summaries", tags=["summaries"])

HEARTBEAT_SECONDS = 15
FINAL_EVENT = {"succeeded": "completed", "failed": "failed", "cancelled": "cancelled"}
EVENT_ID = re.compile(r"[0-9]{1,15}")


@router.get(
    "/{job_id}/events",
    response_class=EventSourceResponse,
    responses={
        200: {"content": {"text/event-stream": {}}, "description": "The job's events"},
        204: {
            "description": "The job had ended and Last-Event-ID was its final "
            "event: nothing more will come (EventSource stops reconnecting)"
        },
        **error_responses(400, 401, 404, 422),
    },
)
async def job_events(
    request: Request,
    job_id: str,
    user: User,
    last_event_id: Annotated[
        str | None,
        Header(description="The id of the last event received, to resume after it"),
    ] = None,
) -> Response:
    """The job's status first, then `progress` per finished step, then
    `completed`, `failed` or `cancelled`, after which the stream ends."""
    last = _parse_last_event_id(last_event_id)
    job = await owned_job(request, job_id, user)
    if last is not None and job.is_terminal and last >= job.version:
        return Response(status_code=204)
    store: JobStore = request.app.state.store
    feed: JobFeed = request.app.state.feed
    return EventSourceResponse(
        _events(store, feed, job, last), ping=HEARTBEAT_SECONDS, send_timeout=30
    )


def _parse_last_event_id(value: str | None) -> int | None:
    if value is None or not value.strip():
        return None
    if not EVENT_ID.fullmatch(value.strip()):
        raise InvalidHeader(
            f"Last-Event-ID must be the number of an event this stream sent, "
            f"not {_as_sent(value)[:40]!r}; omit it to start from the current state"
        )
    return int(value.strip())


def _as_sent(value: str) -> str:
    # Header values reach us decoded as Latin-1; a client that sent UTF-8
    # wrote the text this gives back, not the mojibake.
    try:
        return value.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return value


async def _events(
    store: JobStore, feed: JobFeed, job: Job, last: int | None
) -> AsyncIterator[ServerSentEvent]:
    if last is None or last > job.version:
        # A new client, or an id this job never sent: the state now. A
        # client that has seen everything waits for the next change.
        yield _sse("status", job, job.version)
        if job.is_terminal:
            yield _sse(FINAL_EVENT[job.status], job, job.version)
            return
        last = job.version
    async for event in feed.follow(job.id, last):
        if event.is_final:
            # The summary or the error is on the job, not in the log.
            yield _sse(event.kind, await store.get_job(job.id), event.seq)
            return
        yield _sse(event.kind, _as_of(job, event), event.seq)


def _as_of(job: Job, event: JobEvent) -> Job:
    """The job as it stood at a change that was not its last. A replay from
    an early id reads the job now, after its end: what only the end wrote
    (the summary, the error, who wrote the summary) is left out."""
    progress = Progress(done=event.done, total=event.total, step=event.step)
    return replace(
        job,
        status=event.status,  # type: ignore[arg-type]
        progress=progress,
        summary=None,
        error=None,
        summarizer=None,
        summary_model=None,
    )


def _sse(kind: str, job: Job, seq: int) -> ServerSentEvent:
    body = SummaryOut.from_job(job).model_dump(mode="json")
    return ServerSentEvent(data=json.dumps(body), event=kind, id=str(seq))
