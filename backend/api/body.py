"""Reading a request body with a size cap, before any parsing."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from fastapi import Request
from starlette.requests import ClientDisconnect

from backend.errors import (
    IncompleteBody,
    InvalidJson,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

log = logging.getLogger("digest.backend.api")

# JSON escapes can make a body up to six times larger than the text it
# carries (\uXXXX); anything beyond that cannot be a valid request.
ESCAPE_ALLOWANCE = 6
ENVELOPE_BYTES = 64 * 1024
SUMMARY_EXAMPLE = '{"text": "...", "max_sentences": 5}'


def declared_length(request: Request) -> int | None:
    """The body's size as its Content-Length header gives it, if it does.

    The HTTP server refuses a header that is not a whole number before the
    app sees the request; the check here only keeps int() from ever failing.
    """
    declared = request.headers.get("content-length", "").strip()
    if declared.isascii() and declared.isdigit():
        return int(declared)
    return None


# What `read_capped` refuses a body with: called with the size its
# Content-Length declares when that alone is over the cap (nothing was read),
# or with None once more than the cap has arrived.
TooLarge = Callable[[int | None], PayloadTooLarge]


async def read_capped(request: Request, *, cap: int, too_large: TooLarge) -> bytes:
    """The whole body, refused with `too_large()` once it is over `cap` bytes
    (at once, with `too_large(declared)`, if its Content-Length says so)."""
    declared = declared_length(request)
    if declared is not None and declared > cap:
        raise too_large(declared)
    raw = bytearray()
    try:
        # A body that stops arriving is answered 408 around the whole app
        # (digest.body_timeout), on this route as on every other.
        async for chunk in request.stream():
            raw += chunk
            if len(raw) > cap:
                raise too_large(None)
    except ClientDisconnect:
        raise _incomplete(request, declared, len(raw)) from None
    return bytes(raw)


def _incomplete(
    request: Request, declared: int | None, received: int
) -> IncompleteBody:
    """The client closed the connection before the body was all there: the
    answer may never reach it, but the log says what happened, not a 500."""
    if declared is not None:
        message = (
            f"the body ended after {received} bytes, short of the {declared} "
            "bytes its Content-Length header declares; send a Content-Length "
            "that matches the body"
        )
    else:
        message = (
            f"the connection closed after {received} bytes of the body, before "
            "its end; send the whole body"
        )
    log.info("%s %s refused: %s", request.method, request.url.path, message)
    return IncompleteBody(message)


def _media_type(request: Request) -> str:
    return request.headers.get("content-type", "").split(";")[0].strip()


async def read_json_object(request: Request, *, max_text_bytes: int) -> dict[str, Any]:
    """A summary request's JSON object, its `text` at most `max_text_bytes`."""
    return await _json_object(
        request,
        what="document",
        example=SUMMARY_EXAMPLE,
        cap=max_text_bytes * ESCAPE_ALLOWANCE + ENVELOPE_BYTES,
        too_large=text_limit(max_text_bytes).refusal,
    )


async def read_small_json_object(request: Request, *, example: str) -> dict[str, Any]:
    """A JSON object of a few fields, such as `example`, at most 64 KiB."""
    limit = SizeLimit(
        ENVELOPE_BYTES,
        field="the body",
        holder="this body",
        remedy=f"send an object such as {example}",
    )
    return await _json_object(
        request,
        what="body",
        example=example,
        cap=ENVELOPE_BYTES,
        too_large=limit.refusal,
    )


async def _json_object(
    request: Request,
    *,
    what: str,
    example: str,
    cap: int,
    too_large: TooLarge,
) -> dict[str, Any]:
    media_type = _media_type(request)
    if media_type.lower() != "application/json":
        given = f"'{media_type}'" if media_type else "no Content-Type header"
        raise UnsupportedMediaType(
            f"send the {what} as JSON with 'Content-Type: application/json' "
            f"(the request had {given})"
        )
    raw = await read_capped(request, cap=cap, too_large=too_large)
    if not raw.strip():
        raise InvalidJson(f"the body is empty; send a JSON object such as {example}")
    try:
        value = json.loads(raw)
    except RecursionError:
        # Python's own parser gives up at its recursion limit (about a
        # thousand levels); the error it raises names Python, not the body.
        raise InvalidJson(
            "the body's JSON is too deeply nested (arrays or objects inside "
            "one another about a thousand levels deep or more); send a flat "
            f"object such as {example}"
        ) from None
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InvalidJson(
            f"the body is not valid JSON ({exc}); send an object such as {example}"
        ) from None
    if not isinstance(value, dict):
        raise InvalidJson(
            f"the body must be a JSON object such as {example}, not {_json_kind(value)}"
        )
    return value


def _json_kind(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    return "an array"


@dataclass(frozen=True)
class SizeLimit:
    """A cap on what a request may carry, and how a refusal of it reads:
    of what arrived (`field` may hold at most...), or of a Content-Length
    that alone is over it (nothing read, so the header may be the false
    part: the remedy asks for one that matches, too)."""

    max_bytes: int
    field: str  # what is over the cap, as the first refusal names it
    holder: str  # the same, as the Content-Length refusal names it
    remedy: str
    unit: str = ""

    def refusal(self, declared: int | None = None) -> PayloadTooLarge:
        if declared is None:
            message = (
                f"{self.field} may hold at most {self.max_bytes} bytes"
                f"{self.unit}; {self.remedy}"
            )
        else:
            message = (
                f"the Content-Length header declares {declared} bytes, more "
                f"than the {self.max_bytes} bytes {self.holder} may hold, so "
                f"the body was not read; {self.remedy}, with a Content-Length "
                "that matches the body"
            )
        return PayloadTooLarge(message, limit_bytes=self.max_bytes)


def text_limit(max_text_bytes: int) -> SizeLimit:
    return SizeLimit(
        max_text_bytes,
        field="'text'",
        holder="a document",
        remedy="send a shorter document or split it",
        unit=" of UTF-8",
    )


def check_text(field: str, text: str, *, max_bytes: int) -> None:
    """Refuse text that is too long or that no database can store as it is."""
    try:
        size = len(text.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidRequest(
            f"'{field}' holds an unpaired surrogate escape (such as \\ud800); "
            "send valid Unicode text"
        ) from None
    if size > max_bytes:
        raise text_limit(max_bytes).refusal()
    if "\x00" in text:
        raise InvalidRequest(f"'{field}' holds a NUL character; remove it")
