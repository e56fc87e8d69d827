"""The dashboard's HTML pages, rendered with Jinja2 (autoescaped).

Every page is complete as the server sends it; ``dashboard.js`` then polls
the matching JSON endpoint and updates the same elements in place.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from devserver.dashboard import data, views
from devserver.dashboard.params import (
    STATUSES,
    WITHIN_CHOICES,
    ParamError,
    event_filter,
    run_filter,
)
from devserver.runtime import Runtime

_HERE = Path(__file__).parent
# Autoescape everything, whatever the file name: payloads are untrusted.
templates = Jinja2Templates(
    env=jinja2.Environment(
        loader=jinja2.FileSystemLoader(_HERE / "templates"),
        autoescape=True,
        trim_blocks=True,
        lstrip_blocks=True,
    )
)


templates.env.filters["when"] = views.when_text
# Scripts only from this server, so markup that slipped into a page could
# not run; style attributes carry the timeline's bar positions.
_POLICY = (
    "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    "img-src 'self' data:; object-src 'none'; base-uri 'none'; "
    "form-action 'self'; frame-ancestors 'none'"
)


def _runtime(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


def _page(
    request: Request, name: str, context: dict[str, Any], status: int = 200
) -> Response:
    response = templates.TemplateResponse(request, name, context, status_code=status)
    response.headers["content-security-policy"] = _POLICY
    response.headers["x-content-type-options"] = "nosniff"
    return response


async def notice_page(
    request: Request,
    message: str,
    back: str,
    status: int,
    *,
    title: str,
    back_text: str = "Back",
) -> Response:
    """A page that says why something could not be done, with a way back.

    ``title`` says what happened ("Run not found", "Cancel refused"): it is
    the page's heading and its tab's title.
    """
    context = {
        "title": title,
        "message": message,
        "back": back,
        "back_text": back_text,
    }
    return _page(request, "notice.html", context, status)


async def runs_page(request: Request) -> Response:
    runtime = _runtime(request)
    try:
        chosen = run_filter(request.query_params)
    except ParamError as exc:
        return await notice_page(request, str(exc), "/", 400, title="Filter refused")
    context = {
        "nav": "runs",
        "chosen": chosen,
        "functions": data.function_ids(runtime),
        "statuses": STATUSES,
        "within_choices": WITHIN_CHOICES,
        "source": "/dashboard/api/runs?" + str(request.query_params),
        **data.runs(runtime, chosen),
    }
    return _page(request, "runs.html", context)


async def run_page(request: Request) -> Response:
    run_id = request.path_params["run_id"]
    found = data.run(_runtime(request), run_id)
    if found is None:
        return await notice_page(
            request,
            f"run {run_id} not found",
            "/",
            404,
            title="Run not found",
            back_text="Back to runs",
        )
    context = {
        "nav": "runs",
        "source": f"/dashboard/api/runs/{run_id}",
        "interval": 1000,
        **found,
    }
    return _page(request, "run.html", context)


async def events_page(
    request: Request,
    *,
    problem: str = "",
    draft: dict[str, Any] | None = None,
    status: int = 200,
) -> Response:
    """The event list and the send form (again with ``problem`` if refused)."""
    runtime = _runtime(request)
    try:
        chosen = event_filter(request.query_params)
    except ParamError as exc:
        return await notice_page(
            request, str(exc), "/events", 400, title="Filter refused"
        )
    context = {
        "nav": "events",
        "chosen": chosen,
        "problem": problem,
        "draft": draft or {},
        "source": "/dashboard/api/events?" + str(request.query_params),
        **data.events(runtime, chosen),
    }
    return _page(request, "events.html", context, status)


async def events_get(request: Request) -> Response:
    return await events_page(request)


async def event_page(request: Request) -> Response:
    event_id = request.path_params["event_id"]
    found = data.event(_runtime(request), event_id)
    if found is None:
        return await notice_page(
            request,
            f"event {event_id} not found",
            "/events",
            404,
            title="Event not found",
            back_text="Back to events",
        )
    context = {"nav": "events", "source": f"/dashboard/api/events/{event_id}", **found}
    return _page(request, "event.html", context)


async def apps_page(request: Request) -> Response:
    context = {"nav": "apps", **data.apps(_runtime(request))}
    return _page(request, "apps.html", context)


routes = [
    Route("/", runs_page, methods=["GET"]),
    Route("/runs/{run_id}", run_page, methods=["GET"]),
    Route("/events", events_get, methods=["GET"]),
    Route("/events/{event_id}", event_page, methods=["GET"]),
    Route("/apps", apps_page, methods=["GET"]),
    Mount(
        "/dashboard/static",
        StaticFiles(directory=_HERE / "static"),
        name="dashboard-static",
    ),
]
