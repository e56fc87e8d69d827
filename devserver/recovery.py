"""Start-up against a database another process may hold locked.

SQLite waits up to its busy timeout (5 s) for a lock; a backup tool or a
stray process can hold one longer. Start-up steps that read or rewrite the
stored state (opening it, re-queueing items left in flight) are retried
until they succeed or a deadline passes, so recovery never skips work
because the file was briefly locked.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from typing import TypeVar

from devserver.logtext import get_logger

logger = get_logger("digest.devserver.recovery")

T = TypeVar("T")
DEADLINE_S = 120.0
_PAUSE_S = 0.2


def retry_while_locked(step: Callable[[], T], what: str) -> T:
    """Run ``step``; while SQLite says the database is locked, try again."""
    deadline = time.monotonic() + DEADLINE_S
    warned = False
    while True:
        try:
            return step()
        except sqlite3.OperationalError as exc:
            text = str(exc).lower()
            if "locked" not in text and "busy" not in text:
                raise
            if time.monotonic() > deadline:
                raise
            if not warned:
                logger.warning("%s: database is locked (%s); retrying", what, exc)
                warned = True
            time.sleep(_PAUSE_S)
