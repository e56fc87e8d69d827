"""What the dashboard's buttons do: send an event, cancel, rerun, re-sync.

Each action goes through the same executor methods as the REST API, so a
run cancelled or an event sent here behaves as one from an SDK would.
"""

from __future__ import annotations

from devserver import events as ev
from devserver import jsonio
from devserver.clock import now_ms
from devserver.logtext import first_control, get_logger
from devserver.runtime import Runtime
from devserver.store import Run

logger = get_logger("digest.devserver.dashboard")


class ActionError(Exception):
    """An action refused; ``status`` and ``code`` go into the JSON error."""

    def __init__(self, status: int, code: str, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message


def _existing_run(runtime: Runtime, run_id: str) -> Run:
    found = runtime.store.get_run(run_id) if ev.is_ulid(run_id) else None
    if found is None:
        raise ActionError(404, "run_not_found", f"run {run_id} not found")
    return found


def json_kind(value: object) -> str:
    """What a JSON value is, for a message: "an array", "a number"..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, dict):
        return "an object"
    return "an array"


def data_not_an_object(value: object) -> ActionError:
    """The refusal of event data that is JSON, but not an object."""
    return ActionError(
        400,
        "invalid_event",
        'the data must be a JSON object such as {"key": "value"}, '
        f"not {json_kind(value)}",
    )


def send_event(runtime: Runtime, name: str, data: str) -> str:
    """Store an event from the form (``data`` is JSON text); its internal id."""
    try:
        parsed = jsonio.loads(data) if data.strip() else {}
    except ValueError as exc:
        raise ActionError(
            400, "invalid_json", f"the data is not valid JSON: {exc}"
        ) from None
    if parsed is not None and not isinstance(parsed, dict):
        raise data_not_an_object(parsed)
    control = first_control(name)
    if control is not None:
        # The event API takes what Inngest takes; a name typed in the form
        # has no use for a line break or an escape sequence.
        raise ActionError(
            400,
            "invalid_event",
            f"the name holds a control character ({control}); send a name of "
            'printable characters only, such as "app/user.created"',
        )
    internal_id = ev.internal_ids(1, None)[0]
    try:
        accepted = ev.normalise({"name": name, "data": parsed}, internal_id, now_ms())
    except ev.EventError as exc:
        raise ActionError(400, "invalid_event", str(exc)) from None
    runtime.executor.ingest([accepted])
    logger.info("event %s (%s) sent from the dashboard", internal_id, name)
    return internal_id


def cancel(runtime: Runtime, run_id: str) -> None:
    found = _existing_run(runtime, run_id)
    if found.ended:
        raise ActionError(
            409,
            "run_ended",
            f"run {run_id} already ended as {found.status}; nothing to cancel",
        )
    runtime.executor.cancel(run_id)
    logger.info("run %s of %s cancelled from the dashboard", run_id, found.fn_id)


def rerun(runtime: Runtime, run_id: str) -> str:
    """Start the run's function again with the same event; the new run's id."""
    found = _existing_run(runtime, run_id)
    active = {f["id"]: f for f in runtime.store.active_functions()}
    function = active.get(found.fn_id)
    if function is None:
        raise ActionError(
            409,
            "function_not_registered",
            f"function {found.fn_id} is not registered any more; sync its app first",
        )
    new_id = runtime.executor.rerun(found, function)
    if new_id is None:
        raise ActionError(409, "rerun_refused", f"run {run_id} could not be rerun")
    logger.info("run %s reruns %s from the dashboard", new_id, run_id)
    return new_id


async def resync(runtime: Runtime, app_name: str) -> str:
    """Ask the app at its registered URL to sync again; that URL."""
    url = runtime.store.app_url(app_name)
    if url is None:
        raise ActionError(404, "app_not_found", f"app {app_name} not found")
    # Tried twice: the syncer's pooled connection to the app may have just
    # been closed by the app's keep-alive timeout, which fails one request.
    if not await runtime.syncer.sync(url) and not await runtime.syncer.sync(url):
        raise ActionError(
            502,
            "sync_failed",
            f"the app at {url} did not sync: it is not reachable or refused "
            "(the executor's log says why)",
        )
    return url
