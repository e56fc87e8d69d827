"""What every conformance app shares: its client and marker files."""

from __future__ import annotations

import os
from pathlib import Path

import inngest

EXECUTOR_URL = os.environ["EXECUTOR_URL"]
MARKER_DIR = Path(os.environ["MARKER_DIR"])


def client_for(app_id: str) -> inngest.Inngest:
    return inngest.Inngest(
        app_id=app_id,
        is_production=False,
        api_base_url=EXECUTOR_URL,
        event_api_base_url=EXECUTOR_URL,
    )


def mark(key: str, step: str, text: str = "ran") -> int:
    """Record one execution of a step body; return how many so far."""
    path = MARKER_DIR / f"{key}.{step}"
    with path.open("a") as handle:
        handle.write(text + "\n")
    return len(path.read_text().splitlines())
