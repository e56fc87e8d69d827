"""The ASGI application and the foreground entry point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import uvicorn
from starlette.applications import Starlette
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from devserver.api import routes
from devserver.apps import SERVER_KIND
from devserver.auth import RequestAuth
from devserver.config import ExecutorConfig
from devserver.dashboard import routes as dashboard_routes
from devserver.logtext import get_logger
from devserver.runtime import Runtime
from devserver.signing import keys_for

logger = get_logger("digest.devserver.server")


class ServerKindHeader:
    """Adds ``X-Inngest-Server-Kind`` to every response, as the official server."""

    def __init__(self, app: ASGIApp, kind: str = SERVER_KIND) -> None:
        self._app = app
        self._kind = kind.encode()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self._app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"x-inngest-server-kind", self._kind))
                message["headers"] = headers
            await send(message)

        await self._app(scope, receive, send_with_header)


def create_app(config: ExecutorConfig) -> Starlette:
    """An ASGI app whose lifespan opens the store and runs the workers."""

    @asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        runtime = Runtime(config)
        app.state.runtime = runtime
        await runtime.start()
        try:
            yield
        finally:
            await runtime.stop()

    # The dashboard shows payloads and can send events, cancel and rerun,
    # and a browser cannot send the REST API's bearer: dev mode only.
    served = routes if config.signing_key else [*routes, *dashboard_routes()]
    app = Starlette(routes=served, lifespan=lifespan)
    # Added before ServerKindHeader so that one wraps it: 401s carry the
    # server kind too.
    app.add_middleware(
        RequestAuth,
        keys=keys_for(config.signing_key, config.signing_key_fallback),
        event_keys=config.event_keys,
    )
    app.add_middleware(ServerKindHeader, kind=config.server_kind)
    return app


def run(config: ExecutorConfig) -> None:
    """Serve in the foreground until SIGINT or SIGTERM.

    uvicorn turns either signal into a graceful shutdown; the lifespan then
    cancels in-flight calls (their queue items stay stored and are retried
    at the next start) and closes the database.
    """
    server = uvicorn.Server(
        uvicorn.Config(
            create_app(config),
            host=config.host,
            port=config.port,
            lifespan="on",
            access_log=False,
            log_config=None,
            timeout_graceful_shutdown=5,
        )
    )
    server.run()
