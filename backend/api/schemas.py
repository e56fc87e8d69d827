"""What the summaries API takes and answers, as pydantic models."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from backend.store import Job

SourceFormat = Literal["auto", "text", "markdown", "rst"]


MAX_URL_LENGTH = 2048


class SummaryRequest(BaseModel):
    """A document to summarise: its `text`, or a `url` to fetch it from."""

    model_config = ConfigDict(extra="forbid", strict=True)

    text: str | None = Field(
        default=None, description="The document, as plain text, Markdown or reST."
    )
    url: str | None = Field(
        default=None,
        max_length=MAX_URL_LENGTH,
        description="An http(s) URL of an HTML page or a text document; "
        "fetched by the job's `load` step.",
    )
    title: str | None = Field(default=None, max_length=300)
    max_sentences: int = Field(default=5, ge=1, le=50)
    format: SourceFormat = Field(
        default="auto", description="How to read the text; `auto` guesses."
    )

    @model_validator(mode="after")
    def _one_source(self) -> SummaryRequest:
        if (self.text is None) == (self.url is None):
            raise ValueError(
                "send exactly one of 'text' (the document) or 'url' (where to fetch it)"
            )
        return self


class ErrorDetail(BaseModel):
    model_config = ConfigDict(extra="allow")

    code: str
    message: str


class ErrorOut(BaseModel):
    """Every error answer: what went wrong, for a program and for a person."""

    error: ErrorDetail


ERROR_DESCRIPTIONS = {
    400: "The body is not a JSON object, or a header is unusable",
    401: "No bearer token, or one that is expired or forged",
    404: "No such job (or not yours)",
    409: "The job has already ended",
    413: "The body, the text or the file is over the size limit",
    415: "The body or the file is of a type that is not accepted",
    422: "A field is missing, unknown or out of range",
}


def error_responses(*codes: int) -> dict[int | str, dict[str, object]]:
    """OpenAPI entries for error answers, all in the house format."""
    return {
        code: {"model": ErrorOut, "description": ERROR_DESCRIPTIONS[code]}
        for code in codes
    }


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
    url: str | None = Field(description="The URL the document came from, if any.")
    status: str
    progress: ProgressOut
    summary: str | None
    sentences: list[str] | None
    error: str | None
    summarizer: str | None = Field(
        default=None,
        description="Who wrote the summary: `extractive` or `llm`; "
        "null until the job succeeds.",
    )
    model: str | None = Field(
        default=None, description="The language model, for the `llm` summariser."
    )
    created_at: datetime
    updated_at: datetime

    @classmethod
    def from_job(cls, job: Job) -> SummaryOut:
        return cls(
            id=job.id,
            title=job.title,
            url=job.source_url,
            status=job.status,
            progress=ProgressOut(
                done=job.progress.done, total=job.progress.total, step=job.progress.step
            ),
            summary=" ".join(job.summary) if job.summary is not None else None,
            sentences=job.summary,
            error=job.error,
            summarizer=job.summarizer,
            model=job.summary_model,
            created_at=job.created_at,
            updated_at=job.updated_at,
        )


def links_for(job_id: str) -> Links:
    base = f"/api/summaries/{job_id}"
    return Links(self=base, events=f"{base}/events")


class SummaryPage(BaseModel):
    """A page of the caller's jobs, newest first."""

    items: list[SummaryOut]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null on the last page."
    )


class DevTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    sub: str = Field(min_length=1, max_length=255, description="The user id.")


class DevToken(BaseModel):
    token: str
