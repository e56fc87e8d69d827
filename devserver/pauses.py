"""``step.wait_for_event``: pauses, their matching events and their timeouts.

A pause is created when the SDK reports a ``WaitForEvent`` op and is matched
against each event as it is received. Like the official dev server, only
events received after the pause exists can resume it: an event sent a moment
before the wait is registered is not seen, even if it would match. The ``if``
expression is CEL with ``event`` (the run's triggering event) and ``async``
(the candidate event); an expression that cannot be evaluated matches
nothing. On timeout the step's result is ``null``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from devserver import events as ev
from devserver import wire
from devserver.clock import now_ms, parse_duration_ms
from devserver.logtext import get_logger
from devserver.pausestore import Pause
from devserver.store import QueueItem, Run
from devserver.triggers import expression_true

if TYPE_CHECKING:
    from devserver.executor import Executor

logger = get_logger("digest.devserver.pauses")

WAIT_TIMEOUT = "wait_timeout"
# The official server refuses waits longer than this.
MAX_WAIT_MS = 366 * 86_400_000


def duration_opt(op: wire.Op, default_ms: int) -> int:
    """The op's ``opts.timeout`` in ms; ValueError if present but unreadable."""
    value = op.opts.get("timeout")
    if value is None:
        return default_ms
    if not isinstance(value, str):
        raise ValueError(f"timeout must be a duration string, not {value!r}")
    return parse_duration_ms(value)


class Waits:
    def __init__(self, host: Executor) -> None:
        self._host = host

    def begin(self, run: Run, op: wire.Op) -> dict[str, Any] | None:
        """Create the pause for a WaitForEvent op; an error if it is unusable."""
        if not op.name:
            return wire.error_object(
                "InvalidWaitError", "wait_for_event names no event"
            )
        try:
            timeout_ms = duration_opt(op, MAX_WAIT_MS)
        except ValueError as exc:
            return wire.error_object("InvalidWaitError", str(exc))
        if timeout_ms > MAX_WAIT_MS:
            return wire.error_object(
                "InvalidWaitError", "wait_for_event timeout is longer than 366 days"
            )
        expression = op.opts.get("if")
        now = now_ms()
        pause = Pause(
            run_id=run.run_id,
            step_id=op.id,
            event=op.name,
            expression=expression
            if isinstance(expression, str) and expression
            else None,
            created_at=now,
            expires_at=now + timeout_ms,
        )
        self._host.pauses.add_pause(pause)
        self._host.store.enqueue(run.run_id, op.id, WAIT_TIMEOUT, 0, pause.expires_at)
        logger.info(
            "run %s waits for %s (step %s, if %r, up to %d ms)",
            run.run_id,
            op.name,
            op.display_name,
            pause.expression,
            timeout_ms,
        )
        return None

    def on_event(self, item: ev.Accepted) -> None:
        """Resume every pause this newly received event matches."""
        store = self._host.store
        for pause in self._host.pauses.pauses_for(item.event["name"]):
            run = store.get_run(pause.run_id)
            if run is None or run.ended:
                self._host.pauses.take_pause(pause.run_id, pause.step_id)
                continue
            if pause.expression and not expression_true(
                pause.expression,
                {"event": wire.for_sdk(run.event), "async": wire.for_sdk(item.event)},
            ):
                continue
            if not self._host.pauses.take_pause(pause.run_id, pause.step_id):
                continue
            self._host.pauses.delete_timer(run.run_id, pause.step_id, WAIT_TIMEOUT)
            matched = wire.for_sdk(item.event)
            logger.info(
                "run %s: event %s resumes its wait for %s",
                run.run_id,
                item.internal_id,
                pause.event,
            )
            self._host.resolve_step(run, pause.step_id, matched, output=matched)

    def expire(self, item: QueueItem) -> None:
        """The wait's timeout: the step returns null, unless an event won."""
        if not self._host.pauses.take_pause(item.run_id, item.step_id):
            return
        run = self._host.store.get_run(item.run_id)
        if run is None or run.ended:
            return
        logger.info("run %s: wait %s timed out", run.run_id, item.step_id)
        self._host.resolve_step(run, item.step_id, None, output=None)
