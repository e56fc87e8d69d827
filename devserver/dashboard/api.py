"""The dashboard's JSON endpoints, under ``/dashboard/api``.

Reads return the dicts of ``data``; the page's script polls them. Actions
take JSON (``fetch``) or a plain HTML form: a form is answered with a
redirect to the page that shows the outcome, so every button also works
without the script. Errors are ``{"error": {"code", "message"}}``.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from urllib.parse import urlsplit

from starlette.datastructures import FormData, QueryParams
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from devserver import jsonio
from devserver.dashboard import actions, data, pages
from devserver.dashboard.actions import ActionError
from devserver.dashboard.params import (
    ParamError,
    event_filter,
    given_twice,
    run_filter,
)
from devserver.runtime import Runtime

Handler = Callable[[Request], Awaitable[Response]]
EXAMPLE_NAME = '"app/user.created"'
EXAMPLE_BODY = '{"name": "app/user.created", "data": {"key": "value"}}'
# The send form's fields: one value each.
FORM_FIELDS = ("name", "data")
Filter = TypeVar("Filter")


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def error(status: int, code: str, message: str) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message}}, status)


def same_origin_only(handler: Handler) -> Handler:
    """Refuse a POST that a page of another site made the browser send.

    Browsers send ``Origin`` with every POST; a form on another site (or a
    ``text/plain`` fetch, which needs no preflight) must not be able to
    send events or cancel runs here. Clients that send no ``Origin``
    (curl, SDKs, tests) are not browsers and pass.
    """

    async def checked(request: Request) -> Response:
        origin = request.headers.get("origin")
        if origin is not None and urlsplit(origin).netloc != request.headers.get(
            "host"
        ):
            return error(
                403, "cross_site", "the dashboard accepts actions from its own pages"
            )
        return await handler(request)

    return checked


def _is_form(request: Request) -> bool:
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind in ("application/x-www-form-urlencoded", "multipart/form-data")


def _single_fields(form: FormData) -> dict[str, Any]:
    """The form's text fields; a field of the send form given twice is
    refused, as a repeated list filter is, rather than read as its last."""
    for name in FORM_FIELDS:
        values = form.getlist(name)
        if len(values) > 1:
            raise ActionError(
                400,
                "invalid_field",
                given_twice(name, values, f"as an event has one {name}"),
            )
    return {k: v for k, v in form.items() if isinstance(v, str)}


def _not_json(request: Request, exc: ValueError) -> ActionError:
    """The refusal of a body that is not JSON, saying what to send instead."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    detail = str(exc).removeprefix("not JSON ")
    if kind == "application/json" or kind.endswith("+json"):
        told = f"the body is not valid JSON {detail}"
    else:
        sent = f"sent as {kind[:60]!r}" if kind else "sent with no content-type"
        told = f"the body, {sent}, is not JSON {detail}"
    return ActionError(
        400,
        "invalid_json",
        f"{told}; send a JSON object as application/json, such as "
        f"{EXAMPLE_BODY}, or the form's fields name and data as "
        "application/x-www-form-urlencoded",
    )


async def _fields(request: Request) -> dict[str, Any]:
    """The posted fields, from a form or a JSON object; ActionError if neither."""
    if _is_form(request):
        return _single_fields(await request.form())
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        body = jsonio.loads(raw)
    except ValueError as exc:
        raise _not_json(request, exc) from None
    if not isinstance(body, dict):
        raise ActionError(400, "invalid_body", "body must be a JSON object")
    return body


def _done(request: Request, page: str, body: dict[str, Any], status: int) -> Response:
    if _is_form(request):
        return RedirectResponse(page, status_code=303)
    return JSONResponse(body, status)


def _listing(
    read: Callable[[Runtime, Filter], dict[str, Any]],
    parse: Callable[[QueryParams], Filter],
) -> Handler:
    """A list endpoint: its query read by ``parse``, then ``read``."""

    async def handler(request: Request) -> Response:
        try:
            chosen = parse(request.query_params)
        except ParamError as exc:
            return error(400, "invalid_parameter", str(exc))
        return JSONResponse(read(_runtime(request), chosen))

    return handler


def _by_id(read: Callable[[Runtime, str], dict[str, Any] | None], what: str) -> Handler:
    """An endpoint for one ``what`` (run, event) named by ``{what}_id``."""

    async def handler(request: Request) -> Response:
        wanted = request.path_params[f"{what}_id"]
        found = read(_runtime(request), wanted)
        if found is None:
            return error(404, f"{what}_not_found", f"{what} {wanted} not found")
        return JSONResponse(found)

    return handler


async def list_apps(request: Request) -> Response:
    return JSONResponse(data.apps(_runtime(request)))


async def send_event(request: Request) -> Response:
    """``POST /dashboard/api/events``: ``name`` and ``data`` (JSON object or text)."""
    fields: dict[str, Any] = {}
    try:
        fields = await _fields(request)
        name = fields.get("name")
        payload = fields.get("data")
        if name is None:
            raise ActionError(
                400,
                "invalid_event",
                f"name is required: send the event's name, such as {EXAMPLE_NAME}",
            )
        if not isinstance(name, str):
            raise ActionError(
                400,
                "invalid_event",
                f"name must be a string such as {EXAMPLE_NAME}, "
                f"not {actions.json_kind(name)}",
            )
        if payload is None or isinstance(payload, dict):
            payload = json.dumps(payload or {})
        elif not isinstance(payload, str):
            # JSON text in a string is read by actions.send_event.
            raise actions.data_not_an_object(payload)
        event_id = actions.send_event(_runtime(request), name, payload)
    except ActionError as exc:
        if _is_form(request):
            return await pages.events_page(
                request, problem=exc.message, draft=fields, status=exc.status
            )
        return error(exc.status, exc.code, exc.message)
    return _done(
        request,
        f"/events/{event_id}",
        {"id": event_id, "url": f"/events/{event_id}"},
        201,
    )


async def cancel_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        actions.cancel(_runtime(request), run_id)
    except ActionError as exc:
        return await _refused(request, exc, f"/runs/{run_id}", "Cancel refused")
    return _done(request, f"/runs/{run_id}", {"id": run_id, "cancelled": True}, 200)


async def rerun_run(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    try:
        new_id = actions.rerun(_runtime(request), run_id)
    except ActionError as exc:
        return await _refused(request, exc, f"/runs/{run_id}", "Rerun refused")
    page = f"/runs/{new_id}"
    return _done(request, page, {"id": new_id, "url": page, "rerun_of": run_id}, 201)


async def sync_app(request: Request) -> Response:
    name = request.path_params["app"]
    try:
        url = await actions.resync(_runtime(request), name)
    except ActionError as exc:
        return await _refused(request, exc, "/apps", "Sync failed")
    return _done(request, "/apps", {"app": name, "url": url, "synced": True}, 200)


async def _refused(
    request: Request, exc: ActionError, page: str, title: str
) -> Response:
    """A refused button press: the page again with the reason, or JSON.

    The page is titled ``title`` ("Cancel refused"), or "Run not found"
    when what the button names is not there.
    """
    if _is_form(request):
        what, _, rest = exc.code.partition("_")
        if rest == "not_found":
            title = f"{what.capitalize()} not found"
        return await pages.notice_page(
            request, exc.message, page, exc.status, title=title
        )
    return error(exc.status, exc.code, exc.message)


routes = [
    Route("/dashboard/api/runs", _listing(data.runs, run_filter), methods=["GET"]),
    Route("/dashboard/api/runs/{run_id}", _by_id(data.run, "run"), methods=["GET"]),
    Route(
        "/dashboard/api/runs/{run_id}/cancel",
        same_origin_only(cancel_run),
        methods=["POST"],
    ),
    Route(
        "/dashboard/api/runs/{run_id}/rerun",
        same_origin_only(rerun_run),
        methods=["POST"],
    ),
    Route(
        "/dashboard/api/events", _listing(data.events, event_filter), methods=["GET"]
    ),
    Route("/dashboard/api/events", same_origin_only(send_event), methods=["POST"]),
    Route(
        "/dashboard/api/events/{event_id}", _by_id(data.event, "event"), methods=["GET"]
    ),
    Route("/dashboard/api/apps", list_apps, methods=["GET"]),
    Route(
        "/dashboard/api/apps/{app}/sync", same_origin_only(sync_app), methods=["POST"]
    ),
]
