"""The run state machine: starting runs and applying each call's answer.

Every method here is synchronous and commits its changes in one store
transaction, so that the event loop never interleaves two updates of the
same run and a crash leaves either the old or the new state. The only
waiting (the HTTP call) happens in the worker, between ``begin_call`` and
``finish_call``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from ulid import ULID

from devserver import aigateway, limits, retry, runlog, wire
from devserver import events as ev
from devserver.appstatus import AppHealth
from devserver.cancellation import TIMER_KINDS as DEADLINE_KINDS
from devserver.cancellation import Cancellations
from devserver.clock import now_ms
from devserver.config import ExecutorConfig
from devserver.flow.admission import Admission
from devserver.flow.state import FlowState
from devserver.invoke import INVOKE_TIMEOUT, Invokes
from devserver.lifecycle import lifecycle_events
from devserver.logtext import get_logger
from devserver.pauses import WAIT_TIMEOUT, Waits
from devserver.pausestore import PauseStore
from devserver.store import QueueItem, Run, StepRecord, Store
from devserver.triggers import function_matches

logger = get_logger("digest.devserver.executor")

# A user-supplied event id starts at most one run per function in this window.
RUN_KEY_WINDOW_MS = 24 * 3_600_000

# Step kinds this executor cannot serve yet; the step fails with a clear
# error that user code receives as a StepError.
_UNSUPPORTED: dict[str, str] = {}
# A call that did not reach the app (no answer, 404, 429 without a time) is
# tried again after this long, without spending an attempt.
UNREACHABLE_RETRY_MS = 1_000
# Queue items that are timers rather than calls (see fire_timer).
TIMER_KINDS = frozenset({"sleep", WAIT_TIMEOUT, INVOKE_TIMEOUT, *DEADLINE_KINDS})
# Ops whose step settles later, when something outside the call happens.
_WAITING_OPS = frozenset({wire.Opcode.WAIT_FOR_EVENT, wire.Opcode.INVOKE_FUNCTION})


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
        self.pauses = PauseStore(store)
        self.app_health = AppHealth(store)
        self._waits = Waits(self)
        self._invokes = Invokes(self)
        self._cancellations = Cancellations(self)
        # Flow control (batching, debounce, limits, priority) decides whether
        # and when an event that matches a trigger becomes a run.
        self.admission = Admission(
            store, FlowState(store.db), self._create_run, self.cancel
        )

    @property
    def store(self) -> Store:
        return self._store

    # starting runs

    def ingest(self, accepted: list[ev.Accepted]) -> None:
        """Store events and start the runs they trigger."""
        for item in accepted:
            with self._store.transaction():
                if self._store.add_event(
                    item.internal_id, item.event, item.received_at
                ):
                    self._on_event(item)
        self._notify()

    def _on_event(self, item: ev.Accepted) -> None:
        """A stored event starts runs, resumes waits and fires cancel listeners."""
        self._start_runs(item)
        self._waits.on_event(item)
        self._cancellations.on_event(item)

    def start_run(self, function: dict[str, Any], item: ev.Accepted) -> None:
        """Start a run of one function, whatever its triggers (invoke)."""
        self._create_run(function, item)

    def rerun(self, run: Run, function: dict[str, Any]) -> str | None:
        """Run ``function`` again from the start, with ``run``'s event(s).

        A person asked for it, so the event id does not de-duplicate it and
        flow control does not buffer or drop it; concurrency still applies,
        as it does to every call.
        """
        item = ev.Accepted(run.event_id, run.event, now_ms())
        with self._store.transaction():
            run_id = self._create_run(function, item, events=run.events, claim=False)
        self._notify()
        return run_id

    def _start_runs(self, item: ev.Accepted) -> None:
        for function in self._store.active_functions():
            if function_matches(function, item.event):
                self.admission.admit(function, item)

    def _create_run(
        self,
        function: dict[str, Any],
        item: ev.Accepted,
        *,
        events: list[dict[str, Any]] | None = None,
        first_call_at: int | None = None,
        claim: bool = True,
        skipped: bool = False,
    ) -> str | None:
        """Create a run of ``function`` for ``item``; None if de-duplicated.

        Flow control passes ``events`` for a batch, ``first_call_at`` for a
        throttled or prioritised start, ``claim=False`` because it has
        de-duplicated the event itself, and ``skipped`` for a run that a
        rate limit, idempotency key or singleton dropped.
        """
        fn_id = function["id"]
        run_id = str(ULID())
        now = now_ms()
        key = str(item.event.get("id") or item.internal_id)
        if claim and not self._store.claim_run_key(
            fn_id, key, run_id, now, RUN_KEY_WINDOW_MS
        ):
            logger.info(
                "event %s (id %r) already started a run of %s; not starting another",
                item.internal_id,
                key,
                fn_id,
            )
            return None
        run = Run(
            run_id=run_id,
            fn_id=fn_id,
            event_id=item.internal_id,
            event=item.event,
            events=events or [item.event],
            max_attempts=retry.max_attempts(function, self._config.default_retries),
            created_at=now,
        )
        if skipped:
            # The official server's record of a dropped run: ended when
            # created, with no queue item, no cancel listeners or deadlines,
            # and no lifecycle events (it never ran, so nothing finished).
            run.status = "Skipped"
            run.ended_at = now
            self._store.save_run(run)
            logger.info(
                "run %s of %s for event %s (%s) recorded as Skipped",
                run_id,
                fn_id,
                item.internal_id,
                item.event["name"],
            )
            return run_id
        self._store.save_run(run)
        due = now if first_call_at is None else first_call_at
        self._store.enqueue(run_id, wire.DISCOVERY, "call", 0, due)
        self._cancellations.on_run_created(run, function)
        logger.info(
            "run %s of %s started by event %s (%s)",
            run_id,
            fn_id,
            item.internal_id,
            item.event["name"],
        )
        return run_id

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
                self._cancellations.on_run_started(run)
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
            self.app_health.record_call(
                run.fn_id,
                (result.error or {}).get("message") if result.unreachable else None,
            )
            too_large = self._oversized(run, result)
            if too_large is not None:
                self._store.delete_item(item.item_id)
                self._fail(run, too_large)
            elif result.outcome is wire.Outcome.COMPLETED:
                self._store.delete_item(item.item_id)
                self._complete(run, result.output)
            elif result.outcome is wire.Outcome.ERROR:
                self._call_failed(run, item, result)
            else:
                self._apply_ops(run, item, plan, result)
                last = result.ops[-1].display_name if result.ops else item.step_id
                over = None if run.ended else limits.run_over_limits(run, last)
                if over is not None:
                    self._fail(run, over)
            if not run.ended and self._cancellations.finish_deadline_passed(run):
                self._cancellations.cancel_late(run)
            self._store.save_run(run)
        self._notify()

    def _oversized(self, run: Run, result: wire.CallResult) -> dict[str, Any] | None:
        """An error if the answer carries more than a step may (not retried)."""
        if result.outcome is wire.Outcome.COMPLETED:
            return limits.oversized_output(result.output)
        if result.outcome is not wire.Outcome.OPS:
            return None
        found = limits.oversized_op(result.ops)
        if found is None:
            return None
        op, error = found
        self._update_step(
            run,
            op.id,
            name=op.display_name,
            op=op.op,
            status="Failed",
            ended_at=now_ms(),
            error=error,
        )
        return error

    def fire_timer(self, item: QueueItem) -> None:
        """A timer is due: a sleep ends, a wait or an invoke times out, or a
        run's start or finish deadline passes."""
        if item.kind == "sleep":
            self.fire_sleep(item)
            return
        with self._store.transaction():
            self._store.delete_item(item.item_id)
            if item.kind == WAIT_TIMEOUT:
                self._waits.expire(item)
            elif item.kind == INVOKE_TIMEOUT:
                self._invokes.expire(item)
            else:
                self._cancellations.fire(item)
        self._notify()

    def resolve_step(
        self,
        run: Run,
        step_id: str,
        value: Any,
        *,
        output: Any = None,
        error: Any = None,
    ) -> None:
        """A step that waited (wait, invoke) has its result: memoise it, go on.

        Runs inside the caller's transaction and saves the run.
        """
        self._memoise(run, step_id, value)
        self._update_step(
            run,
            step_id,
            status="Failed" if error is not None else "Completed",
            ended_at=now_ms(),
            output=output,
            error=error,
        )
        if self._settle(run, step_id, inline_ok=True):
            self._schedule_discovery(run)
        over = limits.run_over_limits(run, step_id)
        if over is not None:
            self._fail(run, over)
        self._store.save_run(run)
        self._notify()

    def end_run(self, run: Run, status: str, output: Any) -> None:
        """End a run from outside a call (cancellation); inside a transaction."""
        self._end(run, status, output)
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
        if result.free_retry:
            at = result.retry_at_ms or now_ms() + UNREACHABLE_RETRY_MS
            self._store.retry_item(item.item_id, item.attempt, at)
            logger.info(
                "run %s of %s: call not served (%s: %s); kept queued, "
                "tried again in %d ms without spending an attempt",
                run.run_id,
                run.fn_id,
                error.get("name"),
                error.get("message"),
                at - now_ms(),
            )
            return
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
            runlog.attempt_failed(
                run_id=run.run_id,
                fn_id=run.fn_id,
                step=self._step_label(run, item.step_id),
                attempt=item.attempt + 1,
                max_attempts=run.max_attempts,
                error=error,
                outcome="run fails" + (" (not retriable)" if result.no_retry else ""),
            )
            self._store.delete_item(item.item_id)
            self._fail(run, error)
            return
        self._retry(run, item, error, result.retry_at_ms)

    def _step_label(self, run: Run, step_id: str) -> str:
        if step_id == wire.DISCOVERY:
            return "(function)"
        record = self._store.get_step(run.run_id, step_id)
        return record.name if record is not None else step_id

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
        runlog.attempt_failed(
            run_id=run.run_id,
            fn_id=run.fn_id,
            step=label or self._step_label(run, item.step_id),
            attempt=item.attempt + 1,
            max_attempts=run.max_attempts,
            error=error,
            outcome=f"retrying in {max(at - now_ms(), 0)} ms",
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
            # An AIGateway op arrives here answered by the worker (see
            # aigateway.py): a success is memoised like a step.run result.
            if kind == wire.Opcode.STEP_RUN or aigateway.answered(op):
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
            elif (kind == wire.Opcode.STEP_ERROR or aigateway.retriable(op)) and not (
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
                self._retry(
                    run, item, error, aigateway.retry_at_ms(op), op.display_name
                )
                retrying = True
            elif kind in (
                wire.Opcode.STEP_ERROR,
                wire.Opcode.STEP_FAILED,
                wire.Opcode.AI_GATEWAY,
            ):
                self._step_failed(run, op, item, plan, op.error)
                settled.append(op.id)
            elif kind in _WAITING_OPS:
                if op.id in run.pending:
                    continue
                problem = self._begin_waiting(run, op)
                if problem is None:
                    run.pending[op.id] = {"group": group, "race": op.race}
                    newly_pending = True
                else:
                    self._step_failed(run, op, item, plan, problem)
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

    def _begin_waiting(self, run: Run, op: wire.Op) -> dict[str, Any] | None:
        """Start a wait or an invoke; an error object if the op cannot start."""
        if op.op == wire.Opcode.WAIT_FOR_EVENT:
            problem = self._waits.begin(run, op)
            status = "Waiting"
        else:
            problem = self._invokes.begin(run, op)
            status = "Invoking"
        if problem is None:
            self._update_step(
                run,
                op.id,
                name=op.display_name,
                op=op.op,
                status=status,
                started_at=now_ms(),
            )
        return problem

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
                run,
                op.id,
                name=op.display_name,
                op=op.op,
                status="Sleeping",
                started_at=now_ms(),
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
        runlog.attempt_failed(
            run_id=run.run_id,
            fn_id=run.fn_id,
            step=op.display_name,
            attempt=item.attempt + 1,
            max_attempts=run.max_attempts,
            error=error if isinstance(error, dict) else {"message": str(error)},
            outcome="step failed for good; the error goes to the function",
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
        self.pauses.forget_run(run.run_id)
        self._store.save_run(run)
        self._invokes.on_run_end(run)
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
        """Store and act on the events an ended run emits (lifecycle.py)."""
        for item in lifecycle_events(run):
            self._store.add_event(item.internal_id, item.event, item.received_at)
            self._on_event(item)
