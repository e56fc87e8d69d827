"""`digest tunnel up` and `digest dev --tunnel`: open a tunnel, tell the
other side its URL, and re-sync the app when that URL changed.

Which setting carries the URL depends on what is exposed:

* the executor (`--target executor`, or `--port 8288`): INNGEST_BASE_URL,
  read by a backend elsewhere to send events and sync;
* the backend (`--target backend`): PUBLIC_URL, which the executor calls as
  PUBLIC_URL + /api/inngest once the app is synced through it.

The URL is written to `.env.{APP_ENV}.local` in the working folder; the
value found there before is "last time".
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from digest.settings import Settings, env_files
from digest.stack import StackError, sync_app
from tunnel import Tunnel, make_tunnel, write_url

Target = Literal["executor", "backend"]
SETTING_OF: dict[Target, str] = {
    "executor": "INNGEST_BASE_URL",
    "backend": "PUBLIC_URL",
}
DEFAULT_PORT: dict[Target, int] = {"executor": 8288, "backend": 8000}
Echo = Callable[[str], None]


@dataclass(frozen=True)
class OpenedTunnel:
    tunnel: Tunnel
    url: str
    previous: str | None
    setting: str
    env_file: Path

    @property
    def changed(self) -> bool:
        return self.url != self.previous


def local_env_file(settings: Settings, folder: Path | None = None) -> Path:
    return (folder or Path.cwd()) / env_files(settings.app_env)[-1]


def open_and_record(
    settings: Settings, provider: str, port: int, target: Target, echo: Echo
) -> OpenedTunnel:
    """Open the tunnel to `port`, write its URL and say what changed.

    Raises TunnelError (from `tunnel`) with the fix when it cannot open.
    """
    tunnel = make_tunnel(provider, settings)
    url = tunnel.open(port)
    setting = SETTING_OF[target]
    env_file = local_env_file(settings)
    previous = write_url(env_file, setting, url)
    opened = OpenedTunnel(tunnel, url, previous, setting, env_file)
    echo(f"tunnel ({provider}) {url} -> 127.0.0.1:{port}")
    echo(f"wrote {setting}={url} to {env_file}")
    if previous and opened.changed:
        echo(f"the URL changed: it was {previous}, it is now {url}")
    return opened


def resync(opened: OpenedTunnel, settings: Settings, echo: Echo) -> bool:
    """Ask the app to register again so the executor calls the new URL.

    For the backend, the sync goes through the tunnel itself: the SDK
    registers the URL it was reached at. For the executor, the app must
    first read the new INNGEST_BASE_URL, which needs a restart.
    """
    if opened.setting == SETTING_OF["executor"]:
        echo(
            "restart the app so that it reads the new INNGEST_BASE_URL; it "
            "syncs with the executor there when it starts"
        )
        return False
    try:
        sync_app(opened.url, timeout=20)
    except StackError as exc:
        echo(f"could not re-sync the app through {opened.url}: {exc}")
        echo(
            "start the backend on the tunnel's port, then: "
            f"curl -X PUT {opened.url}/api/inngest"
        )
        return False
    echo(f"re-synced: the executor now calls {opened.url}/api/inngest")
    return True


def tunnel_up(
    settings: Settings, provider: str, port: int, target: Target, echo: Echo
) -> None:
    """Open the tunnel, record and re-sync, then hold it open until SIGINT or
    SIGTERM (a tunnel lives as long as its process)."""
    opened = open_and_record(settings, provider, port, target, echo)
    stop = threading.Event()
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, lambda *_: stop.set())
    try:
        # Also when the URL is unchanged: the executor may have been reset
        # since, and a sync that changes nothing costs one request.
        resync(opened, settings, echo)
        echo("tunnel open; Ctrl-C closes it")
        stop.wait()
    finally:
        opened.tunnel.close()
        echo("tunnel closed")


def run_tunnel_up(
    settings: Settings, provider: str | None, port: int | None, target: str
) -> int:
    """`digest tunnel up`: 0 once closed, 2 for bad options or no tunnel."""
    import typer

    from tunnel import TunnelError

    def echo(line: str) -> None:
        typer.echo(line)

    if target not in SETTING_OF:
        typer.echo(f"--target must be executor or backend, not {target!r}", err=True)
        return 2
    chosen: Target = "backend" if target == "backend" else "executor"
    try:
        tunnel_up(
            settings,
            provider or settings.tunnel_provider,
            port or DEFAULT_PORT[chosen],
            chosen,
            echo,
        )
    except TunnelError as exc:
        typer.echo(f"the tunnel did not open: {exc}", err=True)
        return 2
    return 0


def open_for_dev(settings: Settings, port: int) -> OpenedTunnel:
    """`digest dev --tunnel`: the backend's port through TUNNEL_PROVIDER.

    The executor that `digest dev` starts is then told to sync the app at
    the tunnel's URL, so that sync is the re-sync.
    """
    import typer

    from tunnel import TunnelError

    def echo(line: str) -> None:
        typer.echo(line)

    if settings.tunnel_provider == "none":
        echo(
            "TUNNEL_PROVIDER is none, so --tunnel opens no tunnel: the backend "
            "is reachable from this machine only; set TUNNEL_PROVIDER to ngrok "
            "or lan to expose it"
        )
    try:
        return open_and_record(
            settings, settings.tunnel_provider, port, "backend", echo
        )
    except TunnelError as exc:
        typer.echo(f"the tunnel did not open: {exc}", err=True)
        raise typer.Exit(2) from None
