"""A request body that stops arriving is answered 408, on every route.

A client can declare a Content-Length and then send less, or pause, and
uvicorn waits for the rest for as long as the connection stays open. This
ASGI middleware sits in front of the whole app (the API's routes and the
SDK's `/api/inngest` alike, in the backend and in the functions service):
while a request's body is incomplete, each chunk must come within
BODY_IDLE_SECONDS of the last. If none does, the request is answered

    408 {"error": {"code": "body_timeout", "message": ...}}
    Connection: close

Once the body is complete the app's own waits are left alone: a Server-Sent
Events stream waits for the client to disconnect for as long as it likes.
The limit is on pauses, not on the whole body: a body that trickles in
without pausing that long is still read.
"""

from __future__ import annotations

import asyncio
import logging

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from digest.settings import Settings

log = logging.getLogger("digest.backend.api")


class BodyStalled(Exception):
    """Raised out of `receive` to the app, caught again by the middleware.

    Not an OSError (as asyncio's TimeoutError is): the backend answers those
    as database faults."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class StalledBodyTimeout:
    """ASGI middleware: 408 for a request body that pauses too long."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._idle = settings.body_idle_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return
        body = _BodyWatch(scope, receive, self._idle)
        started = False

        async def watched_send(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self._app(scope, body.receive, watched_send)
        except BodyStalled as stalled:
            if started:
                raise
            log.info("%s %s refused: %s", scope["method"], scope["path"], stalled)
            refusal = JSONResponse(
                {"error": {"code": "body_timeout", "message": stalled.message}},
                status_code=408,
                # The rest of the body may still come: the connection
                # cannot be used for another request.
                headers={"Connection": "close"},
            )
            await refusal(scope, receive, send)


class _BodyWatch:
    """One request's `receive`, timed while its body is incomplete."""

    def __init__(self, scope: Scope, receive: Receive, idle: float) -> None:
        self._receive = receive
        self._idle = idle
        self._received = 0
        self._complete = False
        declared = Headers(scope=scope).get("content-length", "").strip()
        self._declared = (
            int(declared) if declared.isascii() and declared.isdigit() else None
        )

    async def receive(self) -> Message:
        if self._complete:
            return await self._receive()
        try:
            async with asyncio.timeout(self._idle):
                message = await self._receive()
        except TimeoutError:
            raise BodyStalled(self._stalled()) from None
        if message["type"] == "http.request":
            self._received += len(message.get("body", b""))
            self._complete = not message.get("more_body", False)
        else:
            self._complete = True
        return message

    def _stalled(self) -> str:
        idle = f"nothing more came for {self._idle:g} seconds"
        if self._declared is not None:
            return (
                f"the body stopped arriving after {self._received} of the "
                f"{self._declared} bytes its Content-Length declares ({idle}); "
                "send the whole body without pausing, with a Content-Length "
                "that matches it"
            )
        return (
            f"the body stopped arriving after {self._received} bytes, before "
            f"its end ({idle}); send the whole body without pausing"
        )
