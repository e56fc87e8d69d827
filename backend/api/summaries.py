"""The summaries API: ask for a summary, follow the job, cancel it."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request, Response

from backend.api.access import owned_job
from backend.api.intake import read_new_job
from backend.api.schemas import (
    Accepted,
    SummaryOut,
    SummaryRequest,
    error_responses,
    links_for,
)
from backend.auth import User
from backend.errors import Conflict
from backend.events import EventSender
from backend.store import JobStore
from digest.settings import Settings

log = logging.getLogger("digest.backend.api")

router = APIRouter(prefix="/api/summaries", tags=["summaries"])

UPLOAD_SCHEMA = {
    "type": "object",
    "required": ["file"],
    "properties": {
        "file": {
            "type": "string",
            "format": "binary",
            "description": "A .txt, .md, .rst or .html file, as text.",
        },
        "title": {"type": "string", "maxLength": 300},
        "max_sentences": {"type": "integer", "minimum": 1, "maximum": 50},
        "format": {"type": "string", "enum": ["auto", "text", "markdown", "rst"]},
    },
    "additionalProperties": False,
}


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    responses=error_responses(400, 401, 413, 415, 422),
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": SummaryRequest.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                },
                "multipart/form-data": {"schema": UPLOAD_SCHEMA},
            },
        }
    },
)
async def create_summary(
    request: Request, response: Response, background: BackgroundTasks, user: User
) -> Accepted:
    """Queue a document for summarising: its `text`, a `url` to fetch it
    from, or an uploaded file. The answer comes before any work."""
    settings: Settings = request.app.state.settings
    new = await read_new_job(request, max_text_bytes=settings.max_text_bytes)
    job = await _store(request).create_job(
        owner=user,
        text=new.text,
        source_format=new.source_format,
        max_sentences=new.max_sentences,
        title=new.title,
        source_url=new.url,
    )
    log.info("job %s queued (%s)", job.id, new.url or f"{len(new.text)} chars")
    sender: EventSender = request.app.state.events
    # The event goes out after the answer: the client never waits on the
    # executor, and a send that fails is retried by the relay.
    background.add_task(sender.send_job_event, job.id)

    links = links_for(job.id)
    response.headers["Location"] = links.self
    return Accepted(id=job.id, status="queued", links=links)


@router.get(
    "/{job_id}", response_model=SummaryOut, responses=error_responses(401, 404, 422)
)
async def get_summary(request: Request, job_id: str, user: User) -> SummaryOut:
    """A job's status, progress and, once it has one, its summary or error."""
    return SummaryOut.from_job(await owned_job(request, job_id, user))


@router.post(
    "/{job_id}/cancel",
    status_code=202,
    response_model=SummaryOut,
    responses=error_responses(401, 404, 409, 422),
)
async def cancel_summary(
    request: Request, job_id: str, user: User, background: BackgroundTasks
) -> SummaryOut:
    """Cancel a queued or running job: it ends `cancelled` now, and its run
    stops at its next step boundary."""
    job = await owned_job(request, job_id, user)
    store = _store(request)
    if not await store.cancel(job.id):
        # It ended before (or while) we got here.
        job = await store.get_job(job.id)
        raise Conflict(
            f"the job has already ended ({job.status}); only a queued or "
            "running job can be cancelled",
            status=job.status,
        )
    sender: EventSender = request.app.state.events
    background.add_task(sender.send_cancel_event, job.id)
    log.info("job %s cancelled by its owner", job.id)
    return SummaryOut.from_job(await store.get_job(job.id))
