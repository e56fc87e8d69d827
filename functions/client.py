"""The Inngest client, configured from Digest's settings and nothing else."""

from __future__ import annotations

import logging

import inngest

from digest.settings import Settings


def create_client(settings: Settings) -> inngest.Inngest:
    secret = settings.inngest_signing_key
    event_key = settings.inngest_event_key
    base_url = settings.executor_url if settings.is_dev else settings.inngest_base_url
    client = inngest.Inngest(
        app_id=settings.inngest_app_id,
        is_production=not settings.is_dev,
        api_base_url=base_url,
        event_api_base_url=base_url,
        event_key=event_key.get_secret_value() if event_key else None,
        signing_key=secret.get_secret_value() if secret else None,
        logger=logging.getLogger("digest.functions"),
    )
    fallback = settings.inngest_signing_key_fallback
    if fallback is not None:
        # SDK 0.5 reads the fallback key from the process environment only
        # and has no argument for it; set it so that a fallback kept in
        # .env.prod.local works as well as one in the environment.
        client._signing_key_fallback = fallback.get_secret_value()
    return client
