"""Logging set-up for Digest's entry points (library modules never do this)."""

from __future__ import annotations

import logging

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def configure(verbose: bool = False) -> None:
    level = logging.DEBUG if verbose else logging.INFO
    logging.basicConfig(level=level, format=FORMAT, datefmt="%H:%M:%S", force=True)
    # httpx logs every request at info; that is protocol chatter, not news.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    # Alembic announces each of its plugins at info on every start.
    logging.getLogger("alembic.runtime.plugins").setLevel(logging.WARNING)
