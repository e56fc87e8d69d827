"""A dashboard for the embedded executor, served at its root in dev mode.

Pages for runs (``/``, ``/runs/{id}``), events (``/events``) and apps
(``/apps``), rendered with Jinja2 and kept live by a small script that
polls the JSON endpoints under ``/dashboard/api``. Assets are served from
``/dashboard/static``: nothing is fetched from the network.
"""

from __future__ import annotations

from starlette.routing import BaseRoute

from devserver.dashboard import api, fallback, pages


def routes() -> list[BaseRoute]:
    # The fallback last: it takes what no route before it takes.
    return [*pages.routes, *api.routes, fallback.NotFound()]
