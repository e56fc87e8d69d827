"""The run state machine: starting runs and applying each call's answer.

Every method here is synchronous and commits its changes in one store
transaction, so that the event loop never interleaves two updates of the
same run and a crash leaves either the old or the new state. The only
waiting (the HTTP call) happens in the worker, between ``begin_call`` and
``finish_call``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ulid import ULID

from devserver import events as ev
from devserver import retry, wire
from devserver.clock import now_ms
from devserver.config import ExecutorConfig
from devserver.store import QueueItem, Run, StepRecord, Store
from devserver.triggers import function_matches

logger = logging.getLogger("digest.devserver.executor")

# A user-supplied event id starts at most one run per function in this window.
RUN_KEY_WINDOW_MS = 24 * 3_600_000

# Step kinds this executor cannot serve yet; the step fails with a clear
# error that user code receives as a StepError.
_UNSUPPORTED: dict[str, str] = {
    wire.Opcode.WAIT_FOR_EVENT.value: "step.wait_for_event",
    wire.Opcode.INVOKE_FUNCTION.value: "step.invoke",
    wire.Opcode.AI_GATEWAY.value: "step.ai.infer",
}


@dataclass(frozen=True)
class CallPlan:
    """Everything the worker needs to make one call."""

    url: str
    body: dict[str, Any]
    fn_id: str
    started_at: int


def step_url(runtime_url: str, step_id: str) -> str:
    """The registered runtime URL with its ``stepId`` query value replaced."""
    parts = urlsplit(runtime_url)
    query = [(k, v) for k, v in parse_qsl(parts.query) if k != "stepId"]
    query.append(("stepId", step_id))
    return urlunsplit(parts._replace(query=urlencode(query)))


class Executor:
    def __init__(
        self, store: Store, config: ExecutorConfig, notify: Callable[[], None]
    ) -> None:
        self._store = store
        self._config = config
        self._notify = notify

    # starting runs

    def ingest(self, accepted: list[ev.Accepted]) -> None:
        """Store events and start the runs they trigger."""
        for item in accepted:
            with self._store.transaction():
                if self._store.add_event(
                    item.internal_id, item.event, item.received_at
                ):
                    self._start_runs(item)
        self._notify()

    def _start_runs(self, item: ev.Accepted) -> None:
        for function in self._store.active_functions():
            if function_matches(function, item.event):
                self._create_run(function, item)

    def _create_run(self, function: dict[str, Any], item: ev.Accepted) -> None:
        fn_id = function["id"]
        run_id = str(ULID())
        now = now_ms()
        key = str(item.event.get("id") or item.internal_id)
        if not self._store.claim_run_key(fn_id, key, run_id, now, RUN_KEY_WINDOW_MS):
            logger.info(
                "event %s (id %r) already started a run of %s; not starting another",
                item.internal_id,
                key,
                fn_id,
            )
            return
        run = Run(
            run_id=run_id,
            fn_id=fn_id,
            event_id=item.internal_id,
            event=item.event,
            events=[item.event],
            max_attempts=retry.max_attempts(function, self._config.default_retries),
            created_at=now,
        )
        self._store.save_run(run)
        self._store.enqueue(run_id, wire.DISCOVERY, "call", 0, now)
        logger.info(
            "run %s of %s started by event %s (%s)",
            run_id,
            fn_id,
            item.internal_id,
            item.event["name"],
        )

    # calls

    def begin_call(self, item: QueueItem) -> CallPlan | None:
        """Mark the run and step as running and build the request."""
        run = self._store.get_run(item.run_id)
        if run is None or run.ended:
            self._store.delete_item(item.item_id)
            return None
        function = self._store.get_function(run.fn_id)
        runtime = ((function or {}).get("steps") or {}).get("step", {}).get("runtime")
        if function is None or not isinstance(runtime, dict):
            with self._store.transaction():
                self._store.delete_item(item.item_id)
                self._fail(
                    run,
                    wire.error_object(
                        "FunctionNotFoundError",
                        f"function {run.fn_id} is not registered any more",
                    ),
                )
            return None
        now = now_ms()
        with self._store.transaction():
            if run.started_at is None:
                run.started_at = now
                run.status = "Running"
                self._store.save_run(run)
            if item.step_id != wire.DISCOVERY:
                self._update_step(
                    run, item.step_id, status="Running", attempts=item.attempt + 1
                )
        body = wire.build_call_body(
            run_id=run.run_id,
            event=run.event,
            events=run.events,
            memo=run.memo,
            stack=run.stack,
            step_id=item.step_id,
            attempt=item.attempt,
            max_attempts=run.max_attempts,
            disable_immediate_execution=run.disable_immediate,
        )
        url = step_url(str(runtime["url"]), item.step_id)
        return CallPlan(url=url, body=body, fn_id=run.fn_id, started_at=now)

    def finish_call(
        self, item: QueueItem, plan: CallPlan, result: wire.CallResult
    ) -> None:
        """Apply an app's answer to its run (protocol 4.8)."""
        run = self._store.get_run(item.run_id)
        if run is None or run.ended:
            # Cancelled while the call was in flight: the answer is dropped.
            self._store.delete_item(item.item_id)
            return
        with self._store.transaction():
            if result.outcome is wire.Outcome.COMPLETED:
                self._store.delete_item(item.item_id)
                self._complete(run, result.output)
            elif result.outcome is wire.Outcome.ERROR:
                self._call_failed(run, item, result)
            else:
                self._apply_ops(run, item, plan, result)
            self._store.save_run(run)
        self._notify()

    def fire_sleep(self, item: QueueItem) -> None:
        """A sleep step's time has come: memoise null and move on."""
        run = self._store.get_run(item.run_id)
        with self._store.transaction():
            self._store.delete_item(item.item_id)
            if run is None or run.ended:
                return
            self._memoise(run, item.step_id, None)
            self._update_step(
                run, item.step_id, status="Completed", ended_at=now_ms(), output=None
            )
            if self._settle(run, item.step_id, inline_ok=True):
                self._schedule_discovery(run)
            self._store.save_run(run)
        self._notify()

    def _call_failed(self, run: Run, item: QueueItem, result: wire.CallResult) -> None:
        error = result.error or wire.error_object("Error", "unknown failure")
        run.last_error = {**error, "step_id": item.step_id, "attempt": item.attempt}
        final = result.no_retry or item.attempt + 1 >= run.max_attempts
        if item.step_id != wire.DISCOVERY:
            self._update_step(
                run,
                item.step_id,
                status="Failed" if final else "Retrying",
                attempts=item.attempt + 1,
                error=error,
            )
        if final:
            self._store.delete_item(item.item_id)
            self._fail(run, error)
            return
        self._retry(run, item, error, result.retry_at_ms)

    def _retry(
        self,
        run: Run,
        item: QueueItem,
        error: dict[str, Any],
        retry_at_ms: int | None,
        label: str | None = None,
    ) -> None:
        at = retry_at_ms or now_ms() + retry.backoff_ms(
            item.attempt, self._config.retry_interval
        )
        self._store.retry_item(item.item_id, item.attempt + 1, at)
        if label is None:
            label = (
                "function call"
                if item.step_id == wire.DISCOVERY
                else f"step {item.step_id}"
            )
        logger.warning(
            "run %s of %s: %s attempt %d of %d failed, retrying: %s: %s",
            run.run_id,
            run.fn_id,
            label,
            item.attempt + 1,
            run.max_attempts,
            error.get("name"),
            error.get("message"),
        )

    def _apply_ops(
        self,
        run: Run,
        item: QueueItem,
        plan: CallPlan,
        result: wire.CallResult,
    ) -> None:
        if len(result.ops) > 1:
            run.disable_immediate = True
        # An answer computed from an older memo may report steps that have
        # settled since; those reports are stale and ignored.
        ops = [op for op in result.ops if op.id not in run.memo]
        group = f"{item.item_id}.{item.attempt}"
        settled: list[str] = []
        newly_pending = False
        retrying = False
        now = now_ms()
        for op in ops:
            kind = op.op
            if kind == wire.Opcode.STEP_RUN:
                self._memoise(run, op.id, {"data": op.data})
                self._update_step(
                    run,
                    op.id,
                    name=op.display_name,
                    op=kind,
                    status="Completed",
                    attempts=item.attempt + 1,
                    started_at=plan.started_at,
                    ended_at=now,
                    output=op.data,
                    error=None,
                )
                settled.append(op.id)
            elif kind in (wire.Opcode.STEP_PLANNED, wire.Opcode.SLEEP):
                if op.id in run.pending:
                    continue
                run.pending[op.id] = {"group": group, "race": op.race}
                newly_pending = True
                self._plan(run, op)
            elif kind == wire.Opcode.STEP_ERROR and not (
                result.no_retry or item.attempt + 1 >= run.max_attempts
            ):
                error = op.error if isinstance(op.error, dict) else {}
                self._update_step(
                    run,
                    op.id,
                    name=op.display_name,
                    op=kind,
                    status="Retrying",
                    attempts=item.attempt + 1,
                    started_at=plan.started_at,
                    error=op.error,
                )
                run.last_error = {**error, "step_id": op.id, "attempt": item.attempt}
                self._retry(run, item, error, None, f"step {op.display_name}")
                retrying = True
            elif kind in (wire.Opcode.STEP_ERROR, wire.Opcode.STEP_FAILED):
                self._step_failed(run, op, item, plan, op.error)
                settled.append(op.id)
            else:
                what = _UNSUPPORTED.get(kind)
                message = (
                    f"{what} is not supported yet by the Digest devserver"
                    if what
                    else f"unknown opcode {kind!r}"
                )
                self._step_failed(
                    run, op, item, plan, wire.error_object("NotSupportedError", message)
                )
                settled.append(op.id)
        if not retrying:
            self._store.delete_item(item.item_id)
        discovery = False
        for step_id in settled:
            discovery = (
                self._settle(run, step_id, inline_ok=not newly_pending) or discovery
            )
        if not ops and not run.pending and not retrying:
            # Nothing left to wait for: ask the SDK what comes next.
            discovery = True
        if discovery:
            self._schedule_discovery(run)

    def _plan(self, run: Run, op: wire.Op) -> None:
        if op.op == wire.Opcode.SLEEP:
            try:
                wake = wire.wake_time_ms(op)
            except ValueError:
                wake = now_ms()
                logger.warning(
                    "run %s: sleep %s has an unreadable time %r; waking now",
                    run.run_id,
                    op.display_name,
                    op.name,
                )
            self._store.enqueue(run.run_id, op.id, "sleep", 0, wake)
            self._update_step(
                run, op.id, name=op.display_name, op=op.op, status="Sleeping"
            )
            return
        self._store.enqueue(run.run_id, op.id, "call", 0, now_ms())
        self._update_step(
            run, op.id, name=op.display_name, op=op.op, status="Scheduled"
        )

    def _step_failed(
        self,
        run: Run,
        op: wire.Op,
        item: QueueItem,
        plan: CallPlan,
        error: Any,
    ) -> None:
        self._memoise(run, op.id, {"error": error})
        self._update_step(
            run,
            op.id,
            name=op.display_name,
            op=op.op,
            status="Failed",
            attempts=item.attempt + 1,
            started_at=plan.started_at,
            ended_at=now_ms(),
            error=error,
        )
        logger.warning(
            "run %s of %s: step %s failed for good after %d attempt(s): %s",
            run.run_id,
            run.fn_id,
            op.display_name,
            item.attempt + 1,
            error,
        )

    def _settle(self, run: Run, step_id: str, *, inline_ok: bool) -> bool:
        """Forget a settled step; True when a discovery call is now due."""
        info = run.pending.pop(step_id, None)
        if info is None:
            return inline_ok
        if info.get("race"):
            return True
        return not any(p["group"] == info["group"] for p in run.pending.values())

    def _schedule_discovery(self, run: Run) -> None:
        if not run.pending:
            # The parallel set is over; request version 2 lets later steps
            # run inline again, which saves a round trip per step.
            run.disable_immediate = False
        if not self._store.has_waiting_item(run.run_id, wire.DISCOVERY):
            self._store.enqueue(run.run_id, wire.DISCOVERY, "call", 0, now_ms())

    @staticmethod
    def _memoise(run: Run, step_id: str, value: Any) -> None:
        run.memo[step_id] = value
        if step_id not in run.stack:
            run.stack.append(step_id)

    def _update_step(self, run: Run, step_id: str, **fields: Any) -> None:
        record = self._store.get_step(run.run_id, step_id)
        if record is None:
            record = StepRecord(
                run_id=run.run_id,
                step_id=step_id,
                name=str(fields.get("name") or step_id),
                op=str(fields.get("op") or ""),
                status="Scheduled",
            )
        for key, value in fields.items():
            if key == "started_at" and record.started_at is not None:
                continue
            setattr(record, key, value)
        self._store.save_step(record)

    # ending runs

    def cancel(self, run_id: str) -> bool:
        """Cancel a run; False if it does not exist. Ended runs stay as they are."""
        run = self._store.get_run(run_id)
        if run is None:
            return False
        if run.ended:
            return True
        with self._store.transaction():
            self._end(run, "Cancelled", None)
            self._store.save_run(run)
        self._notify()
        return True

    def _complete(self, run: Run, output: Any) -> None:
        self._end(run, "Completed", output)

    def _fail(self, run: Run, error: dict[str, Any]) -> None:
        self._end(run, "Failed", error)

    def _end(self, run: Run, status: str, output: Any) -> None:
        run.status = status
        run.output = output
        run.ended_at = now_ms()
        run.pending = {}
        self._store.delete_run_items(run.run_id)
        self._store.save_run(run)
        if status == "Failed":
            logger.warning(
                "run %s of %s ended: Failed: %s: %s",
                run.run_id,
                run.fn_id,
                (output or {}).get("name"),
                (output or {}).get("message"),
            )
        else:
            logger.info("run %s of %s ended: %s", run.run_id, run.fn_id, status)
        self._emit_lifecycle(run)

    def _emit_lifecycle(self, run: Run) -> None:
        """Emit function.failed/cancelled/finished so failure handlers run.

        Runs triggered by a lifecycle event emit nothing, so that a failing
        failure handler cannot start an endless chain of handlers.
        """
        if run.event.get("name") in ev.LIFECYCLE_EVENTS:
            return
        data: dict[str, Any] = {
            "function_id": run.fn_id,
            "run_id": run.run_id,
            "event": wire.for_sdk(run.event),
            "events": [wire.for_sdk(e) for e in run.events],
            "_inngest": {"status": run.status},
        }
        emitted = []
        if run.status == "Failed":
            error = dict(run.output or {})
            summary = f"{error.get('name', 'Error')}: {error.get('message', '')}"
            failed = {**data, "error": {"error": summary, **error}}
            emitted.append(ev.internal_event(ev.FUNCTION_FAILED, run.run_id, failed))
            emitted.append(ev.internal_event(ev.FUNCTION_FINISHED, str(ULID()), failed))
        elif run.status == "Cancelled":
            emitted.append(ev.internal_event(ev.FUNCTION_CANCELLED, run.run_id, data))
            emitted.append(ev.internal_event(ev.FUNCTION_FINISHED, str(ULID()), data))
        else:
            finished = {**data, "result": run.output}
            emitted.append(
                ev.internal_event(ev.FUNCTION_FINISHED, str(ULID()), finished)
            )
        for item in emitted:
            self._store.add_event(item.internal_id, item.event, item.received_at)
            self._start_runs(item)
