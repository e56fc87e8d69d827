"""The caller's jobs, newest first, a page at a time.

The cursor is opaque to clients: the creation time and id of the last job
of a page, so a page starts right after it even while new jobs arrive.
"""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from backend.api.access import is_job_id
from backend.api.schemas import SummaryOut, SummaryPage, error_responses
from backend.auth import User
from backend.errors import InvalidRequest
from backend.store import Job, JobStatus, JobStore

router = APIRouter(prefix="/api/summaries", tags=["summaries"])


@router.get("", response_model=SummaryPage, responses=error_responses(401, 422))
async def list_summaries(
    request: Request,
    user: User,
    limit: Annotated[int, Query(ge=1, le=100, description="Jobs per page.")] = 20,
    cursor: Annotated[
        str | None,
        Query(max_length=200, description="`next_cursor` of the previous page."),
    ] = None,
    status: Annotated[
        JobStatus | None, Query(description="Only jobs in this state.")
    ] = None,
) -> SummaryPage:
    """Your jobs, newest first; follow `next_cursor` for older ones."""
    store: JobStore = request.app.state.store
    before = decode_cursor(cursor) if cursor else None
    # One more than asked says whether there is a next page.
    jobs = await store.list_jobs(user, limit=limit + 1, status=status, before=before)
    page = jobs[:limit]
    more = len(jobs) > limit
    return SummaryPage(
        items=[SummaryOut.from_job(job) for job in page],
        next_cursor=encode_cursor(page[-1]) if more else None,
    )


def encode_cursor(job: Job) -> str:
    raw = json.dumps([job.created_at.isoformat(), job.id]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        created, job_id = json.loads(raw)
        moment = datetime.fromisoformat(created)
        # A job id of another shape is no cursor of ours (and a NUL in it
        # would reach the database).
        if not (isinstance(job_id, str) and is_job_id(job_id)) or moment.tzinfo is None:
            raise ValueError(job_id)
    except (binascii.Error, ValueError, TypeError, UnicodeDecodeError):
        raise InvalidRequest(
            "'cursor' is not one this API gave out; pass the 'next_cursor' of "
            "the previous page, or leave it out for the first page"
        ) from None
    return moment, job_id
