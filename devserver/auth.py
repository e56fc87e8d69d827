"""Cloud mode: who may use the executor's own HTTP API.

With a signing key configured, as on the official server (protocol 5.5,
5.6 and 7.1):

* ``POST /fn/register`` and every ``/v0/*`` and ``/v1/*`` route need
  ``Authorization: Bearer <hash or stripped key>`` of the signing key or its
  fallback;
* ``POST /e/{key}`` needs one of the configured event keys.

Without a signing key (dev mode) everything passes, as before. ``/health``
and ``/dev`` stay open in both modes so that readiness probes work.
"""

from __future__ import annotations

import hmac
from collections.abc import Sequence

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from devserver.logtext import get_logger
from devserver.signing import SigningKeys, event_key_fingerprint

logger = get_logger("digest.devserver.auth")

_BEARER_ROUTES = ("/v0/", "/v1/")
_REGISTER = "/fn/register"
_EVENTS = "/e/"
# Refusals are logged once per distinct reason so that an app retrying its
# sync every few seconds with the wrong key does not flood the log.
_MAX_REMEMBERED = 256


class RequestAuth:
    """ASGI middleware refusing unauthenticated requests with 401."""

    def __init__(
        self, app: ASGIApp, keys: SigningKeys | None, event_keys: Sequence[str] = ()
    ) -> None:
        self._app = app
        self._keys = keys
        self._event_keys = tuple(event_keys)
        self._logged: set[str] = set()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or self._keys is None:
            await self._app(scope, receive, send)
            return
        path: str = scope["path"]
        refusal: JSONResponse | None = None
        if path.startswith(_EVENTS):
            refusal = self._check_event_key(path[len(_EVENTS) :])
        elif path == _REGISTER or path.startswith(_BEARER_ROUTES):
            refusal = self._check_bearer(scope, path, self._keys)
        if refusal is None:
            await self._app(scope, receive, send)
        else:
            await refusal(scope, receive, send)

    def _check_event_key(self, key: str) -> JSONResponse | None:
        # Compare with every key (no early exit) so timing leaks nothing.
        known = [
            hmac.compare_digest(key.encode(), k.encode()) for k in self._event_keys
        ]
        if any(known):
            return None
        self._log_once(f"refused events sent with unknown event key {_safe_name(key)}")
        return JSONResponse(
            {"status": 401, "message": "", "error": "Event key not found"}, 401
        )

    def _check_bearer(
        self, scope: Scope, path: str, keys: SigningKeys
    ) -> JSONResponse | None:
        authorization = Headers(scope=scope).get("authorization")
        if keys.accepts_bearer(authorization):
            return None
        # The route family, not the full path: one log line per family.
        route = path if path == _REGISTER else "/" + path.split("/", 2)[1] + "/*"
        reason = "no bearer" if not authorization else "a bearer of another key"
        self._log_once(
            f"refused {scope['method']} {route} with {reason}; "
            f"expected signing key {keys.describe()}"
        )
        # JSON rather than the official plain text: the SDK relays a JSON
        # register answer to whoever sent the sync PUT, so the reason shows
        # up there instead of an opaque "registration_failed".
        return JSONResponse(
            {
                "error": "Authentication failed: the bearer matches neither "
                "the executor's signing key nor its fallback",
                "status": 401,
            },
            401,
        )

    def _log_once(self, message: str) -> None:
        if message in self._logged:
            return
        if len(self._logged) >= _MAX_REMEMBERED:
            self._logged.clear()
        self._logged.add(message)
        logger.warning("%s", message)


def _safe_name(event_key: str) -> str:
    # An unknown key may be a real key of another environment: log only
    # its fingerprint.
    return event_key_fingerprint(event_key) if event_key else "(empty)"
