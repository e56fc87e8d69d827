"""Validation and normalisation of incoming events (protocol section 3)."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Any

from ulid import ULID

from devserver import jsonio
from devserver.clock import now_ms

RESERVED_PREFIX = "inngest/"
MAX_NAME_LENGTH = 512
# The official server's documented default size limit for one event.
MAX_EVENT_BYTES = 512 * 1024

FUNCTION_FAILED = "inngest/function.failed"
FUNCTION_FINISHED = "inngest/function.finished"
FUNCTION_CANCELLED = "inngest/function.cancelled"
LIFECYCLE_EVENTS = frozenset({FUNCTION_FAILED, FUNCTION_FINISHED, FUNCTION_CANCELLED})


class EventError(ValueError):
    """An event the API refuses; the message is sent back to the caller."""


@dataclass(frozen=True)
class Accepted:
    internal_id: str
    event: dict[str, Any]
    received_at: int


def normalise(raw: object, internal_id: str, received_at: int) -> Accepted:
    """Check one user event and return the form stored and sent to apps."""
    if not isinstance(raw, dict):
        raise EventError("event must be a JSON object")
    try:
        # The whole event, however it arrived, is held to the strict rules.
        text = jsonio.dumps(raw, max_depth=jsonio.MAX_DEPTH)
    except jsonio.JSONInputError as exc:
        raise EventError(f"event is not valid JSON: {exc}") from None
    size = len(text.encode())
    if size > MAX_EVENT_BYTES:
        raise EventError(
            f"event is {size} bytes, over the limit of {MAX_EVENT_BYTES} bytes"
        )
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise EventError("event name is required and must be a non-empty string")
    if len(name) > MAX_NAME_LENGTH:
        raise EventError(f"event name is longer than {MAX_NAME_LENGTH} characters")
    if name.startswith(RESERVED_PREFIX):
        raise EventError(f"event names starting with {RESERVED_PREFIX!r} are reserved")
    data = raw.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise EventError("event data must be a JSON object")
    ts = raw.get("ts")
    if ts is None or ts == 0:
        ts = received_at
    if isinstance(ts, bool) or not isinstance(ts, int | float) or ts != int(ts):
        raise EventError("event ts must be an integer of Unix milliseconds")
    event_id = raw.get("id")
    if event_id in (None, ""):
        event_id = internal_id
    if not isinstance(event_id, str):
        raise EventError("event id must be a string")
    event: dict[str, Any] = {
        "name": name,
        "data": {k: v for k, v in data.items() if k != "_inngest"},
        "id": event_id,
        "ts": int(ts),
    }
    for extra in ("user", "v"):
        if raw.get(extra) is not None:
            event[extra] = raw[extra]
    return Accepted(internal_id, event, received_at)


def internal_event(name: str, event_id: str, data: dict[str, Any]) -> Accepted:
    """An event the executor emits itself (lifecycle events)."""
    received = now_ms()
    event = {"name": name, "data": data, "id": event_id, "ts": received}
    return Accepted(str(ULID()), event, received)


def internal_ids(count: int, seed: str | None) -> list[str]:
    """ULIDs for a request, derived from ``x-inngest-event-id-seed`` if valid.

    The SDK re-sends the same seed when it retries a send, so seeded ids let
    a retried request land on the ids it got the first time.
    """
    parsed = _parse_seed(seed) if seed else None
    if parsed is None:
        return [str(ULID()) for _ in range(count)]
    millis, entropy = parsed
    ids = []
    for k in range(1, count + 1):
        counter = (int.from_bytes(entropy[6:10], "big") + k) % 2**32
        randomness = entropy[:6] + counter.to_bytes(4, "big")
        ids.append(str(ULID.from_bytes(millis.to_bytes(6, "big") + randomness)))
    return ids


def _parse_seed(seed: str) -> tuple[int, bytes] | None:
    try:
        millis_text, entropy_text = seed.split(",", 1)
        millis = int(millis_text)
        entropy = base64.b64decode(entropy_text, validate=True)
    except ValueError:
        return None
    if len(entropy) != 10 or not 0 <= millis < 2**48:
        return None
    return millis, entropy


def is_ulid(value: str) -> bool:
    try:
        ULID.from_str(value)
    except ValueError:
        return False
    return True
