"""Choosing a provider by name, configured from Digest's settings."""

from __future__ import annotations

from digest.settings import Settings
from tunnel.base import Tunnel, TunnelError
from tunnel.lan import LanTunnel
from tunnel.ngrok_agent import NgrokTunnel
from tunnel.none import NoTunnel

PROVIDERS = ("none", "ngrok", "lan")


def make_tunnel(provider: str, settings: Settings) -> Tunnel:
    if provider == "none":
        return NoTunnel()
    if provider == "lan":
        return LanTunnel(settings.tunnel_lan_address)
    if provider == "ngrok":
        token = settings.ngrok_authtoken
        return NgrokTunnel(
            token.get_secret_value() if token else None, settings.ngrok_domain
        )
    raise TunnelError(
        f"unknown tunnel provider {provider!r}; set TUNNEL_PROVIDER to one of "
        + ", ".join(PROVIDERS)
    )
