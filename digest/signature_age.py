"""Refusing replayed calls to the serve endpoint in cloud mode.

The Python SDK checks that a call's `X-Inngest-Signature` was made with the
signing key (or its fallback), but not when: a call captured once would be
accepted again for ever. The signature carries its time (`t=`), covered by
the HMAC, so this middleware refuses calls whose signature is older (or
newer) than `MAX_AGE_S`, before the SDK runs anything. Inngest signs each
call when it sends it, so a genuine call is never that old.

In the dev profile nothing is signed and everything passes.
"""

from __future__ import annotations

import logging
import time
import urllib.parse

from starlette.datastructures import Headers
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Receive, Scope, Send

from digest.settings import Settings

log = logging.getLogger("digest.signatures")

SERVE_PATH = "/api/inngest"
MAX_AGE_S = 300


class RefuseStaleSignatures:
    """ASGI middleware: 401 for a signed call to `/api/inngest` whose `t=` is
    more than MAX_AGE_S away from now."""

    def __init__(self, app: ASGIApp, settings: Settings) -> None:
        self._app = app
        self._enabled = not settings.is_dev

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self._enabled and scope["type"] == "http" and scope["path"] == SERVE_PATH:
            age = _signature_age(Headers(scope=scope).get("x-inngest-signature"))
            if age is not None and abs(age) > MAX_AGE_S:
                when = f"{abs(age):.0f} s {'ago' if age > 0 else 'in the future'}"
                log.warning("refused a call to %s signed %s", SERVE_PATH, when)
                refusal = JSONResponse(
                    {
                        "error": {
                            "code": "stale_signature",
                            "message": f"the request was signed {when} (limit "
                            f"{MAX_AGE_S} s either way); sign each call when "
                            "it is sent, with a clock in sync",
                        }
                    },
                    status_code=401,
                )
                await refusal(scope, receive, send)
                return
        await self._app(scope, receive, send)


def _signature_age(header: str | None) -> float | None:
    """Seconds since the signature's `t=`, or None if it has none.

    A header without a readable `t=` is left to the SDK, which refuses it
    when its HMAC does not match.
    """
    if not header:
        return None
    stamps = urllib.parse.parse_qs(header).get("t")
    if not stamps or not stamps[0].isdigit():
        return None
    return time.time() - int(stamps[0])
