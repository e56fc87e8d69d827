"""Retry policy: how many attempts a function gets and when the next one is."""

from __future__ import annotations

import random
from typing import Any

from devserver.config import MAX_RETRIES

# The official server's backoff table, in seconds, indexed by attempt.
_BACKOFF_S = (15, 30, 60, 120, 300, 600, 1200, 2400, 3600, 7200)
_JITTER_S = 30.0


def max_attempts(function: dict[str, Any], default_retries: int) -> int:
    """Attempts per queue item: the function's retries (or the default) + 1."""
    retries = default_retries
    step = (function.get("steps") or {}).get("step") or {}
    configured = (step.get("retries") or {}).get("attempts")
    if isinstance(configured, int) and not isinstance(configured, bool):
        retries = configured
    return min(max(retries, 0), MAX_RETRIES) + 1


def backoff_ms(
    attempt: int, fixed_interval: float | None, rng: random.Random | None = None
) -> int:
    """Delay before the attempt that follows attempt number ``attempt``.

    ``rng`` is for tests; the module's shared generator is used otherwise.
    """
    if fixed_interval is not None:
        return int(fixed_interval * 1000)
    base = _BACKOFF_S[min(max(attempt, 0), len(_BACKOFF_S) - 1)]
    jitter = (rng or random).uniform(0, _JITTER_S)
    return int((base + jitter) * 1000)
