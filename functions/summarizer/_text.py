"""Small text helpers shared by the extraction and splitting modules."""

from __future__ import annotations

import re

_WHITESPACE = re.compile(r"\s+")


def collapse_whitespace(text: str) -> str:
    """Collapse every whitespace run (including newlines) to one space."""
    return _WHITESPACE.sub(" ", text).strip()
