"""The backend's ASGI app: the public API, the job store, the serve endpoint."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
from collections.abc import AsyncIterator
from datetime import timedelta

import inngest.fast_api
from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from backend.api import dev, listing, stream, summaries
from backend.api.feed import JobFeed
from backend.auth import TokenVerifier
from backend.dbfaults import install_database_fault_handlers
from backend.errors import install_error_handlers
from backend.events import EventSender
from backend.reconcile import Reconciler, executor_runs
from backend.web import router as web_router
from digest.body_timeout import StalledBodyTimeout
from digest.profile import executor_name, secret_fingerprints
from digest.service import (
    QuietRefusedStart,
    UnsafeSettings,
    health_router,
    job_store_open,
    refuse_bad_profile,
)
from digest.settings import Settings, SettingsFileError, get_settings
from digest.signature_age import RefuseStaleSignatures
from functions.client import create_client
from functions.generate_summary import build_functions

log = logging.getLogger("digest.backend")

__all__ = ["UnsafeSettings", "create_app"]


def create_app(settings: Settings | None = None) -> FastAPI:
    try:
        settings = settings or get_settings()
    except SettingsFileError as exc:
        # Started as `backend.app:create_app` by a server, whose report of
        # an exception is a traceback: the one line that matters instead.
        print(exc, file=sys.stderr)
        raise SystemExit(2) from None
    # Every problem of the profile at once, one line each (digest.profile).
    refuse_bad_profile(settings)
    client = create_client(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with job_store_open(settings) as store:
            quiet_for = timedelta(seconds=settings.reconcile_after_seconds)
            # The reconciler first asks about a sent event this long after.
            first_check = min(timedelta(seconds=10), quiet_for)
            sender = EventSender(
                client,
                store,
                lease=timedelta(seconds=settings.outbox_lease_seconds),
                check_again_after=first_check,
            )
            app.state.store = store
            app.state.events = sender
            app.state.feed = JobFeed(store, reread=settings.job_stream_reread_seconds)
            relay = asyncio.create_task(sender.relay_forever(), name="event-relay")
            runs = executor_runs(client, settings)
            reconciler = asyncio.create_task(
                Reconciler(
                    store,
                    sender,
                    runs,
                    quiet_for=quiet_for,
                    first_check=first_check,
                    every=min(5.0, settings.reconcile_after_seconds / 2),
                ).reconcile_forever(),
                name="job-reconciler",
            )
            log.info(
                "backend ready (profile %s, executor %s, functions %s, signing key %s)",
                settings.app_env,
                executor_name(settings),
                "served at /api/inngest"
                if settings.serve_functions
                else "served elsewhere",
                secret_fingerprints(settings)["INNGEST_SIGNING_KEY"] or "none",
            )
            try:
                yield
            finally:
                for task in (relay, reconciler):
                    task.cancel()
                    with contextlib.suppress(asyncio.CancelledError):
                        await task
                await runs.close()
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
    install_database_fault_handlers(app)
    app.add_middleware(StalledBodyTimeout, settings=settings)
    app.add_middleware(QuietRefusedStart)
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
        app.add_middleware(RefuseStaleSignatures, settings=settings)
        # Otherwise a functions service of its own serves them (`functions.app`)
        # and this process only sends events.
        inngest.fast_api.serve(app, client, build_functions(client, settings))
    return app
