"""`step.ai.infer`: the executor calls a model on the function's behalf.

The SDK answers a call with an `AIGateway` op whose options hold the
model's URL, the request body, the API key (`auth_key`), extra headers and
the request format. The executor sends that request itself, between the
app's answer and applying it, and the op becomes the step's result: the
provider's JSON answer memoised as `{"data": ...}`, as the official
server does, or an `AIGatewayError` the function receives as a StepError.

Where this differs from the official server, on purpose:
- a retriable failure (no answer, a timeout, 408, 409, 425, 429, 5xx, a 2xx
  answer that is not JSON) retries the app call that produced the op, and
  honours the provider's `retry-after`; the official server uses its
  backoff and ignores the header;
- any other 4xx (a bad request, a refused key) is not retried: it fails the
  step at once instead of spending every attempt on a request the provider
  will refuse again.

The key and the header values live only in memory, for the request: the op
the rest of the executor sees carries the URL and format alone, and any of
those secrets found in a provider's answer (some echo the key they
refused) is replaced before the answer is stored or logged.
"""

from __future__ import annotations

import asyncio
import dataclasses
import email.utils
import json
import time
from collections.abc import Collection
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

import httpx

from devserver import jsonio, wire
from devserver.clock import now_ms
from devserver.logtext import get_logger

logger = get_logger("digest.devserver.aigateway")

# A model may think for minutes; the official server waits as long.
DEFAULT_TIMEOUT_S = 300.0
_RETRIABLE_STATUS = frozenset({408, 409, 425, 429})
_MIN_RETRY_MS = 1_000
_MAX_RETRY_MS = 3_600_000
_STACK_CHARS = 2_000
# Where the outcome is kept on a resolved op, for the executor.
_OUTCOME = "gateway"


class AIGateway:
    """Sends the model requests found in an app's answer."""

    def __init__(
        self,
        timeout: float = DEFAULT_TIMEOUT_S,
        client: httpx.AsyncClient | None = None,
    ) -> None:
        self._timeout = timeout
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0)
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def resolve(
        self, result: wire.CallResult, settled: Collection[str], run_id: str
    ) -> wire.CallResult:
        """`result` with each AIGateway op answered; other ops, and ops of
        steps already in the memo (`settled`), are left as they are."""
        if result.outcome is not wire.Outcome.OPS:
            return result
        pending = [
            op
            for op in result.ops
            if op.op == wire.Opcode.AI_GATEWAY
            and op.id not in settled
            and _OUTCOME not in op.opts
        ]
        if not pending:
            return result
        answered = await asyncio.gather(*(self._infer(op, run_id) for op in pending))
        by_id = {op.id: op for op in answered}
        ops = [by_id.get(op.id, op) for op in result.ops]
        return dataclasses.replace(result, ops=ops)

    async def _infer(self, op: wire.Op, run_id: str) -> wire.Op:
        opts = op.opts
        url = str(opts.get("url") or "")
        shown_url = _without_query(url)
        public = {
            "type": "step.ai.infer",
            "url": shown_url,
            "format": opts.get("format"),
        }
        secrets = _secrets(opts)
        try:
            request = _request(opts)
        except ValueError as exc:
            return _failed(op, public, str(exc), "", retriable=False, retry_at=None)
        started = time.perf_counter()
        try:
            answer = await self._client.send(request)
        except httpx.TimeoutException:
            message = f"Error making AI request: no answer within {self._timeout:g} s"
            return _failed(op, public, message, "", retriable=True, retry_at=None)
        except httpx.HTTPError as exc:
            message = f"Error making AI request: {type(exc).__name__}"
            return _failed(op, public, message, "", retriable=True, retry_at=None)
        elapsed_ms = (time.perf_counter() - started) * 1000
        logger.info(
            "run %s step %s: model request to %s answered HTTP %d in %.0f ms",
            run_id,
            op.display_name,
            shown_url,
            answer.status_code,
            elapsed_ms,
        )
        text = _redact(answer.text, secrets)
        if answer.is_success:
            try:
                data = jsonio.loads(answer.content)
            except ValueError:
                message = "Error making AI request: the answer is not JSON"
                return _failed(op, public, message, text, retriable=True, retry_at=None)
            if secrets:
                data = json.loads(_redact(json.dumps(data), secrets))
            return dataclasses.replace(op, opts={**public, _OUTCOME: {}}, data=data)
        status = answer.status_code
        retriable = status in _RETRIABLE_STATUS or status >= 500
        message = f"Error making AI request: unsuccessful status code: {status}"
        retry_at = _retry_at(answer.headers) if retriable else None
        return _failed(
            op, public, message, text, retriable=retriable, retry_at=retry_at
        )


def answered(op: wire.Op) -> bool:
    """An AIGateway op whose model request succeeded: memoise its data."""
    return op.op == wire.Opcode.AI_GATEWAY and op.error is None


def retriable(op: wire.Op) -> bool:
    """An AIGateway op whose request may succeed if made again."""
    outcome = op.opts.get(_OUTCOME) if op.op == wire.Opcode.AI_GATEWAY else None
    return isinstance(outcome, dict) and bool(outcome.get("retriable"))


def retry_at_ms(op: wire.Op) -> int | None:
    """When the provider asked to be called again, if it did."""
    outcome = op.opts.get(_OUTCOME) if op.op == wire.Opcode.AI_GATEWAY else None
    value = outcome.get("retry_at_ms") if isinstance(outcome, dict) else None
    return value if isinstance(value, int) else None


def _request(opts: dict[str, Any]) -> httpx.Request:
    """The provider request the op describes, auth placed as its format says."""
    url = opts.get("url")
    if not isinstance(url, str) or urlsplit(url).scheme not in ("http", "https"):
        raise ValueError("Error making AI request: the op has no http(s) url")
    body = opts.get("body")
    if not isinstance(body, dict):
        raise ValueError("Error making AI request: the op has no JSON object body")
    key = opts.get("auth_key")
    key = key if isinstance(key, str) else ""
    headers = {"content-type": "application/json"}
    fmt = opts.get("format")
    if key and fmt == "gemini":
        parts = urlsplit(url)
        query = "&".join(q for q in (parts.query, urlencode({"key": key})) if q)
        url = urlunsplit(parts._replace(query=query))
    elif key and fmt == "anthropic":
        headers["x-api-key"] = key
    elif key and fmt == "bedrock":
        headers["authorization"] = key
    elif key:
        headers["authorization"] = f"Bearer {key}"
    extra = opts.get("headers")
    if isinstance(extra, dict):
        headers.update({str(k): str(v) for k, v in extra.items()})
    return httpx.Request(
        "POST", url, content=json.dumps(body).encode(), headers=headers
    )


def _failed(
    op: wire.Op,
    public: dict[str, Any],
    message: str,
    answer_text: str,
    *,
    retriable: bool,
    retry_at: int | None,
) -> wire.Op:
    # Like the official server, the provider's answer goes in `stack`,
    # which is what the SDK hands the function with the StepError.
    error = {
        "name": "AIGatewayError",
        "message": message,
        "stack": answer_text[:_STACK_CHARS],
    }
    outcome = {"retriable": retriable, "retry_at_ms": retry_at}
    return dataclasses.replace(op, opts={**public, _OUTCOME: outcome}, error=error)


def _secrets(opts: dict[str, Any]) -> list[str]:
    """The key and every extra header value (they carry keys too: `api-key`,
    organisation ids); short values are left, they would mangle answers."""
    found = [opts.get("auth_key")]
    headers = opts.get("headers")
    if isinstance(headers, dict):
        found += list(headers.values())
    return [value for value in found if isinstance(value, str) and len(value) >= 8]


def _redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        text = text.replace(secret, "[redacted]")
    return text


def _without_query(url: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(query="", fragment=""))


def _retry_at(headers: httpx.Headers) -> int | None:
    """`retry-after-ms`, or `retry-after` in seconds or as an HTTP date, as
    a time in Unix ms, clamped like the executor's other retry times."""
    now = now_ms()
    at: int | None = None
    millis = headers.get("retry-after-ms")
    value = (headers.get("retry-after") or "").strip()
    try:
        if millis:
            at = now + int(float(millis))
        elif value:
            at = now + int(float(value) * 1000)
    except ValueError:
        try:
            at = int(email.utils.parsedate_to_datetime(value).timestamp() * 1000)
        except (TypeError, ValueError):
            at = None
    if at is None:
        return None
    return min(max(at, now + _MIN_RETRY_MS), now + _MAX_RETRY_MS)
