"""What an event does to a function: start a run now or later, or not at all.

The order follows the official server: event-id de-duplication first, then
batching or debouncing (which only buffer the event), then, when a run is
about to exist, idempotency or rate limit (drop), singleton (drop or
cancel the active run), and finally throttle and priority (when the run's
first call is due). Every decision is made inside the caller's store
transaction, together with the run it creates.

A run that a limit drops is still recorded, as the official server does: a
run with status ``Skipped`` that never calls the app (protocol 6.5, 6.9).
A repeated event id is different: it only fails to start runs (3.4), so it
leaves no run at all.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from devserver import events as ev
from devserver.clock import now_ms, parse_duration_ms
from devserver.flow.expr import key_value, priority_s
from devserver.flow.limits import rate_allows, throttle_slot
from devserver.flow.state import Buffered, FlowState, Pending
from devserver.logtext import get_logger
from devserver.store import Store
from devserver.triggers import expression_true

logger = get_logger("digest.devserver.flow.admission")

# A user-supplied event id starts at most one run per function in this window
# (the same window as the executor applies to runs it starts itself).
RUN_KEY_WINDOW_MS = 24 * 3_600_000
# An idempotency key value starts at most one run per function in this window.
IDEMPOTENCY_WINDOW_MS = 24 * 3_600_000


class StartRun(Protocol):
    """The executor's run creation: ``item`` is the run's event.

    With ``skipped`` it records a run that a limit dropped: ended at once,
    never called.
    """

    def __call__(
        self,
        function: dict[str, Any],
        item: ev.Accepted,
        *,
        events: list[dict[str, Any]] | None = None,
        first_call_at: int | None = None,
        claim: bool = True,
        skipped: bool = False,
    ) -> str | None: ...


CancelRun = Callable[[str], bool]


def _duration_ms(value: object, what: str, fn_id: str) -> int | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_duration_ms(value)
    except ValueError:
        logger.warning(
            "function %s: %s %r is not a duration; ignored", fn_id, what, value
        )
        return None


def _positive_int(value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool) and value > 0:
        return value
    return None


class Admission:
    def __init__(
        self,
        store: Store,
        state: FlowState,
        start_run: StartRun,
        cancel_run: CancelRun,
        clock: Callable[[], int] = now_ms,
    ) -> None:
        self._store = store
        self._state = state
        self._start_run = start_run
        self._cancel_run = cancel_run
        self._clock = clock

    def admit(self, function: dict[str, Any], item: ev.Accepted) -> None:
        """Handle one event that matched one of the function's triggers."""
        fn_id = function["id"]
        now = self._clock()
        dedup_key = str(item.event.get("id") or item.internal_id)
        if not self._store.claim_run_key(
            fn_id, dedup_key, item.internal_id, now, RUN_KEY_WINDOW_MS
        ):
            logger.info(
                "event %s (id %r) already started a run of %s; not starting another",
                item.internal_id,
                dedup_key,
                fn_id,
            )
            return
        if self._buffer_in_batch(function, item, now):
            return
        if self._buffer_in_debounce(function, item, now):
            return
        self._start(function, item, [item.event], now)

    def fire_due(self) -> int:
        """Start the runs of batches and debounces whose time has come."""
        now = self._clock()
        due = self._state.due_pending(now)
        if not due:
            return 0
        functions = {f["id"]: f for f in self._store.active_functions()}
        started = 0
        for pending in due:
            with self._store.transaction():
                self._state.delete_pending(pending)
                function = functions.get(pending.fn_id)
                if function is None:
                    logger.warning(
                        "%s of %s dropped: the function is not registered any more",
                        pending.kind,
                        pending.fn_id,
                    )
                    continue
                started += self._start_buffered(function, pending.events, now)
        return started

    def next_due(self) -> int | None:
        return self._state.next_pending_at()

    # buffering

    def _buffer_in_batch(
        self, function: dict[str, Any], item: ev.Accepted, now: int
    ) -> bool:
        config = function.get("batchEvents")
        if not isinstance(config, dict):
            return False
        fn_id = function["id"]
        max_size = _positive_int(config.get("maxSize"))
        timeout = _duration_ms(config.get("timeout"), "batch timeout", fn_id)
        # The official server batches only with both a size above one and a
        # timeout; the Python SDK may omit the timeout.
        if max_size is None or max_size < 2 or timeout is None:
            return False
        condition = config.get("if")
        if condition and not expression_true(condition, {"event": item.event}):
            return False
        key = key_value(config.get("key"), item.event)
        pending = self._state.get_pending("batch", fn_id, key)
        events = [
            *(pending.events if pending else []),
            Buffered(item.internal_id, item.event),
        ]
        if len(events) >= max_size:
            if pending is not None:
                self._state.delete_pending(pending)
            self._start_buffered(function, events, now)
            return True
        first_at = pending.first_at if pending else now
        self._state.save_pending(
            Pending("batch", fn_id, key, events, first_at, first_at + timeout)
        )
        return True

    def _buffer_in_debounce(
        self, function: dict[str, Any], item: ev.Accepted, now: int
    ) -> bool:
        config = function.get("debounce")
        if not isinstance(config, dict):
            return False
        fn_id = function["id"]
        period = _duration_ms(config.get("period"), "debounce period", fn_id)
        if period is None:
            return False
        timeout = _duration_ms(config.get("timeout"), "debounce timeout", fn_id)
        key = key_value(config.get("key"), item.event)
        pending = self._state.get_pending("debounce", fn_id, key)
        first_at = pending.first_at if pending else now
        fire_at = now + period
        if timeout is not None:
            fire_at = min(fire_at, first_at + timeout)
        # The last event wins: it replaces the one buffered so far.
        buffered = [Buffered(item.internal_id, item.event)]
        self._state.save_pending(
            Pending("debounce", fn_id, key, buffered, first_at, fire_at)
        )
        return True

    # starting

    def _start_buffered(
        self, function: dict[str, Any], buffered: list[Buffered], now: int
    ) -> int:
        """Start the run of a batch (first event) or debounce (last event)."""
        first = ev.Accepted(buffered[0].internal_id, buffered[0].event, now)
        return self._start(function, first, [b.event for b in buffered], now)

    def _start(
        self,
        function: dict[str, Any],
        item: ev.Accepted,
        events: list[dict[str, Any]],
        now: int,
    ) -> int:
        """Start a run, or record a skipped one if a limit drops it.

        1 if a run started, else 0.
        """
        fn_id = function["id"]
        event_id = item.internal_id
        event = item.event
        if not self._limits_allow(function, event, now):
            logger.info(
                "run of %s for event %s skipped by its rate limit or idempotency key",
                fn_id,
                event_id,
            )
            self._skip(function, item, events)
            return 0
        singleton = function.get("singleton")
        singleton_key: str | None = None
        if isinstance(singleton, dict):
            singleton_key = key_value(singleton.get("key"), event)
            active = self._active_singleton(fn_id, singleton_key)
            if active is not None:
                if singleton.get("mode") != "cancel":
                    logger.info(
                        "run of %s for event %s skipped: run %s is active (singleton)",
                        fn_id,
                        event_id,
                        active,
                    )
                    self._skip(function, item, events)
                    return 0
                logger.info(
                    "singleton %s: cancelling run %s for a new one", fn_id, active
                )
                self._cancel_run(active)
        run_id = self._start_run(
            function,
            item,
            events=events,
            first_call_at=self._first_call_at(function, event, now),
            claim=False,
        )
        if run_id is None:
            return 0
        if singleton_key is not None:
            self._state.set_singleton_run(fn_id, singleton_key, run_id)
        return 1

    def _skip(
        self,
        function: dict[str, Any],
        item: ev.Accepted,
        events: list[dict[str, Any]],
    ) -> None:
        # claim=False: the event id was claimed in admit(); a second claim
        # would find it taken.
        self._start_run(function, item, events=events, claim=False, skipped=True)

    def _limits_allow(
        self, function: dict[str, Any], event: dict[str, Any], now: int
    ) -> bool:
        fn_id = function["id"]
        idempotency = function.get("idempotency")
        if isinstance(idempotency, str) and idempotency:
            # As on the official server, an idempotency key replaces any
            # rate limit: one run per key value per 24 hours.
            value = key_value(idempotency, event)
            return self._store.claim_run_key(
                fn_id, f"idempotency\x00{value}", fn_id, now, IDEMPOTENCY_WINDOW_MS
            )
        config = function.get("rateLimit")
        if not isinstance(config, dict):
            return True
        limit = _positive_int(config.get("limit"))
        period = _duration_ms(config.get("period"), "rate limit period", fn_id)
        if limit is None or period is None:
            return True
        key = key_value(config.get("key"), event)
        starts = self._state.rate_starts(fn_id, key, now - period)
        if not rate_allows(starts, now, period, limit):
            return False
        self._state.record_rate_start(fn_id, key, now)
        return True

    def _active_singleton(self, fn_id: str, key: str) -> str | None:
        run_id = self._state.singleton_run(fn_id, key)
        if run_id is None:
            return None
        run = self._store.get_run(run_id)
        return None if run is None or run.ended else run_id

    def _first_call_at(
        self, function: dict[str, Any], event: dict[str, Any], now: int
    ) -> int:
        """When the run's first call is due: throttle delay, else priority.

        A positive priority dates the call back so it sorts ahead of calls
        queued up to that many seconds earlier; a negative one delays it, as
        the official documentation describes.
        """
        fn_id = function["id"]
        throttle = function.get("throttle")
        if isinstance(throttle, dict):
            limit = _positive_int(throttle.get("limit"))
            period = _duration_ms(throttle.get("period"), "throttle period", fn_id)
            if limit is not None and period is not None:
                key = key_value(throttle.get("key"), event)
                burst = _positive_int(throttle.get("burst")) or 1
                slot = throttle_slot(
                    self._state.throttle_tat(fn_id, key), now, period, limit, burst
                )
                self._state.set_throttle_tat(fn_id, key, slot.tat)
                if slot.start_at > now:
                    logger.info(
                        "run of %s throttled: starts in %d ms",
                        fn_id,
                        slot.start_at - now,
                    )
                    return slot.start_at
        priority = function.get("priority")
        expression = priority.get("run") if isinstance(priority, dict) else None
        return now - priority_s(expression, event) * 1000
