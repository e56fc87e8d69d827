"""The `none` provider: no tunnel, the local URL is the URL."""

from __future__ import annotations

LOOPBACK = "127.0.0.1"


class NoTunnel:
    """For a stack whose parts all run on this machine."""

    name = "none"

    def open(self, local_port: int) -> str:
        return f"http://{LOOPBACK}:{local_port}"

    def close(self) -> None:
        return None
