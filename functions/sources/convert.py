"""HTML to the prose it carries, with trafilatura (boilerplate removed)."""

from __future__ import annotations

import trafilatura


class NoReadableText(ValueError):
    """The page holds no prose to summarise."""


def html_to_text(html: str) -> str:
    """The page's main text; menus, footers and scripts are left out.

    trafilatura finds no main content in some short or unusual pages; its
    plain HTML-to-text conversion is the fallback before giving up.
    """
    text = trafilatura.extract(
        html, include_comments=False, include_tables=False, favor_recall=True
    ) or trafilatura.html2txt(html)
    if not text or not any(char.isalnum() for char in text):
        raise NoReadableText("the page has no readable text")
    return str(text)
