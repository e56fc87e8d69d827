"""`digest tunnel up` and `digest dev --tunnel`: open a tunnel, tell the
other side its URL, and re-sync the app when that URL changed.

Which setting carries the URL depends on what is exposed:

* the executor (`--target executor`, or `--port 8288`): INNGEST_BASE_URL,
  read by a backend elsewhere to send events and sync;
* the backend (`--target backend`): PUBLIC_URL, which the executor calls as
  PUBLIC_URL + /api/inngest once the app is synced through it.

The URL is written to `.env.{APP_ENV}.local` in the working folder; the
value found there before is "last time". Only the dev profile has tunnels:
in prod everything has a public URL already (TUNNEL_PROVIDER=none).
"""

from __future__ import annotations

import fcntl
import os
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Literal
from urllib.parse import urlsplit

import httpx

from digest.settings import Settings, env_files
from digest.stack import request_sync
from tunnel import (
    LAST_PREFIX,
    Tunnel,
    TunnelError,
    make_tunnel,
    read_url,
    remove_url,
    write_url,
)
from tunnel.record import TunnelRecord, drop_record, put_back_stale, write_record

Target = Literal["executor", "backend"]
SETTING_OF: dict[Target, str] = {
    "executor": "INNGEST_BASE_URL",
    "backend": "PUBLIC_URL",
}
DEFAULT_PORT: dict[Target, int] = {"executor": 8288, "backend": 8000}
STARTS: dict[Target, str] = {
    "executor": "digest devserver --port {port}",
    "backend": "digest serve --port {port}",
}
# How long a re-sync waits for the tunnel to carry its first request.
SYNC_TIMEOUT_S = 20.0
# How long the re-sync at the local URL, when the tunnel closes, waits for
# the app: it was running a moment ago, or it is gone.
CLOSE_SYNC_TIMEOUT_S = 3.0
SERVE_PATH = "/api/inngest"
Echo = Callable[[str], None]


@dataclass(frozen=True)
class OpenedTunnel:
    tunnel: Tunnel
    url: str
    # The URL of the tunnel opened last time, if any.
    previous: str | None
    setting: str
    env_file: Path
    # The setting's value before this tunnel, put back when it closes.
    before: str | None = None
    # This process's hold on the setting (see hold_setting), let go on close.
    hold: IO[str] | None = None
    # DIGEST_HOME, where the record of what this tunnel wrote is kept
    # (tunnel.record), dropped on close.
    home: Path | None = None

    @property
    def changed(self) -> bool:
        return self.url != self.previous

    def restore(self, echo: Echo) -> None:
        """Put the setting back as it was: the tunnel's address is dead."""
        if self.before is None:
            remove_url(self.env_file, self.setting)
            echo(f"removed {self.setting} from {self.env_file}")
        else:
            write_url(self.env_file, self.setting, self.before)
            echo(f"{self.setting} is {self.before} again in {self.env_file}")
        if self.home is not None:
            drop_record(self.home, self.setting)
        if self.hold is not None:
            self.hold.close()


def default_port(settings: Settings, target: Target) -> int:
    """The port of the configured URL of `target` (INNGEST_BASE_URL, or
    PUBLIC_URL), when it names one; else the usual port.

    A URL without a port (an ngrok URL written by an earlier run) says
    nothing about the local port, so the usual one is used then.
    """
    url = settings.executor_url if target == "executor" else settings.public_url
    try:
        port = urlsplit(url).port
    except ValueError:
        port = None
    return port or DEFAULT_PORT[target]


def local_answers(port: int) -> bool:
    """Whether anything answers HTTP on 127.0.0.1:`port` (any status)."""
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=3.0)
    except httpx.HTTPError:
        return False
    return True


def local_env_file(settings: Settings, folder: Path | None = None) -> Path:
    return (folder or Path.cwd()) / env_files(settings.app_env)[-1]


def hold_setting(settings: Settings, setting: str) -> IO[str]:
    """An exclusive hold on writing `setting`, for as long as a tunnel is open.

    Two tunnels writing one setting would each put back, on closing, a
    value the other still relies on. The hold is a lock on a file under
    DIGEST_HOME, so it ends with its process, however that ends.
    """
    settings.digest_home.mkdir(parents=True, exist_ok=True)
    handle = (settings.digest_home / f"tunnel-{setting}.lock").open("a+")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        handle.seek(0)
        holder = handle.read().strip() or "?"
        handle.close()
        raise TunnelError(
            f"another tunnel (pid {holder}) is open and writes {setting}; "
            "close it first (Ctrl-C where it runs), or use it"
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()}\n")
    handle.flush()
    return handle


def open_and_record(
    settings: Settings, provider: str, port: int, target: Target, echo: Echo
) -> OpenedTunnel:
    """Open the tunnel to `port`, write its URL and say what changed.

    Raises TunnelError (from `tunnel`) with the fix when it cannot open.
    """
    setting = SETTING_OF[target]
    home = settings.digest_home
    hold = hold_setting(settings, setting)
    try:
        # A killed tunnel's URL is put back first, as its close would have.
        healed = put_back_stale(home, setting, locked=True)
        if healed is not None:
            echo(healed)
        tunnel = make_tunnel(provider, settings)
        url = tunnel.open(port)
    except BaseException:
        hold.close()
        raise
    env_file = local_env_file(settings)
    last = LAST_PREFIX + setting
    previous = read_url(env_file, last)
    before = read_url(env_file, setting)
    if before == previous:
        # A tunnel's URL left behind by a tunnel killed before tunnels kept
        # a record, not a value of the user's: nothing to put back.
        before = None
    # Recorded before it is written: a tunnel killed in between leaves a
    # record whose URL is not in the file, which is then simply dropped.
    write_record(home, TunnelRecord(setting, str(env_file), url, before, os.getpid()))
    write_url(env_file, setting, url)
    write_url(env_file, last, url)
    opened = OpenedTunnel(tunnel, url, previous, setting, env_file, before, hold, home)
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
    refusal = sync_through(opened.url)
    if refusal is not None:
        echo(f"could not re-sync the app through {opened.url}: {refusal}")
        echo(f"once that is fixed: curl -X PUT {opened.url}/api/inngest")
        return False
    echo(f"re-synced: the executor now calls {opened.url}/api/inngest")
    return True


def sync_through(url: str, *, timeout: float = SYNC_TIMEOUT_S) -> str | None:
    """Sync the app through `url`; None once it did, else what stopped it.

    Only "no answer" is tried again (a tunnel may take a moment to carry
    its first request): an answer, even a refusal, is final, and it is the
    SDK's (or, relayed by it, the executor's) own account of the problem.
    """
    deadline = time.monotonic() + timeout
    while True:
        try:
            return request_sync(url)
        except httpx.HTTPError as exc:
            if time.monotonic() > deadline:
                return f"nothing answered ({type(exc).__name__})"
            time.sleep(0.2)


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
        if local_answers(port):
            # Also when the URL is unchanged: the executor may have been
            # reset since, and a sync that changes nothing costs one request.
            resync(opened, settings, echo)
        else:
            start = STARTS[target].format(port=port)
            echo(
                f"warning: nothing answers at 127.0.0.1:{port}, so the tunnel "
                f"leads nowhere yet; start the {target} there ({start})"
                + (
                    f", then: curl -X PUT {opened.url}/api/inngest"
                    if target == "backend"
                    else ""
                )
            )
        echo("tunnel open; Ctrl-C closes it")
        stop.wait()
    finally:
        opened.tunnel.close()
        echo("tunnel closed")
        opened.restore(echo)
        if target == "backend":
            resync_locally(port, echo)


def resync_locally(port: int, echo: Echo) -> bool:
    """Once the tunnel is closed, sync the app at its local URL, so that an
    executor on this machine (`digest dev`'s) stops calling the dead tunnel
    address: a PUT there makes the SDK register the URL it was reached at."""
    local = f"http://127.0.0.1:{port}"
    refusal = sync_through(local, timeout=CLOSE_SYNC_TIMEOUT_S)
    if refusal is not None:
        echo(f"could not re-sync the app at {local}{SERVE_PATH}: {refusal}")
        echo(
            "an executor may still call the closed tunnel; once the app "
            f"answers: curl -X PUT {local}{SERVE_PATH}"
        )
        return False
    echo(f"re-synced: the executor now calls {local}{SERVE_PATH}")
    return True


def run_tunnel_up(
    settings: Settings, provider: str | None, port: int | None, target: str
) -> int:
    """`digest tunnel up`: 0 once closed, 2 for bad options or no tunnel."""
    import typer

    def echo(line: str) -> None:
        typer.echo(line)

    if target not in SETTING_OF:
        typer.echo(f"--target must be executor or backend, not {target!r}", err=True)
        return 2
    if not settings.is_dev:
        typer.echo(
            f"digest tunnel up is for the dev profile, not {settings.app_env}: "
            "in prod every service has a public URL (TUNNEL_PROVIDER=none); "
            "nothing was opened or written",
            err=True,
        )
        return 2
    chosen: Target = "backend" if target == "backend" else "executor"
    try:
        tunnel_up(
            settings,
            provider or settings.tunnel_provider,
            port or default_port(settings, chosen),
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
