"""The summaries API: ask for a summary, then follow the job."""

from __future__ import annotations

import logging

from fastapi import APIRouter, BackgroundTasks, Request, Response
from pydantic import ValidationError

from backend.api.body import check_text, read_json_object
from backend.api.schemas import (
    Accepted,
    SummaryOut,
    SummaryRequest,
    links_for,
)
from backend.errors import InvalidRequest, NotFound, describe_validation_error
from backend.events import EventSender
from backend.store import JobNotFound, JobStore
from digest.settings import Settings

log = logging.getLogger("digest.backend.api")

router = APIRouter(prefix="/api/summaries", tags=["summaries"])

ERROR_RESPONSES: dict[int | str, dict[str, object]] = {
    400: {"description": "The body is not a JSON object"},
    404: {"description": "No such job"},
    413: {"description": "The text is over the size limit"},
    415: {"description": "The body is not application/json"},
    422: {"description": "A field is missing, unknown or out of range"},
}


def _store(request: Request) -> JobStore:
    store: JobStore = request.app.state.store
    return store


@router.post(
    "",
    status_code=202,
    response_model=Accepted,
    responses=ERROR_RESPONSES,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": SummaryRequest.model_json_schema(
                        ref_template="#/components/schemas/{model}"
                    )
                }
            },
        }
    },
)
async def create_summary(
    request: Request, response: Response, background: BackgroundTasks
) -> Accepted:
    """Queue a document for summarising; the answer comes before any work."""
    settings: Settings = request.app.state.settings
    raw = await read_json_object(request, max_text_bytes=settings.max_text_bytes)
    try:
        ask = SummaryRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
    check_text("text", ask.text, max_bytes=settings.max_text_bytes)
    if ask.title is not None:
        check_text("title", ask.title, max_bytes=1200)
    if not any(char.isalnum() for char in ask.text):
        raise InvalidRequest(
            "'text' has no words (it is empty, blank or only punctuation); "
            "send the document to summarise"
        )

    job = await _store(request).create_job(
        text=ask.text,
        source_format=ask.format,
        max_sentences=ask.max_sentences,
        title=ask.title,
    )
    log.info("job %s queued (%d chars)", job.id, len(ask.text))
    sender: EventSender = request.app.state.events
    # The event goes out after the answer: the client never waits on the
    # executor, and a send that fails is retried by the relay.
    background.add_task(sender.send_job_event, job.id)

    links = links_for(job.id)
    response.headers["Location"] = links.self
    return Accepted(id=job.id, status="queued", links=links)


@router.get("/{job_id}", response_model=SummaryOut, responses=ERROR_RESPONSES)
async def get_summary(request: Request, job_id: str) -> SummaryOut:
    """A job's status, progress and, once it has one, its summary or error."""
    try:
        job = await _store(request).get_job(job_id.upper())
    except JobNotFound:
        raise NotFound(f"no summary job with id '{job_id}'") from None
    return SummaryOut.from_job(job)
