"""A document sent as a file: `multipart/form-data` with a `file` part.

The body is read with a cap before it is parsed, so an upload over the
limit costs no more than the limit. The file's name picks how it is read:
.txt, .md, .rst or .html (HTML is turned into text by the `load` step).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from typing import Any

from starlette.datastructures import UploadFile
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.types import Message

from backend.api.body import SizeLimit, read_capped
from backend.errors import (
    ApiError,
    InvalidRequest,
    UnsupportedMediaType,
)
from functions.sources.decode import NotText, decode_text

FORMAT_OF_SUFFIX = {
    ".txt": "auto",
    ".text": "auto",
    ".md": "markdown",
    ".markdown": "markdown",
    ".rst": "rst",
    ".html": "html",
    ".htm": "html",
}
FIELDS = frozenset({"file", "title", "max_sentences", "format"})
ENVELOPE_BYTES = 64 * 1024


async def read_upload(
    request: Request, *, max_bytes: int
) -> tuple[dict[str, Any], bool]:
    """The upload's fields as a summary request (`text` holds the file's
    text), and whether that text is HTML."""
    raw = await read_capped(
        request,
        cap=max_bytes + ENVELOPE_BYTES,
        too_large=_file_limit(max_bytes).refusal,
    )

    _check_complete(raw, request.headers.get("content-type", ""))

    async def replay() -> Message:
        return {"type": "http.request", "body": raw, "more_body": False}

    try:
        form = await Request(request.scope, replay).form(
            max_files=1, max_fields=len(FIELDS), max_part_size=ENVELOPE_BYTES
        )
    except HTTPException as exc:
        raise ApiError(f"the multipart body cannot be read: {exc.detail}") from None
    try:
        unknown = sorted(set(form.keys()) - FIELDS)
        if unknown:
            raise InvalidRequest(f"unknown field '{unknown[0]}': remove it")
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest(
                "'file' is required: send the document as a file part named 'file'"
            )
        fields: dict[str, Any] = {
            name: value
            for name in ("title", "format")
            if isinstance(value := form.get(name), str)
        }
        if isinstance(count := form.get("max_sentences"), str):
            fields["max_sentences"] = _whole_number(count)
        return await _document(upload, fields, max_bytes)
    finally:
        await form.close()


async def _document(
    upload: UploadFile, fields: dict[str, Any], max_bytes: int
) -> tuple[dict[str, Any], bool]:
    name = upload.filename or ""
    suffix = PurePosixPath(name).suffix.lower()
    kind = FORMAT_OF_SUFFIX.get(suffix)
    if kind is None:
        accepted = ", ".join(sorted(FORMAT_OF_SUFFIX))
        raise UnsupportedMediaType(
            f"'file' ({name[:100] or 'no name'}) is not a type Digest reads; "
            f"send one of {accepted}"
        )
    data = await upload.read()
    if len(data) > max_bytes:
        raise _file_limit(max_bytes).refusal()
    if not data:
        raise InvalidRequest(f"'file' ({name[:100]}) is empty")
    try:
        text = decode_text(data)
    except NotText as exc:
        raise InvalidRequest(f"'file' ({name[:100]}): {exc}") from None
    if kind == "html":
        if fields.get("format", "auto") != "auto":
            raise InvalidRequest(
                "'format' describes text; an .html file is turned into text, "
                "so leave 'format' out"
            )
        fields["format"] = "auto"
    elif kind != "auto":
        fields.setdefault("format", kind)
    return {**fields, "text": text}, kind == "html"


_BOUNDARY = re.compile(r'boundary=(?:"([^"]+)"|([^;\s]+))', re.IGNORECASE)


def _check_complete(raw: bytes, content_type: str) -> None:
    """Refuse a multipart body that never reaches its closing boundary.

    The parser reads what is there without complaint, so a body cut short
    would otherwise lose its parts silently and be refused for a missing
    'file' that the client did send.
    """
    match = _BOUNDARY.search(content_type)
    if match is None:
        raise ApiError(
            "the multipart body cannot be read: its Content-Type names no "
            "boundary; send 'multipart/form-data; boundary=...' as an HTTP "
            "client builds it"
        )
    boundary = (match.group(1) or match.group(2)).encode("latin-1", "replace")
    if b"--" + boundary + b"--" not in raw:
        raise ApiError(
            f"the multipart body is malformed or cut short: it never reaches "
            f"its closing line '--{boundary.decode('latin-1')[:70]}--' after "
            f"{len(raw)} bytes; send the whole body, as an HTTP client builds it"
        )


def _whole_number(value: str) -> int:
    if not value.strip().isascii() or not value.strip().isdigit():
        raise InvalidRequest(
            f"'max_sentences' must be a whole number from 1 to 50, not {value[:20]!r}"
        )
    return int(value.strip())


def _file_limit(max_bytes: int) -> SizeLimit:
    return SizeLimit(
        max_bytes,
        field="'file'",
        holder="a 'file'",
        remedy="send a smaller document",
    )
