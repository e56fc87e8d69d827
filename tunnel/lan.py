"""The `lan` provider: this machine's address on the local network.

For a peer that reaches this machine directly (a phone, another laptop, an
executor in a VM). Opening the tunnel binds the advertised address on the
same port and relays each connection to the service on 127.0.0.1, so a
service that listens on loopback only (the default) needs no change; the
relay runs in a thread for as long as the tunnel is open. If the service
already listens on the advertised address (say it was started with
`--host 0.0.0.0`), the port is taken by it and no relay is needed.

TUNNEL_LAN_ADDRESS chooses the address; unset, it is the address of the
interface that routes to the outside (found without sending anything).
"""

from __future__ import annotations

import asyncio
import contextlib
import errno
import logging
import socket
import threading

from tunnel.base import TunnelError

log = logging.getLogger("digest.tunnel.lan")

LOOPBACK = "127.0.0.1"
# A documentation address (RFC 5737): "connecting" a UDP socket to it picks
# the outgoing interface without sending a packet.
_PROBE = ("192.0.2.1", 9)


def detect_lan_address() -> str:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(_PROBE)
        except OSError:
            raise TunnelError(
                "no network interface routes outside this machine; set "
                "TUNNEL_LAN_ADDRESS to the address peers reach it at"
            ) from None
        address: str = probe.getsockname()[0]
        return address


class LanTunnel:
    name = "lan"

    def __init__(self, address: str | None = None) -> None:
        self._address = (address or "").strip() or None
        self._relay: Relay | None = None
        self._url: str | None = None

    def open(self, local_port: int) -> str:
        if self._url is not None:
            return self._url
        address = self._address or detect_lan_address()
        if address != LOOPBACK:
            relay = Relay(address, local_port, LOOPBACK, local_port)
            try:
                relay.start()
            except OSError as exc:
                if exc.errno != errno.EADDRINUSE:
                    raise TunnelError(
                        f"cannot listen on {address}:{local_port} ({exc.strerror});"
                        " set TUNNEL_LAN_ADDRESS to an address of this machine"
                    ) from None
                # The service itself listens there already.
                log.info("%s:%d is served directly; no relay", address, local_port)
            else:
                self._relay = relay
        self._url = f"http://{address}:{local_port}"
        log.info("lan tunnel up: %s -> %s:%d", self._url, LOOPBACK, local_port)
        return self._url

    def close(self) -> None:
        if self._relay is not None:
            self._relay.stop()
            self._relay = None
        self._url = None


class Relay:
    """A TCP relay from (host, port) to (target_host, target_port), run by an
    event loop in a thread of its own."""

    def __init__(self, host: str, port: int, target_host: str, target_port: int):
        self.host, self.port = host, port
        self._target = (target_host, target_port)
        self._loop = asyncio.new_event_loop()
        self._server: asyncio.Server | None = None
        self._thread = threading.Thread(
            target=self._loop.run_forever, name=f"lan-relay-{port}", daemon=True
        )

    def start(self) -> None:
        """Bind now (raising OSError if the address is taken), then serve."""
        self._server = self._loop.run_until_complete(
            asyncio.start_server(self._relay, self.host, self.port)
        )
        self._thread.start()

    def stop(self) -> None:
        server = self._server
        if server is None:
            return
        self._server = None

        async def shut() -> None:
            server.close()
            # Open relays are cancelled, and given a moment to close their
            # sockets, so a long-lived stream cannot hold up the stop.
            tasks = asyncio.all_tasks() - {asyncio.current_task()}
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(tasks, timeout=5)

        asyncio.run_coroutine_threadsafe(shut(), self._loop).result(timeout=10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(timeout=10)
        self._loop.close()

    async def _relay(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        peer = writer.get_extra_info("peername")
        try:
            await self._carry(peer, reader, writer)
        except asyncio.CancelledError:
            # The relay is stopping. asyncio's server asks this task for its
            # exception when it ends, and a cancelled task answers by raising
            # (logged as "Exception in callback ... CancelledError"), so the
            # connection ends here as a normal return instead.
            log.debug("closed a relayed connection from %s: the relay stops", peer)
            writer.close()

    async def _carry(
        self,
        peer: object,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
    ) -> None:
        log.debug("relaying a connection from %s to %s:%d", peer, *self._target)
        try:
            up_reader, up_writer = await asyncio.open_connection(*self._target)
        except OSError as exc:
            log.warning("nothing answers at %s:%d (%s)", *self._target, exc.strerror)
            writer.close()
            return
        try:
            await asyncio.gather(
                _pipe(reader, up_writer),
                _pipe(up_reader, writer),
                return_exceptions=True,
            )
        finally:
            for end in (writer, up_writer):
                with contextlib.suppress(OSError):
                    end.close()


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Copy one direction until EOF, then pass the EOF on (half-close), so
    the other direction can still finish its answer."""
    while data := await reader.read(65536):
        writer.write(data)
        await writer.drain()
    if writer.can_write_eof():
        writer.write_eof()
