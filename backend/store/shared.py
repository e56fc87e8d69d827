"""One job store per process, shared by the API and the step functions."""

from __future__ import annotations

import asyncio
import logging

from backend.store import JobStore, MigrationRequired, open_store

log = logging.getLogger("digest.backend.store")

_stores: dict[str, JobStore] = {}
_lock = asyncio.Lock()


async def shared_store(database_url: str, *, migrate: bool) -> JobStore:
    """The process's store for `database_url`, opened on first use."""
    async with _lock:
        store = _stores.get(database_url)
        if store is None:
            try:
                store = await open_store(database_url, migrate=migrate)
            except MigrationRequired as exc:
                # The one line a person starting the service needs; the
                # server's own report of the failed start follows it.
                log.critical("refusing to start: %s", exc)
                raise
            _stores[database_url] = store
        return store


async def close_shared_stores() -> None:
    async with _lock:
        for store in _stores.values():
            await store.close()
        _stores.clear()
