"""Wiring of the executor's parts for one server process."""

from __future__ import annotations

from devserver.caller import AppCaller
from devserver.clock import now_ms
from devserver.config import ExecutorConfig
from devserver.cron import accelerated_clock
from devserver.executor import Executor
from devserver.flow.timers import FlowTimers
from devserver.logtext import get_logger
from devserver.recovery import retry_while_locked
from devserver.signing import RequestSigner, event_key_fingerprint, keys_for
from devserver.store import Store
from devserver.sync import AppSyncer
from devserver.worker import Dispatcher

logger = get_logger("digest.devserver")


class Runtime:
    """Owns the store, the dispatcher and the syncer; started by the lifespan."""

    def __init__(self, config: ExecutorConfig) -> None:
        self.config = config
        # Built first: a malformed key must stop start-up before any state
        # is opened. None in dev mode.
        keys = keys_for(config.signing_key, config.signing_key_fallback)
        self.signer = RequestSigner(keys) if keys is not None else None
        self.store = retry_while_locked(
            lambda: Store(config.db_path), "opening the database"
        )
        self.caller = AppCaller(config.call_timeout, signer=self.signer)
        self.executor = Executor(self.store, config, self._notify)
        self.dispatcher = Dispatcher(
            self.store,
            self.executor,
            self.caller,
            config.workers,
            slow_call_s=config.slow_call_warning,
        )
        self.syncer = AppSyncer(
            config.sdk_urls,
            config.poll_interval,
            store=self.store,
            signer=self.signer,
        )
        self.timers = FlowTimers(
            self.store,
            self.executor.admission,
            self._notify,
            accelerated_clock(config.cron_tick) if config.cron_tick else now_ms,
        )

    def _notify(self) -> None:
        self.dispatcher.notify()

    async def start(self) -> None:
        # The first syncs start now; calls to apps wait for them (bounded).
        self.syncer.start()
        self.dispatcher.start(
            hold=self.syncer.wait_until_synced(self.config.startup_sync_wait)
        )
        self.timers.start()
        if self.signer is not None:
            logger.info(
                "cloud mode: signing key %s; event keys: %s",
                self.signer.keys.describe(),
                ", ".join(map(event_key_fingerprint, self.config.event_keys))
                or "none (every event will be refused)",
            )
        logger.info(
            "executor ready on %s (data in %s)", self.config.url, self.config.db_path
        )

    async def stop(self) -> None:
        await self.syncer.stop()
        await self.timers.stop()
        await self.dispatcher.stop()
        await self.caller.aclose()
        self.store.close()
        logger.info("executor stopped")
