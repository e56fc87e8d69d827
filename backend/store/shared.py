"""One job store per process, shared by the API and the step functions."""

from __future__ import annotations

import asyncio

from backend.store import JobStore, open_store

_stores: dict[str, JobStore] = {}
_lock = asyncio.Lock()


async def shared_store(database_url: str, *, migrate: bool) -> JobStore:
    """The process's store for `database_url`, opened on first use."""
    async with _lock:
        store = _stores.get(database_url)
        if store is None:
            store = await open_store(database_url, migrate=migrate)
            _stores[database_url] = store
        return store


async def close_shared_stores() -> None:
    async with _lock:
        for store in _stores.values():
            await store.close()
        _stores.clear()
