"""The backend's ASGI app: the public API, the job store, the serve endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import inngest.fast_api
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend.api import dev, listing, stream, summaries
from backend.api.feed import JobFeed
from backend.auth import TokenVerifier
from backend.errors import install_error_handlers
from backend.events import EventSender
from backend.web import router as web_router
from digest.service import (
    UnsafeSettings,
    health_router,
    job_store_open,
    refuse_unsafe_fetch,
)
from digest.settings import DEV_JWT_SECRET, Settings, get_settings
from functions.client import create_client
from functions.generate_summary import build_functions

log = logging.getLogger("digest.backend")

__all__ = ["UnsafeSettings", "create_app", "refuse_unsafe"]


def refuse_unsafe(settings: Settings) -> None:
    """Refuse a prod profile that would accept forged tokens or fetch from
    the server's own network, with the setting that fixes it."""
    if settings.is_dev:
        return
    if settings.jwt_secret is None and not settings.auth_jwks_url:
        raise UnsafeSettings(
            "prod needs AUTH_JWKS_URL (your identity provider's key set) or "
            "AUTH_JWT_SECRET to check bearer tokens"
        )
    if settings.jwt_secret == DEV_JWT_SECRET:
        raise UnsafeSettings("AUTH_JWT_SECRET is the public dev secret; set your own")
    refuse_unsafe_fetch(settings)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    refuse_unsafe(settings)
    client = create_client(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with job_store_open(settings) as store:
            sender = EventSender(client, store)
            app.state.store = store
            app.state.events = sender
            app.state.feed = JobFeed(store)
            relay = asyncio.create_task(sender.relay_forever(), name="event-relay")
            log.info(
                "backend ready (profile %s, executor %s, functions %s)",
                settings.app_env,
                settings.executor_url if settings.is_dev else "Inngest Cloud",
                "served at /api/inngest"
                if settings.serve_functions
                else "served elsewhere",
            )
            try:
                yield
            finally:
                relay.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await relay
                await app.state.feed.close()
        log.info("backend stopped")

    app = FastAPI(
        title="Digest",
        summary="Summaries of documents, made as durable background jobs.",
        version="0.1.0",
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.tokens = TokenVerifier(settings)
    install_error_handlers(app)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type", "Last-Event-ID"],
            expose_headers=["Location"],
        )
    app.include_router(summaries.router)
    app.include_router(listing.router)
    app.include_router(stream.router)
    app.include_router(health_router)
    if settings.is_dev:
        app.include_router(dev.router)
    app.include_router(web_router)
    if settings.serve_functions:
        # Otherwise a functions service of its own serves them (`functions.app`)
        # and this process only sends events.
        inngest.fast_api.serve(app, client, build_functions(client, settings))
    return app
