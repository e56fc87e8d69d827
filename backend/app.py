"""The backend's ASGI app: the public API, the job store, the serve endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

import inngest.fast_api
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend.api import dev, health, listing, stream, summaries
from backend.api.feed import JobFeed
from backend.auth import TokenVerifier
from backend.errors import install_error_handlers
from backend.events import EventSender
from backend.store.shared import close_shared_stores, shared_store
from backend.web import router as web_router
from digest.settings import DEV_JWT_SECRET, Settings, get_settings
from functions.client import create_client
from functions.cpu import shutdown_pool
from functions.generate_summary import build_functions

log = logging.getLogger("digest.backend")


class UnsafeSettings(RuntimeError):
    pass


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
    if settings.fetch_allow_loopback_for_tests:
        raise UnsafeSettings("FETCH_ALLOW_LOOPBACK_FOR_TESTS is for tests; unset it")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    refuse_unsafe(settings)
    client = create_client(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # Dev migrates its SQLite file on start; prod refuses to start on an
        # unmigrated database, since migrating is a deliberate release step.
        store = await shared_store(settings.database_url, migrate=settings.is_dev)
        sender = EventSender(client, store)
        app.state.store = store
        app.state.events = sender
        app.state.feed = JobFeed(store)
        relay = asyncio.create_task(sender.relay_forever(), name="event-relay")
        log.info(
            "backend ready (profile %s, executor %s)",
            settings.app_env,
            settings.executor_url if settings.is_dev else "Inngest Cloud",
        )
        try:
            yield
        finally:
            relay.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await relay
            await app.state.feed.close()
            shutdown_pool()
            await close_shared_stores()
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
    app.include_router(health.router)
    if settings.is_dev:
        app.include_router(dev.router)
    app.include_router(web_router)
    inngest.fast_api.serve(app, client, build_functions(client, settings))
    return app
