"""The queue dispatcher: leases due items and runs them on a task pool."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine
from typing import Any

from devserver import wire
from devserver.aigateway import AIGateway
from devserver.caller import AppCaller
from devserver.clock import now_ms
from devserver.executor import TIMER_KINDS, Executor
from devserver.flow.concurrency import ConcurrencyGate
from devserver.flow.state import FlowState
from devserver.logtext import get_logger
from devserver.recovery import retry_while_locked
from devserver.store import QueueItem, Store

logger = get_logger("digest.devserver.worker")

# Upper bound on how long the dispatcher sleeps without being woken, so a
# clock jump or a missed wake-up costs at most this much delay.
_MAX_IDLE_S = 1.0
# When a work item crashes the executor itself, wait this long before
# trying it again instead of spinning on it.
_CRASH_DELAY_MS = 5_000


class Dispatcher:
    def __init__(
        self,
        store: Store,
        executor: Executor,
        caller: AppCaller,
        workers: int,
        *,
        slow_call_s: float | None = None,
    ) -> None:
        self._store = store
        # A call running longer than this is logged (once) as lagging.
        self._slow_call_s = slow_call_s
        self._executor = executor
        self._caller = caller
        # Makes the model requests of step.ai.infer ops (aigateway.py).
        self._gateway = AIGateway()
        self._workers = workers
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        # Runs with a discovery call in flight: a second discovery of the same
        # run waits, so two calls never run one new step inline twice.
        self._discovering: set[str] = set()
        self._loop_task: asyncio.Task[None] | None = None
        # Leases only the calls that fit the functions' concurrency limits.
        self._gate = ConcurrencyGate(store, FlowState(store.db))

    def notify(self) -> None:
        self._wake.set()

    def start(self, hold: Coroutine[Any, Any, None] | None = None) -> None:
        """Start leasing queued work, once ``hold`` (if given) has returned.

        Nothing is leased while it runs, timers included; queued items keep
        their attempts.
        """
        released = retry_while_locked(self._store.release_all, "re-queueing items")
        if released:
            logger.info("re-queued %d item(s) in flight at the last stop", released)
        self._loop_task = asyncio.create_task(
            self._loop(hold), name="devserver-dispatch"
        )

    async def stop(self) -> None:
        tasks = [t for t in (self._loop_task, *self._tasks) if t is not None]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await self._gateway.aclose()
        # Calls cut short are retried by the next process.
        self._store.release_all()

    async def _loop(self, hold: Coroutine[Any, Any, None] | None) -> None:
        if hold is not None:
            await hold
        while True:
            self._wake.clear()
            now = now_ms()
            free = self._workers - len(self._tasks)
            if free > 0:
                for item in self._gate.lease(now, free, self._discovering):
                    self._spawn(item)
            due = self._store.next_due()
            timeout = _MAX_IDLE_S
            if due is not None and due > now:
                timeout = min(timeout, (due - now) / 1000)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout)

    def _spawn(self, item: QueueItem) -> None:
        if item.step_id == wire.DISCOVERY:
            self._discovering.add(item.run_id)
        task = asyncio.create_task(self._work(item))
        self._tasks.add(task)

        def done(t: asyncio.Task[None]) -> None:
            self._gate.release(item)
            self._tasks.discard(t)
            if item.step_id == wire.DISCOVERY:
                self._discovering.discard(item.run_id)
            self._wake.set()

        task.add_done_callback(done)

    def _lagging(self, item: QueueItem, fn_id: str) -> None:
        if item.step_id == wire.DISCOVERY:
            step = "(function call; a new step may be running inline)"
        else:
            record = self._store.get_step(item.run_id, item.step_id)
            step = record.name if record is not None else item.step_id
        logger.warning(
            "slow call: run=%s function=%s step=%s attempt=%d has had no answer "
            "for %g s; other runs go on",
            item.run_id,
            fn_id,
            step,
            item.attempt + 1,
            self._slow_call_s,
        )

    async def _work(self, item: QueueItem) -> None:
        try:
            if item.kind in TIMER_KINDS:
                self._executor.fire_timer(item)
                return
            plan = self._executor.begin_call(item)
            if plan is None:
                return
            watch = None
            if self._slow_call_s is not None:
                watch = asyncio.get_running_loop().call_later(
                    self._slow_call_s, self._lagging, item, plan.fn_id
                )
            try:
                result = await self._caller.call(plan.url, plan.body, str(item.item_id))
                result = await self._gateway.resolve(
                    result, plan.body["steps"], item.run_id
                )
            finally:
                if watch is not None:
                    watch.cancel()
            self._executor.finish_call(item, plan, result)
        except asyncio.CancelledError:
            raise
        except Exception:
            logger.exception(
                "internal error on run %s step %s; retrying the item later",
                item.run_id,
                item.step_id,
            )
            self._store.retry_item(
                item.item_id, item.attempt, now_ms() + _CRASH_DELAY_MS
            )
