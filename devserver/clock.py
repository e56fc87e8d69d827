"""Time helpers: Unix milliseconds, RFC 3339 strings and duration strings."""

from __future__ import annotations

import re
import time
from datetime import UTC, datetime

_DURATION_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|w|d|h|m|s)")
_UNIT_MS = {
    "ms": 1,
    "s": 1_000,
    "m": 60_000,
    "h": 3_600_000,
    "d": 86_400_000,
    "w": 604_800_000,
}


def now_ms() -> int:
    return time.time_ns() // 1_000_000


def iso_ms(ms: int) -> str:
    """RFC 3339 UTC with milliseconds, the format the REST API uses."""
    moment = datetime.fromtimestamp(ms / 1000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_duration_ms(text: str) -> int:
    """Parse ``30s``, ``1m``, ``2h45m``, ``1w``; raise ValueError otherwise."""
    text = text.strip()
    parts = _DURATION_PART.findall(text)
    if not parts or "".join(n + u for n, u in parts) != text:
        raise ValueError(f"invalid duration {text!r}")
    return int(sum(float(n) * _UNIT_MS[u] for n, u in parts))


def parse_instant_ms(text: str) -> int:
    """Parse an ISO-8601 instant; a value without zone is taken as UTC."""
    moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return int(moment.timestamp() * 1000)
