"""Ending runs early: ``cancel`` events (protocol 6.7) and ``timeouts`` (6.9).

Listeners are written when a run is created, from the function's
configuration at that moment, so a re-sync that changes ``cancel`` affects
new runs only. A cancelled run keeps the answer of a call in flight from
mattering: the executor drops it (an in-flight call is not interrupted).

``timeouts.finish`` follows the official server: when the deadline passes
during a call, that call's answer may still complete the run; any other
answer cancels it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devserver import events as ev
from devserver import wire
from devserver.clock import now_ms, parse_duration_ms
from devserver.logtext import get_logger
from devserver.pausestore import CancelListener
from devserver.store import QueueItem, Run
from devserver.triggers import expression_true

if TYPE_CHECKING:
    from devserver.executor import Executor

logger = get_logger("digest.devserver.cancellation")

START_TIMEOUT = "timeout_start"
FINISH_TIMEOUT = "timeout_finish"
TIMER_KINDS = frozenset({START_TIMEOUT, FINISH_TIMEOUT})
# Queue items need a step id; these never collide with hashed step ids.
_START_STEP = "~timeouts.start"
_FINISH_STEP = "~timeouts.finish"


def _duration(value: Any) -> int | None:
    if not isinstance(value, str) or not value:
        return None
    try:
        return parse_duration_ms(value)
    except ValueError:
        logger.warning("ignoring unreadable duration %r", value)
        return None


def _timeouts(function: dict[str, Any] | None) -> dict[str, Any]:
    value = (function or {}).get("timeouts")
    return value if isinstance(value, dict) else {}


class Cancellations:
    def __init__(self, host: Executor) -> None:
        self._host = host

    def on_run_created(self, run: Run, function: dict[str, Any]) -> None:
        for position, spec in enumerate(function.get("cancel") or []):
            if not isinstance(spec, dict) or not isinstance(spec.get("event"), str):
                continue
            timeout = _duration(spec.get("timeout"))
            expression = spec.get("if")
            self._host.pauses.add_listener(
                CancelListener(
                    run_id=run.run_id,
                    position=position,
                    event=spec["event"],
                    expression=expression if isinstance(expression, str) else None,
                    expires_at=None if timeout is None else run.created_at + timeout,
                )
            )
        start = _duration(_timeouts(function).get("start"))
        if start is not None:
            self._host.store.enqueue(
                run.run_id, _START_STEP, START_TIMEOUT, 0, run.created_at + start
            )

    def on_run_started(self, run: Run) -> None:
        finish = self._finish_ms(run)
        if finish is not None and run.started_at is not None:
            self._host.store.enqueue(
                run.run_id, _FINISH_STEP, FINISH_TIMEOUT, 0, run.started_at + finish
            )

    def on_event(self, item: ev.Accepted) -> None:
        """Cancel every active run one of whose listeners this event fires."""
        cancelled: set[str] = set()
        for listener in self._host.pauses.listeners_for(item.event["name"], now_ms()):
            if listener.run_id in cancelled:
                continue
            run = self._host.store.get_run(listener.run_id)
            if run is None or run.ended:
                continue
            if listener.expression and not expression_true(
                listener.expression,
                {"event": wire.for_sdk(run.event), "async": wire.for_sdk(item.event)},
            ):
                continue
            cancelled.add(run.run_id)
            self._cancel(
                run, f"cancelled by event {item.event['name']} ({item.internal_id})"
            )

    def fire(self, item: QueueItem) -> None:
        """A start or finish deadline has come."""
        run = self._host.store.get_run(item.run_id)
        if run is None or run.ended:
            return
        if item.kind == START_TIMEOUT:
            if run.started_at is None:
                self._cancel(run, "not started within timeouts.start")
            return
        if self._host.pauses.call_in_flight(run.run_id):
            # The call's answer decides (see finish_deadline_passed).
            return
        self._cancel(run, "not finished within timeouts.finish")

    def finish_deadline_passed(self, run: Run) -> bool:
        finish = self._finish_ms(run)
        if finish is None or run.started_at is None:
            return False
        return now_ms() >= run.started_at + finish

    def cancel_late(self, run: Run) -> None:
        self._cancel(run, "not finished within timeouts.finish")

    def _finish_ms(self, run: Run) -> int | None:
        return _duration(
            _timeouts(self._host.store.get_function(run.fn_id)).get("finish")
        )

    def _cancel(self, run: Run, reason: str) -> None:
        logger.info("run %s of %s %s", run.run_id, run.fn_id, reason)
        run.last_error = wire.error_object("FunctionCancelledError", f"run {reason}")
        self._host.end_run(run, "Cancelled", None)
