"""HTTP calls from the executor to apps' serve endpoints."""

from __future__ import annotations

import json
from typing import Any

import httpx

from devserver import wire

USER_AGENT = "digest-devserver/0.1"


class AppCaller:
    """Posts call bodies to apps and turns whatever happens into a CallResult."""

    def __init__(self, timeout: float, client: httpx.AsyncClient | None = None):
        self._timeout = timeout
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"user-agent": USER_AGENT},
            limits=httpx.Limits(max_connections=None, max_keepalive_connections=64),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self, url: str, body: dict[str, Any], job_id: str
    ) -> wire.CallResult:
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": "dev",
            "x-inngest-req-version": "2",
            "x-inngest-job-id": job_id,
        }
        try:
            response = await self._client.post(
                url, content=json.dumps(body).encode(), headers=headers
            )
        except httpx.TimeoutException:
            return wire.CallResult(
                wire.Outcome.ERROR,
                error=wire.error_object(
                    "TimeoutError",
                    f"call to {url} got no answer within {self._timeout:g} s",
                ),
            )
        except httpx.HTTPError as exc:
            return wire.CallResult(
                wire.Outcome.ERROR,
                error=wire.error_object(
                    "ConnectionError", f"call to {url} failed: {exc!r}"
                ),
            )
        lowered = {k.lower(): v for k, v in response.headers.items()}
        return wire.interpret(response.status_code, lowered, response.content)
