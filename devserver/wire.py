"""Wire shapes of the SDK protocol: call bodies, op objects and answers.

Pure functions only; nothing here does I/O, so the executor's decisions can
be read (and tested) apart from HTTP and storage.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any

from devserver import jsonio
from devserver.clock import now_ms, parse_duration_ms, parse_instant_ms

JSON = Any
DISCOVERY = "step"

# retry-after values are clamped like the official server does.
_MIN_RETRY_AFTER_MS = 1_000
_MAX_RETRY_AFTER_MS = 24 * 3_600_000


class Opcode(StrEnum):
    STEP_RUN = "StepRun"
    STEP_PLANNED = "StepPlanned"
    STEP_ERROR = "StepError"
    STEP_FAILED = "StepFailed"
    SLEEP = "Sleep"
    WAIT_FOR_EVENT = "WaitForEvent"
    INVOKE_FUNCTION = "InvokeFunction"
    AI_GATEWAY = "AIGateway"


@dataclass(frozen=True)
class Op:
    """One entry of a 206 answer."""

    id: str
    op: str
    name: str
    display_name: str
    opts: dict[str, JSON]
    data: JSON = None
    error: JSON = None

    @property
    def race(self) -> bool:
        return self.opts.get("parallelMode") == "race"


_OPCODES = frozenset(o.value for o in Opcode)


class Outcome(StrEnum):
    COMPLETED = "completed"
    OPS = "ops"
    ERROR = "error"


@dataclass
class CallResult:
    """What one call to an app amounted to."""

    outcome: Outcome
    output: JSON = None
    ops: list[Op] = field(default_factory=list)
    error: dict[str, JSON] | None = None
    no_retry: bool = False
    retry_at_ms: int | None = None
    # The app was not reached or asked to be called later (429): retry at
    # retry_at_ms without spending one of the item's attempts.
    free_retry: bool = False
    # The app is gone (refused connection, 404): show it as unreachable.
    unreachable: bool = False


class ProtocolError(ValueError):
    """The app answered something that is not the SDK protocol."""


def error_object(name: str, message: str) -> dict[str, JSON]:
    return {"name": name, "message": message}


def build_call_body(
    *,
    run_id: str,
    event: dict[str, JSON],
    events: list[dict[str, JSON]],
    memo: dict[str, JSON],
    stack: list[str],
    step_id: str,
    attempt: int,
    max_attempts: int,
    disable_immediate_execution: bool,
) -> dict[str, JSON]:
    """The request body of 4.1, with the strict types the SDK demands."""
    if step_id != DISCOVERY and step_id in memo:
        # A targeted call must not see its own memo, or the SDK would skip it.
        memo = {k: v for k, v in memo.items() if k != step_id}
    return {
        "event": for_sdk(event),
        "events": [for_sdk(e) for e in events],
        "steps": memo,
        "ctx": {
            "run_id": run_id,
            "attempt": attempt,
            "max_attempts": max_attempts,
            "disable_immediate_execution": disable_immediate_execution,
            "use_api": False,
            "stack": {"stack": list(stack), "current": len(stack)},
            "step_id": step_id,
            "env": "",
        },
        "use_api": False,
        "version": 2,
    }


def for_sdk(event: dict[str, JSON]) -> dict[str, JSON]:
    """An event as the official server forwards it: integer ts, user object."""
    out = dict(event)
    out["ts"] = int(out.get("ts") or 0)
    out.setdefault("user", {})
    if out.get("data") is None:
        out["data"] = {}
    return out


def parse_ops(body: JSON) -> list[Op]:
    if isinstance(body, dict):
        body = [body]
    if not isinstance(body, list):
        raise ProtocolError("206 answer is neither an op object nor a list")
    ops = []
    for raw in body:
        if not isinstance(raw, dict) or not isinstance(raw.get("id"), str):
            raise ProtocolError(f"malformed op in 206 answer: {raw!r:.200}")
        opts = raw.get("opts")
        name = raw.get("name")
        display = raw.get("displayName") or name or raw["id"]
        if raw.get("op") not in _OPCODES:
            raise ProtocolError(f"unknown opcode {raw.get('op')!r} in 206 answer")
        ops.append(
            Op(
                id=raw["id"],
                op=str(raw.get("op", "")),
                name=name if isinstance(name, str) else "",
                display_name=str(display),
                opts=opts if isinstance(opts, dict) else {},
                data=raw.get("data"),
                error=raw.get("error"),
            )
        )
    return ops


def interpret(status: int, headers: dict[str, str], content: bytes) -> CallResult:
    """Turn an HTTP answer from an app into a CallResult.

    ``headers`` must have lower-case keys.
    """
    if status == 201:
        return _unwrap_stream(content)
    no_retry = headers.get("x-inngest-no-retry", "").lower() == "true"
    retry_at = _retry_at(headers.get("retry-after"))
    if status == 429:
        # A proxy or tunnel asking us to slow down: the app never ran.
        return CallResult(
            Outcome.ERROR,
            error=error_object("RateLimitedError", "HTTP 429 Too Many Requests"),
            retry_at_ms=retry_at,
            free_retry=True,
        )
    if status == 404 and "x-inngest-sdk" not in headers:
        # No SDK behind the URL (a tunnel gone, an app not serving yet).
        return CallResult(
            Outcome.ERROR,
            error=error_object(
                "AppUnreachableError", "HTTP 404: no Inngest SDK answers at this URL"
            ),
            free_retry=True,
            unreachable=True,
        )
    if 200 <= status < 300 and "x-inngest-sdk" not in headers:
        return _failed(
            "NotAnSDKError",
            f"HTTP {status} answer without an x-inngest-sdk header; "
            "the URL does not seem to serve an Inngest SDK",
        )
    try:
        body = jsonio.loads(content) if content else None
    except jsonio.JSONInputError as exc:
        return _failed(
            "InvalidResponseError",
            f"HTTP {status} answer refused: {exc}",
            no_retry=no_retry,
            retry_at=retry_at,
        )
    if status == 200:
        return CallResult(Outcome.COMPLETED, output=body)
    if status == 206:
        try:
            ops = parse_ops(body)
        except ProtocolError as exc:
            return _failed("InvalidResponseError", str(exc))
        return CallResult(Outcome.OPS, ops=ops, no_retry=no_retry)
    if isinstance(body, dict) and ("message" in body or "name" in body):
        error = dict(body)
        error.setdefault("name", "Error")
        error.setdefault("message", f"HTTP {status}")
    else:
        error = error_object("HTTPError", f"HTTP {status}: {body!r:.500}")
    return CallResult(
        Outcome.ERROR, error=error, no_retry=no_retry, retry_at_ms=retry_at
    )


def _failed(
    name: str, message: str, *, no_retry: bool = False, retry_at: int | None = None
) -> CallResult:
    return CallResult(
        Outcome.ERROR,
        error=error_object(name, message),
        no_retry=no_retry,
        retry_at_ms=retry_at,
    )


def _unwrap_stream(content: bytes) -> CallResult:
    """Streaming answers wrap the real status, headers and body in JSON."""
    try:
        wrapper = jsonio.loads(content.lstrip())
        inner_headers = {
            str(k).lower(): str(v) for k, v in (wrapper.get("headers") or {}).items()
        }
        inner_headers.setdefault("x-inngest-sdk", "streamed")
        body = wrapper.get("body")
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
        return interpret(int(wrapper["status"]), inner_headers, raw)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        return _failed("InvalidResponseError", f"bad streamed answer: {exc}")


def _retry_at(value: str | None) -> int | None:
    if not value:
        return None
    now = now_ms()
    try:
        at = now + int(value) * 1000 if value.isdigit() else parse_instant_ms(value)
    except ValueError:
        return None
    return min(max(at, now + _MIN_RETRY_AFTER_MS), now + _MAX_RETRY_AFTER_MS)


def wake_time_ms(op: Op) -> int:
    """When a Sleep op ends: ISO time in ``name``, or a duration from others."""
    try:
        return parse_instant_ms(op.name)
    except ValueError:
        pass
    duration = op.opts.get("duration")
    text = duration if isinstance(duration, str) else op.name
    return now_ms() + parse_duration_ms(text)
