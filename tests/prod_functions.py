"""A functions service in the prod profile (the SDK in cloud mode), set up
as the README's two-service deployment sets it: a signing key, and neither
an event key nor a bearer-token secret, which that service does not use."""

from __future__ import annotations

import asyncio
import secrets
from pathlib import Path

from backend.store import create_engine, upgrade
from digest import stack


def new_prod_key() -> str:
    return "signkey-prod-" + secrets.token_hex(32)


def migrated_sqlite(path: Path) -> str:
    """The URL of a SQLite file at `path` brought to the latest revision, as
    `digest db upgrade` does: prod never migrates on start."""
    url = f"sqlite+aiosqlite:///{path}"

    async def migrate() -> None:
        engine = create_engine(url)
        try:
            await upgrade(engine)
        finally:
            await engine.dispose()

    asyncio.run(migrate())
    return url


def start_prod_functions(home: Path, signing_key: str) -> stack.Service:
    """`digest functions serve` with APP_ENV=prod on a free port.

    Its executor URL leads nowhere: what these tests ask of it (inspection,
    sync) is answered or refused by the SDK before any executor is called.
    """
    home.mkdir(parents=True, exist_ok=True)
    return stack.start_functions_service(
        executor_url=f"http://{stack.LOOPBACK}:{stack.free_port()}",
        database_url=migrated_sqlite(home / "digest.db"),
        log_path=home / "functions.log",
        env={
            "APP_ENV": "prod",
            "INNGEST_DEV": "",
            "INNGEST_SIGNING_KEY": signing_key,
            "INNGEST_SIGNING_KEY_FALLBACK": "",
            # Blank, as a template line left empty: unset.
            "INNGEST_EVENT_KEY": "",
            "AUTH_JWT_SECRET": "",
            "AUTH_JWKS_URL": "",
            "CORS_ORIGINS": "",
            "ALLOW_SQLITE_IN_PROD": "true",
            "TUNNEL_PROVIDER": "none",
        },
    )
