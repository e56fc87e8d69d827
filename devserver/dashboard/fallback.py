"""The dashboard's answer for a path nothing serves: a 404 that says so.

Starlette's own is a plain-text "Not Found". Here a page is answered with
a page in the dashboard's style, naming the path and linking back, and a
JSON endpoint with a JSON error, as its other errors are.
"""

from __future__ import annotations

from starlette.datastructures import URLPath
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import BaseRoute, Match, NoMatchFound
from starlette.types import Receive, Scope, Send

from devserver.dashboard import api, pages

# The executor's own JSON API (devserver.api), answered in its error shape.
_REST_PREFIXES = ("/v1/", "/e/", "/fn/")
_DASHBOARD_API = "/dashboard/api"
# Where a path under a section of the dashboard links back to.
_SECTIONS = (
    ("/runs", "/", "runs"),
    ("/events", "/events", "events"),
    ("/apps", "/apps", "apps"),
)
_SHOWN = 200


def _under(path: str, prefix: str) -> bool:
    return path == prefix.rstrip("/") or path.startswith(prefix.rstrip("/") + "/")


def shown_path(path: str) -> str:
    """The path for a message: escapes for what is not printable, and cut."""
    text = "".join(c if c.isprintable() else repr(c)[1:-1] for c in path)
    return text if len(text) <= _SHOWN else text[:_SHOWN] + "…"


async def not_found(request: Request) -> Response:
    path = request.scope["path"]
    shown = shown_path(path)
    if _under(path, _DASHBOARD_API):
        return api.error(
            404,
            "not_found",
            f"no endpoint at {shown} ({request.method}); the dashboard's are "
            f"{_DASHBOARD_API}/runs, {_DASHBOARD_API}/events and "
            f"{_DASHBOARD_API}/apps",
        )
    if any(_under(path, prefix) for prefix in _REST_PREFIXES):
        # The shape of devserver.api's errors.
        return JSONResponse({"error": f"no endpoint at {shown}", "status": 404}, 404)
    back, where = "/", "runs"
    for section, page, name in _SECTIONS:
        if _under(path, section):
            back, where = page, name
    return await pages.notice_page(
        request,
        f"There is no page at {shown}. Runs, events and apps are listed "
        "at /, /events and /apps; each links to its own page.",
        back,
        404,
        title="Page not found",
        back_text=f"Back to {where}",
    )


class NotFound(BaseRoute):
    """Takes the requests no other route of the app takes, even in part.

    Put last. A request another route matches in part (a wrong method) is
    left to the router's 405, and one that only lacks or has an extra
    trailing slash to its redirect: only the router's final 404 changes.
    """

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        if scope["type"] != "http":
            return Match.NONE, {}
        router = scope.get("router")
        others = [r for r in getattr(router, "routes", []) if r is not self]
        if any(route.matches(scope)[0] is not Match.NONE for route in others):
            return Match.NONE, {}
        path = scope["path"]
        if getattr(router, "redirect_slashes", False) and path != "/":
            toggled = {
                **scope,
                "path": path.rstrip("/") if path.endswith("/") else path + "/",
            }
            if any(route.matches(toggled)[0] is not Match.NONE for route in others):
                return Match.NONE, {}
        return Match.FULL, {}

    def url_path_for(self, name: str, /, **path_params: object) -> URLPath:
        raise NoMatchFound(name, path_params)

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = await not_found(Request(scope, receive))
        await response(scope, receive, send)
