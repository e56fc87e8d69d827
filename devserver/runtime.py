"""Wiring of the executor's parts for one server process."""

from __future__ import annotations

import logging

from devserver.caller import AppCaller
from devserver.config import ExecutorConfig
from devserver.executor import Executor
from devserver.store import Store
from devserver.sync import AppSyncer
from devserver.worker import Dispatcher

logger = logging.getLogger("digest.devserver")


class Runtime:
    """Owns the store, the dispatcher and the syncer; started by the lifespan."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        self.store = Store(config.db_path)
        self.caller = AppCaller(config.call_timeout)
        self.executor = Executor(self.store, config, self._notify)
        self.dispatcher = Dispatcher(
            self.store, self.executor, self.caller, config.workers
        )
        self.syncer = AppSyncer(config.sdk_urls, config.poll_interval)

    def _notify(self) -> None:
        self.dispatcher.notify()

    async def start(self) -> None:
        self.dispatcher.start()
        self.syncer.start()
        logger.info(
            "executor ready on %s (data in %s)", self.config.url, self.config.db_path
        )

    async def stop(self) -> None:
        await self.syncer.stop()
        await self.dispatcher.stop()
        await self.caller.aclose()
        self.store.close()
        logger.info("executor stopped")
