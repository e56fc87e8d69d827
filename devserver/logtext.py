"""Log lines that text from clients cannot break or forge.

Event names, function and step ids, app names, URLs and error messages
come from whoever sends events or syncs an app, and the event API accepts
any name Inngest accepts, newlines included. Written as they are, a name
such as ``"a\\n2026-01-01 00:00:00,000 INFO digest.devserver: ..."`` would
add a forged line to the executor's log. Every executor logger is made by
``get_logger``, whose filter writes control characters of a message as
escapes (``\\n``, ``\\r``, ``\\x1b``...), so that one record is one line.
"""

from __future__ import annotations

import logging
import re

# C0 and C1 controls, DEL, and the Unicode line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}


def _escape(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    code = ord(char)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}"


def escaped(text: str) -> str:
    """``text`` with every control character written as an escape."""
    return _CONTROL.sub(_escape, text)


def first_control(text: str) -> str | None:
    """The first control character in ``text`` as its escape, or None."""
    found = _CONTROL.search(text)
    return _escape(found) if found else None


class EscapeControlCharacters(logging.Filter):
    """Rewrites a record's message with its control characters escaped.

    The message is formatted here, once, so that its arguments (where the
    client's text is) are escaped wherever they sit; the traceback of
    ``logger.exception`` is left as it is.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a bad format string: the handler reports it
            return True
        safe = escaped(message)
        if safe != message:
            record.msg = safe
            record.args = None
        return True


_FILTER = EscapeControlCharacters()


def get_logger(name: str) -> logging.Logger:
    """``logging.getLogger(name)`` whose lines escape control characters."""
    logger = logging.getLogger(name)
    if _FILTER not in logger.filters:
        logger.addFilter(_FILTER)
    return logger
