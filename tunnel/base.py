"""What every tunnel provider offers."""

from __future__ import annotations

from typing import Protocol


class TunnelError(RuntimeError):
    """A tunnel that could not open; the message says what to change."""


class Tunnel(Protocol):
    """Exposes a port on 127.0.0.1 at a URL another machine can call.

    `open` returns that URL (no trailing slash) once traffic to it reaches
    the port, and keeps it working until `close`; both are idempotent.
    """

    name: str

    def open(self, local_port: int) -> str: ...

    def close(self) -> None: ...
