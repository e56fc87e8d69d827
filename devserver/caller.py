"""HTTP calls from the executor to apps' serve endpoints."""

from __future__ import annotations

import json
from typing import Any

import httpx

from devserver import wire
from devserver.signing import RequestSigner, SignatureError

USER_AGENT = "digest-devserver/0.1"


class AppCaller:
    """Posts call bodies to apps and turns whatever happens into a CallResult."""

    def __init__(
        self,
        timeout: float,
        client: httpx.AsyncClient | None = None,
        *,
        signer: RequestSigner | None = None,
    ):
        self._timeout = timeout
        # Set in cloud mode: calls are signed and answers checked.
        self._signer = signer
        self._client = client or httpx.AsyncClient(
            timeout=httpx.Timeout(timeout, connect=10.0),
            headers={"user-agent": USER_AGENT},
            # An idle connection is dropped after 2 s, before the app's
            # server closes it (uvicorn does at 5 s, httpx's own default):
            # reusing one that the other side is closing at that moment
            # fails the request for no reason of the app's.
            limits=httpx.Limits(
                max_connections=None,
                max_keepalive_connections=64,
                keepalive_expiry=2.0,
            ),
        )

    async def aclose(self) -> None:
        await self._client.aclose()

    async def call(
        self, url: str, body: dict[str, Any], job_id: str
    ) -> wire.CallResult:
        headers = {
            "content-type": "application/json",
            "x-inngest-server-kind": "dev" if self._signer is None else "cloud",
            "x-inngest-req-version": "2",
            "x-inngest-job-id": job_id,
        }
        try:
            if self._signer is None:
                response = await self._client.post(
                    url, content=json.dumps(body).encode(), headers=headers
                )
            else:
                response = await self._signer.send(
                    self._client, "POST", url, body, headers
                )
        except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
            # Nothing listens, so nothing ran: the app is restarting or gone.
            # The official server spends an attempt here; Digest keeps the run
            # queued without spending one (as for a 404), because a backend
            # restarted for a few seconds would otherwise burn every retry and
            # the failure handler's single attempt, leaving the job unfinished.
            return wire.CallResult(
                wire.Outcome.ERROR,
                error=wire.error_object(
                    "ConnectionError", f"could not connect to {url}: {exc!r}"
                ),
                free_retry=True,
                unreachable=True,
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
        except SignatureError as exc:
            # Nothing was sent; retrying cannot change the body.
            return wire.CallResult(
                wire.Outcome.ERROR,
                error=wire.error_object("SigningError", f"call to {url}: {exc}"),
                no_retry=True,
            )
        lowered = {k.lower(): v for k, v in response.headers.items()}
        if self._signer is not None:
            refused = self._signer.check_answer(
                response.status_code, lowered, response.content
            )
            if refused is not None:
                return refused
        return wire.interpret(response.status_code, lowered, response.content)
