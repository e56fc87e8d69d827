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
_UTF16_BOMS = (codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)


class NotText(ValueError):
    """The bytes are not text in any encoding Digest reads."""


# What to send instead, for either reason bytes are refused.
SEND_TEXT = (
    "send the document as plain text{} (UTF-8, or UTF-16 with a BOM); a PDF, "
    "image, archive or word-processor file must be turned into text first"
)


def decode_text(raw: bytes, declared: str | None = None) -> str:
    for attempt in _candidates(raw, declared):
        if attempt is not None and _looks_like_text(attempt):
            return attempt
    raise NotText(_why_not_text(raw))


def _why_not_text(raw: bytes) -> str:
    """The true reason `raw` was refused: a NUL, or too many control characters.

    Each reason is worded for itself: a file with a single NUL may be
    printable otherwise, and one without any may still be mostly control codes.
    """
    text = _try(raw, "utf-16") if _has_utf16_bom(raw) else None
    reading = "read as UTF-16"
    if text is None:
        text = _try(raw, "utf-8-sig")
        reading = "read as UTF-8"
    if text is None:
        text = raw.decode("latin-1")
        reading = "it is not valid UTF-8 or UTF-16 (with a BOM), and read as Latin-1"
    nul = text.find("\x00")
    if nul >= 0:
        return (
            f"the content is not text: character {nul + 1} of {len(text)} is a "
            "NUL, which text never holds, so it looks like a binary file; "
            + SEND_TEXT.format(" without NUL bytes")
        )
    control = sum(1 for char in text if not (char.isprintable() or char in WHITESPACE))
    return (
        f"the content is not text: {reading}, {control} of its {len(text)} "
        f"characters are control characters, where text may have at most "
        f"{1 - PRINTABLE_SHARE:.0%}; " + SEND_TEXT.format("")
    )


def _has_utf16_bom(raw: bytes) -> bool:
    # UTF-32 LE's BOM starts with UTF-16 LE's; it is not UTF-16.
    return raw.startswith(_UTF16_BOMS) and not raw.startswith(codecs.BOM_UTF32_LE)


def _candidates(raw: bytes, declared: str | None) -> list[str | None]:
    found: list[str | None] = []
    if declared:
        found.append(_try(raw, declared))
    if _has_utf16_bom(raw):
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
