"""The timer loop: fires due batches, debounces and cron schedules."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from devserver import events as ev
from devserver.cron import CronScheduler
from devserver.flow.admission import Admission
from devserver.logtext import get_logger
from devserver.store import Store

logger = get_logger("digest.devserver.flow.timers")

# How often due timers are looked for. Batch timeouts and debounce periods
# are at least a second, so a quarter second of lateness is acceptable and
# cheaper than waking the loop on every buffered event.
_TICK_S = 0.25


class FlowTimers:
    def __init__(
        self,
        store: Store,
        admission: Admission,
        notify: Callable[[], None],
        cron_clock: Callable[[], int],
    ) -> None:
        self._store = store
        self._admission = admission
        self._notify = notify
        self.cron = CronScheduler(store.active_functions, self._fire_cron, cron_clock)
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._loop(), name="devserver-flow-timers")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            await asyncio.gather(self._task, return_exceptions=True)

    def tick(self) -> None:
        started = self._admission.fire_due() + self.cron.tick()
        if started:
            self._notify()

    async def _loop(self) -> None:
        while True:
            try:
                self.tick()
            except Exception:
                # A bad timer must not stop the others; it is tried again.
                logger.exception("timer tick failed")
            await asyncio.sleep(_TICK_S)

    def _fire_cron(self, function: dict[str, Any], item: ev.Accepted) -> None:
        with self._store.transaction():
            if self._store.add_event(item.internal_id, item.event, item.received_at):
                self._admission.admit(function, item)
        logger.info(
            "cron %r of %s fired (scheduled %s)",
            item.event["data"]["cron"],
            function["id"],
            item.event["data"]["scheduledAt"],
        )
