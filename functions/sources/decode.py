"""Bytes to text: which encodings a file or a fetched body may be in.

Tried in order: the charset the server declared (for a fetch), UTF-8 (a
BOM is dropped), UTF-16 when it starts with a BOM, and last Latin-1, which
decodes any bytes at all and is therefore kept only when the result is
mostly printable text. Whatever decodes must not hold NUL or many control
characters: those are binary files, whatever their name says.
"""

from __future__ import annotations

import codecs

# Share of characters that must be printable (or whitespace) for text.
PRINTABLE_SHARE = 0.95
WHITESPACE = frozenset("\t\n\r\f\v")


class NotText(ValueError):
    """The bytes are not text in any encoding Digest reads."""


def decode_text(raw: bytes, declared: str | None = None) -> str:
    for attempt in _candidates(raw, declared):
        if attempt is not None and _looks_like_text(attempt):
            return attempt
    raise NotText(
        "the content is not text: it is not valid UTF-8 or UTF-16 (with a BOM), "
        "and read as Latin-1 it is mostly control characters"
    )


def _candidates(raw: bytes, declared: str | None) -> list[str | None]:
    found: list[str | None] = []
    if declared:
        found.append(_try(raw, declared))
    if raw.startswith(
        (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)
    ) and not raw.startswith(codecs.BOM_UTF32_LE):
        found.append(_try(raw, "utf-16"))
    found.append(_try(raw, "utf-8-sig"))
    found.append(_try(raw, "latin-1"))
    return found


def _try(raw: bytes, encoding: str) -> str | None:
    try:
        return raw.decode(encoding)
    except (UnicodeDecodeError, LookupError):
        return None


def _looks_like_text(text: str) -> bool:
    if "\x00" in text:
        return False
    if not text:
        return True
    printable = sum(1 for char in text if char.isprintable() or char in WHITESPACE)
    return printable / len(text) >= PRINTABLE_SHARE
