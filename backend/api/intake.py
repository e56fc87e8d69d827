"""What a new job is made from: JSON text, a JSON URL, or an uploaded file."""

from __future__ import annotations

from dataclasses import dataclass

from fastapi import Request
from pydantic import ValidationError

from backend.api.body import check_text, read_json_object
from backend.api.schemas import SummaryRequest
from backend.api.upload import read_upload
from backend.errors import (
    InvalidRequest,
    UnsupportedMediaType,
    describe_validation_error,
)
from functions.sources.fetch import FetchRefused, parse_url


@dataclass(frozen=True)
class NewJob:
    text: str
    url: str | None
    source_format: str
    max_sentences: int
    title: str | None


async def read_new_job(request: Request, *, max_text_bytes: int) -> NewJob:
    """The job the request asks for, or the 4xx that says what is wrong."""
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    is_html, field = False, "text"
    if media_type.lower() == "multipart/form-data":
        field = "file"
        raw, is_html = await read_upload(request, max_bytes=max_text_bytes)
    else:
        try:
            raw = await read_json_object(request, max_text_bytes=max_text_bytes)
        except UnsupportedMediaType as exc:
            raise UnsupportedMediaType(
                f"{exc.message}; or upload a file as multipart/form-data"
            ) from None
    try:
        ask = SummaryRequest.model_validate(raw)
    except ValidationError as exc:
        raise InvalidRequest(describe_validation_error(exc)) from None
    if ask.title is not None:
        check_text("title", ask.title, max_bytes=1200)
    if ask.url is not None:
        return NewJob(
            "", _checked_url(ask.url), ask.format, ask.max_sentences, ask.title
        )
    text = ask.text or ""
    check_text("text", text, max_bytes=max_text_bytes)
    if not any(char.isalnum() for char in text):
        raise InvalidRequest(
            f"'{field}' has no words (it is empty, blank or only punctuation); "
            "send the document to summarise"
        )
    fmt = "html" if is_html else ask.format
    return NewJob(text, None, fmt, ask.max_sentences, ask.title)


def _checked_url(url: str) -> str:
    """Refuse what no fetch could use; addresses are checked when fetching,
    after the name is resolved."""
    check_text("url", url, max_bytes=4096)
    try:
        parse_url(url.strip())
    except FetchRefused as exc:
        raise InvalidRequest(f"'url': {exc}") from None
    return url.strip()
