"""The `ngrok` provider, on the official `ngrok` package (the agent SDK).

The agent runs inside this process: no binary is downloaded. The authtoken
comes from NGROK_AUTHTOKEN; NGROK_DOMAIN, a domain reserved in the ngrok
dashboard, keeps the URL the same across restarts (without it, ngrok
assigns a new one every session, and `digest tunnel up` then re-syncs).

Traffic flows for as long as this process runs, in the agent's own threads.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any, Protocol
from urllib.parse import urlsplit

from tunnel.base import TunnelError

log = logging.getLogger("digest.tunnel.ngrok")


class Listener(Protocol):
    def url(self) -> str: ...


Forward = Callable[..., Listener]


class NgrokTunnel:
    """An https URL on ngrok's edge, forwarded to a local port.

    `forward` is `ngrok.forward` unless a test passes its own, and
    `server_addr` points the agent at another server than ngrok's; both
    exist so the provider can be tested where ngrok's service is out of
    reach.
    """

    name = "ngrok"

    def __init__(
        self,
        authtoken: str | None,
        domain: str | None = None,
        *,
        server_addr: str | None = None,
        forward: Forward | None = None,
    ) -> None:
        self._authtoken = authtoken
        self._domain = (domain or "").strip() or None
        self._server_addr = server_addr
        self._forward = forward
        self._url: str | None = None

    def open(self, local_port: int) -> str:
        if self._url is not None:
            return self._url
        if not self._authtoken:
            raise TunnelError(
                "NGROK_AUTHTOKEN is not set; copy your authtoken from the "
                "ngrok dashboard (Your Authtoken) into .env.dev.local"
            )
        if self._domain and ("/" in self._domain or ":" in self._domain):
            raise TunnelError(
                f"NGROK_DOMAIN is {self._domain!r}; set the bare domain "
                "reserved in the ngrok dashboard (name.ngrok-free.app)"
            )
        options: dict[str, Any] = {"authtoken": self._authtoken}
        if self._domain:
            options["domain"] = self._domain
        if self._server_addr:
            options["server_addr"] = self._server_addr
        try:
            listener = self._forward_function()(f"127.0.0.1:{local_port}", **options)
        except Exception as exc:
            # The agent raises ValueError("failed to connect session", why).
            reason = ": ".join(str(part) for part in exc.args) or type(exc).__name__
            raise TunnelError(
                f"ngrok could not open the tunnel ({reason}); check "
                "NGROK_AUTHTOKEN, NGROK_DOMAIN and that this machine reaches "
                "ngrok's service"
            ) from None
        self._url = public_url(listener.url(), self._domain)
        log.info("ngrok tunnel up: %s -> 127.0.0.1:%d", self._url, local_port)
        return self._url

    def close(self) -> None:
        if self._url is None:
            return
        url, self._url = self._url, None
        if self._forward is None:
            import ngrok

            ngrok.disconnect(url)

    def _forward_function(self) -> Forward:
        if self._forward is not None:
            return self._forward
        # Imported here: the agent is a compiled extension that the other
        # providers, and every other command, have no need to load.
        import ngrok

        forward: Forward = ngrok.forward
        return forward


def public_url(url: str, domain: str | None) -> str:
    """The listener's URL, checked: https, no path, on the reserved domain."""
    parts = urlsplit(url.strip())
    if parts.scheme != "https" or not parts.hostname:
        raise TunnelError(f"ngrok gave {url!r}, not an https URL")
    if domain and parts.hostname != domain.lower():
        raise TunnelError(
            f"ngrok gave {parts.hostname}, not the reserved NGROK_DOMAIN {domain}"
        )
    return f"https://{parts.netloc}"
