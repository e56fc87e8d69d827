"""A job as its owner may see it: anyone else is told it does not exist."""

from __future__ import annotations

import re

from fastapi import Request

from backend.errors import NotFound
from backend.store import Job, JobNotFound, JobStore

# A job id is a ULID: 26 characters of Crockford's base32, the first at most
# 7 (128 bits). Anything else cannot name a job, so it is answered without
# asking the database, which may refuse some of it (PostgreSQL takes no NUL).
JOB_ID = re.compile(r"[0-7][0-9A-HJKMNP-TV-Z]{25}")


def is_job_id(value: str) -> bool:
    """Whether `value` has the shape of a job id (in either case)."""
    return JOB_ID.fullmatch(value.upper()) is not None


async def owned_job(request: Request, job_id: str, user: str) -> Job:
    """The job, if `user` owns it; NotFound otherwise, so that another
    user's job cannot be told apart from one that does not exist."""
    store: JobStore = request.app.state.store
    job = None
    if is_job_id(job_id):
        try:
            job = await store.get_job(job_id.upper())
        except JobNotFound:
            job = None
    if job is None or job.owner != user:
        raise NotFound(f"no summary job with id '{job_id[:64]}'")
    return job
