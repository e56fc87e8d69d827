"""A job as its owner may see it: anyone else is told it does not exist."""

from __future__ import annotations

from fastapi import Request

from backend.errors import NotFound
from backend.store import Job, JobNotFound, JobStore


async def owned_job(request: Request, job_id: str, user: str) -> Job:
    """The job, if `user` owns it; NotFound otherwise, so that another
    user's job cannot be told apart from one that does not exist."""
    store: JobStore = request.app.state.store
    try:
        job = await store.get_job(job_id.upper())
    except JobNotFound:
        job = None
    if job is None or job.owner != user:
        raise NotFound(f"no summary job with id '{job_id[:64]}'")
    return job
