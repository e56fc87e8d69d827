"""Digest's step functions as a service of their own.

An ASGI app that serves only the Inngest endpoint (`/api/inngest`) with
Digest's functions, plus `/healthz` and `/readyz`. Run it with
`digest functions serve`, or with any ASGI server as `functions.app:app`;
then set `SERVE_FUNCTIONS=false` on the backend and sync the executor with
this service's URL (never with both: one app id, two URLs, every event
would run twice).

The functions reach the job store through its public module and the same
`DATABASE_URL` as the backend, so the progress they write reaches the
backend's clients as before.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import inngest.fast_api
from fastapi import FastAPI

from digest.body_timeout import StalledBodyTimeout
from digest.profile import executor_name
from digest.service import (
    QuietRefusedStart,
    health_router,
    job_store_open,
    refuse_bad_profile,
)
from digest.settings import Settings, get_settings
from digest.signature_age import RefuseStaleSignatures
from functions.client import create_client
from functions.generate_summary import build_functions

log = logging.getLogger("digest.functions.service")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    # What this service needs only: it sends no events, checks no bearer.
    refuse_bad_profile(settings, "functions")
    client = create_client(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with job_store_open(settings) as store:
            app.state.store = store
            log.info(
                "functions service ready (profile %s, app %s, executor %s)",
                settings.app_env,
                settings.inngest_app_id,
                executor_name(settings),
            )
            yield
        log.info("functions service stopped")

    app = FastAPI(
        title="Digest functions",
        summary="Digest's Inngest step functions, served on their own.",
        version="0.1.0",
        lifespan=lifespan,
        openapi_url=None,
    )
    app.state.settings = settings
    app.include_router(health_router)
    app.add_middleware(StalledBodyTimeout, settings=settings)
    app.add_middleware(QuietRefusedStart)
    app.add_middleware(RefuseStaleSignatures, settings=settings)
    inngest.fast_api.serve(app, client, build_functions(client, settings))
    return app


app = create_app()
