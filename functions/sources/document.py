"""A job's document from its source: a fetched URL or an uploaded HTML file."""

from __future__ import annotations

from functions.cpu import run_cpu
from functions.sources.convert import NoReadableText, html_to_text
from functions.sources.decode import NotText, decode_text
from functions.sources.fetch import (
    HTML_TYPES,
    FetchLimits,
    FetchRefused,
    Resolver,
    fetch,
    system_resolver,
)

FORMAT_OF_TYPE = {
    "text/markdown": "markdown",
    "text/x-markdown": "markdown",
    "text/x-rst": "rst",
    "text/prs.fallenstein.rst": "rst",
}


async def fetch_document(
    url: str,
    declared_format: str,
    limits: FetchLimits,
    *,
    resolver: Resolver = system_resolver,
) -> tuple[str, str]:
    """The text at `url` and its format; FetchRefused/FetchFailed if none."""
    fetched = await fetch(url, limits, resolver=resolver)
    try:
        text = decode_text(fetched.body, fetched.charset)
    except NotText as exc:
        raise FetchRefused(f"{fetched.url}: {exc}") from None
    if fetched.media_type in HTML_TYPES or (
        not fetched.media_type and _looks_like_html(text)
    ):
        return await html_document(text, source=fetched.url), "text"
    if not any(char.isalnum() for char in text):
        raise FetchRefused(f"{fetched.url} has no words to summarise")
    if declared_format != "auto":
        return text, declared_format
    return text, FORMAT_OF_TYPE.get(fetched.media_type, "auto")


async def html_document(html: str, *, source: str) -> str:
    """The prose of an HTML page (in a worker process: parsing is CPU work)."""
    try:
        return await run_cpu(html_to_text, html)
    except NoReadableText as exc:
        raise FetchRefused(f"{source}: {exc}") from None


def _looks_like_html(text: str) -> bool:
    start = text.lstrip()[:200].lower()
    return start.startswith(("<!doctype html", "<html"))
