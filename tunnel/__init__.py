"""Tunnels: a local port at a URL the other side of the stack can reach.

Three providers behind one small interface (`tunnel.base.Tunnel`):
`ngrok` (the official agent SDK, a public https URL), `lan` (this
machine's address on the local network) and `none` (the local URL as is).
`open_tunnel` picks one by name. This package imports only configuration.
"""

from tunnel.base import Tunnel, TunnelError
from tunnel.envfile import LAST_PREFIX, read_url, remove_url, write_url
from tunnel.factory import PROVIDERS, make_tunnel

__all__ = [
    "LAST_PREFIX",
    "PROVIDERS",
    "Tunnel",
    "TunnelError",
    "make_tunnel",
    "read_url",
    "remove_url",
    "write_url",
]
