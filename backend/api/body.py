"""Reading a JSON request body with a size cap, before any parsing."""

from __future__ import annotations

import json
from typing import Any

from fastapi import Request

from backend.errors import (
    InvalidJson,
    InvalidRequest,
    PayloadTooLarge,
    UnsupportedMediaType,
)

# JSON escapes can make a body up to six times larger than the text it
# carries (\uXXXX); anything beyond that cannot be a valid request.
ESCAPE_ALLOWANCE = 6
ENVELOPE_BYTES = 64 * 1024


async def read_json_object(request: Request, *, max_text_bytes: int) -> dict[str, Any]:
    media_type = request.headers.get("content-type", "").split(";")[0].strip()
    if media_type.lower() != "application/json":
        given = f"'{media_type}'" if media_type else "no Content-Type header"
        raise UnsupportedMediaType(
            "send the document as JSON with 'Content-Type: application/json' "
            f"(the request had {given})"
        )

    cap = max_text_bytes * ESCAPE_ALLOWANCE + ENVELOPE_BYTES
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > cap:
        raise _too_large(max_text_bytes)
    raw = bytearray()
    async for chunk in request.stream():
        raw += chunk
        if len(raw) > cap:
            raise _too_large(max_text_bytes)

    try:
        value = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as exc:
        raise InvalidJson(
            f"the body is not valid JSON ({exc}); send an object such as "
            '{"text": "...", "max_sentences": 5}'
        ) from None
    if not isinstance(value, dict):
        raise InvalidJson(
            'the body must be a JSON object such as {"text": "..."}, '
            f"not {_json_kind(value)}"
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


def _too_large(max_text_bytes: int) -> PayloadTooLarge:
    return PayloadTooLarge(
        f"'text' may hold at most {max_text_bytes} bytes of UTF-8; "
        "send a shorter document or split it",
        limit_bytes=max_text_bytes,
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
        raise _too_large(max_bytes)
    if "\x00" in text:
        raise InvalidRequest(f"'{field}' holds a NUL character; remove it")
