"""``step.invoke``: child runs, their results in the parent, and timeouts.

The child run is started by an ``inngest/function.invoked`` event whose
``data._inngest.correlation_id`` is ``<parent run id>.<step id>``; when the
child ends, that id leads back to the waiting step. Keeping the link in the
child's own event (as the official server does) means nothing else has to be
stored and it survives restarts with the run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ulid import ULID

from devserver import events as ev
from devserver import wire
from devserver.clock import now_ms
from devserver.logtext import get_logger
from devserver.pauses import duration_opt
from devserver.store import QueueItem, Run

if TYPE_CHECKING:
    from devserver.executor import Executor

logger = get_logger("digest.devserver.invoke")

FUNCTION_INVOKED = "inngest/function.invoked"
INVOKE_TIMEOUT = "invoke_timeout"
# Without a timeout the parent waits up to a year, like the official server.
DEFAULT_TIMEOUT_MS = 366 * 86_400_000


def correlation(event: dict[str, Any]) -> tuple[str, str] | None:
    """(parent run id, step id) if this event started an invoked run."""
    if event.get("name") != FUNCTION_INVOKED:
        return None
    meta = (event.get("data") or {}).get("_inngest") or {}
    value = meta.get("correlation_id") if isinstance(meta, dict) else None
    if not isinstance(value, str) or "." not in value:
        return None
    parent, step = value.split(".", 1)
    return parent, step


class Invokes:
    def __init__(self, host: Executor) -> None:
        self._host = host

    def begin(self, run: Run, op: wire.Op) -> dict[str, Any] | None:
        """Start the child run; an error object if it cannot be started."""
        target = op.opts.get("function_id")
        if not isinstance(target, str) or not target:
            return wire.error_object("Error", "invoke names no function_id")
        active = {f["id"]: f for f in self._host.store.active_functions()}
        function = active.get(target)
        if function is None:
            return wire.error_object(
                "Error", f"could not find function with ID: {target}"
            )
        try:
            timeout_ms = duration_opt(op, DEFAULT_TIMEOUT_MS)
        except ValueError as exc:
            return wire.error_object("Error", f"invoke timeout is unreadable: {exc}")
        payload = op.opts.get("payload")
        payload = payload if isinstance(payload, dict) else {}
        data = payload.get("data")
        now = now_ms()
        expire = now + timeout_ms
        parent = self._host.store.get_function(run.fn_id) or {}
        internal_id = str(ULID())
        event: dict[str, Any] = {
            "name": FUNCTION_INVOKED,
            "data": {
                **(data if isinstance(data, dict) else {}),
                "_inngest": {
                    "fn_id": target,
                    "correlation_id": f"{run.run_id}.{op.id}",
                    "expire": expire,
                    "name": op.display_name,
                    "source_fn_id": run.fn_id,
                    "source_fn_name": parent.get("name", run.fn_id),
                },
            },
            "id": internal_id,
            "ts": now,
        }
        if isinstance(payload.get("v"), str):
            event["v"] = payload["v"]
        accepted = ev.Accepted(internal_id, event, now)
        self._host.store.add_event(internal_id, event, now)
        self._host.store.enqueue(run.run_id, op.id, INVOKE_TIMEOUT, 0, expire)
        self._host.start_run(function, accepted)
        logger.info("run %s invokes %s (step %s)", run.run_id, target, op.display_name)
        return None

    def on_run_end(self, child: Run) -> None:
        """An invoked run ended: hand its result to the waiting parent step."""
        link = correlation(child.event)
        if link is None:
            return
        parent = self._waiting_parent(*link)
        if parent is None:
            return
        step_id = link[1]
        self._host.pauses.delete_timer(parent.run_id, step_id, INVOKE_TIMEOUT)
        if child.status == "Completed":
            self._host.resolve_step(
                parent, step_id, {"data": child.output}, output=child.output
            )
            return
        if child.status == "Failed" and isinstance(child.output, dict):
            error = dict(child.output)
        else:
            error = wire.error_object(
                "FunctionCancelledError",
                f"invoked run {child.run_id} of {child.fn_id} was cancelled",
            )
        self._host.resolve_step(parent, step_id, {"error": error}, error=error)

    def expire(self, item: QueueItem) -> None:
        parent = self._waiting_parent(item.run_id, item.step_id)
        if parent is None:
            return
        error = wire.error_object(
            "InngestInvokeTimeoutError",
            "Timed out waiting for invoked function to complete",
        )
        logger.info("run %s: invoke %s timed out", parent.run_id, item.step_id)
        self._host.resolve_step(parent, item.step_id, {"error": error}, error=error)

    def _waiting_parent(self, run_id: str, step_id: str) -> Run | None:
        parent = self._host.store.get_run(run_id)
        if parent is None or parent.ended:
            return None
        if step_id not in parent.pending or step_id in parent.memo:
            return None
        return parent
