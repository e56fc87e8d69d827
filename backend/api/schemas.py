"""What the summaries API takes and answers, as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from backend.store import Job

SourceFormat = Literal["auto", "text", "markdown", "rst"]


class SummaryRequest(BaseModel):
    """A document to summarise."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str = Field(description="The document, as plain text, Markdown or reST.")
    title: str | None = Field(default=None, max_length=300)
    max_sentences: int = Field(default=5, ge=1, le=50)
    format: SourceFormat = Field(
        default="auto", description="How to read `text`; `auto` guesses."
    )


class Links(BaseModel):
    self: str
    events: str


class Accepted(BaseModel):
    id: str
    status: Literal["queued"]
    links: Links


class ProgressOut(BaseModel):
    done: int
    total: int
    step: str | None


class SummaryOut(BaseModel):
    id: str
    title: str | None
    status: str
    progress: ProgressOut
    summary: str | None
    sentences: list[str] | None
    error: str | None
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_job(cls, job: Job) -> SummaryOut:
        return cls(
            id=job.id,
            title=job.title,
            status=job.status,
            progress=ProgressOut(
                done=job.progress.done, total=job.progress.total, step=job.progress.step
            ),
            summary=" ".join(job.summary) if job.summary is not None else None,
            sentences=job.summary,
            error=job.error,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )


def links_for(job_id: str) -> Links:
    base = f"/api/summaries/{job_id}"
    return Links(self=base, events=f"{base}/events")
