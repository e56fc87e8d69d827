"""HTTP routes: the event API, registration and the REST API (``/v1``).

Shapes follow the official dev server (protocol doc sections 3 and 7.2).
"""

from __future__ import annotations

from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from devserver import events as ev
from devserver import jsonio
from devserver.apps import RegistrationError, register, stable_uuid
from devserver.caller import USER_AGENT
from devserver.clock import iso_ms, now_ms
from devserver.runtime import Runtime
from devserver.store import Run, StepRecord, StoredEvent

_ENVIRONMENT_ID = stable_uuid("environment:dev")
_MAX_EVENT_PAGE = 1000


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({**extra, "error": message, "status": status}, status)


def _envelope(data: Any) -> JSONResponse:
    return JSONResponse({"data": data, "metadata": {"fetched_at": iso_ms(now_ms())}})


async def _json_body(request: Request) -> Any:
    """The request's JSON; JSONInputError (a ValueError) if it is refused."""
    return jsonio.loads(await request.body())


async def send_events(request: Request) -> Response:
    """``POST /e/{key}``: store events and start the runs they trigger."""
    try:
        body = await _json_body(request)
    except ValueError as exc:
        return _error(400, f"invalid JSON: {exc}", ids=[])
    raw_events = body if isinstance(body, list) else [body]
    ids = ev.internal_ids(
        len(raw_events), request.headers.get("x-inngest-event-id-seed")
    )
    received = now_ms()
    accepted = []
    # Every event is checked before any is stored: one bad event stores none.
    for index, (raw, internal_id) in enumerate(zip(raw_events, ids, strict=True)):
        try:
            accepted.append(ev.normalise(raw, internal_id, received))
        except ev.EventError as exc:
            return _error(400, f"event {index}: {exc}", ids=[])
    _runtime(request).executor.ingest(accepted)
    return JSONResponse({"ids": ids, "status": 200})


async def register_app(request: Request) -> Response:
    """``POST /fn/register``: an SDK reports its app and functions."""
    expected = request.headers.get("x-inngest-expected-server-kind")
    kind = _runtime(request).config.server_kind
    if expected and expected != kind:
        return JSONResponse(
            {"error": f"Expected server kind {expected}, got {kind}"}, 400
        )
    try:
        payload = await _json_body(request)
    except ValueError as exc:
        return JSONResponse({"error": f"Invalid request: {exc}"}, 400)
    try:
        result = register(_runtime(request).store, payload)
    except RegistrationError as exc:
        return _error(400, str(exc))
    return JSONResponse(
        {
            "ok": True,
            "modified": result.modified,
            "app_id": result.app_id,
            "sync_id": result.sync_id,
        }
    )


async def health(request: Request) -> Response:
    return JSONResponse({"status": 200, "message": "OK"})


async def dev_info(request: Request) -> Response:
    """``GET /dev``: what this server runs (a small subset of the official one)."""
    functions = _runtime(request).store.active_functions()
    return JSONResponse(
        {
            "version": USER_AGENT,
            "functions": [
                {
                    "slug": f["id"],
                    "name": f.get("name", f["id"]),
                    "triggers": f.get("triggers", []),
                    "url": f["steps"]["step"]["runtime"]["url"],
                }
                for f in functions
            ],
        }
    )


async def list_events(request: Request) -> Response:
    """``GET /v1/events?limit=&cursor=&name=``, newest first."""
    try:
        limit = int(request.query_params.get("limit", "100"))
    except ValueError:
        return _error(400, "limit must be an integer")
    limit = min(max(limit, 1), _MAX_EVENT_PAGE)
    cursor = request.query_params.get("cursor")
    if cursor and not ev.is_ulid(cursor):
        return _error(400, "cursor must be an event id")
    found = _runtime(request).store.list_events(
        limit, cursor, request.query_params.get("name")
    )
    return _envelope([_event_json(e) for e in found])


async def get_event(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    if not ev.is_ulid(event_id):
        return _error(400, f"invalid event id {event_id!r}")
    found = _runtime(request).store.get_event(event_id)
    if found is None:
        return _error(404, f"event {event_id} not found")
    return _envelope(_event_json(found))


async def event_runs(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    if not ev.is_ulid(event_id):
        return _error(400, f"invalid event id {event_id!r}")
    runs = _runtime(request).store.runs_for_event(event_id)
    return _envelope([_run_json(r) for r in runs])


async def get_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if not ev.is_ulid(run_id):
        return _error(400, f"invalid run id {run_id!r}")
    run = _runtime(request).store.get_run(run_id)
    if run is None:
        return _error(404, f"run {run_id} not found")
    return _envelope(_run_json(run))


async def cancel_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    if not ev.is_ulid(run_id):
        return _error(400, f"invalid run id {run_id!r}")
    if not _runtime(request).executor.cancel(run_id):
        return _error(404, f"run {run_id} not found")
    return Response(status_code=200)


async def run_steps(request: Request) -> Response:
    """``GET /v1/runs/{run_id}/steps``: Digest's own extension.

    The official dev server has no such route. It lists the run's steps in
    the order they first appeared, each with its hashed id, name, last
    opcode, status, attempts, start and end times, and output or error.
    """
    run_id = request.path_params["run_id"]
    if not ev.is_ulid(run_id):
        return _error(400, f"invalid run id {run_id!r}")
    store = _runtime(request).store
    if store.get_run(run_id) is None:
        return _error(404, f"run {run_id} not found")
    return _envelope([_step_json(s) for s in store.list_steps(run_id)])


async def list_apps(request: Request) -> Response:
    """``GET /v1/apps``: synced apps, their URL, SDK, last sync and functions.

    Also whether the app answered its last call (``reachable``, ``error``).
    """
    return _envelope(_runtime(request).executor.app_health.list_apps())


def _optional_iso(ms: int | None) -> str | None:
    return None if ms is None else iso_ms(ms)


def _event_json(stored: StoredEvent) -> dict[str, Any]:
    event = stored.event
    out = {
        "internal_id": stored.internal_id,
        "account_id": stable_uuid("account:dev"),
        "environment_id": _ENVIRONMENT_ID,
        "source": "devserver",
        "source_id": None,
        "received_at": iso_ms(stored.received_at),
        "id": event.get("id"),
        "name": event["name"],
        "data": event.get("data", {}),
        "ts": event.get("ts"),
    }
    for extra in ("user", "v"):
        if extra in event:
            out[extra] = event[extra]
    return out


def _run_json(run: Run) -> dict[str, Any]:
    out: dict[str, Any] = {
        "run_id": run.run_id,
        "run_started_at": iso_ms(run.started_at or run.created_at),
        "function_id": stable_uuid(f"function:{run.fn_id}"),
        # Not in the official shape: the slug the SDK registered.
        "function_slug": run.fn_id,
        "function_version": 1,
        "environment_id": _ENVIRONMENT_ID,
        "event_id": run.event_id,
        "status": run.status,
    }
    if run.ended_at is not None:
        out["ended_at"] = iso_ms(run.ended_at)
    if run.ended:
        out["output"] = run.output
    if run.last_error is not None:
        # Not in the official shape: the last failed attempt's reason.
        out["last_error"] = run.last_error
    return out


def _step_json(step: StepRecord) -> dict[str, Any]:
    return {
        "id": step.step_id,
        "name": step.name,
        "displayName": step.name,
        "op": step.op,
        "status": step.status,
        "attempts": step.attempts,
        "started_at": _optional_iso(step.started_at),
        "ended_at": _optional_iso(step.ended_at),
        "output": step.output,
        "error": step.error,
    }


routes = [
    Route("/e/{event_key}", send_events, methods=["POST"]),
    Route("/fn/register", register_app, methods=["POST"]),
    Route("/health", health, methods=["GET"]),
    Route("/dev", dev_info, methods=["GET"]),
    Route("/v1/events", list_events, methods=["GET"]),
    Route("/v1/events/{event_id}", get_event, methods=["GET"]),
    Route("/v1/events/{event_id}/runs", event_runs, methods=["GET"]),
    Route("/v1/runs/{run_id}", get_run, methods=["GET"]),
    Route("/v1/runs/{run_id}", cancel_run, methods=["DELETE"]),
    Route("/v1/runs/{run_id}/steps", run_steps, methods=["GET"]),
    Route("/v1/apps", list_apps, methods=["GET"]),
]
