"""Pure arithmetic of throttle and rate limit, apart from any storage."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class ThrottleSlot:
    start_at: int  # when the run may start (Unix ms)
    tat: int  # the key's new theoretical arrival time, to store


def throttle_slot(
    tat: int | None, now: int, period_ms: int, limit: int, burst: int
) -> ThrottleSlot:
    """Schedule one run start with GCRA, as the official server's throttle.

    Starts are spaced ``period / limit`` apart (smoothing), and after a
    quiet spell ``burst`` of them may happen at once, as the official
    documentation describes ``burst``. Unlike a rate limiter, a start over
    the limit is not refused but given the earliest allowed time, so a
    queue of starts drains at the configured rate and none is dropped.
    """
    emission = period_ms / max(limit, 1)
    tolerance = emission * max(burst, 1)
    base = max(tat if tat is not None else now, now)
    new_tat = base + emission
    start_at = max(now, int(new_tat - tolerance))
    return ThrottleSlot(start_at=start_at, tat=int(new_tat))


def rate_allows(starts: Sequence[int], now: int, period_ms: int, limit: int) -> bool:
    """True if fewer than ``limit`` of the recorded starts are in the window.

    A sliding window over the actual start times: at most ``limit`` runs in
    any ``period``, and the window opens with the first start, as the
    official documentation describes.
    """
    recent = sum(1 for at in starts if now - at < period_ms)
    return recent < max(limit, 1)
